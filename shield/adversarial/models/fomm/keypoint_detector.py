"""FOMM keypoint detector (specs/deepfake-models.md section 1, "Keypoint detector").

Unsupervised keypoints: an hourglass predicts one heatmap per keypoint; a spatial
softmax turns it into a distribution whose mean over the coordinate grid is the
keypoint, and a heatmap-weighted sum of a second head gives its 2x2 local jacobian.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.blocks import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid
from shield.adversarial.models.fomm.config import CommonParams, KeypointDetectorParams

__all__ = ["Keypoints", "KeypointDetector"]


class Keypoints(NamedTuple):
    """Keypoints of a batch of frames.

    Attributes:
        value: (B, K, 2) positions in [-1, 1], (x, y).
        jacobian: (B, K, 2, 2) local affine of each keypoint (identity when the model
            does not estimate jacobians).
    """

    value: torch.Tensor
    jacobian: torch.Tensor

    def detach(self) -> Keypoints:
        return Keypoints(self.value.detach(), self.jacobian.detach())


class KeypointDetector(nn.Module):
    """Detects K keypoints and their jacobians in an RGB image in [0,1].

    Official module names: ``predictor`` (Hourglass), ``kp`` (7x7 conv, padding 0),
    ``jacobian`` (7x7 conv to 4K channels, bias initialised to the identity), ``down``
    (anti-aliased downsampling, present when ``scale_factor != 1``).
    """

    def __init__(self, common: CommonParams, params: KeypointDetectorParams) -> None:
        super().__init__()
        self.num_kp = common.num_kp
        self.temperature = params.temperature
        self.scale_factor = params.scale_factor
        self.estimate_jacobian = common.estimate_jacobian
        self.predictor = Hourglass(
            params.block_expansion, in_features=common.num_channels, max_features=params.max_features, num_blocks=params.num_blocks
        )
        self.kp = nn.Conv2d(self.predictor.out_filters, common.num_kp, kernel_size=7, padding=0)
        if common.estimate_jacobian:
            self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * common.num_kp, kernel_size=7, padding=0)
            bias = self.jacobian.bias
            assert bias is not None
            with torch.no_grad():
                self.jacobian.weight.zero_()
                bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * common.num_kp))
        if params.scale_factor != 1:
            self.down = AntiAliasInterpolation2d(common.num_channels, params.scale_factor)

    def forward(self, image: torch.Tensor) -> Keypoints:
        """Args: image (B, C, H, W) in [0,1]. Returns :class:`Keypoints`."""
        x = self.down(image) if self.scale_factor != 1 else image
        features = self.predictor(x)
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, -1) / self.temperature, dim=2).view(b, k, h, w)
        grid = make_coordinate_grid(h, w, dtype=heatmap.dtype, device=heatmap.device)
        value = (heatmap.unsqueeze(-1) * grid.view(1, 1, h, w, 2)).sum(dim=(2, 3))
        if self.estimate_jacobian:
            jac_map = self.jacobian(features).view(b, k, 4, h, w)
            jacobian = (heatmap.unsqueeze(2) * jac_map).view(b, k, 4, -1).sum(-1).view(b, k, 2, 2)
        else:
            jacobian = torch.eye(2, dtype=value.dtype, device=value.device).expand(b, k, 2, 2)
        return Keypoints(value, jacobian)
