"""Decoded Pillow image -> 8-bit RGB, saying in words what each step did.

16-bit samples: Pillow keeps only the high byte of 16-bit colour (RGB;16 rawmodes), so
the frame is decoded a second time with the opposite-endian unpacker, which yields the
low byte through the same unfiltering, and the two are combined before scaling with
``round(v * 255 / 65535)``. Alpha is composited over white unless fully opaque.
"""

from __future__ import annotations

import io
import logging
import re
import sys

import numpy as np
from PIL import Image

from shield.errors import UnsupportedImageError

try:  # LittleCMS is optional in Pillow builds; without it CMYK uses Pillow's formula.
    from PIL import ImageCms
except ImportError:  # pragma: no cover - depends on the Pillow build
    ImageCms = None  # type: ignore[assignment]

__all__ = ["to_rgb", "rawmode_of", "note_icc"]

log = logging.getLogger(__name__)

_SIXTEEN_BIT = re.compile(r"^(RGB|RGBA|RGBX|CMYK);16([BLN])$")


def rawmode_of(im: Image.Image) -> str:
    """Pillow's unpacker name for the stored samples (e.g. ``"RGB;16B"``); read before load()."""
    tiles = getattr(im, "tile", None) or []
    if not tiles:
        return ""
    args = tiles[0].args
    raw = args[0] if isinstance(args, tuple) and args else args
    return raw if isinstance(raw, str) else ""


def _decode_with_rawmode(data: bytes, fmt: str, rawmode: str) -> np.ndarray:
    """Decode frame 0 again with another unpacker of the same bit width."""
    with Image.open(io.BytesIO(data), formats=[fmt]) as alt:
        tiles = []
        for tile in alt.tile:
            args = tile.args
            args = (rawmode, *args[1:]) if isinstance(args, tuple) else rawmode
            tiles.append(tile._replace(args=args))
        alt.tile = tiles
        alt.load()
        return np.asarray(alt)


def _other_byte(rawmode: str) -> str | None:
    match = _SIXTEEN_BIT.match(rawmode)
    if match is None:
        return None
    order = match.group(2)
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return f"{match.group(1)};16{'L' if order == 'B' else 'B'}"


def _scale16(samples: np.ndarray) -> np.ndarray:
    """16-bit -> 8-bit, round(v * 255 / 65535), exact in integers."""
    wide = samples.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _samples(im: Image.Image, raw: str, data: bytes, fmt: str, notes: list[str]) -> tuple[np.ndarray, str]:
    """The stored samples as HxWxC (uint8 or uint16) and their layout name."""
    mode = im.mode
    if mode == "RGBA" and raw == "LA;16B":  # 16-bit grey+alpha: read all four bytes
        quad = _decode_with_rawmode(data, fmt, "RGBA").astype(np.uint16)
        return np.stack([quad[..., 0] << 8 | quad[..., 1], quad[..., 2] << 8 | quad[..., 3]], axis=-1), "LA"
    if ";16" in raw and mode in ("RGB", "RGBA", "RGBX", "CMYK"):
        high = np.asarray(im)
        other = _other_byte(raw)
        if other is None:
            notes.append("16-bit samples reduced to 8 bits by the decoder (high byte kept)")
            return high, mode
        low = _decode_with_rawmode(data, fmt, other)
        return high.astype(np.uint16) << 8 | low.astype(np.uint16), mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im)
        if values.size and (int(values.min()) < 0 or int(values.max()) > 65535):
            raise UnsupportedImageError(
                "greyscale samples outside 0..65535 are not supported",
                fix="save the image with 8- or 16-bit samples",
            )
        return values.astype(np.uint16)[..., None], "L"
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK", "RGBX"):
        arr = np.asarray(im)
        return (arr[..., None] if arr.ndim == 2 else arr), mode
    raise UnsupportedImageError(
        f"pixels of mode {mode} are not supported", fix="save the image with 8- or 16-bit integer samples"
    )


