"""Plug-in ``dlib-mmod``: dlib's mmod CNN face detector (``cnn_face_detection_model_v1``).

View: the face with twice its size around it at 200 px (faces about 100 px, above the
detector's 80 px window at upsample 0). Attack and break test: the detector template; the
default threshold is dlib's raw score 0.
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import DetectorTarget

__all__ = ["DlibMmod"]


class DlibMmod(DetectorTarget):
    name = "dlib-mmod"
    size = 200
    context = 2.0

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> DlibMmod:
        from shield.adversarial.models.dlib_mmod import load_dlib_mmod

        return cls(load_dlib_mmod(device))
