"""Plug-in ``arcface-r100``: SimSwap's ArcFace identity network, once a user imported it.

View: SimSwap's 224 crop on the ArcFace template; the embedding is SimSwap's latent
(ImageNet normalisation, nearest resize to 112, L2-normalised). Broken above a
distance of 1.24 between unit latents, the LFW verification threshold commonly used
for ArcFace models (cosine similarity about 0.23).
"""

from __future__ import annotations

import torch

from shield.adversarial.face_views import FaceGeometry, View
from shield.adversarial.threats.roles import IdentityTarget

__all__ = ["ArcFaceR100", "NAME"]

NAME = "arcface-r100"


class ArcFaceR100(IdentityTarget):
    name = NAME
    size = 224
    threshold = 1.24

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> ArcFaceR100:
        from shield.adversarial import zoo
        from shield.adversarial.attacks.losses import SimSwapLatent
        from shield.adversarial.models.arcface import load_arcface

        record = zoo.imported(NAME)
        depth = int(record.config.get("depth", 101)) if record is not None else 101
        return cls(SimSwapLatent(load_arcface(zoo.resolve(NAME), depth, device)))

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        return face.arcface_view(self.size) if face is not None else None
