"""Plug-in ``faceapi-ssd``: face-api.js's SSD MobileNet v1 face detector (held out: never attacked).

View: the face with twice its size around it at 512 px, the network's input side. Break
test: the detector template at face-api's default minConfidence 0.5.
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import DetectorTarget

__all__ = ["FaceApiSsd"]


class FaceApiSsd(DetectorTarget):
    name = "faceapi-ssd"
    size = 512
    context = 2.0

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FaceApiSsd:
        from shield.adversarial.models.faceapi_ssd import load_faceapi_ssd

        return cls(load_faceapi_ssd(device))
