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
#: with it (a sanity filter: a miscorrection agrees with the read bytes it kept anyway).
MAX_DISAGREE = 0.28
# Erasure counts tried, least reliable bytes first (0 = plain hard-decision decoding). The
# false-positive rate is the decoder's: a random word decodes with f erasures and
# e <= (16 - f) / 2 errors with probability about C(32 - f, e) 255^e / 256^(16 - f), that
# is 6e-8 for f = 6, 1e-9 for f = 4, 5e-13 for f = 0; f = 8 and 10 would reach 3e-6 and
# 1e-4, so they are not tried (on the hardest small-photo copies that costs 1 read in 96).
_ERASURES = (0, 2, 4, 6)
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
