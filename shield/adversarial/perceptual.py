"""Perceptual shaping of the protection's perturbation: luma-dominant, no low frequencies, JND-scaled.

What people see in an adversarial perturbation of a face, measured on the protected
photos (bench/README.md, "Invisible perturbation"): a colour cast (a chroma change on
eyelids and lips), mean shifts over a feature (darker brows: low-frequency luma), and
structure on smooth skin. The eye is far less sensitive to fine luma changes in
texture than to any of these (contrast masking, the JND models of Chou & Li 1995;
chroma acuity is lower but a chroma *offset* over an area reads as a tint).

:class:`Shaping` turns a perturbation into one that avoids them, as a map applied after
every attack step (and to the full-resolution perturbation):

1. remove its low frequencies: subtract its Gaussian blur of ``highpass_sigma``
   pixels, so no area of the face gets lighter, darker or tinted on average;
2. in YCbCr (BT.601, as JPEG), cap luma at the per-pixel just-noticeable budget and
   chroma at ``chroma`` times it (the perturbation is carried by luma);
3. the per-pixel budget comes from :func:`jnd_scale`: local luma contrast over a small
   window, so smooth skin gets ``floor`` of the cap and texture (hair, brows,
   eyelashes, fabric) all of it.

The L-inf cap on RGB and the RMS budget are still enforced by the attack, and the
L-inf cap again on the final 8-bit image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shield.tensors import gaussian_blur

__all__ = ["Shaping", "jnd_scale", "rgb_to_ycbcr", "ycbcr_to_rgb", "shaper"]

# BT.601 full range (JFIF), the matrix of the JPEG model in ``transforms``.
_TO_YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_TO_RGB = torch.linalg.inv(_TO_YCC)


@dataclass(frozen=True)
class Shaping:
    """Parameters of the perceptual shaping (see the module docstring).

    Attributes:
        chroma: chroma (Cb, Cr) cap as a share of the luma cap, in [0, 1].
        highpass_sigma: pixels; the perturbation's Gaussian blur of this width is
            removed (its local mean, so no area shifts in brightness or tint).
        floor: budget scale on perfectly smooth areas, in (0, 1].
        tau: local luma standard deviation (in [0,1] units) at which the full budget applies.
        window: side of the square over which the local contrast is measured (odd).
        weighted_rms: measure the RMS budget on the perturbation divided by the JND
            scale, so energy on smooth skin costs up to 1/floor^2 more than in texture.
    """

    chroma: float = 0.25
    highpass_sigma: float = 8.0
    floor: float = 0.3
    tau: float = 0.04
    window: int = 7
    weighted_rms: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.chroma <= 1:
            raise ValueError(f"chroma must be in [0, 1], got {self.chroma}")
        if not self.highpass_sigma > 0:
            raise ValueError(f"highpass_sigma must be > 0, got {self.highpass_sigma}")
        if not 0 < self.floor <= 1:
            raise ValueError(f"floor must be in (0, 1], got {self.floor}")
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {self.window}")


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """(N,3,H,W) RGB -> (N,3,H,W) Y, Cb, Cr, linear (no offsets: use on differences or add 0.5 to chroma)."""
    return torch.einsum("ij,njhw->nihw", _TO_YCC.to(x), x)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`."""
    return torch.einsum("ij,njhw->nihw", _TO_RGB.to(x), x)


def jnd_scale(x: torch.Tensor, *, floor: float, tau: float, window: int) -> torch.Tensor:
    """(N,1,H,W) budget scale in [floor, 1] from the local luma contrast of ``x`` (N,3,H,W) in [0,1].

    ``clamp(std / tau, floor, 1)`` with the luma standard deviation over a ``window``
    square: flat areas show noise most, textured ones hide it (contrast masking).
    """
    luma = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).float()
    pad = window // 2
    lp = F.pad(luma, (pad, pad, pad, pad), mode="replicate")
    mean = F.avg_pool2d(lp, window, stride=1)
    sq = F.avg_pool2d(lp * lp, window, stride=1)
    std = (sq - mean**2).clamp_min(0).sqrt()
    return torch.clamp(std / tau, floor, 1.0).to(x.dtype)


def shaper(shaping: Shaping, budget: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map ``delta -> shaped delta`` for a per-pixel RGB L-inf ``budget`` (1,1,H,W) or (1,3,H,W).

    Luma is capped at ``budget`` and chroma at ``chroma * budget``; the attack then
    clips to the RGB box, which can only shrink the change.
    """
    cap = budget[:, :1]
    chroma_cap = cap * shaping.chroma

    def apply(delta: torch.Tensor) -> torch.Tensor:
        d = delta - gaussian_blur(delta, shaping.highpass_sigma)
        ycc = rgb_to_ycbcr(d)
        y = torch.maximum(torch.minimum(ycc[:, :1], cap), -cap)
        c = torch.maximum(torch.minimum(ycc[:, 1:], chroma_cap), -chroma_cap)
        return ycbcr_to_rgb(torch.cat([y, c], 1))

    return apply
