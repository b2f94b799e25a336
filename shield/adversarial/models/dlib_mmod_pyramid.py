"""dlib's tiled image pyramid (``input_rgb_image_pyramid``), in torch, and its inverse map.

dlib's pyramid input layers do not feed the network one image per scale: they tile every
``pyramid_down<N>`` level of the image into one canvas and run the network once over it.
This module reproduces, for any N:

- :func:`pyramid_layout`: ``impl::compute_tiled_image_pyramid_details``
  (dlib/image_transforms/image_pyramid.h): the level sizes (``floor((N-1)/N * size)``
  until a level would be under 5 rows), the canvas size and every level's rectangle;
- :func:`dlib_resize`: ``resize_image(in, out, interpolate_bilinear)`` for float images
  (dlib/image_transforms/interpolation.h), the corner-aligned bilinear resize dlib's
  ``tt::resize_bilinear`` uses to make each level from the previous one, including its
  float32 column stepping (4 columns at a time) and its double-precision tail columns;
  differentiable (a fixed gather and weights);
- :func:`tiled_pyramid`: the zero-filled canvas with every level in its rectangle;
- :func:`window_boxes`: ``tiled_pyramid_to_image`` of ``centered_drect`` windows: the
  level whose rectangle is nearest the (rounded) window centre, translated to that level's
  origin, and ``point_up`` (``p * N/(N-1) + 0.3``) once per level.

Rectangles are dlib's: inclusive integer (left, top, right, bottom).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["TiledPyramid", "pyramid_layout", "dlib_resize", "tiled_pyramid", "window_boxes"]

#: dlib stops the pyramid before a level of fewer rows than this.
MIN_LEVEL_ROWS = 5

Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class TiledPyramid:
    """A tiled pyramid canvas (B, C, NR, NC) and each level's rectangle in it."""

    canvas: torch.Tensor
    rects: tuple[Rect, ...]


def _level_sizes(nr: int, nc: int, n: int) -> list[tuple[int, int]]:
    rate = (n - 1.0) / n
    sizes = [(nc, nr)]
    while True:
        nr, nc = math.floor(rate * nr), math.floor(rate * nc)
        if nr * nc == 0 or nr < MIN_LEVEL_ROWS:
            return sizes
        sizes.append((nc, nr))


