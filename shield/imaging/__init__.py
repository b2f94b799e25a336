"""Safe image loading and atomic saving, and the canonical pixel hash.

Loading (:func:`load_image`, :func:`load_image_bytes`) accepts PNG, JPEG, WebP and
TIFF, recognised by their content (magic bytes), never by the file name. A file whose
name ends in a known image extension must hold that kind of image; any other name
(or none) is taken at its content's word. Every image comes out as HxWx3 ``uint8``
RGB, and every change made on the way is listed in plain words in
:attr:`LoadedImage.conversions`: palette and greyscale expansion, 16-bit scaling
(``round(v * 255 / 65535)``, never truncation), alpha (composited over white, or
dropped when fully opaque), CMYK, EXIF orientation and multi-frame files.

Hostile input: the pixel count declared in the header is checked against
``max_pixels`` before any pixel buffer is allocated (decompression bombs), the file
size is bounded by :data:`MAX_FILE_BYTES_PER_PIXEL`, and every failure of the
decoder becomes a :class:`~shield.errors.ShieldError` subclass.

Saving (:func:`atomic_write_bytes`, :func:`save_image_atomic`) writes a temporary
file in the target folder, fsyncs it and moves it into place in one step, so a
partial file is never visible under the final name; it refuses to write over any of
the inputs, and over an existing file unless asked to.

The pixel hash (:func:`pixel_hash`) is specified in :mod:`shield.imaging.hashing`
and in :data:`PIXEL_HASH_SPEC`.

Modules: ``formats`` (content detection), ``load`` (decoding and limits),
``convert`` (modes to RGB), ``save`` (lossless PNG and WebP encoding, atomic writes), ``hashing``,
``errors`` (the narrow error classes below).
"""

from shield.imaging.errors import (
    EmptyImageError,
    ExtensionMismatchError,
    ImageReadError,
    NotAnImageError,
    TruncatedImageError,
)
from shield.imaging.formats import SUPPORTED_FORMATS, detect_format
from shield.imaging.hashing import PIXEL_HASH_SPEC, PIXEL_HASH_VERSION, pixel_hash
from shield.imaging.load import MAX_FILE_BYTES_PER_PIXEL, LoadedImage, load_image, load_image_bytes
from shield.imaging.save import atomic_write_bytes, encode_image, encode_png, encode_webp, save_image_atomic

__all__ = [
    "LoadedImage",
    "load_image",
    "load_image_bytes",
    "detect_format",
    "encode_png",
    "encode_webp",
    "encode_image",
    "save_image_atomic",
    "atomic_write_bytes",
    "pixel_hash",
    "PIXEL_HASH_SPEC",
    "PIXEL_HASH_VERSION",
    "SUPPORTED_FORMATS",
    "MAX_FILE_BYTES_PER_PIXEL",
    "ImageReadError",
    "EmptyImageError",
    "TruncatedImageError",
    "NotAnImageError",
    "ExtensionMismatchError",
]
