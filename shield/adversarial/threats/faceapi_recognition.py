"""Plug-in ``faceapi-recognition``: face-api.js's 128-d face descriptor (held out: never attacked).

View: the 150 px crop of the face box with a small margin, as face-api extracts the
detected face. Broken above face-api's same-person distance 0.6.
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import IdentityTarget

__all__ = ["FaceApiRecognition"]


class FaceApiRecognition(IdentityTarget):
    name = "faceapi-recognition"
    size = 150
    context = 1.2
    threshold = 0.6

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FaceApiRecognition:
        from shield.adversarial.models.faceapi_recognition import load_faceapi_recognition

        return cls(load_faceapi_recognition(device))
