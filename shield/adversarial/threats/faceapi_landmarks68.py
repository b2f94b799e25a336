"""Plug-in ``faceapi-landmarks68``: face-api.js's 68-point landmark net (held out: never attacked).

View: the 112 px crop of the face box with a small margin (face-api crops the detection
box, padded to a square). Break test: mean error of the 68 points > 0.10 of the clean
inter-ocular distance (eye centres: means of points 36-41 and 42-47).
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import LandmarkTarget

__all__ = ["FaceApiLandmarks68"]


class FaceApiLandmarks68(LandmarkTarget):
    name = "faceapi-landmarks68"
    size = 112
    context = 1.2

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FaceApiLandmarks68:
        from shield.adversarial.models.faceapi_landmarks68 import load_faceapi_landmarks68

        return cls(load_faceapi_landmarks68(device))

    def eyes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from shield.adversarial.models.faceapi_landmarks68 import LEFT_EYE, RIGHT_EYE

        return points[list(LEFT_EYE)].mean(0), points[list(RIGHT_EYE)].mean(0)
