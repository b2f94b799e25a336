"""Plug-in ``mtcnn``: the MTCNN cascade (facenet-pytorch's weights), a face detector with 5 landmarks.

View: the face with twice its size around it, at 160 px (faces about 80 px, well above
MTCNN's 20 px minimum, as in a photo a swap tool scans). Attack and break test: the
detector template (``roles.DetectorTarget``) on the cascade's candidates.
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import DetectorTarget

__all__ = ["Mtcnn"]


class Mtcnn(DetectorTarget):
    name = "mtcnn"
    size = 160
    context = 2.0
    score_threshold = 0.7  # the O-Net stage's threshold, facenet-pytorch's default [0.6, 0.7, 0.7]

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> Mtcnn:
        from shield.adversarial.models.mtcnn import load_mtcnn

        return cls(load_mtcnn(device))
