"""Block grid, tiles and the public bit-slot layout inside each block.

Grid: the signed image (W0 x H0) is cut into ``nx = max(1, W0 // 32)`` columns and
``ny = max(1, H0 // 32)`` rows of blocks. All blocks are 32x32 except the last column
and row, which absorb the remainder (width ``W0 - 32 * (nx - 1)``, between 32 and 63; or
the whole width when ``W0 < 32``). Every pixel therefore belongs to exactly one block.

Tiles: 2x2 groups of blocks (fewer at odd edges) share one Ed25519 signature.

Slots: a block of h x w pixels has ``3*h*w`` values, numbered in the row-major order of
its (h, w, 3) array. A fixed public permutation of them (a function of (h, w) only), the
"slot order", lists where the bits go: the LSBs of the first 512 values in slot order
carry the tile signature, the next 384 the digests of the three sibling blocks of the
tile, the next 672 the keyless record. All other bits of the block are plain content.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = [
    "BLOCK",
    "DIGEST_BYTES",
    "REC_BYTES",
    "MAX_BLOCKS_PER_SIDE",
    "SIG_BITS",
    "SIB_BITS",
    "REC_BITS",
    "USED_BITS",
    "SIG",
    "SIB",
    "REC",
    "EXCLUDED",
    "Grid",
    "Group",
    "slots",
    "extract",
    "insert",
]

BLOCK = 32
SIG_BITS = 512  # one Ed25519 signature
DIGEST_BYTES = 16  # truncated SHA-256 of a block's content (128-bit second-preimage bound)
SIB_BITS = 3 * DIGEST_BYTES * 8
REC_BYTES = 84
REC_BITS = REC_BYTES * 8
USED_BITS = SIG_BITS + SIB_BITS + REC_BITS
#: Largest block index a record can hold (u16): 65535 blocks, i.e. > 2 million pixels a side.
MAX_BLOCKS_PER_SIDE = 65535


#: Column ranges of the fields in a block taken in slot order.
SIG = slice(0, SIG_BITS)
SIB = slice(SIG_BITS, SIG_BITS + SIB_BITS)
REC = slice(SIG_BITS + SIB_BITS, USED_BITS)
EXCLUDED = slice(0, SIG_BITS + SIB_BITS)  # LSBs left out of the block digest


@dataclass(frozen=True)
class Slots:
    """The slot order of one block shape.

    Attributes:
        order: permutation of range(3*h*w); ``np.take(block, order)`` is slot order.
        inverse: its inverse permutation.
        rec: natural-order indices of the record slots (for window searches).
        digest_mask: AND mask (0xFE on excluded slots, 0xFF elsewhere) in slot order.
    """

    order: np.ndarray
    inverse: np.ndarray
    rec: np.ndarray
    digest_mask: np.ndarray


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a fixed, platform-independent integer hash."""
    x = x.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return x


@lru_cache(maxsize=64)
def slots(h: int, w: int) -> Slots:
    """The public slot layout of an h x w block (needs ``3*h*w >= USED_BITS``)."""
    n = 3 * h * w
    if n < USED_BITS:
        raise ValueError(f"block {w}x{h} holds {n} bits, needs {USED_BITS}")
    seed = np.uint64((h << 32) | (w << 16) | 0x5EED)
    keys = _mix64(np.arange(n, dtype=np.uint64) + _mix64(np.array([seed]))[0])
    order = np.argsort(keys, kind="stable").astype(np.intp)
    inverse = np.argsort(order, kind="stable").astype(np.intp)
    mask = np.full(n, 0xFF, dtype=np.uint8)
    mask[EXCLUDED] = 0xFE
    out = Slots(order=order, inverse=inverse, rec=order[REC].copy(), digest_mask=mask)
    for a in (out.order, out.inverse, out.rec, out.digest_mask):
        a.setflags(write=False)
    return out


@dataclass(frozen=True)
class Group:
    """A rectangle of blocks of one shape: blocks bx0..bx1-1 x by0..by1-1, each bw x bh."""

    bx0: int
    bx1: int
    by0: int
    by1: int
    bw: int
    bh: int

    @property
    def count(self) -> int:
        return (self.bx1 - self.bx0) * (self.by1 - self.by0)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Block coordinates (bx, by) of the group's blocks, row-major, as int arrays."""
        by, bx = np.mgrid[self.by0 : self.by1, self.bx0 : self.bx1]
        return bx.ravel(), by.ravel()


@dataclass(frozen=True)
class Grid:
    """The block grid of a signed image of ``width`` x ``height`` pixels."""

    width: int
    height: int

    @property
    def nx(self) -> int:
        return max(1, self.width // BLOCK)

    @property
    def ny(self) -> int:
        return max(1, self.height // BLOCK)

    @property
    def xs(self) -> np.ndarray:
        """Column edges in pixels, length nx + 1."""
        return np.append(np.arange(self.nx) * BLOCK, self.width)

    @property
    def ys(self) -> np.ndarray:
        """Row edges in pixels, length ny + 1."""
        return np.append(np.arange(self.ny) * BLOCK, self.height)

    def min_block_bits(self) -> int:
        """LSB slots of the smallest block."""
        return 3 * min(self.width, BLOCK) * min(self.height, BLOCK)

    def groups(self, bx0: int = 0, bx1: int | None = None, by0: int = 0, by1: int | None = None) -> list[Group]:
        """Split the block rectangle [bx0,bx1) x [by0,by1) into same-shape groups."""
        bx1 = self.nx if bx1 is None else bx1
        by1 = self.ny if by1 is None else by1
        xs, ys = self.xs, self.ys
        out = []
        for xa, xb in ((bx0, min(bx1, self.nx - 1)), (max(bx0, self.nx - 1), bx1)):
            for ya, yb in ((by0, min(by1, self.ny - 1)), (max(by0, self.ny - 1), by1)):
                if xa < xb and ya < yb:
                    out.append(Group(xa, xb, ya, yb, int(xs[xb] - xs[xb - 1]), int(ys[yb] - ys[yb - 1])))
        return out


def extract(img: np.ndarray, x0: int, y0: int, g: Group) -> np.ndarray:
    """Copy the group's blocks out of ``img`` (block (g.bx0, g.by0) at pixel (x0, y0)).

    Returns (count, bh*bw*3) of img's dtype, rows in row-major block order, columns in
    slot order.
    """
    nbx, nby = g.bx1 - g.bx0, g.by1 - g.by0
    sub = img[y0 : y0 + nby * g.bh, x0 : x0 + nbx * g.bw]
    arr = sub.reshape(nby, g.bh, nbx, g.bw, 3).transpose(0, 2, 1, 3, 4)
    flat = np.ascontiguousarray(arr).reshape(nby * nbx, g.bh * g.bw * 3)
    return np.take(flat, slots(g.bh, g.bw).order, axis=1)


def insert(img: np.ndarray, x0: int, y0: int, g: Group, blocks: np.ndarray) -> None:
    """Inverse of :func:`extract`: write the blocks (slot order) back into ``img``."""
    nbx, nby = g.bx1 - g.bx0, g.by1 - g.by0
    blocks = np.take(blocks, slots(g.bh, g.bw).inverse, axis=1)
    arr = blocks.reshape(nby, nbx, g.bh, g.bw, 3).transpose(0, 2, 1, 3, 4)
    img[y0 : y0 + nby * g.bh, x0 : x0 + nbx * g.bw] = arr.reshape(nby * g.bh, nbx * g.bw, 3)
