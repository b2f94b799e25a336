"""Reed-Solomon coding of the asset id into the tile's 256 coded bits."""

from __future__ import annotations

import numpy as np
from reedsolo import ReedSolomonError, RSCodec

__all__ = ["ID_BYTES", "PARITY_BYTES", "encode_bits", "decode_bits"]

#: Length of the asset id the mark carries (the project's 128-bit asset id).
ID_BYTES = 16
#: Reed-Solomon parity bytes: corrects any 8 wrong bytes of the 32-byte codeword.
PARITY_BYTES = 16
_RS = RSCodec(PARITY_BYTES)


def encode_bits(asset_id: bytes) -> np.ndarray:
    """The 256 coded bits (uint8 0/1) of a 16-byte asset id."""
    return np.unpackbits(np.frombuffer(bytes(_RS.encode(asset_id)), dtype=np.uint8))


def decode_bits(bits: np.ndarray) -> tuple[bytes, int] | None:
    """(asset id, corrected byte count) from 256 hard bits, or None if not a codeword
    within 8 byte errors (for random bits that happens with probability below 1e-12)."""
    word = bytearray(np.packbits(bits.astype(np.uint8)).tobytes())
    try:
        msg, _, errata = _RS.decode(word)
    except ReedSolomonError:
        return None
    return bytes(msg), len(errata)
