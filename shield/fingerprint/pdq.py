"""PDQ: Meta's 256-bit perceptual hash (the ``pdqhash`` package, a binding of the
reference C++ code of facebook/ThreatExchange ``pdq``), and Hamming distance.

Reference: "The TMK+PDQF and PDQ hashing algorithms", Meta ThreatExchange,
``hashing/hashing.pdf``. The photo is first reduced so that its longer side is at most
:data:`PREPARE_SIDE` pixels (antialiased), as the reference tools advise for speed: PDQ's
own first step is a Jarosz filter down to 64x64, so the hash barely moves, and a 12 MP
photo is hashed in tens of milliseconds instead of seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from shield.fingerprint.errors import FingerprintInputError

__all__ = ["BITS", "MIN_QUALITY", "PREPARE_SIDE", "MAX_PIXELS", "Fingerprint", "compute", "hamming"]

#: Length of a PDQ hash in bits.
BITS = 256
#: PDQ's quality (0..100) below which the reference advises not to trust a hash: the
#: image has too little structure (flat, nearly blank).
MIN_QUALITY = 50
#: Longer side the photo is reduced to before hashing.
PREPARE_SIDE = 512
#: Largest image accepted (bounds the memory of the reduction; the imaging layer's
#: decompression-bomb guard is the real limit).
MAX_PIXELS = 200_000_000
_COMMIT_DOMAIN = b"shield.fingerprint.pdq.v1\x00"


@dataclass(frozen=True)
class Fingerprint:
    """A PDQ hash and its quality.

    Attributes:
        value: the 256-bit hash, 32 bytes, most significant bit first in PDQ's bit order.
        quality: PDQ's quality score, 0..100 (below :data:`MIN_QUALITY`: not reliable).
    """

    value: bytes
    quality: int

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes) or len(self.value) != BITS // 8:
            raise FingerprintInputError(f"value: expected {BITS // 8} bytes, got {self.value!r:.40}")
        if not isinstance(self.quality, int) or not 0 <= self.quality <= 100:
            raise FingerprintInputError(f"quality: expected an int in 0..100, got {self.quality!r}")

    @property
    def reliable(self) -> bool:
        """Whether the quality reaches :data:`MIN_QUALITY`."""
        return self.quality >= MIN_QUALITY

    def hex(self) -> str:
        """The hash as 64 lowercase hex digits (the form PDQ tools exchange)."""
        return self.value.hex()

    def commitment(self) -> bytes:
        """32-byte SHA-256 commitment to the hash (domain-separated), for a ledger that
        stores the commitment and publishes the value beside it."""
        return hashlib.sha256(_COMMIT_DOMAIN + self.value).digest()

    @classmethod
    def from_hex(cls, text: str, quality: int = 100) -> Fingerprint:
        """Parse 64 hex digits (as written by :meth:`hex`)."""
        if not isinstance(text, str) or len(text) != BITS // 4:
            raise FingerprintInputError(f"fingerprint: expected {BITS // 4} hex digits")
        try:
            return cls(bytes.fromhex(text), quality)
        except ValueError as exc:
            raise FingerprintInputError("fingerprint: not hexadecimal") from exc


def _prepare(rgb: object) -> np.ndarray:
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"rgb: expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise FingerprintInputError(f"rgb: expected HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if h * w > MAX_PIXELS:
        raise FingerprintInputError(f"rgb: {w}x{h} exceeds {MAX_PIXELS} pixels")
    if max(h, w) <= PREPARE_SIDE:
        return np.ascontiguousarray(rgb)
    s = PREPARE_SIDE / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))


def compute(rgb: np.ndarray) -> Fingerprint:
    """The PDQ fingerprint of an RGB photo.

    Args:
        rgb: HxWx3 uint8 RGB, any size from 1x1.

    Returns:
        :class:`Fingerprint` (check ``reliable`` before trusting a match on it).

    Raises:
        TypeError, FingerprintInputError: ``rgb`` is not an HxWx3 uint8 array.
    """
    import pdqhash  # the C++ binding: imported only when a hash is computed

    bits, quality = pdqhash.compute(_prepare(rgb))
    value = np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes()
    return Fingerprint(value, int(quality))


def hamming(a: Fingerprint | bytes, b: Fingerprint | bytes) -> int:
    """Number of differing bits between two PDQ hashes, 0..256."""
    va = a.value if isinstance(a, Fingerprint) else a
    vb = b.value if isinstance(b, Fingerprint) else b
    if not isinstance(va, bytes) or not isinstance(vb, bytes) or len(va) != len(vb) or len(va) != BITS // 8:
        raise FingerprintInputError("hamming: expected two 32-byte PDQ hashes")
    return (int.from_bytes(va, "big") ^ int.from_bytes(vb, "big")).bit_count()