@functools.lru_cache(maxsize=64)
def pyramid_layout(nr: int, nc: int, n: int, padding: int, outer: int) -> tuple[tuple[Rect, ...], int, int]:
    """Level rectangles and canvas (rows, cols) for an nr x nc image (dlib's tiling)."""
    if nr * nc == 0:
        return (), 0, 0
    sizes = _level_sizes(nr, nc, n)
    w0, h0 = sizes[0]
    total_height = sum(h + padding for _, h in sizes) - 2 * padding
    height, prev_width = 0, 0
    for w, h in sizes:
        # the first column ends once the next level fits beside the previous one
        if w <= w0 - prev_width - padding and (height - h0) * 2 >= total_height - h0:
            break
        height += h + padding
        prev_width = w
    height -= padding
    rects: list[Rect] = []
    y, i = outer, 0
    while y < height + outer and i < len(sizes):
        w, h = sizes[i]
        rects.append((outer, y, outer + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    while i < len(sizes):
        w, h = sizes[i]
        rect = (outer + w0 - w, y - h, outer + w0 - 1, y - 1)
        first = rects[0]
        if max(first[0], rect[0]) <= min(first[2], rect[2]) and max(first[1], rect[1]) <= min(first[3], rect[3]):
            break  # would overlap the full-size level
        rects.append(rect)
        y -= h + padding
        i += 1
    return tuple(rects), height + 2 * outer, w0 + 2 * outer


@functools.lru_cache(maxsize=256)
def _row_plan(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top, bottom rows and tb_frac (float64) of dlib's row loop (double accumulation)."""
    scale = (n_in - 1) / max(n_out - 1, 1)
    top, bottom, frac = np.empty(n_out, np.int64), np.empty(n_out, np.int64), np.empty(n_out)
    y = -scale
    for r in range(n_out):
        y += scale
        t = math.floor(y)
        top[r], bottom[r], frac[r] = t, min(t + 1, n_in - 1), y - t
    return top, bottom, frac


@functools.lru_cache(maxsize=256)
def _col_plan(n_in: int, n_out: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Columns done 4 at a time in float32 (count, left, right, lr_frac float32 + tail).

    Returns (simd, left, right, frac): the first ``simd`` columns come from dlib's simd4f
    loop (x accumulated in float32, right = left + 1), the rest from its double tail loop
    (right clamped); ``frac`` is float32 in both, as dlib stores it.
    """
    scale = (n_in - 1) / max(n_out - 1, 1)
    x0 = -4 * scale
    lanes = np.array([x0, x0 + scale, x0 + 2 * scale, x0 + 3 * scale], dtype=np.float32)
    step = np.float32(4 * scale)
    left: list[int] = []
    frac: list[np.float32] = []
    c = 0
    while True:
        lanes = (lanes + step).astype(np.float32)
        li = lanes.astype(np.int32)  # truncation; x >= 0
        if int(li[3]) + 1 >= n_in:
            break
        left.extend(int(v) for v in li)
        frac.extend((lanes - li.astype(np.float32)).astype(np.float32))
        c += 4
    right = [v + 1 for v in left]
    x = -scale + c * scale
    for _ in range(c, n_out):
        x += scale
        lft = math.floor(x)
        left.append(lft)
        right.append(min(lft + 1, n_in - 1))
        frac.append(np.float32(x - lft))
    return min(c, n_out), np.array(left[:n_out]), np.array(right[:n_out]), np.array(frac[:n_out], dtype=np.float32)


def dlib_resize(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """dlib's float bilinear ``resize_image`` of every plane of x (B, C, H, W); differentiable."""
    top, bottom, tb = _row_plan(x.shape[2], out_h)
    simd, left, right, lr = _col_plan(x.shape[3], out_w)
    dev = x.device

    def idx(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(dev)

    rows_t, rows_b = x.index_select(2, idx(top)), x.index_select(2, idx(bottom))
    parts = []
    if simd:
        tb32, inv_tb32 = tb.astype(np.float32)[:, None], (1.0 - tb).astype(np.float32)[:, None]
        lr32 = lr[:simd][None, :]
        inv_lr32 = (np.float32(1) - lr32).astype(np.float32)
        weights = [inv_tb32 * inv_lr32, inv_tb32 * lr32, tb32 * inv_lr32, tb32 * lr32]  # float32 products
        lc, rc = idx(left[:simd]), idx(right[:simd])
        pix = [rows_t.index_select(3, lc), rows_t.index_select(3, rc), rows_b.index_select(3, lc), rows_b.index_select(3, rc)]
        out = idx(weights[0].astype(np.float32)) * pix[0] + idx(weights[1].astype(np.float32)) * pix[1]
        out = out + idx(weights[2].astype(np.float32)) * pix[2]
        parts.append(out + idx(weights[3].astype(np.float32)) * pix[3])
    if simd < out_w:
        lc, rc = idx(left[simd:]), idx(right[simd:])
        f = idx(lr[simd:])
        upper = (1 - f) * rows_t.index_select(3, lc) + f * rows_t.index_select(3, rc)
        lower = (1 - f) * rows_b.index_select(3, lc) + f * rows_b.index_select(3, rc)
        t = idx(tb)[:, None]
        parts.append(((1 - t) * upper.double() + t * lower.double()).to(x.dtype))
    return torch.cat(parts, dim=3) if len(parts) > 1 else parts[0]


def tiled_pyramid(level0: torch.Tensor, n: int, padding: int, outer: int) -> TiledPyramid:
    """The zero-filled canvas with ``level0`` (B, C, H, W) and its pyramid_down<n> levels."""
    b, c, h, w = level0.shape
    rects, nr, nc = pyramid_layout(h, w, n, padding, outer)
    canvas = level0.new_zeros((b, c, nr, nc))
    level = level0
    for i, (left, top, right, bottom) in enumerate(rects):
        if i:
            level = dlib_resize(level, bottom - top + 1, right - left + 1)
        canvas[:, :, top : bottom + 1, left : right + 1] = level
    return TiledPyramid(canvas, rects)


def window_boxes(rects: tuple[Rect, ...], centres: np.ndarray, window: tuple[int, int], n: int) -> np.ndarray:
    """Image drectangles (M, 4) l, t, r, b of ``centered_drect(centre, *window)`` windows.

    ``centres`` (M, 2) are canvas points (x, y). float64 throughout, as dlib.
    """
    half_w, half_h = (window[0] - 1) / 2, (window[1] - 1) / 2
    box = np.stack(
        [centres[:, 0] - half_w, centres[:, 1] - half_h, centres[:, 0] + half_w, centres[:, 1] + half_h], axis=1
    )
    # nearest_rect(rects, point(dcenter(r))): the centre rounded to integers first
    cx = np.floor((box[:, 0] + box[:, 2]) / 2.0 + 0.5)
    cy = np.floor((box[:, 1] + box[:, 3]) / 2.0 + 0.5)
    r = np.array(rects, dtype=np.float64)
    nx = np.clip(cx[:, None], r[None, :, 0], r[None, :, 2])
    ny = np.clip(cy[:, None], r[None, :, 1], r[None, :, 3])
    level = np.argmin(np.sqrt((nx - cx[:, None]) ** 2 + (ny - cy[:, None]) ** 2), axis=1)
    box = box - np.concatenate([r[level, :2], r[level, :2]], axis=1)
    ratio = n / (n - 1.0)
    for k in range(int(level.max(initial=0))):
        up = level > k
        box[up] = box[up] * ratio + 0.3
    return box
