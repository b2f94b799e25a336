"""Differentiable warps between a full photo and an aligned face crop.

``crop_tensor`` samples a crop out of the photo, ``paste_back`` warps a crop-space change
(an adversarial perturbation, say) back into the photo under a feathered mask. Both are
``torch.nn.functional.grid_sample`` (bilinear, ``align_corners=True``: pixel centres at
integer coordinates, matching the crop matrices of :mod:`shield.faces.align`), work only
on the part of the photo the crop covers, and pass gradients to every tensor input.
When the crop is a strong downscale of the photo, ``crop_tensor`` first blurs the covered
region with a Gaussian (as dlib low-passes with an image pyramid) so the crop does not
alias. Spec: issue 5 part 3.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from shield.faces.align import AlignedCrop
from shield.tensors import gaussian_blur, to_tensor, to_uint8

__all__ = ["crop_tensor", "paste_back", "feather_mask", "warp_uint8", "ANTIALIAS_FROM"]

#: Downscale factor (image pixels per crop pixel) above which crops are low-passed first
#: (dlib starts its image pyramid at about the same factor).
ANTIALIAS_FROM = 2.0


def _check_image(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1 or x.shape[1] != 3:
        raise TypeError(f"{name}: expected a (1, 3, H, W) tensor, got {getattr(x, 'shape', type(x).__name__)}")


def _inverse(m: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([m, [0.0, 0.0, 1.0]]))[:2]


def _footprint(inv: np.ndarray, size: int, h: int, w: int, margin: int) -> tuple[int, int, int, int] | None:
    """Image window (x0, y0, x1, y1), end exclusive, covering the crop square plus margin."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    pts = corners @ inv[:, :2].T + inv[:, 2]
    x0 = max(int(math.floor(pts[:, 0].min())) - margin, 0)
    y0 = max(int(math.floor(pts[:, 1].min())) - margin, 0)
    x1 = min(int(math.ceil(pts[:, 0].max())) + margin + 1, w)
    y1 = min(int(math.ceil(pts[:, 1].max())) + margin + 1, h)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _grid(m: np.ndarray, out_h: int, out_w: int, in_h: int, in_w: int, like: torch.Tensor) -> torch.Tensor:
    """Sampling grid for output pixels (u, v) -> input m @ (u, v, 1), align_corners=True."""
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float64), torch.arange(out_w, dtype=torch.float64), indexing="ij"
    )
    mt = torch.from_numpy(m)
    x = mt[0, 0] * xs + mt[0, 1] * ys + mt[0, 2]
    y = mt[1, 0] * xs + mt[1, 1] * ys + mt[1, 2]
    gx = 2.0 * x / max(in_w - 1, 1) - 1.0
    gy = 2.0 * y / max(in_h - 1, 1) - 1.0
    return torch.stack([gx, gy], dim=-1)[None].to(dtype=like.dtype, device=like.device)


def _sample_crop(full: torch.Tensor, matrix: np.ndarray, size: int, antialias: bool) -> torch.Tensor:
    _, _, h, w = full.shape
    inv = _inverse(matrix)
    scale = 1.0 / math.hypot(matrix[0, 0], matrix[1, 0])
    sigma = 0.5 * math.sqrt(scale**2 - 1.0) if antialias and scale > ANTIALIAS_FROM else 0.0
    win = _footprint(inv, size, h, w, margin=int(math.ceil(3 * sigma)) + 2)
    if win is None:
        return full.new_zeros(1, full.shape[1], size, size)
    x0, y0, x1, y1 = win
    region = full[:, :, y0:y1, x0:x1]
    if sigma > 0:
        region = gaussian_blur(region, sigma)
    inv[:, 2] -= (x0, y0)
    grid = _grid(inv, size, size, y1 - y0, x1 - x0, full)
    return F.grid_sample(region, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def crop_tensor(full: torch.Tensor, crop: AlignedCrop, *, antialias: bool = True) -> torch.Tensor:
    """Differentiable aligned crop: (1, 3, H, W) in [0, 1] -> (1, 3, S, S).

    Outside the photo the crop is black (zeros), as in dlib and insightface crops.
    ``antialias`` low-passes the photo first when the crop is a downscale by more than
    ``ANTIALIAS_FROM`` (Gaussian, sigma = sqrt(scale**2 - 1) / 2 image pixels).
    """
    _check_image(full, "full")
    return _sample_crop(full, crop.matrix, crop.size, antialias)


def feather_mask(size: int, feather: int, *, device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, 1, size, size) mask: 1 inside, a smoothstep ramp to 0 over ``feather`` pixels at the border."""
    if feather < 0 or 2 * feather > size:
        raise ValueError(f"feather: expected 0..{size // 2} pixels, got {feather}")
    idx = torch.arange(size, dtype=torch.float32, device=device)
    dist = torch.minimum(idx, size - 1 - idx)
    if feather == 0:
        ramp = torch.ones_like(dist)
    else:
        t = ((dist + 1.0) / (feather + 1.0)).clamp(0.0, 1.0)
        ramp = t * t * (3.0 - 2.0 * t)
    return (ramp[:, None] * ramp[None, :])[None, None]


def paste_back(
    full: torch.Tensor,
    crop_delta: torch.Tensor,
    crop: AlignedCrop,
    feather: int,
    *,
    clamp: bool = True,
) -> torch.Tensor:
    """Add a crop-space change to the full photo: ``full + warp(mask * crop_delta)``.

    Args:
        full: (1, 3, H, W) photo in [0, 1].
        crop_delta: (1, 3, S, S) change in crop space (S = crop.size).
        crop: the crop the delta lives in.
        feather: width in crop pixels of the mask's ramp to zero at the crop border.
        clamp: clip the result to [0, 1] (gradient zero where clipped).

    Returns:
        (1, 3, H, W); pixels outside the crop's footprint are ``full`` unchanged.
        Differentiable with respect to ``full`` and ``crop_delta``.
    """
    _check_image(full, "full")
    if crop_delta.shape != (1, 3, crop.size, crop.size):
        raise TypeError(f"crop_delta: expected (1, 3, {crop.size}, {crop.size}), got {tuple(crop_delta.shape)}")
    _, _, h, w = full.shape
    win = _footprint(crop.inverse(), crop.size, h, w, margin=1)
    if win is None:
        return full.clamp(0.0, 1.0) if clamp else full
    x0, y0, x1, y1 = win
    masked = crop_delta * feather_mask(crop.size, feather, device=crop_delta.device).to(crop_delta.dtype)
    m = crop.matrix.copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # window pixel -> crop pixel
    grid = _grid(m, y1 - y0, x1 - x0, crop.size, crop.size, crop_delta)
    patch = F.grid_sample(masked, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = full + F.pad(patch.to(full.dtype), (x0, w - x1, y0, h - y1))
    return out.clamp(0.0, 1.0) if clamp else out


def warp_uint8(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Non-differentiable helper: the (size, size, 3) uint8 crop of an HxWx3 uint8 photo."""
    h, w = rgb.shape[:2]
    scale = 1.0 / math.hypot(matrix[0, 0], matrix[1, 0])
    win = _footprint(_inverse(matrix), size, h, w, margin=int(math.ceil(1.5 * scale)) + 2)
    if win is None:
        return np.zeros((size, size, 3), np.uint8)
    x0, y0, x1, y1 = win
    local = matrix.copy()
    local[:, 2] += local[:, :2] @ np.array([x0, y0], np.float64)  # window pixel -> crop pixel
    with torch.no_grad():
        return to_uint8(_sample_crop(to_tensor(rgb[y0:y1, x0:x1]), local, size, antialias=True))
