"""From per-block results to the report's cell grid, regions and damage pattern."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shield.watermark.layout import Grid
from shield.watermark.types import Region

__all__ = ["UNCHECKED", "INTACT", "FAILED", "Cells", "cells_of", "regions_of", "looks_reencoded"]

UNCHECKED, INTACT, FAILED = 0, 1, 2
#: Re-encoding verdict: more than this fraction of checked blocks fail ...
REENCODE_FAIL_FRACTION = 0.6
#: ... and no 4-connected group of intact blocks covers this fraction of the checked ones.
REENCODE_CLEAN_FRACTION = 0.02
#: Below this many checked blocks, damage is reported as local edits.
REENCODE_MIN_BLOCKS = 16


@dataclass(frozen=True)
class Cells:
    """The verified image cut along the signed grid.

    Attributes:
        xs, ys: cell edges in pixels of the verified image.
        tampered, unverified, intact: bool (rows, cols) cell masks.
    """

    xs: np.ndarray
    ys: np.ndarray
    tampered: np.ndarray
    unverified: np.ndarray
    intact: np.ndarray

    def area(self, mask: np.ndarray) -> int:
        """Pixels covered by the cells in ``mask``."""
        return int((np.diff(self.ys)[:, None] * np.diff(self.xs)[None, :] * mask).sum())


def _axis(edges0: np.ndarray, offset: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell edges along one axis and the signed block index of each cell (-1: outside)."""
    inner = edges0 - offset
    edges = np.unique(np.concatenate([[0, size], inner[(inner > 0) & (inner < size)]]))
    centre = (edges[:-1] + edges[1:]) / 2 + offset
    idx = np.searchsorted(edges0, centre, side="right") - 1
    idx[(centre < 0) | (centre >= edges0[-1])] = -1
    return edges, idx


def cells_of(state: np.ndarray, grid: Grid, ox: int, oy: int, width: int, height: int) -> Cells:
    """Cells of a width x height image at offset (ox, oy) in the signed ``grid``.

    ``state`` is (ny, nx) over the signed grid: UNCHECKED, INTACT or FAILED. Cells outside
    the signed image are tampered (added content); cells of blocks not wholly present are
    unverified.
    """
    xs, cx = _axis(grid.xs, ox, width)
    ys, cy = _axis(grid.ys, oy, height)
    outside = (cy[:, None] < 0) | (cx[None, :] < 0)
    st = state[np.clip(cy, 0, None)[:, None], np.clip(cx, 0, None)[None, :]]
    st = np.where(outside, FAILED, st)
    return Cells(xs, ys, st == FAILED, st == UNCHECKED, st == INTACT)


def regions_of(cells: Cells) -> tuple[Region, ...]:
    """Bounding boxes of 8-connected groups of tampered cells, largest first."""
    if not cells.tampered.any():
        return ()
    from scipy import ndimage  # heavy import (about 0.3 s), only needed once something is tampered

    labels, n = ndimage.label(cells.tampered, structure=np.ones((3, 3), dtype=int))
    out = []
    for sl in ndimage.find_objects(labels)[:n]:
        y0, y1 = int(cells.ys[sl[0].start]), int(cells.ys[sl[0].stop])
        x0, x1 = int(cells.xs[sl[1].start]), int(cells.xs[sl[1].stop])
        out.append(Region(x0, y0, x1 - x0, y1 - y0))
    out.sort(key=lambda r: (-r.width * r.height, r.y, r.x))
    return tuple(out)


def looks_reencoded(state: np.ndarray) -> bool:
    """Damage everywhere rather than local edits: most blocks fail and no clean area is left."""
    checked = int((state != UNCHECKED).sum())
    failed = int((state == FAILED).sum())
    if checked < REENCODE_MIN_BLOCKS or failed <= REENCODE_FAIL_FRACTION * checked:
        return False
    from scipy import ndimage

    labels, n = ndimage.label(state == INTACT)
    largest = int(np.bincount(labels.ravel())[1:].max()) if n else 0
    return largest < max(4.0, REENCODE_CLEAN_FRACTION * checked)
