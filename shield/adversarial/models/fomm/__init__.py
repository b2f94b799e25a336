"""First Order Motion Model (Siarohin et al., NeurIPS 2019), specs/deepfake-models.md section 1.

Faithful vox-256 architecture (loads official checkpoints strictly) and the project's
reduced ``fomm-mini`` surrogates (64x64, shipped in ``shield/adversarial/weights``).
"""

from shield.adversarial.models.fomm.animate import convex_hull_area, movement_scale, relative_keypoints
from shield.adversarial.models.fomm.checkpoint import (
    FOMM_MINI_NAMES,
    freeze,
    load_fomm_file,
    load_fomm_mini,
    load_official_checkpoint,
    load_state_strict,
    official_checkpoint,
    save_fomm_mini,
    save_official_checkpoint,
    weights_path,
)
from shield.adversarial.models.fomm.config import (
    FOMM_MINI,
    TINY,
    VOX_256,
    CommonParams,
    DenseMotionParams,
    FommConfig,
    GeneratorParams,
    KeypointDetectorParams,
)
from shield.adversarial.models.fomm.dense_motion import DenseMotion, DenseMotionNetwork
from shield.adversarial.models.fomm.errors import (
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointShapeError,
    WeightsNotFoundError,
)
from shield.adversarial.models.fomm.generator import GeneratorOutput, OcclusionAwareGenerator
from shield.adversarial.models.fomm.keypoint_detector import KeypointDetector, Keypoints
from shield.adversarial.models.fomm.model import FOMM

__all__ = [
    "FOMM",
    "FommConfig",
    "CommonParams",
    "KeypointDetectorParams",
    "DenseMotionParams",
    "GeneratorParams",
    "VOX_256",
    "FOMM_MINI",
    "TINY",
    "FOMM_MINI_NAMES",
    "Keypoints",
    "KeypointDetector",
    "DenseMotion",
    "DenseMotionNetwork",
    "GeneratorOutput",
    "OcclusionAwareGenerator",
    "convex_hull_area",
    "movement_scale",
    "relative_keypoints",
    "official_checkpoint",
    "save_official_checkpoint",
    "load_official_checkpoint",
    "load_state_strict",
    "save_fomm_mini",
    "load_fomm_file",
    "load_fomm_mini",
    "weights_path",
    "freeze",
    "CheckpointFormatError",
    "CheckpointKeyError",
    "CheckpointShapeError",
    "WeightsNotFoundError",
]
