"""Grid and slot layout: full coverage, disjoint fields, a fixed public permutation."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from shield.watermark.layout import EXCLUDED, REC, SIB, SIG, USED_BITS, Grid, extract, insert, slots

#: SHA-256 (first 16 bytes, hex) of the slot order of a 32x32 block as little-endian int64.
SLOT_ORDER_32 = "59716c73b50c27a5be307b5f1d192e6f"


def test_slot_order_is_pinned() -> None:
    order = slots(32, 32).order
    assert hashlib.sha256(order.astype("<i8").tobytes()).hexdigest()[:32] == SLOT_ORDER_32


@pytest.mark.parametrize("shape", [(32, 32), (32, 63), (45, 32), (17, 40)])
def test_slot_fields_disjoint(shape: tuple[int, int]) -> None:
    sl = slots(*shape)
    n = 3 * shape[0] * shape[1]
    assert np.array_equal(np.sort(sl.order), np.arange(n))
    assert np.array_equal(sl.order[sl.inverse], np.arange(n))
    assert (SIG.stop, SIB.stop, REC.stop) == (512, 896, USED_BITS) and EXCLUDED.stop == SIB.stop
    assert (sl.digest_mask[: SIB.stop] == 0xFE).all() and (sl.digest_mask[SIB.stop :] == 0xFF).all()


@pytest.mark.parametrize("size", [(300, 224), (32, 32), (33, 95), (31, 64), (1000, 31)])
def test_groups_cover_every_pixel_once(size: tuple[int, int]) -> None:
    w, h = size
    grid = Grid(w, h)
    count = np.zeros((h, w), dtype=int)
    img = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3)
    back = np.full_like(img, -1)
    for g in grid.groups():
        x0, y0 = int(grid.xs[g.bx0]), int(grid.ys[g.by0])
        count[y0 : int(grid.ys[g.by1]), x0 : int(grid.xs[g.bx1])] += 1
        insert(back, x0, y0, g, extract(img, x0, y0, g))
        assert g.bw >= min(w, 32) and g.bh >= min(h, 32) and g.bw < 64 and g.bh < 64
    assert (count == 1).all()
    assert np.array_equal(back, img)
