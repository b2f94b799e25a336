"""FOMM occlusion-aware generator (specs/deepfake-models.md section 1).

Encodes the source, warps its features with the dense deformation, multiplies them
by the occlusion map, and decodes the driving-pose frame.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, warp
from shield.adversarial.models.fomm.config import CommonParams, DenseMotionParams, GeneratorParams
from shield.adversarial.models.fomm.dense_motion import DenseMotionNetwork
from shield.adversarial.models.fomm.keypoint_detector import Keypoints

__all__ = ["GeneratorOutput", "OcclusionAwareGenerator"]


class GeneratorOutput(NamedTuple):
    """Everything the generator computes.

    Attributes:
        prediction: (B, C, H, W) generated frame in [0,1].
        mask: (B, K+1, h, w) dense-motion masks.
        sparse_deformed: (B, K+1, C, h, w) source warped by each sparse motion.
        occlusion_map: (B, 1, h', w') at feature resolution, or None.
        deformed: (B, C, H, W) the source warped by the dense deformation at full size.
        deformation: (B, h, w, 2) the dense backward deformation.
    """

    prediction: torch.Tensor
    mask: torch.Tensor
    sparse_deformed: torch.Tensor
    occlusion_map: torch.Tensor | None
    deformed: torch.Tensor
    deformation: torch.Tensor


def _resize_deformation(deformation: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if deformation.shape[1:3] == (height, width):
        return deformation
    grid = deformation.permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=True)
    return grid.permute(0, 2, 3, 1)


class OcclusionAwareGenerator(nn.Module):
    """Official module names: ``dense_motion_network``, ``first``, ``down_blocks``,
    ``bottleneck.r{i}``, ``up_blocks``, ``final``."""

    def __init__(self, common: CommonParams, params: GeneratorParams, dense_motion: DenseMotionParams) -> None:
        super().__init__()
        be, mf, nd = params.block_expansion, params.max_features, params.num_down_blocks
        self.dense_motion_network = DenseMotionNetwork(common, dense_motion, params.estimate_occlusion_map)
        self.first = SameBlock2d(common.num_channels, be, kernel_size=7, padding=3)
        self.down_blocks = nn.ModuleList(
            DownBlock2d(min(mf, be * 2**i), min(mf, be * 2 ** (i + 1))) for i in range(nd)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock2d(min(mf, be * 2 ** (nd - i)), min(mf, be * 2 ** (nd - i - 1))) for i in range(nd)
        )
        width = min(mf, be * 2**nd)
        self.bottleneck = nn.Sequential()
        for i in range(params.num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width, kernel_size=3, padding=1))
        self.final = nn.Conv2d(be, common.num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """Features of ``source`` (B, C, H, W) in [0,1] before the warp."""
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Image in [0,1] from (warped) features."""
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(self, source: torch.Tensor, kp_driving: Keypoints, kp_source: Keypoints) -> GeneratorOutput:
        """Args: source (B, C, H, W) in [0,1]; keypoints of the driving and source frames."""
        out = self.encode(source)
        motion = self.dense_motion_network(source, kp_driving, kp_source)
        h, w = out.shape[2:]
        out = warp(out, _resize_deformation(motion.deformation, h, w))
        occlusion = motion.occlusion_map
        if occlusion is not None:
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=(h, w), mode="bilinear", align_corners=True)
            out = out * occlusion
        deformed = warp(source, _resize_deformation(motion.deformation, *source.shape[2:]))
        prediction = self.decode(out)
        return GeneratorOutput(prediction, motion.mask, motion.sparse_deformed, occlusion, deformed, motion.deformation)
