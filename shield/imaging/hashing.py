"""The canonical pixel hash: SHA-256 over a fixed header and the RGB bytes.

Pixel hash (:func:`pixel_hash`), format version 1. SHA-256 of::

    b"SHIELD-PIXELS"        13 bytes, ASCII
    version                 1 byte, unsigned (1)
    width                   4 bytes, unsigned, big-endian, pixels
    height                  4 bytes, unsigned, big-endian, pixels
    b"RGB8"                 4 bytes, ASCII: channel layout, 8 bits per channel
    pixels                  width * height * 3 bytes: rows top to bottom, pixels
                            left to right, each pixel R, G, B (one byte each)

The digest is the 32 raw bytes; its lowercase hex form is what reports show. For a
single black pixel (width 1, height 1, bytes 00 00 00) the digest begins ``a5d2369f``;
tests/data/pixel_hash_vectors.json holds the full known-answer vectors.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from shield.imaging.save import check_rgb

__all__ = ["pixel_hash", "file_sha256", "PIXEL_HASH_SPEC", "PIXEL_HASH_VERSION"]

PIXEL_HASH_VERSION = 1
_PIXEL_HASH_MAGIC = b"SHIELD-PIXELS"
_PIXEL_HASH_LAYOUT = b"RGB8"
PIXEL_HASH_SPEC = (
    'SHA-256( b"SHIELD-PIXELS" || version:u8 = 1 || width:u32 big-endian || '
    'height:u32 big-endian || b"RGB8" || RGB bytes, rows top to bottom, pixels left '
    "to right, one byte per channel in the order R, G, B )"
)


def pixel_hash(rgb: np.ndarray) -> bytes:
    """Canonical SHA-256 of an image's pixels (format version 1; see module docstring).

    Args:
        rgb: HxWx3 uint8 RGB (any memory layout; hashed in row-major order).

    Returns:
        the 32-byte digest.
    """
    check_rgb(rgb)
    height, width = int(rgb.shape[0]), int(rgb.shape[1])
    header = struct.pack(">13sBII4s", _PIXEL_HASH_MAGIC, PIXEL_HASH_VERSION, width, height, _PIXEL_HASH_LAYOUT)
    digest = hashlib.sha256(header)
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.digest()


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
