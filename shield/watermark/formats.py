"""Which output formats keep the fragile watermark (lossless only)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from shield.watermark.errors import LossyFormatError

__all__ = ["require_lossless", "LOSSLESS_FORMATS"]

#: Pillow format name -> save options that make it lossless.
LOSSLESS_FORMATS: Mapping[str, Mapping[str, object]] = MappingProxyType(
    {
        "PNG": MappingProxyType({}),
        "WEBP": MappingProxyType({"lossless": True, "quality": 100, "exact": True}),
        "TIFF": MappingProxyType({"compression": "tiff_deflate"}),
    }
)
_ALIASES = {"TIF": "TIFF"}
_LOSSY = {"JPEG", "JPG", "JPE", "JFIF", "HEIC", "HEIF", "AVIF", "JXL", "GIF"}


def require_lossless(format_name: str) -> Mapping[str, object]:
    """Return Pillow save options that store ``format_name`` losslessly, or refuse.

    Args:
        format_name: a format or extension name, any case, with or without a dot
            ("png", ".webp", "TIFF", "jpg").

    Returns:
        Keyword arguments for ``PIL.Image.save`` (e.g. ``lossless=True`` for WebP).

    Raises:
        TypeError: ``format_name`` is not a string.
        LossyFormatError: the format is lossy (JPEG, HEIC, AVIF, ...) or unknown; lossy
            compression rewrites the low bits that carry the watermark.
    """
    if not isinstance(format_name, str):
        raise TypeError(f"format_name: expected str, got {type(format_name).__name__}")
    name = format_name.strip().lstrip(".").upper()
    name = _ALIASES.get(name, name)
    if name in LOSSLESS_FORMATS:
        return LOSSLESS_FORMATS[name]
    if name in _LOSSY:
        raise LossyFormatError(
            f"{format_name!r} output is lossy and would destroy the fragile watermark (it lives in the lowest bit of each pixel)"
        )
    raise LossyFormatError(f"{format_name!r} is not a known lossless output format (use PNG, WebP or TIFF)")
