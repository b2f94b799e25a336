"""Plug-in ``mtcnn``: the MTCNN cascade (facenet-pytorch's weights), a face detector with 5 landmarks.

View: the face with twice its size around it, at 160 px (faces about 80 px, well above
MTCNN's 20 px minimum, as in a photo a swap tool scans). The attack suppresses the rows
of the last two stages (R-Net and O-Net on the crops the cascade takes from the current
image): a face must pass all three stages, and the thousands of P-Net anchors, each
seeing 12 px, are far harder to silence together (measured: suppressing every stage at
once left the astronaut's box at IoU 0.91). Break test: the detector template.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from shield.adversarial.models.detections import Candidates, Detection
from shield.adversarial.threats.roles import DetectorTarget

__all__ = ["Mtcnn", "LateStages"]


class LateStages(nn.Module):
    """MTCNN seen through its R-Net and O-Net rows only (``candidates``); ``detect`` unchanged."""

    def __init__(self, mtcnn: nn.Module) -> None:
        super().__init__()
        self.mtcnn = mtcnn

    def candidates(self, image: torch.Tensor) -> Candidates:
        s = self.mtcnn.stages(image)  # type: ignore[operator]
        return Candidates.cat([s.rnet, s.onet])

    def detect(self, image: torch.Tensor) -> Sequence[Detection]:
        return self.mtcnn.detect(image)  # type: ignore[operator]


class Mtcnn(DetectorTarget):
    name = "mtcnn"
    size = 160
    context = 2.0
    score_threshold = 0.7  # the O-Net stage's threshold, facenet-pytorch's default [0.6, 0.7, 0.7]

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> Mtcnn:
        from shield.adversarial.models.mtcnn import load_mtcnn

        return cls(LateStages(load_mtcnn(device)))
