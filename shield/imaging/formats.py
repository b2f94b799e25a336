"""Which image format bytes hold, judged by content, and what the container says.

Magic bytes decide the format (never the file name); the name's extension, when it
is a known image extension, must agree. The truncation heuristics read only the
container structure (PNG IEND, JPEG EOI, RIFF size, TIFF IFD offset).
"""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image

from shield.errors import UnsupportedImageError
from shield.imaging.errors import EmptyImageError, ExtensionMismatchError, NotAnImageError, TruncatedImageError

__all__ = [
    "SUPPORTED_FORMATS",
    "EXTENSIONS",
    "PREFERRED_EXTENSION",
    "detect_format",
    "content_format",
    "check_extension",
    "is_lossless",
    "looks_truncated",
]

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"\xff\x0a", "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL"),
    (b"%PDF", "PDF"),
)
EXTENSIONS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".jfif": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".gif": "GIF",
    ".bmp": "BMP",
    ".heic": "HEIF",
    ".heif": "HEIF",
    ".avif": "AVIF",
    ".jxl": "JPEG XL",
}
PREFERRED_EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}


def detect_format(data: bytes) -> str | None:
    """The supported format of ``data`` from its magic bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    return None


def _other_format(data: bytes) -> str | None:
    for magic, fmt in _OTHER_MAGIC:
        if data.startswith(magic):
            return fmt
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
            return "HEIF"
    return None


def content_format(data: bytes, name: str) -> str:
    if not data:
        raise EmptyImageError(f"{name}: the file is empty (0 bytes)", fix="re-export the image from its source")
    fmt = detect_format(data)
    if fmt is not None:
        return fmt
    if len(data) < 12 and any(m.startswith(data) for m, _ in _MAGIC):
        raise TruncatedImageError(f"{name}: the file ends inside the image header ({len(data)} bytes)")
    other = _other_format(data)
    if other is not None:
        raise UnsupportedImageError(f"{name}: the file is a {other} image, which shield does not read")
    raise NotAnImageError(f"{name}: not a PNG, JPEG, WebP or TIFF image (content not recognised)")


def check_extension(name: str, fmt: str) -> None:
    suffix = Path(name).suffix.lower()
    claimed = EXTENSIONS.get(suffix)
    if claimed is not None and claimed != fmt:
        better = Path(name).with_suffix(PREFERRED_EXTENSION[fmt]).name
        raise ExtensionMismatchError(
            f"{name}: the content is {fmt} but the name ends in {suffix} ({claimed})",
            fix=f"rename the file to {better} if it is what you meant",
        )


def is_lossless(fmt: str, data: bytes, im: Image.Image) -> bool:
    if fmt == "PNG":
        return True
    if fmt == "TIFF":
        return str(im.info.get("compression", "raw")) not in {"jpeg", "tiff_jpeg", "webp"}
    if fmt == "WEBP":
        return _webp_first_bitstream(data) == b"VP8L"
    return False


def _webp_first_bitstream(data: bytes) -> bytes | None:
    """b"VP8L" (lossless) or b"VP8 " (lossy): the first image chunk, frames included."""
    pos = 12
    while pos + 8 <= len(data):
        tag = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if tag in (b"VP8L", b"VP8 "):
            return tag
        if tag == b"ANMF":  # frame header (16 bytes), then the frame's own chunks
            pos += 8 + 16
            continue
        pos += 8 + size + (size & 1)
    return None


# APPn, COM, DQT, DHT, SOFn, DRI: what a JPEG's third byte may be followed by.
_JPEG_FIRST_MARKERS = frozenset([*range(0xE0, 0xF0), 0xFE, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD])


def looks_truncated(data: bytes, fmt: str) -> bool:
    """Whether the file starts well but its container says it was cut short.

    Random bytes behind a valid magic are "corrupt", not "truncated": the start of the
    file must look right (a PNG's IHDR chunk, a known JPEG marker) for this to say yes.
    """
    if fmt == "PNG":
        if len(data) < 33 or data[12:16] != b"IHDR":
            return len(data) < 33
        end = data.rfind(b"\x00\x00\x00\x00IEND")
        return end < 0 or end + 12 > len(data)
    if fmt == "JPEG":
        if len(data) < 4 or not (data[3] in _JPEG_FIRST_MARKERS):
            return len(data) < 4
        return not data.rstrip(b"\x00").endswith(b"\xff\xd9")
    if fmt == "WEBP":
        return len(data) < 12 or struct.unpack_from("<I", data, 4)[0] + 8 > len(data)
    if len(data) < 8:  # TIFF: the first IFD must lie inside the file
        return True
    order = "<" if data[:2] == b"II" else ">"
    if data[2:4] in (b"+\x00", b"\x00+"):  # BigTIFF: 8-byte offset at byte 8
        return len(data) < 16 or struct.unpack_from(order + "Q", data, 8)[0] + 8 > len(data)
    return struct.unpack_from(order + "I", data, 4)[0] + 2 > len(data)
