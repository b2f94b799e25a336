"""Safe decoding of PNG, JPEG, WebP and TIFF into 8-bit RGB.

The pixel count declared in the header is checked against ``max_pixels`` before any
pixel buffer exists; Pillow's own bomb guard is set from the same limit while the
image is opened (its WebP decoder allocates the canvas during ``open``). Every failure
of the decoder on untrusted bytes becomes an :class:`~shield.errors.ImageError`.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
import zlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from shield.errors import CorruptImageError, ImageError, ImageTooLargeError
from shield.imaging.convert import note_icc, rawmode_of, to_rgb
from shield.imaging.errors import EmptyImageError, ImageReadError, TruncatedImageError
from shield.imaging.formats import check_extension, content_format, is_lossless, looks_truncated

__all__ = ["LoadedImage", "load_image", "load_image_bytes", "MAX_FILE_BYTES_PER_PIXEL"]

log = logging.getLogger(__name__)

#: File-size guard: the largest sane file for an image at the pixel limit is an
#: uncompressed 16-bit RGBA TIFF, 8 bytes a pixel, plus room for metadata.
MAX_FILE_BYTES_PER_PIXEL = 8
_FILE_SLACK_BYTES = 64 << 20


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image and what was done to it on the way.

    Attributes:
        rgb: HxWx3 uint8, C-contiguous, read-only; orientation already applied.
        width, height: size of ``rgb`` in pixels (after EXIF orientation).
        format: content format, one of ``SUPPORTED_FORMATS``.
        mode_in: Pillow mode of the stored pixels (``"P"``, ``"I;16"``, ``"CMYK"``...).
        conversions: every change made to reach 8-bit RGB, in plain words, in order.
        icc_profile: the embedded ICC profile, or None. RGB pixel values are used as
            stored (only CMYK is colour-managed); see ``conversions``.
        source: the file path or name the bytes came from (for messages).
        lossless: the format stores pixels exactly (PNG, TIFF other than JPEG/WebP
            compressed, lossless WebP).
        orientation: EXIF orientation tag found (1-8; 1 when absent or invalid).
        frames: number of frames or pages in the file; only the first is used.
    """

    rgb: np.ndarray
    width: int
    height: int
    format: str
    mode_in: str
    conversions: tuple[str, ...]
    icc_profile: bytes | None
    source: str
    lossless: bool
    orientation: int = 1
    frames: int = 1


# Pillow's bomb limit and truncated-image switch are process globals: hold them steady
# for the whole open+decode of one image.
_PIL_LOCK = threading.Lock()


@contextmanager
def _pil_limits(max_pixels: int) -> Iterator[None]:
    with _PIL_LOCK, warnings.catch_warnings(record=True) as caught:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        # Pillow raises above 2x its limit (WebP checks before allocating its canvas);
        # the warning it gives between 1x and 2x is redundant with our own check, and
        # its parsers' warnings about damaged metadata go to the log, not the terminal.
        Image.MAX_IMAGE_PIXELS = (max_pixels + 1) // 2
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        warnings.simplefilter("always")
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved
            for item in caught:
                log.debug("decoder warning: %s", item.message)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


def _decode_error(exc: Exception, name: str, fmt: str, max_pixels: int, data: bytes) -> ImageError:
    if isinstance(exc, ImageError):
        if exc.message.startswith(f"{name}: "):
            return exc
        return type(exc)(f"{name}: {exc.message}", fix=exc.fix)
    if isinstance(exc, Image.DecompressionBombError):
        return ImageTooLargeError(f"{name}: the {fmt} header declares more than the limit of {max_pixels:,} pixels")
    reason = "header not understood" if isinstance(exc, UnidentifiedImageError) else _one_line(exc)
    if "truncated" in reason.lower() or isinstance(exc, EOFError) or looks_truncated(data, fmt):
        return TruncatedImageError(f"{name}: the {fmt} data ends before the image does ({reason})")
    if isinstance(exc, MemoryError):
        return ImageTooLargeError(f"{name}: not enough memory to decode this {fmt} image")
    return CorruptImageError(f"{name}: the {fmt} data is corrupt or of a kind shield cannot read ({reason})")


