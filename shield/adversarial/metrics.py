"""Image-quality and disruption metrics for the adversarial protection.

All inputs are NCHW float tensors in [0,1] (see ``shield.tensors``).

- PSNR in dB with a peak of 1.0.
- SSIM as defined by Wang et al. 2004 ("Image quality assessment: from error
  visibility to structural similarity"): 11x11 Gaussian window with sigma 1.5,
  K1 = 0.01, K2 = 0.03, dynamic range L = 1, computed per channel on valid
  positions (no padding) and averaged.
- Block-grid energy of a perturbation: how much of its luma spectrum sits at the 8-px
  period and its harmonics (the JPEG block grid), relative to a flat spectrum.
- Colour shift of a perturbation in 8-bit YCbCr: mean |Cb| and |Cr| change, and the
  local (low-frequency) change of each plane -- a tint or a darker area.
- Disruption MSE on the [-1,1] scale, the criterion of Ruiz et al. 2020
  ("Disrupting Deepfakes") and CMUA-Watermark (Huang et al. 2022): a deepfake is
  counted as disrupted when the MSE between the output made from the protected
  input and the one made from the clean input is at least 0.05 on [-1,1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import torch
import torch.nn.functional as F

__all__ = [
    "DISRUPTION_THRESHOLD",
    "psnr",
    "ssim",
    "disruption_mse",
    "is_disrupted",
    "grid_energy",
    "grid_modulation",
    "ColourShift",
    "colour_shift",
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


def grid_energy(delta: torch.Tensor, period: int = 8) -> float:
    """Share of the luma power of ``delta`` (1,3,H,W) on the ``period``-px grid frequencies, over a flat spectrum.

    The power spectrum of the luma of ``delta`` (cropped to multiples of ``period``
    from its top-left corner, which should sit on the grid) is averaged over the rows
    and columns at multiples of 1/period cycles per pixel (DC excluded) and divided by
    its mean over every non-DC frequency: about 1 for noise, the size of the excess
    for a block-grid pattern.
    """
    if delta.ndim != 4 or delta.shape[:2] != (1, 3):
        raise ValueError(f"delta: expected (1,3,H,W), got {tuple(delta.shape)}")
    h, w = (delta.shape[2] // period) * period, (delta.shape[3] // period) * period
    if h < 2 * period or w < 2 * period:
        raise ValueError(f"delta must be at least {2 * period} px on each side")
    d = delta[0, :, :h, :w].double()
    luma = 0.299 * d[0] + 0.587 * d[1] + 0.114 * d[2]
    power = torch.fft.fft2(luma - luma.mean()).abs().pow(2)
    power[0, 0] = 0
    rows = torch.zeros(h, dtype=torch.bool)
    rows[:: h // period] = True
    cols = torch.zeros(w, dtype=torch.bool)
    cols[:: w // period] = True
    on_grid = rows.view(-1, 1) | cols.view(1, -1)
    on_grid[0, 0] = False  # DC
    # the DC row and column hold the pattern's 1-D structure, not the grid: leave them out
    on_grid[0, :] = False
    on_grid[:, 0] = False
    mean_all = float(power.sum()) / (h * w - 1)
    if mean_all == 0:
        return 0.0
    return float(power[on_grid].mean()) / mean_all


def grid_modulation(delta: torch.Tensor, periods: range = range(2, 17)) -> tuple[int, float]:
    """Worst position-periodic modulation of the local contrast of ``delta`` (1,3,H,W): (period, excess).

    For each period p, the mean absolute luma difference between neighbouring pixels
    is taken per phase (x mod p for horizontal neighbours, y mod p for vertical ones);
    the excess is max/min - 1 over the phases. Noise gives a few percent; a
    perturbation upsampled by 4/3 with a bilinear kernel, or one with a JPEG-block
    structure, shows tens of percent at its period. Returns the worst period and excess.
    """
    if delta.ndim != 4 or delta.shape[:2] != (1, 3):
        raise ValueError(f"delta: expected (1,3,H,W), got {tuple(delta.shape)}")
    d = delta[0].double()
    luma = 0.299 * d[0] + 0.587 * d[1] + 0.114 * d[2]
    gx = (luma[:, 1:] - luma[:, :-1]).abs()
    gy = (luma[1:, :] - luma[:-1, :]).abs()
    worst = (periods[0], 0.0)
    for p in periods:
        for g in (gx, gy.T):
            if g.shape[1] < 4 * p:
                continue
            n = (g.shape[1] // p) * p
            phases = g[:, :n].reshape(g.shape[0], n // p, p).mean((0, 1))
            low = float(phases.min())
            excess = float(phases.max()) / low - 1 if low > 0 else 0.0
            if excess > worst[1]:
                worst = (p, excess)
    return worst


@dataclass(frozen=True)
class ColourShift:
    """How a perturbation changes colour and local brightness, in 8-bit units (0-255).

    Attributes:
        cb, cr: mean |change| of Cb and Cr per pixel.
        luma: mean |change| of luma per pixel.
        local_luma, local_chroma: mean |change| of the local mean (Gaussian, sigma
            ``sigma`` px) of luma, and of Cb and Cr together: an area made darker or
            tinted, which the eye sees far more readily than fine noise.
    """

    cb: float
    cr: float
    luma: float
    local_luma: float
    local_chroma: float


def colour_shift(protected: torch.Tensor, original: torch.Tensor, *, sigma: float = 3.0) -> ColourShift:
    """:class:`ColourShift` of ``protected`` vs ``original`` ((1,3,H,W) in [0,1]), BT.601 full range."""
    _check_pair(protected, original)
    from shield.adversarial.perceptual import rgb_to_ycbcr
    from shield.tensors import gaussian_blur

    d = rgb_to_ycbcr((protected.double() - original.double()) * 255.0)
    low = gaussian_blur(d, sigma)
    return ColourShift(
        cb=float(d[:, 1].abs().mean()),
        cr=float(d[:, 2].abs().mean()),
        luma=float(d[:, 0].abs().mean()),
        local_luma=float(low[:, 0].abs().mean()),
        local_chroma=float(low[:, 1:].abs().mean()),
    )
