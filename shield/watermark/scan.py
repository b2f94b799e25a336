"""Reading the embedded fields of every whole block of an image at a given grid offset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shield.watermark.layout import REC, SIB, SIG, Grid, extract, slots
from shield.watermark.record import block_digests, crc_ok

__all__ = ["BlockScan", "scan", "whole_block_range"]


@dataclass(frozen=True)
class BlockScan:
    """Per-block fields read from an image (row i = one whole block of the signed grid).

    Attributes:
        grid: the signed image's grid.
        offset: (ox, oy), the verified image's top-left in signed-image pixels.
        brange: (bx0, bx1, by0, by1) whole blocks inside the verified image.
        bx, by: signed-grid coordinates of each block.
        records: (n, 76) uint8; valid: (n,) bool CRC check.
        sigs: (n, 64) uint8 signatures; sibs: (n, 48) uint8 stored sibling digests;
        digests: (n, 16) uint8 computed block digests (only with ``full``).
    """

    grid: Grid
    offset: tuple[int, int]
    brange: tuple[int, int, int, int]
    bx: np.ndarray
    by: np.ndarray
    records: np.ndarray
    valid: np.ndarray
    sigs: np.ndarray | None = None
    sibs: np.ndarray | None = None
    digests: np.ndarray | None = None


def whole_block_range(grid: Grid, ox: int, oy: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Blocks [bx0,bx1) x [by0,by1) of ``grid`` lying wholly inside a width x height image
    whose top-left is at (ox, oy) in signed pixels (empty ranges when none)."""
    xs, ys = grid.xs - ox, grid.ys - oy
    okx = np.nonzero((xs[:-1] >= 0) & (xs[1:] <= width))[0]
    oky = np.nonzero((ys[:-1] >= 0) & (ys[1:] <= height))[0]
    if okx.size == 0 or oky.size == 0:
        return 0, 0, 0, 0
    return int(okx[0]), int(okx[-1]) + 1, int(oky[0]), int(oky[-1]) + 1


def _bits(blocks: np.ndarray, cols: slice) -> np.ndarray:
    return np.packbits(blocks[:, cols] & 1, axis=1)


def scan(img: np.ndarray, grid: Grid, ox: int, oy: int, *, full: bool) -> BlockScan:
    """Read records (and with ``full`` signatures, sibling digests and block digests)."""
    h, w = img.shape[:2]
    brange = whole_block_range(grid, ox, oy, w, h)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("bx", "by", "rec", "sig", "sib", "dig")}
    for g in grid.groups(*brange):
        blocks = extract(img, int(grid.xs[g.bx0]) - ox, int(grid.ys[g.by0]) - oy, g)
        bx, by = g.coords()
        parts["bx"].append(bx)
        parts["by"].append(by)
        parts["rec"].append(_bits(blocks, REC))
        if full:
            parts["sig"].append(_bits(blocks, SIG))
            parts["sib"].append(_bits(blocks, SIB))
            parts["dig"].append(block_digests(blocks, slots(g.bh, g.bw).digest_mask))
    if not parts["bx"]:
        empty = np.zeros(0, dtype=np.int64)
        return BlockScan(grid, (ox, oy), brange, empty, empty, np.zeros((0, 76), np.uint8), np.zeros(0, bool))
    records = np.concatenate(parts["rec"])
    cat = (lambda k: np.concatenate(parts[k])) if full else (lambda k: None)
    return BlockScan(
        grid=grid,
        offset=(ox, oy),
        brange=brange,
        bx=np.concatenate(parts["bx"]),
        by=np.concatenate(parts["by"]),
        records=records,
        valid=crc_ok(records),
        sigs=cat("sig"),
        sibs=cat("sib"),
        digests=cat("dig"),
    )
