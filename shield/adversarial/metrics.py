"""Image-quality and disruption metrics for the adversarial protection.

All inputs are NCHW float tensors in [0,1] (see ``shield.tensors``).

- PSNR in dB with a peak of 1.0.
- SSIM as defined by Wang et al. 2004 ("Image quality assessment: from error
  visibility to structural similarity"): 11x11 Gaussian window with sigma 1.5,
  K1 = 0.01, K2 = 0.03, dynamic range L = 1, computed per channel on valid
  positions (no padding) and averaged.
- Disruption MSE on the [-1,1] scale, the criterion of Ruiz et al. 2020
  ("Disrupting Deepfakes") and CMUA-Watermark (Huang et al. 2022): a deepfake is
  counted as disrupted when the MSE between the output made from the protected
  input and the one made from the clean input is at least 0.05 on [-1,1].
"""

from __future__ import annotations

import math
from typing import overload

import torch
import torch.nn.functional as F

__all__ = [
    "DISRUPTION_THRESHOLD",
    "psnr",
    "ssim",
    "disruption_mse",
    "is_disrupted",
]

#: MSE on the [-1,1] scale at or above which an output counts as disrupted
#: (Ruiz et al. 2020, section 4; CMUA-Watermark uses the same threshold).
DISRUPTION_THRESHOLD = 0.05

_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_SSIM_SIGMA = 1.5
_SSIM_SIZE = 11


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    if a.ndim != 4:
        raise ValueError(f"expected NCHW tensors, got {a.ndim} dimensions")


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, peak 1.0.

    Args:
        a, b: (N,C,H,W) in [0,1].

    Returns:
        (N,) dB; ``inf`` where the images are identical.
    """
    _check_pair(a, b)
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(1)
    return torch.where(mse > 0, 10.0 * torch.log10(1.0 / mse.clamp_min(1e-30)), torch.full_like(mse, math.inf)).float()


def _gaussian_filter(x: torch.Tensor) -> torch.Tensor:
    """Valid-mode 11x11 Gaussian (sigma 1.5) filter per channel, applied separably."""
    c = x.shape[1]
    coords = torch.arange(_SSIM_SIZE, dtype=x.dtype, device=x.device) - (_SSIM_SIZE - 1) / 2
    g = torch.exp(-(coords**2) / (2 * _SSIM_SIGMA**2))
    g = g / g.sum()
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) per image, mean over channels.

    Args:
        a, b: (N,C,H,W) in [0,1], H and W at least 11.

    Returns:
        (N,) SSIM in [-1, 1]; 1 for identical images.
    """
    _check_pair(a, b)
    if min(a.shape[-2:]) < _SSIM_SIZE:
        raise ValueError(f"SSIM needs images of at least {_SSIM_SIZE}x{_SSIM_SIZE}")
    x, y = a.float(), b.float()
    mu_x = _gaussian_filter(x)
    mu_y = _gaussian_filter(y)
    sxx = _gaussian_filter(x * x) - mu_x**2
    syy = _gaussian_filter(y * y) - mu_y**2
    sxy = _gaussian_filter(x * y) - mu_x * mu_y
    c1, c2 = _SSIM_K1**2, _SSIM_K2**2
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(1).float()


def disruption_mse(protected_out: torch.Tensor, clean_out: torch.Tensor) -> torch.Tensor:
    """MSE between two generator outputs on the [-1,1] scale, per item.

    Args:
        protected_out, clean_out: (N,C,H,W) in [0,1].

    Returns:
        (N,) mean squared error after mapping both to [-1,1] (= 4x the [0,1] MSE).
    """
    _check_pair(protected_out, clean_out)
    return ((protected_out - clean_out) * 2.0).pow(2).flatten(1).mean(1)


@overload
def is_disrupted(mse_pm1: torch.Tensor, threshold: float = DISRUPTION_THRESHOLD) -> torch.Tensor: ...
@overload
def is_disrupted(mse_pm1: float, threshold: float = DISRUPTION_THRESHOLD) -> bool: ...


def is_disrupted(mse_pm1: torch.Tensor | float, threshold: float = DISRUPTION_THRESHOLD) -> torch.Tensor | bool:
    """Whether an MSE on [-1,1] reaches the disruption threshold (elementwise for a tensor)."""
    return mse_pm1 >= threshold
