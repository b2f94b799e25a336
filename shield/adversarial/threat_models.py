"""The deepfake models a protection run attacks (white-box) and how to load them.

By default these are the project's shipped surrogates: ``fomm-mini-a``
(reenactment), ``faceswap-ae`` (autoencoder face swap) and the dlib face descriptor
port (identity). ``fomm-mini-b`` is never attacked: it measures transfer.

Official checkpoints a user imported join them: the First Order Motion Model vox-256
(``fomm-vox-256``, attacked beside ``fomm-mini-a`` on its own 256 px crop), the
SimSwap 224 generator (``simswap-224``) and SimSwap's ArcFace identity network
(``arcface-r100``), loaded from the paths the caller hands to
:func:`load_official_models` or :func:`load_threat_models`; only when no paths are
handed does :func:`load_threat_models` take the imports of the model zoo.
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
from shield.adversarial.models.fomm import FOMM, VOX_256, FommConfig
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.errors import ConfigError, ModelError

__all__ = [
    "ThreatModels",
    "OfficialModels",
    "load_threat_models",
    "load_official_models",
    "ATTACKED_FOMM",
    "TRANSFER_FOMM",
    "FOMM_VOX",
    "FACESWAP",
    "IDENTITY",
    "SIMSWAP",
    "ARCFACE",
    "ARCFACE_DEPTH",
]

log = logging.getLogger(__name__)

ATTACKED_FOMM = "fomm-mini-a"
TRANSFER_FOMM = "fomm-mini-b"
FOMM_VOX = "fomm-vox-256"
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
        fomm_official: the official FOMM (vox-256), attacked on its own square crop at
            its resolution, in addition to ``fomm``.

    Raises:
        ValueError: ``simswap`` without ``arcface``; ``fomm`` and ``fomm_official`` under
            one name (their self-checks would collide).
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
    fomm_official: FOMM | None = None
    fomm_official_name: str = FOMM_VOX

    def __post_init__(self) -> None:
        if self.simswap is not None and self.arcface is None:
            raise ValueError("simswap needs arcface: SimSwap takes its identity latents from ArcFace")
        if self.fomm is not None and self.fomm_official is not None and self.fomm_name == self.fomm_official_name:
            raise ValueError(f"fomm and fomm_official are both named {self.fomm_name!r}")

    def names(self) -> list[str]:
        """Names of the models present (recorded in the protection parameters)."""
        pairs = (
            (self.fomm, self.fomm_name),
            (self.fomm_official, self.fomm_official_name),
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
    fomm: FOMM | None = None


def load_official_models(
    paths: Mapping[str, Path | str],
    device: torch.device | str = "cpu",
    *,
    arcface_depth: int = ARCFACE_DEPTH,
    fomm_config: FommConfig = VOX_256,
) -> OfficialModels:
    """Load the official checkpoints in ``paths`` (frozen, eval mode).

    Args:
        paths: model name -> weights file; names among :data:`FOMM_VOX` (the official
            ``vox-cpk.pth.tar``), :data:`SIMSWAP` (the official ``latest_net_G.pth``) and
            :data:`ARCFACE` (ArcFace converted to a state dict). The FOMM needs no other.
        device: torch device.
        arcface_depth: IR-SE depth of the ArcFace file.
        fomm_config: architecture of the FOMM file (the official vox-256 by default).

    Raises:
        ModelError: an unknown name, or SimSwap without ArcFace.
        CheckpointReadError: a file is missing or unreadable.
        LayoutError: a file does not hold the expected network.
        CheckpointFormatError, CheckpointKeyError, CheckpointShapeError: the FOMM file is
            not an official checkpoint of ``fomm_config`` (all ModelError).
    """
    from shield.adversarial.models.arcface import load_arcface
    from shield.adversarial.models.fomm import load_official_checkpoint
    from shield.adversarial.models.simswap import load_simswap_generator

    known = (FOMM_VOX, SIMSWAP, ARCFACE)
    unknown = sorted(set(paths) - set(known))
    if unknown:
        raise ModelError(f"no official threat model called {', '.join(map(repr, unknown))}", fix=f"use {', '.join(known)}")
    if SIMSWAP in paths and ARCFACE not in paths:
        raise ModelError(f"{SIMSWAP} needs {ARCFACE}: SimSwap takes its identity latents from ArcFace", fix=f"import {ARCFACE} too")
    arcface = load_arcface(paths[ARCFACE], arcface_depth, device) if ARCFACE in paths else None
    simswap = load_simswap_generator(paths[SIMSWAP], device) if SIMSWAP in paths else None
    fomm = load_official_checkpoint(paths[FOMM_VOX], fomm_config, device) if FOMM_VOX in paths else None
    log.info("official threat models loaded: %s", ", ".join(sorted(paths)) or "none")
    return OfficialModels(simswap, arcface, fomm)


def load_faceswap(device: torch.device | str = "cpu") -> FaceSwapAE:
    """The shipped ``faceswap-ae`` surrogate (frozen, eval mode)."""
    from shield.adversarial.models.autoencoder import load_faceswap_ae

    return load_faceswap_ae(device).eval()


class _Imported(NamedTuple):
    """Official models found in the model zoo, with the configuration each was imported with."""

    paths: dict[str, Path | str]
    arcface_depth: int = ARCFACE_DEPTH
    fomm_config: FommConfig = VOX_256


def _imported_official() -> _Imported:
    """The imported official models usable now (checksums checked).

    The FOMM stands alone; SimSwap and ArcFace are taken only as a pair.

    Raises:
        ModelError: an import record is unreadable, its file is gone or differs from
            its recorded checksum, or its recorded configuration is invalid.
    """
    from shield.adversarial import zoo

    paths: dict[str, Path | str] = {}
    fomm_config = VOX_256
    fomm = zoo.imported(FOMM_VOX)
    if fomm is not None:
        fomm_config = _recorded_fomm_config(fomm.config)
        paths[FOMM_VOX] = zoo.resolve(FOMM_VOX)
    records = {name: zoo.imported(name) for name in (SIMSWAP, ARCFACE)}
    arcface = records[ARCFACE]
    if arcface is None or records[SIMSWAP] is None:
        if arcface is not None or records[SIMSWAP] is not None:
            log.warning("SimSwap needs both %s and %s imported; leaving both out", SIMSWAP, ARCFACE)
        return _Imported(paths, ARCFACE_DEPTH, fomm_config)
    paths.update({name: zoo.resolve(name) for name in records})
    return _Imported(paths, int(arcface.config.get("depth", ARCFACE_DEPTH)), fomm_config)


def _recorded_fomm_config(config: Mapping[str, object]) -> FommConfig:
    """The FOMM configuration of an import record (the official vox-256 when none is recorded)."""
    if not config:
        return VOX_256
    try:
        return FommConfig.from_dict(dict(config))
    except ConfigError as exc:
        raise ModelError(f"the import record of {FOMM_VOX} holds an invalid configuration: {exc}", fix=f"import it again with `shield models import {FOMM_VOX} FILE --replace`") from exc


def load_threat_models(
    device: torch.device | str = "cpu",
    *,
    official: Mapping[str, Path | str] | None = None,
    fomm_config: FommConfig = VOX_256,
) -> ThreatModels:
    """The shipped surrogates on ``device``, plus the official models in ``official``.

    Args:
        device: torch device.
        official: model name -> weights file, as :func:`load_official_models` takes;
            None: the models imported with `shield models import`, that is vox-256 when
            imported, and SimSwap and ArcFace when both are.
        fomm_config: architecture of ``official``'s FOMM file (ignored when ``official``
            is None: the import record says).

    Raises:
        ModelError: a weights file is missing or corrupt, or ``official`` is inconsistent.
    """
    from shield.adversarial.models.dlib_resnet import load_dlib_descriptor
    from shield.adversarial.models.fomm import load_fomm_mini

    found = _imported_official() if official is None else _Imported(dict(official), ARCFACE_DEPTH, fomm_config)
    extra = load_official_models(found.paths, device, arcface_depth=found.arcface_depth, fomm_config=found.fomm_config)
    return ThreatModels(
        fomm=load_fomm_mini(ATTACKED_FOMM, device),
        faceswap=load_faceswap(device),
        identity=load_dlib_descriptor(device).eval(),
        simswap=extra.simswap,
        arcface=extra.arcface,
        fomm_official=extra.fomm,
    )