def to_rgb(im: Image.Image, rawmode: str, data: bytes, fmt: str, notes: list[str]) -> np.ndarray:
    """The loaded frame as HxWx3 uint8 RGB; appends a plain-words note per conversion.

    Args:
        im: the opened and loaded image (frame 0).
        rawmode: :func:`rawmode_of` taken before loading.
        data: the file bytes, decoded again for the low byte of 16-bit colour.
        fmt: content format, for that second decode.
        notes: list the conversions are appended to.

    Raises:
        UnsupportedImageError: a pixel mode with no faithful 8-bit RGB reading (float,
            signed 32-bit, LAB...).
    """
    mode = im.mode
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        notes.append("palette (indexed) colours expanded to RGB")
        im = im.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        notes.append("1-bit black and white expanded to RGB")
        im = im.convert("L")
    elif mode in ("YCbCr", "RGBa", "La"):
        target = "RGB" if mode == "YCbCr" else mode.upper()
        notes.append(f"{mode} converted to {target}")
        im = im.convert(target)
    if im.mode != mode:
        rawmode = ""
    samples, layout = _samples(im, rawmode, data, fmt, notes)
    alpha = _transparency_key_alpha(im, samples, layout)
    if samples.dtype == np.uint16:
        notes.append("16-bit samples scaled to 8 bits (rounded)")
        samples = _scale16(samples)
    if layout == "RGBX":
        notes.append("unused fourth channel dropped")
        layout, samples = "RGB", samples[..., :3]
    if layout in ("LA", "RGBA"):
        alpha, samples = samples[..., -1], samples[..., :-1]
        layout = layout[:-1]
    if layout == "L":
        notes.append("greyscale replicated to RGB")
        samples = np.repeat(samples, 3, axis=-1)
    elif layout == "CMYK":
        samples = _cmyk_to_rgb(samples, im.info.get("icc_profile"), notes)
    if alpha is not None:
        samples = _flatten_alpha(samples, alpha, notes)
    return samples


def _transparency_key_alpha(im: Image.Image, samples: np.ndarray, layout: str) -> np.ndarray | None:
    """Alpha from a PNG tRNS colour key on L or RGB, compared at the stored depth."""
    key = im.info.get("transparency")
    if key is None or layout not in ("L", "RGB"):
        return None
    key_values = np.atleast_1d(np.asarray(key, dtype=np.int64))
    if key_values.size != samples.shape[-1]:
        return None
    transparent = np.all(samples.astype(np.int64) == key_values, axis=-1)
    return np.where(transparent, 0, 255).astype(np.uint8)


def _flatten_alpha(rgb: np.ndarray, alpha: np.ndarray, notes: list[str]) -> np.ndarray:
    if bool(np.all(alpha == 255)):
        notes.append("alpha channel is fully opaque; dropped")
        return rgb
    notes.append("alpha channel composited over white; transparency is not preserved")
    a = alpha.astype(np.uint32)[..., None]
    out = (rgb.astype(np.uint32) * a + 255 * (255 - a) + 127) // 255
    return out.astype(np.uint8)


_SIMPLE_CMYK = "CMYK converted to RGB with Pillow's simple formula ({why}); colours are approximate"


def _cmyk_to_rgb(cmyk: np.ndarray, icc: bytes | None, notes: list[str]) -> np.ndarray:
    image = Image.frombytes("CMYK", (cmyk.shape[1], cmyk.shape[0]), np.ascontiguousarray(cmyk).tobytes())
    if icc and ImageCms is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            target = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, target, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError) as exc:
            log.debug("CMYK ICC profile rejected: %s", exc)
            notes.append(_SIMPLE_CMYK.format(why="the embedded ICC profile is unusable"))
        else:
            if converted is not None:
                notes.append("CMYK converted to sRGB through the embedded ICC profile (LittleCMS)")
                return np.asarray(converted)
    elif icc:
        notes.append(_SIMPLE_CMYK.format(why="no colour management available"))
    else:
        notes.append(_SIMPLE_CMYK.format(why="no ICC profile embedded"))
    return np.asarray(image.convert("RGB"))


def note_icc(icc: bytes, notes: list[str]) -> None:
    """Say so when an RGB or greyscale image carries a profile other than sRGB.

    Such pixels are used as stored, not colour-managed: converting would change the
    values that the watermark and the pixel hash are computed over.
    """
    description = "unreadable"
    if ImageCms is not None:
        try:
            description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()
        except Exception:  # a hostile or broken profile only loses its name
            description = "unreadable"
    if "srgb" not in description.lower():
        notes.append(f"embedded ICC profile ({description}) not applied; pixel values are used as stored")