def _check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"{name}: the image has no pixels ({width} x {height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width} x {height} = {width * height:,} pixels exceeds the limit of {max_pixels:,}"
        )


def _peek_png_size(data: bytes) -> tuple[int, int] | None:
    # IHDR is the first chunk; reading it here gives exact numbers in the messages.
    if len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack_from(">II", data, 16)
        return width, height
    return None


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (x start, y start, x step, y step), PNG 3rd ed. section 8.2.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_expected_bytes(width: int, height: int, depth: int, ctype: int, interlace: int) -> int | None:
    channels = _PNG_CHANNELS.get(ctype)
    if channels is None or depth not in (1, 2, 4, 8, 16):
        return None

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * channels * depth + 7) // 8)

    if interlace == 0:
        return rows(width, height)
    return sum(rows((width - x0 + dx - 1) // dx if width > x0 else 0, (height - y0 + dy - 1) // dy if height > y0 else 0)
               for x0, y0, dx, dy in _ADAM7)


def _check_png_data(data: bytes, name: str) -> None:
    """Refuse a PNG whose compressed image data inflates to fewer bytes than its header
    needs. Pillow stops at the end of the zlib stream without an error and leaves the
    missing rows blank, so a header enlarged after the fact (up to the pixel limit) would
    otherwise decode into a huge, mostly empty image that every later stage must scan."""
    if len(data) < 33 or data[12:16] != b"IHDR":
        return
    width, height, depth, ctype, _comp, _filt, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    expected = _png_expected_bytes(width, height, depth, ctype, interlace)
    if expected is None:
        return  # Pillow reports the unsupported header itself
    inflater = zlib.decompressobj()
    got, pos = 0, 8
    while pos + 8 <= len(data) and got < expected:
        (length,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4:pos + 8] == b"IDAT":
            chunk = data[pos + 8:pos + 8 + length]
            try:
                while chunk and got < expected:
                    got += len(inflater.decompress(chunk, 1 << 20))
                    chunk = inflater.unconsumed_tail
            except zlib.error:
                return  # corrupt deflate data: Pillow's own error names it
        pos += 12 + length
    if got < expected:
        raise TruncatedImageError(f"{name}: the PNG image data holds {got:,} of the {expected:,} bytes its "
                                  f"{width} x {height} header needs")


def _check_max_pixels(max_pixels: int) -> None:
    if not isinstance(max_pixels, int) or isinstance(max_pixels, bool):
        raise TypeError(f"max_pixels: expected int, got {type(max_pixels).__name__}")
    if max_pixels < 1:
        raise ValueError(f"max_pixels: must be >= 1, got {max_pixels}")


def load_image(path: Path, *, max_pixels: int) -> LoadedImage:
    """Read and decode an image file; see :func:`load_image_bytes`.

    Raises:
        ImageReadError: missing, a folder, or unreadable.
        ImageTooLargeError: the file is larger than any image within ``max_pixels``.
        ImageError: as :func:`load_image_bytes`.
    """
    _check_max_pixels(max_pixels)
    path = Path(path)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ImageReadError(f"{path}: is a folder, not an image file", fix="give the path of an image file")
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({_one_line(exc)})") from exc
    limit = MAX_FILE_BYTES_PER_PIXEL * max_pixels + _FILE_SLACK_BYTES
    if size > limit:
        raise ImageTooLargeError(f"{path}: the file is {size:,} bytes, more than any image within the pixel limit")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot be read ({_one_line(exc)})") from exc
    return load_image_bytes(data, name=str(path), max_pixels=max_pixels)


def load_image_bytes(data: bytes, *, name: str, max_pixels: int) -> LoadedImage:
    """Decode PNG, JPEG, WebP or TIFF bytes into 8-bit RGB, reporting every conversion.

    Args:
        data: the whole file content.
        name: file name or path, used for the extension check and in messages.
        max_pixels: largest accepted width x height, checked before decoding.

    Raises:
        EmptyImageError: zero bytes, or a 0-pixel-wide or -high image.
        TruncatedImageError: the data ends before the image does.
        CorruptImageError: the decoder rejects the data.
        NotAnImageError, UnsupportedImageError: not a supported image format or mode.
        ExtensionMismatchError: e.g. PNG content in a file named ``.jpg``.
        ImageTooLargeError: more than ``max_pixels`` pixels.
    """
    _check_max_pixels(max_pixels)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    fmt = content_format(data, name)
    check_extension(name, fmt)
    if fmt == "PNG" and (size := _peek_png_size(data)) is not None:
        _check_size(*size, name, max_pixels)
        _check_png_data(data, name)
    with _pil_limits(max_pixels):
        try:
            im = Image.open(io.BytesIO(data), formats=[fmt])
        except Exception as exc:  # every parser failure on untrusted bytes means "corrupt"
            raise _decode_error(exc, name, fmt, max_pixels, data) from exc
        with im:
            _check_size(im.width, im.height, name, max_pixels)
            return _decode(im, data, fmt, name, max_pixels)


def _decode(im: Image.Image, data: bytes, fmt: str, name: str, max_pixels: int) -> LoadedImage:
    notes: list[str] = []
    try:
        frames = int(getattr(im, "n_frames", 1))
        if frames > 1:
            im.seek(0)
            notes.append(f"the file holds {frames} frames or pages; only the first is used")
        # The tile list is gone once pixels are loaded (PNG's getexif() loads them).
        mode_in, rawmode = im.mode, rawmode_of(im)
        orientation = _orientation(im)
        im.load()
        rgb = to_rgb(im, rawmode, data, fmt, notes)
    except Exception as exc:  # Pillow raises many types on hostile data; all mean "corrupt"
        raise _decode_error(exc, name, fmt, max_pixels, data) from exc
    if fmt == "PNG" and looks_truncated(data, fmt):
        # Pillow stops reading after the pixels; a cut-off IEND still means a cut-off file.
        raise TruncatedImageError(f"{name}: the PNG data ends before its IEND chunk")
    rgb = _apply_orientation(rgb, orientation, notes)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    rgb.setflags(write=False)
    icc = im.info.get("icc_profile") or None
    if icc is not None and mode_in != "CMYK":
        note_icc(icc, notes)
    if notes:
        log.debug("%s: %s", name, "; ".join(notes))
    return LoadedImage(
        rgb=rgb,
        width=int(rgb.shape[1]),
        height=int(rgb.shape[0]),
        format=fmt,
        mode_in=mode_in,
        conversions=tuple(notes),
        icc_profile=bytes(icc) if icc is not None else None,
        source=name,
        lossless=is_lossless(fmt, data, im),
        orientation=orientation,
        frames=frames,
    )


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # unreadable EXIF is not fatal: the pixels are still good
        log.debug("EXIF block unreadable; orientation ignored")
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


_ORIENTATION = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT, "mirrored left to right"),
    3: (Image.Transpose.ROTATE_180, "rotated 180 degrees"),
    4: (Image.Transpose.FLIP_TOP_BOTTOM, "mirrored top to bottom"),
    5: (Image.Transpose.TRANSPOSE, "mirrored about the main diagonal"),
    6: (Image.Transpose.ROTATE_270, "rotated 90 degrees clockwise"),
    7: (Image.Transpose.TRANSVERSE, "mirrored about the anti-diagonal"),
    8: (Image.Transpose.ROTATE_90, "rotated 90 degrees counter-clockwise"),
}


def _apply_orientation(rgb: np.ndarray, orientation: int, notes: list[str]) -> np.ndarray:
    # Same transposes as ImageOps.exif_transpose, applied after conversion so that they
    # work for every input mode.
    if orientation not in _ORIENTATION:
        return rgb
    method, words = _ORIENTATION[orientation]
    notes.append(f"EXIF orientation {orientation} applied: {words}")
    return np.asarray(Image.fromarray(rgb).transpose(method))
