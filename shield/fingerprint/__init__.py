"""Perceptual fingerprint: the second, independent route from a copy back to its record.

A PDQ hash (256 bits, Meta's open perceptual hash) of the protected photo is recorded at
protect time; a copy that lost its metadata and its marks is looked up by Hamming
distance. A match says "this looks like that photo", never "these are its pixels": the
verdict it supports is a visual match of a re-encoded copy, not authenticity. Pure: arrays
and bytes in, typed values out, no file or network I/O.
"""

from shield.fingerprint.errors import FingerprintInputError
from shield.fingerprint.index import MATCH_THRESHOLD, FingerprintIndex, Match, MemoryIndex
from shield.fingerprint.pdq import BITS, MIN_QUALITY, Fingerprint, compute, hamming

#: Name and version of the method, as reported in ``soft_binding.method``.
NAME = "pdq"
VERSION = 1

__all__ = [
    "NAME",
    "VERSION",
    "BITS",
    "MIN_QUALITY",
    "MATCH_THRESHOLD",
    "Fingerprint",
    "FingerprintIndex",
    "FingerprintInputError",
    "Match",
    "MemoryIndex",
    "compute",
    "hamming",
]
