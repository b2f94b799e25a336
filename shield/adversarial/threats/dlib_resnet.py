"""Plug-in ``dlib-resnet``: dlib's ResNet face descriptor (128-d), ported to torch.

View: dlib's own 150 px chip (5-point alignment, padding 0.25), as dlib-based tools and
``face_recognition`` read identity. Broken above dlib's same-person distance 0.6. Also
attacked on the ArcFace five-point template at 150 px, the alignment of insightface-based
swap tools (SimSwap, inswapper): measured on three photos, the attack on dlib's chip alone
moved the descriptor of the ArcFace-aligned face by 0.37-0.42 only (threshold 0.6).
"""

from __future__ import annotations

import torch

from shield.adversarial.face_views import FaceGeometry, View
from shield.adversarial.models.dlib_resnet import CHIP_SIZE, SAME_PERSON_THRESHOLD
from shield.adversarial.threats.roles import IdentityTarget

__all__ = ["DlibResNet"]


class DlibResNet(IdentityTarget):
    name = "dlib-resnet"
    size = CHIP_SIZE
    threshold = SAME_PERSON_THRESHOLD

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> DlibResNet:
        from shield.adversarial.models.dlib_resnet import load_dlib_descriptor

        return cls(load_dlib_descriptor(device).eval())

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        return face.chip_view(self.size) if face is not None else None

    def alignments(self, face: FaceGeometry | None, width: int, height: int) -> list[View]:
        return [face.arcface_view(self.size)] if face is not None else []
