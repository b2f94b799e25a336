"""Deepfake generators and identity networks, faithful to their reference designs.

See specs/deepfake-models.md. Each model family lives in its own module or subpackage.
"""

from shield.adversarial.models.fomm import (
    FOMM,
    FOMM_MINI,
    VOX_256,
    FommConfig,
    KeypointDetector,
    Keypoints,
    OcclusionAwareGenerator,
    load_fomm_mini,
    load_official_checkpoint,
)

from shield.adversarial.models.arcface import ArcFace, load_arcface, simswap_identity
from shield.adversarial.models.autoencoder import FaceSwapAE, FaceSwapAEConfig, load_faceswap_ae
from shield.adversarial.models.convert import convert_arcface
from shield.adversarial.models.simswap import SimSwapGenerator, load_simswap_generator
from shield.adversarial.models.dlib_resnet import (
    SAME_PERSON_THRESHOLD,
    DlibFaceDescriptor,
    load_dlib_descriptor,
)

__all__ = [
    "FOMM",
    "FOMM_MINI",
    "VOX_256",
    "FommConfig",
    "KeypointDetector",
    "Keypoints",
    "OcclusionAwareGenerator",
    "load_fomm_mini",
    "load_official_checkpoint",
    "ArcFace",
    "load_arcface",
    "simswap_identity",
    "FaceSwapAE",
    "FaceSwapAEConfig",
    "load_faceswap_ae",
    "convert_arcface",
    "SimSwapGenerator",
    "load_simswap_generator",
    "DlibFaceDescriptor",
    "load_dlib_descriptor",
    "SAME_PERSON_THRESHOLD",
]
