"""The deepfake models a protection run attacks (white-box) and how to load them.

By default these are the project's shipped surrogates: ``fomm-mini-a``
(reenactment), ``faceswap-ae`` (autoencoder face swap) and the dlib face descriptor
port (identity). ``fomm-mini-b`` is never attacked: it measures transfer.

Official checkpoints a user imported join them: the SimSwap 224 generator
(``simswap-224``) and SimSwap's ArcFace identity network (``arcface-r100``), loaded
from the paths the caller hands to :func:`load_official_models` or
:func:`load_threat_models` (this module does not look files up itself).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from shield.adversarial.models.arcface import ArcFace
from shield.adversarial.models.autoencoder import FaceSwapAE
from shield.adversarial.models.fomm import FOMM
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.errors import ModelError

__all__ = [
    "ThreatModels",
    "OfficialModels",
    "load_threat_models",
    "load_official_models",
    "ATTACKED_FOMM",
    "TRANSFER_FOMM",
    "FACESWAP",
    "IDENTITY",
    "SIMSWAP",
    "ARCFACE",
    "ARCFACE_DEPTH",
]

log = logging.getLogger(__name__)

ATTACKED_FOMM = "fomm-mini-a"
TRANSFER_FOMM = "fomm-mini-b"
FACESWAP = "faceswap-ae"
IDENTITY = "dlib-resnet"
SIMSWAP = "simswap-224"
ARCFACE = "arcface-r100"
#: IR-SE depth of SimSwap's released ArcFace (SE-LResNet101E-IR).
ARCFACE_DEPTH = 101


@dataclass(frozen=True)
class ThreatModels:
    """Networks attacked by the protection; any may be None (its loss terms are skipped).

    Attributes:
        fomm: a First Order Motion Model (``keypoints``, ``generate``, ``resolution``).
        faceswap: a face-swap network with ``swap(face, identity)``, ``identities``, ``resolution``.
        identity: a face embedder of 150 px dlib chips (B,3,150,150) -> (B,D).
        simswap: the SimSwap 224 generator; needs ``arcface`` (its identity latents).
        arcface: SimSwap's ArcFace network, attacked on SimSwap's 224 ArcFace-template crop.

    Raises:
        ValueError: ``simswap`` without ``arcface``.
    """

    fomm: FOMM | None
    faceswap: FaceSwapAE | None
    identity: nn.Module | None
    fomm_name: str = ATTACKED_FOMM
    faceswap_name: str = FACESWAP
    identity_name: str = IDENTITY
    simswap: SimSwapGenerator | None = None
    arcface: ArcFace | None = None
    simswap_name: str = SIMSWAP
    arcface_name: str = ARCFACE

    def __post_init__(self) -> None:
        if self.simswap is not None and self.arcface is None:
            raise ValueError("simswap needs arcface: SimSwap takes its identity latents from ArcFace")

    def names(self) -> list[str]:
        """Names of the models present (recorded in the protection parameters)."""
        pairs = (
            (self.fomm, self.fomm_name),
            (self.faceswap, self.faceswap_name),
            (self.identity, self.identity_name),
            (self.simswap, self.simswap_name),
            (self.arcface, self.arcface_name),
        )
        return [name for model, name in pairs if model is not None]


class OfficialModels(NamedTuple):
    """Official networks loaded by :func:`load_official_models` (None where no path was given)."""

    simswap: SimSwapGenerator | None
    arcface: ArcFace | None


def load_official_models(
    paths: Mapping[str, Path | str], device: torch.device | str = "cpu", *, arcface_depth: int = ARCFACE_DEPTH
) -> OfficialModels:
    """Load the official checkpoints in ``paths`` (frozen, eval mode).

    Args:
        paths: model name -> weights file; names among :data:`SIMSWAP` (the official
            ``latest_net_G.pth``) and :data:`ARCFACE` (ArcFace converted to a state dict).
        device: torch device.
        arcface_depth: IR-SE depth of the ArcFace file.

    Raises:
        ModelError: an unknown name, or SimSwap without ArcFace.
        CheckpointReadError: a file is missing or unreadable.
        LayoutError: a file does not hold the expected network.
    """
    from shield.adversarial.models.arcface import load_arcface
    from shield.adversarial.models.simswap import load_simswap_generator

    unknown = sorted(set(paths) - {SIMSWAP, ARCFACE})
    if unknown:
        raise ModelError(f"no official threat model called {', '.join(map(repr, unknown))}", fix=f"use {SIMSWAP} or {ARCFACE}")
    if SIMSWAP in paths and ARCFACE not in paths:
        raise ModelError(f"{SIMSWAP} needs {ARCFACE}: SimSwap takes its identity latents from ArcFace", fix=f"import {ARCFACE} too")
    arcface = load_arcface(paths[ARCFACE], arcface_depth, device) if ARCFACE in paths else None
    simswap = load_simswap_generator(paths[SIMSWAP], device) if SIMSWAP in paths else None
    log.info("official threat models loaded: %s", ", ".join(sorted(paths)) or "none")
    return OfficialModels(simswap, arcface)


def load_faceswap(device: torch.device | str = "cpu") -> FaceSwapAE:
    """The shipped ``faceswap-ae`` surrogate (frozen, eval mode)."""
    from shield.adversarial.models.autoencoder import load_faceswap_ae

    return load_faceswap_ae(device).eval()


def _imported_official() -> tuple[dict[str, Path | str], int]:
    """SimSwap and ArcFace from the model zoo when both were imported (checksums checked)."""
    from shield.adversarial import zoo

    records = {name: zoo.imported(name) for name in (SIMSWAP, ARCFACE)}
    if not all(records.values()):
        if any(records.values()):
            log.warning("SimSwap needs both %s and %s imported; attacking the surrogates only", SIMSWAP, ARCFACE)
        return {}, ARCFACE_DEPTH
    arcface = records[ARCFACE]
    depth = int(arcface.config.get("depth", ARCFACE_DEPTH)) if arcface is not None else ARCFACE_DEPTH
    return {name: zoo.resolve(name) for name in records}, depth


def load_threat_models(device: torch.device | str = "cpu", *, official: Mapping[str, Path | str] | None = None) -> ThreatModels:
    """The shipped surrogates on ``device``, plus the official models in ``official``.

    Args:
        device: torch device.
        official: model name -> weights file, as :func:`load_official_models` takes;
            None: SimSwap and ArcFace when both are imported with `shield models import`.

    Raises:
        ModelError: a weights file is missing or corrupt, or ``official`` is inconsistent.
    """
    from shield.adversarial.models.dlib_resnet import load_dlib_descriptor
    from shield.adversarial.models.fomm import load_fomm_mini

    depth = ARCFACE_DEPTH
    if official is None:
        official, depth = _imported_official()
    extra = load_official_models(official, device, arcface_depth=depth)
    return ThreatModels(
        fomm=load_fomm_mini(ATTACKED_FOMM, device),
        faceswap=load_faceswap(device),
        identity=load_dlib_descriptor(device).eval(),
        simswap=extra.simswap,
        arcface=extra.arcface,
    )
