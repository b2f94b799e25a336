"""The keyed spread-spectrum tile: chips, sync positions and bit positions from a key.

Everything is derived from SHAKE-256 of a domain string and the key, so the pattern is
the same on every machine and every numpy version (no seeded PRNG whose stream could
change). The tile is ``TILE x TILE`` canonical pixels; each position holds a +-1 chip and
is either a sync position (known sign, used to find the tile's phase) or carries one
coded bit (the chip's sign is multiplied by the bit as +-1).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import numpy as np

__all__ = ["TILE", "CODE_BITS", "SYNC_FRACTION", "SYNC_GROUPS", "GROUPS", "Tile", "tile_for_key"]

#: Tile side in canonical pixels (the tile repeats over the whole canonical image).
TILE = 64
#: Coded bits carried by one tile (Reed-Solomon codeword of 32 bytes).
CODE_BITS = 256
#: Share of tile positions that are sync (known sign): 1 in 4.
SYNC_FRACTION = 0.25
#: The sync positions fall into this many groups; the embedder sets one amplitude per
#: group (and per coded bit), see :mod:`shield.softbinding.embed`.
SYNC_GROUPS = 64
#: Amplitude groups: the coded bits, then the sync groups.
GROUPS = CODE_BITS + SYNC_GROUPS
_DOMAIN = b"shield.softbinding.tile.v1\x00"


@dataclass(frozen=True)
class Tile:
    """The keyed layout of one tile.

    Attributes:
        chips: (TILE, TILE) float32 of +-1, the spreading sequence.
        sync: (TILE, TILE) float32, the chips at sync positions and 0 elsewhere.
        bit_index: (TILE, TILE) int32, the coded bit a position carries, or -1 for sync.
        group: (TILE, TILE) int32, the amplitude group: the bit index, or CODE_BITS + the
            sync group for a sync position.
    """

    chips: np.ndarray
    sync: np.ndarray
    bit_index: np.ndarray
    group: np.ndarray

    def pattern(self, bits: np.ndarray) -> np.ndarray:
        """(TILE, TILE) float32 tile for ``bits`` (CODE_BITS values 0/1): sync + signed chips."""
        signs = np.where(self.bit_index >= 0, 2.0 * bits[np.maximum(self.bit_index, 0)] - 1.0, 1.0)
        return (self.chips * signs).astype(np.float32)


@functools.lru_cache(maxsize=8)
def tile_for_key(key: bytes) -> Tile:
    """The tile layout for ``key`` (any bytes; cached)."""
    n = TILE * TILE
    stream = hashlib.shake_256(_DOMAIN + key).digest(n // 8 + 4 * n)
    chips = np.unpackbits(np.frombuffer(stream[: n // 8], dtype=np.uint8)).astype(np.float32) * 2.0 - 1.0
    order = np.argsort(np.frombuffer(stream[n // 8 :], dtype=">u4"), kind="stable")
    n_sync = int(n * SYNC_FRACTION)
    bit_index = np.full(n, -1, dtype=np.int32)
    bit_index[order[n_sync:]] = np.arange(n - n_sync, dtype=np.int32) % CODE_BITS
    group = bit_index.copy()
    group[order[:n_sync]] = CODE_BITS + np.arange(n_sync, dtype=np.int32) % SYNC_GROUPS
    sync = np.where(bit_index < 0, chips, 0.0).astype(np.float32)
    shape = (TILE, TILE)
    return Tile(chips.reshape(shape), sync.reshape(shape), bit_index.reshape(shape), group.reshape(shape))
