"""Finding the signed grid in a received image: size of the signed image and crop offset.

First the image's own grid is read (the common, uncropped case). If no block record is
valid there, 32x32 windows at every one of the 1024 sub-block shifts are tried around a
few anchor points; a window whose record passes its CRC gives the signed block it came
from, hence the offset. Votes are counted so a small spliced region cannot outvote the
image it was pasted into.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from shield.watermark.checks import MAX_SIDE
from shield.watermark.layout import BLOCK, USED_BITS, Grid, slots
from shield.watermark.record import crc_ok, record_fields
from shield.watermark.scan import BlockScan, scan

__all__ = ["Location", "locate"]

#: Anchor windows tried in the shift search (each costs 1024 CRC checks, ~3 ms).
MAX_ANCHORS = 48
#: Agreeing votes after which the shift search stops early.
ENOUGH_VOTES = 6
#: Largest signed image a record may claim, in pixels. Records are keyless, so a forged
#: one could otherwise claim a size whose block grid alone exhausts memory; shield never
#: loads more than 100 MP (Settings.max_pixels default), this leaves room above that.
MAX_SIGNED_PIXELS = 2**28


@dataclass(frozen=True)
class Location:
    """Signed image size and where the received image sits in it."""

    width: int
    height: int
    ox: int
    oy: int
    votes: int

    @property
    def grid(self) -> Grid:
        return Grid(self.width, self.height)


def _vote(counter: Counter[tuple[int, int, int, int]], records: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:
    """Count (width, height, ox, oy) implied by valid records found at pixels (xs, ys)."""
    f = record_fields(records)
    keys = np.stack([f["width"], f["height"], f["bx"] * BLOCK - xs, f["by"] * BLOCK - ys], axis=1)
    sane = (f["width"] > 0) & (f["height"] > 0) & (f["width"] * f["height"] <= MAX_SIGNED_PIXELS)
    sane &= (f["width"] <= MAX_SIDE) & (f["height"] <= MAX_SIDE)
    keys = keys[sane]
    if len(keys):
        uniq, counts = np.unique(keys, axis=0, return_counts=True)
        for k, c in zip(uniq.tolist(), counts.tolist()):
            counter[(k[0], k[1], k[2], k[3])] += c


def _anchors(width: int, height: int) -> list[tuple[int, int]]:
    """Corners of the search regions (up to 63x63), spread over the image, centre first."""
    sx, sy = min(2 * BLOCK - 1, width), min(2 * BLOCK - 1, height)
    if sx < BLOCK or sy < BLOCK:
        return []
    ax = np.unique(np.linspace(0, width - sx, num=min(8, (width - sx) // BLOCK + 1)).astype(int))
    ay = np.unique(np.linspace(0, height - sy, num=min(8, (height - sy) // BLOCK + 1)).astype(int))
    pts = [(int(x), int(y)) for y in ay for x in ax]
    cx, cy = (width - sx) / 2, (height - sy) / 2
    pts.sort(key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)
    # interleave near and far anchors so one damaged area does not starve the search
    order = pts[::2] + pts[1::2]
    return order[:MAX_ANCHORS]


def _shift_search(img: np.ndarray) -> Counter[tuple[int, int, int, int]]:
    """Try every 32x32 window position in a few regions; vote with the valid records."""
    h, w = img.shape[:2]
    rec = slots(BLOCK, BLOCK).rec
    ry, rx, rc = np.unravel_index(rec, (BLOCK, BLOCK, 3))
    counter: Counter[tuple[int, int, int, int]] = Counter()
    span = 2 * BLOCK - 1
    for ax, ay in _anchors(w, h):
        win = sliding_window_view(img[ay : ay + span, ax : ax + span], (BLOCK, BLOCK, 3))[:, :, 0]
        nwy, nwx = win.shape[:2]
        bits = win[:, :, ry, rx, rc] & 1  # (dy, dx, record bit)
        records = np.packbits(bits, axis=-1).reshape(nwy * nwx, -1)
        ok = np.nonzero(crc_ok(records))[0]
        if ok.size:
            dy, dx = np.divmod(ok, nwx)
            _vote(counter, records[ok], ax + dx, ay + dy)
        if counter and counter.most_common(1)[0][1] >= ENOUGH_VOTES:
            break
    return counter


def locate(img: np.ndarray, local_scan: BlockScan | None = None) -> Location | None:
    """Signed size and offset of ``img`` (HxWx3 uint8), or None when no record is found.

    ``local_scan``: a scan of ``img`` on its own grid at offset 0, if already made.
    """
    h, w = img.shape[:2]
    counter: Counter[tuple[int, int, int, int]] = Counter()
    local = Grid(w, h)
    s = local_scan
    if s is None and local.min_block_bits() >= USED_BITS:
        s = scan(img, local, 0, 0, full=False)
    if s is not None:
        ok = s.valid
        if ok.any():
            _vote(counter, s.records[ok], local.xs[s.bx[ok]], local.ys[s.by[ok]])
    if not counter:
        counter = _shift_search(img)
    if not counter:
        return None
    (width, height, ox, oy), votes = counter.most_common(1)[0]
    return Location(width, height, ox, oy, votes)
