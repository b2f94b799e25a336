"""FOMM dense motion network (specs/deepfake-models.md section 1, "Dense motion network").

From K keypoint pairs it builds K+1 sparse backward motions (one per keypoint, a
first-order Taylor expansion around it, plus the identity for the background), warps
the downsampled source with each, and lets an hourglass predict soft masks that
combine them into one dense deformation, plus an occlusion map.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.blocks import AntiAliasInterpolation2d, Hourglass, kp2gaussian, make_coordinate_grid, warp
from shield.adversarial.models.fomm.config import CommonParams, DenseMotionParams
from shield.adversarial.models.fomm.keypoint_detector import Keypoints

__all__ = ["DenseMotion", "DenseMotionNetwork", "sparse_motions"]


class DenseMotion(NamedTuple):
    """Output of :class:`DenseMotionNetwork` at its working resolution (h, w).

    Attributes:
        deformation: (B, h, w, 2) backward sampling grid in [-1, 1] (driving -> source).
        mask: (B, K+1, h, w) softmax weights of the sparse motions (channel 0 background).
        sparse_deformed: (B, K+1, C, h, w) the source warped by each sparse motion.
        occlusion_map: (B, 1, h, w) in [0,1], or None when not estimated.
    """

    deformation: torch.Tensor
    mask: torch.Tensor
    sparse_deformed: torch.Tensor
    occlusion_map: torch.Tensor | None


def sparse_motions(height: int, width: int, kp_driving: Keypoints, kp_source: Keypoints) -> torch.Tensor:
    """Backward motions T_{S<-D}(z) ~ kp_s + J_s J_d^-1 (z - kp_d), plus the identity.

    Returns:
        (B, K+1, H, W, 2); index 0 is the identity grid (background).
    """
    value_d = kp_driving.value
    b, k, _ = value_d.shape
    identity = make_coordinate_grid(height, width, dtype=value_d.dtype, device=value_d.device).view(1, 1, height, width, 2)
    offset = identity - value_d.view(b, k, 1, 1, 2)
    jac = torch.matmul(kp_source.jacobian, torch.inverse(kp_driving.jacobian))
    offset = torch.einsum("bkij,bkhwj->bkhwi", jac, offset)
    driving_to_source = offset + kp_source.value.view(b, k, 1, 1, 2)
    return torch.cat([identity.expand(b, 1, height, width, 2), driving_to_source], dim=1)


class DenseMotionNetwork(nn.Module):
    """Predicts the dense deformation and occlusion from keypoints and the source.

    Official module names: ``hourglass``, ``mask`` (7x7 conv to K+1), ``occlusion``
    (7x7 conv to 1, when estimated), ``down`` (when ``scale_factor != 1``).
    """

    def __init__(self, common: CommonParams, params: DenseMotionParams, estimate_occlusion_map: bool) -> None:
        super().__init__()
        k, c = common.num_kp, common.num_channels
        self.num_kp = k
        self.kp_variance = params.kp_variance
        self.scale_factor = params.scale_factor
        self.hourglass = Hourglass(
            params.block_expansion, in_features=(k + 1) * (c + 1), max_features=params.max_features, num_blocks=params.num_blocks
        )
        self.mask = nn.Conv2d(self.hourglass.out_filters, k + 1, kernel_size=7, padding=3)
        self.occlusion: nn.Conv2d | None = None
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
        if params.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(c, params.scale_factor)

    def _heatmaps(self, h: int, w: int, kp_driving: Keypoints, kp_source: Keypoints) -> torch.Tensor:
        heat = kp2gaussian(kp_driving.value, h, w, self.kp_variance) - kp2gaussian(kp_source.value, h, w, self.kp_variance)
        zeros = torch.zeros_like(heat[:, :1])
        return torch.cat([zeros, heat], dim=1).unsqueeze(2)

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> DenseMotion:
        """Args: source (B, C, H, W) in [0,1]; keypoints of driving and source frames."""
        src = self.down(source) if self.scale_factor != 1 else source
        b, c, h, w = src.shape
        heat = self._heatmaps(h, w, kp_driving, kp_source)
        motions = sparse_motions(h, w, kp_driving, kp_source)
        n = self.num_kp + 1
        repeated = src.unsqueeze(1).expand(b, n, c, h, w).reshape(b * n, c, h, w)
        deformed = warp(repeated, motions.reshape(b * n, h, w, 2)).view(b, n, c, h, w)
        # Per motion: [heatmap, warped source], flattened in that order as upstream.
        net_in = torch.cat([heat, deformed], dim=2).view(b, -1, h, w)
        features = self.hourglass(net_in)
        mask = F.softmax(self.mask(features), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion(features)) if self.occlusion is not None else None
        return DenseMotion(deformation, mask, deformed, occlusion)
