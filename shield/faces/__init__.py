"""Faces: detection and landmarks (dlib), aligned crops per model, and the way back.

``detect_faces`` finds every face (largest first) or raises ``NoFaceError``; ``align``
crops one as FOMM, SimSwap/ArcFace or the dlib descriptor expects and keeps the
similarity matrix; ``confirm_faces`` asks dlib's mmod CNN about each HOG face (false
positives on animals and textures); ``crop_tensor`` and ``paste_back`` are the differentiable forward and
inverse warps the protection attack optimises through. Spec: issue 5 part 3.

The torch-based warps (``crop_tensor``, ``feather_mask``, ``paste_back``) are loaded on
first use, so that detection and ``shield.faces.dlib_models`` (where dlib's model files
are, read by ``shield models list``) do not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from shield.faces.align import AlignedCrop, AlignTarget, align, crop_matrix
from shield.faces.confirm import Confirmation, confirm_faces
from shield.faces.detect import Box, Detector, Face, detect_faces, landmarks68

if TYPE_CHECKING:
    from shield.faces.warp import crop_tensor, feather_mask, paste_back

_LAZY = {"crop_tensor", "feather_mask", "paste_back"}

__all__ = [
    "AlignTarget",
    "AlignedCrop",
    "Box",
    "Confirmation",
    "Detector",
    "Face",
    "align",
    "confirm_faces",
    "crop_matrix",
    "crop_tensor",
    "detect_faces",
    "feather_mask",
    "landmarks68",
    "paste_back",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'shield.faces' has no attribute {name!r}")
    value = getattr(importlib.import_module("shield.faces.warp"), name)
    globals()[name] = value
    return value
