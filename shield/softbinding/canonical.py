"""The canonical frame: luma, resampling and local statistics (numpy and Pillow only).

The mark lives in a *canonical* copy of the luma whose shorter side is
:data:`CANONICAL` pixels, so a uniformly resized copy of a marked photo has the same
canonical image; a crop changes only the tile's phase and, by the crop ratio, its
period, which the extractor measures (see :mod:`shield.softbinding.extract`).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["CANONICAL", "canonical_scale", "canonical_size", "luma", "resize", "rescale", "box_mean", "whiten", "activity"]

#: Shorter side of the canonical frame in pixels.
CANONICAL = 256


def canonical_scale(height: int, width: int) -> float:
    """Factor from an image's pixels to its canonical frame's (shorter side -> CANONICAL)."""
    return CANONICAL / min(height, width)


def canonical_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of the canonical frame: it covers the whole image (rounded up)."""
    s = canonical_scale(height, width)
    return math.ceil(height * s - 1e-9), math.ceil(width * s - 1e-9)


def luma(rgb: np.ndarray) -> np.ndarray:
    """HxW float32 BT.601 luma of an HxWx3 uint8 RGB array, in 0..255."""
    f = rgb.astype(np.float32)
    return 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]


def resize(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample a float32 plane to (height, width): antialiased bilinear (Pillow 'F')."""
    if plane.shape == (height, width):
        return plane.astype(np.float32, copy=False)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.array(img.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def rescale(plane: np.ndarray, sy: float, sx: float, height: int, width: int) -> np.ndarray:
    """Resample by exact factors: output pixel (i, j) covers source [i/sy, (i+1)/sy) x
    [j/sx, (j+1)/sx); the source is edge-extended where the output reaches past it.
    Antialiased bilinear (Pillow 'F'), float32 (height, width)."""
    bh, bw = height / sy, width / sx
    ph, pw = max(0, math.ceil(bh) - plane.shape[0]), max(0, math.ceil(bw) - plane.shape[1])
    src = np.pad(plane, ((0, ph), (0, pw)), mode="edge") if ph or pw else plane
    img = Image.fromarray(np.ascontiguousarray(src, dtype=np.float32), mode="F")
    out = img.resize((width, height), Image.Resampling.BILINEAR, box=(0.0, 0.0, bw, bh))
    return np.array(out, dtype=np.float32)


def box_mean(plane: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel (edges replicated), float32."""
    k = 2 * radius + 1
    p = np.pad(plane.astype(np.float64), radius + 1, mode="edge")
    c = p.cumsum(0).cumsum(1)
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return (s[: plane.shape[0], : plane.shape[1]] / (k * k)).astype(np.float32)


def activity(plane: np.ndarray) -> np.ndarray:
    """Local standard deviation of the high-pass residual over a 5x5 window, float32."""
    r = plane - box_mean(plane, 1)
    return np.sqrt(np.maximum(box_mean(r * r, 2), 0.0))


def whiten(plane: np.ndarray) -> np.ndarray:
    """The high-pass residual divided by its local spread: the host image as near-white
    noise of unit variance, so that a correlation weighs each pixel by 1/noise."""
    r = plane - box_mean(plane, 1)
    return r / (activity(plane) + 1.0)
