"""Lookup of a fingerprint among recorded ones, by Hamming distance.

A small typed interface: :class:`FingerprintIndex` is the protocol the verifier needs
(the local index, or a ledger-backed one later); :class:`MemoryIndex` is the in-memory
implementation, a linear scan with numpy (a million hashes take about 0.1 s; PDQ's
reference uses multi-index hashing beyond that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from shield.fingerprint.errors import FingerprintInputError
from shield.fingerprint.pdq import BITS, Fingerprint

__all__ = ["MATCH_THRESHOLD", "Match", "FingerprintIndex", "MemoryIndex"]

#: Largest Hamming distance (of 256 bits) accepted as the same picture; PDQ's reference
#: value, kept because it sits in the measured gap (bench/softbinding.py, 2026-12-03,
#: bench/results/softbinding.json): over 85 protected photos, copies re-encoded (JPEG
#: 95..30), resized (0.5x..2x) or sent through resize-then-JPEG-75 chains stay within 24
#: bits (0.5x) and mostly within 4; among 1108 never-protected images (1011 video frames,
#: 12 non-faces, 85 unprotected originals) queried against 129 records, the 30 that came
#: within 40 bits of another file's record were each checked: all are the same picture
#: stored twice in the data set (a portrait that is also a clip's frame, clips generated
#: from one reference). PDQ does not survive crops: a 10% crop moves it 86-144 bits (the
#: soft-binding mark is the route there).
MATCH_THRESHOLD = 31
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


@dataclass(frozen=True)
class Match:
    """A recorded asset whose fingerprint is within the threshold.

    Attributes:
        asset_id: the 16-byte asset id it was recorded under.
        distance: Hamming distance to the queried fingerprint, 0..256.
    """

    asset_id: bytes
    distance: int


class FingerprintIndex(Protocol):
    """What verification needs from an index of recorded fingerprints."""

    def lookup(self, fingerprint: Fingerprint, threshold: int = MATCH_THRESHOLD) -> list[Match]:
        """Recorded assets within ``threshold`` bits, nearest first."""
        ...


class MemoryIndex:
    """An in-memory :class:`FingerprintIndex` (asset id -> fingerprint)."""

    def __init__(self) -> None:
        self._ids: list[bytes] = []
        self._rows: list[np.ndarray] = []
        self._matrix: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, asset_id: bytes, fingerprint: Fingerprint) -> None:
        """Record ``fingerprint`` under ``asset_id`` (16 bytes)."""
        if not isinstance(asset_id, bytes) or len(asset_id) != 16:
            raise FingerprintInputError("asset_id: expected 16 bytes")
        if not isinstance(fingerprint, Fingerprint):
            raise TypeError(f"fingerprint: expected a Fingerprint, got {type(fingerprint).__name__}")
        self._ids.append(asset_id)
        self._rows.append(np.frombuffer(fingerprint.value, dtype=np.uint8))
        self._matrix = None

    def distances(self, fingerprint: Fingerprint) -> np.ndarray:
        """Hamming distance to every recorded fingerprint, in insertion order (int array)."""
        if not isinstance(fingerprint, Fingerprint):
            raise TypeError(f"fingerprint: expected a Fingerprint, got {type(fingerprint).__name__}")
        if not self._ids:
            return np.zeros(0, dtype=np.int64)
        if self._matrix is None:
            self._matrix = np.stack(self._rows)
        x = np.bitwise_xor(self._matrix, np.frombuffer(fingerprint.value, dtype=np.uint8))
        return _POPCOUNT[x].sum(axis=1, dtype=np.int64)

    def lookup(self, fingerprint: Fingerprint, threshold: int = MATCH_THRESHOLD) -> list[Match]:
        """Recorded assets within ``threshold`` bits (0..256), nearest first."""
        if not isinstance(threshold, int) or not 0 <= threshold <= BITS:
            raise FingerprintInputError(f"threshold: expected an int in 0..{BITS}, got {threshold!r}")
        d = self.distances(fingerprint)
        near = np.flatnonzero(d <= threshold)
        return [Match(self._ids[i], int(d[i])) for i in near[np.argsort(d[near], kind="stable")]]
