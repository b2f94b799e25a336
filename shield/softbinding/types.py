"""Typed result of reading the robust mark."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Extraction"]


@dataclass(frozen=True)
class Extraction:
    """What :func:`shield.softbinding.extract` read.

    Attributes:
        found: a Reed-Solomon codeword was read (a random word passes with probability
            below 1e-7 per try; 0 false reads over 1108 unmarked images in the bench).
        asset_id: the 16-byte asset id, or None.
        sync_z: height of the best phase peak in standard deviations (3.5-6 for an
            unmarked image; typically 8 and more where a mark is read).
        disagreeing_bits: of the 256 bits read, how many the decoded codeword corrects
            (0..71), or None.
        scale: (y, x) period ratio at which the mark was read (1/c for a crop keeping c).
        bit_margin: mean |soft bit| over its spread; a confidence (above ~1.5 is clear).
        tried: candidate scales tried before giving up (0 when found).
    """

    found: bool
    asset_id: bytes | None
    sync_z: float
    disagreeing_bits: int | None
    scale: tuple[float, float] | None
    bit_margin: float | None
    tried: int = 0
