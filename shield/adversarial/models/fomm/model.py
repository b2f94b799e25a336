"""The FOMM pair (keypoint detector + generator) behind one small interface."""

from __future__ import annotations

import torch
from torch import nn

from shield.adversarial.models.fomm.animate import movement_scale, relative_keypoints
from shield.adversarial.models.fomm.config import FommConfig
from shield.adversarial.models.fomm.generator import GeneratorOutput, OcclusionAwareGenerator
from shield.adversarial.models.fomm.keypoint_detector import KeypointDetector, Keypoints

__all__ = ["FOMM"]


class FOMM(nn.Module):
    """First Order Motion Model: ``kp_detector`` and ``generator`` built from a config.

    Images are (B, 3, R, R) float in [0,1] where R is :attr:`resolution`. Gradients flow
    through every method (for adversarial attacks), except the movement scale of
    :meth:`animate`, which upstream computes outside autograd.
    """

    def __init__(self, config: FommConfig) -> None:
        super().__init__()
        self.config = config
        self.resolution = config.resolution
        self.kp_detector = KeypointDetector(config.common, config.kp_detector)
        self.generator = OcclusionAwareGenerator(config.common, config.generator, config.dense_motion)

    def keypoints(self, image: torch.Tensor) -> Keypoints:
        """Keypoints (values in [-1,1], jacobians) of a batch of images."""
        return self.kp_detector(image)

    def generate_full(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> GeneratorOutput:
        """Every generator output (prediction, masks, occlusion, deformation)."""
        return self.generator(source, kp_driving=kp_driving, kp_source=kp_source)

    def generate(self, source: torch.Tensor, kp_source: Keypoints, kp_driving: Keypoints) -> torch.Tensor:
        """The source re-posed to ``kp_driving``: (B, 3, R, R) in [0,1]."""
        return self.generate_full(source, kp_source, kp_driving).prediction

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        """Reconstruction with absolute keypoints (the paper's evaluation protocol)."""
        return self.generate(source, self.keypoints(source), self.keypoints(driving))

    def animate(
        self,
        source: torch.Tensor,
        driving_frames: torch.Tensor,
        relative: bool = True,
        adapt_scale: bool = True,
    ) -> torch.Tensor:
        """Animate one source image with a driving sequence (the FOMM demo).

        Args:
            source: (1, 3, R, R) in [0,1].
            driving_frames: (T, 3, R, R) in [0,1]; frame 0 is the reference pose.
            relative: transfer motion relative to frame 0 (else absolute keypoints).
            adapt_scale: scale the motion by the ratio of keypoint hull areas.

        Returns:
            (T, 3, R, R) in [0,1].
        """
        if source.shape[0] != 1:
            raise ValueError(f"source: expected a batch of one, got {source.shape[0]}")
        kp_source = self.keypoints(source)
        kp_first = self.keypoints(driving_frames[:1])
        scale = movement_scale(kp_source, kp_first) if (relative and adapt_scale) else 1.0
        frames = []
        for t in range(driving_frames.shape[0]):
            kp_d = self.keypoints(driving_frames[t : t + 1])
            kp_new = relative_keypoints(kp_source, kp_d, kp_first, scale=scale) if relative else kp_d
            frames.append(self.generate(source, kp_source, kp_new))
        return torch.cat(frames, dim=0)
