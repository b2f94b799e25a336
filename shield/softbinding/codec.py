"""Reed-Solomon coding of the asset id into the tile's 256 coded bits, and its soft
decoding (generalized minimum distance: Forney, "Generalized minimum distance decoding",
IEEE Trans. Inf. Theory 12(2), 1966)."""

from __future__ import annotations

import numpy as np
from reedsolo import ReedSolomonError, RSCodec

__all__ = ["ID_BYTES", "PARITY_BYTES", "MAX_DISAGREE", "encode_bits", "decode_soft"]

#: Length of the asset id the mark carries (the project's 128-bit asset id).
ID_BYTES = 16
#: Reed-Solomon parity bytes: 8 byte errors, or e errors and f erasures with 2e + f <= 16.
PARITY_BYTES = 16
#: A decoded codeword is accepted only if at most this share of the 256 read bits disagree
#: with it. For bits that carry no mark, each disagrees with probability 1/2, so passing
#: needs a 7-sigma deviation (probability below 1e-11 per try): this, not the decoder,
#: bounds the false-positive rate, whatever erasures were tried.
MAX_DISAGREE = 0.28
# Erasure counts tried, least reliable bytes first (0 = plain hard-decision decoding).
_ERASURES = (0, 2, 4, 6, 8, 10)
_RS = RSCodec(PARITY_BYTES)


def encode_bits(asset_id: bytes) -> np.ndarray:
    """The 256 coded bits (uint8 0/1) of a 16-byte asset id."""
    return np.unpackbits(np.frombuffer(bytes(_RS.encode(asset_id)), dtype=np.uint8))


def decode_soft(soft: np.ndarray) -> tuple[bytes, int] | None:
    """(asset id, disagreeing bits) from 256 soft bits (positive = 1), or None.

    Tries hard-decision decoding, then erases the least reliable bytes (smallest |soft|
    of their bits) in growing numbers; accepts the first codeword that at most
    :data:`MAX_DISAGREE` of the hard bits disagree with.
    """
    hard = (soft > 0).astype(np.uint8)
    word = bytearray(np.packbits(hard).tobytes())
    reliability = np.abs(soft).reshape(-1, 8).min(axis=1)
    order = [int(i) for i in np.argsort(reliability, kind="stable")]
    for f in _ERASURES:
        try:
            msg, full, _ = _RS.decode(word, erase_pos=order[:f] if f else None)
        except ReedSolomonError:
            continue
        disagree = int(np.count_nonzero(np.unpackbits(np.frombuffer(bytes(full), dtype=np.uint8)) != hard))
        if disagree <= MAX_DISAGREE * hard.size:
            return bytes(msg), disagree
    return None
