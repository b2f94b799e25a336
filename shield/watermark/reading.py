"""Keyless payload reading: per-block copies, voting and Reed-Solomon decoding.

Each block carries the whole 61-byte payload codeword inside its CRC-checked record.
When records pass their CRC, their codewords are counted and the most frequent one is
decoded (several distinct ones mean a collage or splice; all are counted). When no record
passes (light damage everywhere, e.g. scattered bit flips), every block votes bit by bit
(soft majority) and Reed-Solomon corrects what voting left wrong, with the least certain
bytes marked as erasures on a second try.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from shield.watermark.checks import check_rgb
from shield.watermark.layout import Grid, USED_BITS
from shield.watermark.locate import Location, locate
from shield.watermark.record import CODEWORD_BYTES, RS_NSYM, decode_codeword, parse_record
from shield.watermark.scan import BlockScan, scan
from shield.watermark.types import PAYLOAD_VERSION, Payload, PayloadReading

__all__ = ["read_payload", "vote_codewords", "soft_decode"]

_CW = slice(11, 11 + CODEWORD_BYTES)
#: Erasure counts tried by soft decoding. At most RS_NSYM // 4, so 12 parity bytes stay
#: for error correction and noise decodes to a valid version-1 payload with probability
#: about 1e-9 (with RS_NSYM erasures every word would decode to something).
SOFT_ERASURES = (0, RS_NSYM // 4)


def vote_codewords(records: np.ndarray) -> tuple[bytes, int, int] | None:
    """Most frequent codeword among (valid) records: (codeword, its count, distinct count)."""
    if len(records) == 0:
        return None
    counts = Counter(row[_CW].tobytes() for row in records)
    cw, n = counts.most_common(1)[0]
    return cw, n, len(counts)


def soft_decode(records: np.ndarray) -> tuple[Payload, int] | None:
    """Bitwise majority over all records' codewords, then RS with erasures as needed."""
    if len(records) == 0:
        return None
    bits = np.unpackbits(records[:, _CW], axis=1).astype(np.int32)
    score = (2 * bits - 1).sum(axis=0)  # > 0: majority says 1
    cw = np.packbits(score > 0).tobytes()
    confidence = np.abs(score).reshape(CODEWORD_BYTES, 8).min(axis=1)
    for n_erase in SOFT_ERASURES:
        erasures = sorted(np.argsort(confidence, kind="stable")[:n_erase].tolist()) if n_erase else None
        got = decode_codeword(cw, erasures)
        if got is not None and got[0].version == PAYLOAD_VERSION:
            return got
    return None


def _reading(s: BlockScan | None, loc: Location | None, shape: tuple[int, int]) -> PayloadReading:
    h, w = shape
    total = 0 if s is None else len(s.valid)
    crop = None if loc is None or (loc.width, loc.height, loc.ox, loc.oy) == (w, h, 0, 0) else (loc.ox, loc.oy)
    size = None if loc is None else (loc.width, loc.height)
    if s is not None and s.valid.any():
        best = vote_codewords(s.records[s.valid])
        assert best is not None
        cw, n, distinct = best
        got = decode_codeword(cw)
        if got is not None:
            note = f"payload read from {n} of {total} blocks"
            if distinct > 1:
                note += f"; {distinct} different payloads present (collage or splice)"
            fps = Counter(parse_record(row).fingerprint for row in s.records[s.valid])
            fp = fps.most_common(1)[0][0]
            return PayloadReading(got[0], total, int(s.valid.sum()), n, got[1], distinct, crop, size, note, fp)
    if s is not None and total:
        got = soft_decode(s.records)
        if got is not None:
            return PayloadReading(
                got[0], total, int(s.valid.sum()), total, got[1], 1, crop, size,
                f"payload recovered by voting over {total} damaged blocks ({got[1]} bytes corrected)",
            )
    return PayloadReading(None, total, 0, 0, 0, 0, crop, size, "no watermark payload found")


def read_payload(rgb: np.ndarray) -> PayloadReading:
    """Read the payload without any key (publicly readable, not authenticated).

    Args:
        rgb: HxWx3 uint8 RGB image, possibly cropped or partly edited.

    Returns:
        PayloadReading with the payload or None, and how many blocks voted.

    Raises:
        TypeError: ``rgb`` is not an HxWx3 uint8 array.
    """
    img = check_rgb(rgb)
    h, w = img.shape[:2]
    loc = locate(img)
    if loc is not None:
        return _reading(scan(img, loc.grid, loc.ox, loc.oy, full=False), loc, (h, w))
    local = Grid(w, h)
    if local.min_block_bits() < USED_BITS:
        return _reading(None, None, (h, w))
    return _reading(scan(img, local, 0, 0, full=False), None, (h, w))
