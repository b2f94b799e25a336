"""The one place where images change representation.

Inside shield, images are NCHW float tensors in [0,1]; at I/O they are HWC uint8
numpy arrays (RGB). Every conversion between the two goes through here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["to_tensor", "to_uint8", "quantize", "gaussian_blur"]


def to_tensor(rgb: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """HWC uint8 RGB (or a batch NHWC) -> NCHW float32 in [0,1]."""
    if rgb.dtype != np.uint8:
        raise TypeError(f"rgb: expected uint8, got {rgb.dtype}")
    arr = rgb[None] if rgb.ndim == 3 else rgb
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise TypeError(f"rgb: expected HxWx3 or NxHxWx3, got shape {rgb.shape}")
    t = torch.from_numpy(np.array(arr, copy=True)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255.0)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round a [0,1] tensor to the 8-bit grid it will be stored on (no gradient)."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """NCHW (N=1) or CHW float in [0,1] -> HWC uint8 RGB, rounding to nearest."""
    t = x.detach().to("cpu")
    if t.ndim == 4:
        if t.shape[0] != 1:
            raise TypeError(f"x: expected a batch of one, got {t.shape[0]}")
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise TypeError(f"x: expected 3 channels, got shape {tuple(x.shape)}")
    return (t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N,C,H,W) with standard deviation ``sigma`` pixels.

    The kernel has radius ceil(3 sigma) (at least 1); borders replicate the edge
    (zero-padded beyond one image side when the image is smaller than the kernel).
    Differentiable.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h, pad_w = min(radius, x.shape[2] - 1), min(radius, x.shape[3] - 1)
    x = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c, padding=(0, radius - pad_w))
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c, padding=(radius - pad_h, 0))
