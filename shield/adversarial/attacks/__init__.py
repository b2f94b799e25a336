"""Adversarial attacks against deepfake generators (expert layer).

Most callers want :func:`shield.adversarial.protect.protect_pixels`; this package is
the raw material: :class:`PGD` and the loss terms it maximises.
"""

from shield.adversarial.attacks.base import Attack, Objective, StepCallback
from shield.adversarial.attacks.losses import (
    ArcFacePushAway,
    CropFn,
    FommDistortion,
    IdentityPushAway,
    KeypointDisplacement,
    LossTerm,
    MotionBank,
    SimSwapDistortion,
    SwapDistortion,
    WeightedObjective,
    motions_from_driving,
    random_motions,
)
from shield.adversarial.attacks.pgd import PGD

__all__ = [
    "Attack",
    "Objective",
    "StepCallback",
    "PGD",
    "CropFn",
    "LossTerm",
    "MotionBank",
    "random_motions",
    "motions_from_driving",
    "FommDistortion",
    "KeypointDisplacement",
    "IdentityPushAway",
    "SwapDistortion",
    "SimSwapDistortion",
    "ArcFacePushAway",
    "WeightedObjective",
]
