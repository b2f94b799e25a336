"""Reading and writing FOMM weights.

Two formats:
- the official checkpoint (specs/deepfake-models.md section 1, "Checkpoint file layout"):
  a dict with ``generator``, ``kp_detector``, ``discriminator``, ``optimizer_*`` and
  ``epoch``; loaded with strict key matching, tolerating only the presence or absence
  of BatchNorm ``num_batches_tracked`` entries;
- the project's shipped surrogate file: ``{"format", "config", "generator",
  "kp_detector"}`` with parameters in fp16 (buffers fp32), loaded back as fp32.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shield.adversarial.models._strict import StrictErrors, load_strict, read_torch_file
from shield.adversarial.models.fomm.config import VOX_256, FommConfig
from shield.adversarial.models.fomm.errors import (
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointShapeError,
    WeightsNotFoundError,
)
from shield.adversarial.models.fomm.model import FOMM
from shield.errors import ConfigError

__all__ = [
    "OFFICIAL_SECTIONS",
    "MINI_FORMAT",
    "FOMM_MINI_NAMES",
    "official_checkpoint",
    "save_official_checkpoint",
    "load_state_strict",
    "load_official_checkpoint",
    "save_fomm_mini",
    "load_fomm_file",
    "load_fomm_mini",
    "weights_path",
    "freeze",
]

log = logging.getLogger(__name__)

OFFICIAL_SECTIONS = (
    "generator",
    "kp_detector",
    "discriminator",
    "optimizer_generator",
    "optimizer_discriminator",
    "optimizer_kp_detector",
    "epoch",
)
MINI_FORMAT = "shield-fomm-mini/1"
FOMM_MINI_NAMES = ("fomm-mini-a", "fomm-mini-b")
_FOMM_ERRORS = StrictErrors(names=CheckpointKeyError, shape=CheckpointShapeError, entry=CheckpointFormatError)


def official_checkpoint(model: FOMM, epoch: int = 0) -> dict[str, Any]:
    """The official layout for ``model`` (no discriminator or optimizer states)."""
    return {
        "generator": model.generator.state_dict(),
        "kp_detector": model.kp_detector.state_dict(),
        "discriminator": {},
        "optimizer_generator": {},
        "optimizer_discriminator": {},
        "optimizer_kp_detector": {},
        "epoch": epoch,
    }


def save_official_checkpoint(model: FOMM, path: Path, epoch: int = 0) -> None:
    """Write ``model`` as an official-layout checkpoint file."""
    torch.save(official_checkpoint(model, epoch), path)


def load_state_strict(module: nn.Module, state: Mapping[str, Any], section: str) -> None:
    """Load ``state`` into ``module`` with exact names and shapes.

    The only tolerated difference: BatchNorm ``num_batches_tracked`` entries may be
    absent from ``state`` (absent ones keep the module's value). This is
    :func:`~shield.adversarial.models._strict.load_strict` with the FOMM error types.

    Raises:
        CheckpointKeyError: missing or unexpected names.
        CheckpointShapeError: a tensor's shape differs.
        CheckpointFormatError: an entry is not a tensor.
    """
    load_strict(module, state, section, errors=_FOMM_ERRORS)


def _read(path_or_doc: Path | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(path_or_doc, Mapping):
        return path_or_doc
    doc = read_torch_file(path_or_doc, CheckpointFormatError)
    if not isinstance(doc, Mapping):
        raise CheckpointFormatError(f"{path_or_doc}: expected a dict of state dicts, got {type(doc).__name__}")
    return doc


def freeze(model: FOMM, device: torch.device | str = "cpu") -> FOMM:
    """Eval mode (BatchNorm running statistics), no parameter gradients, on ``device``."""
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_official_checkpoint(
    path_or_doc: Path | str | Mapping[str, Any], config: FommConfig = VOX_256, device: torch.device | str = "cpu"
) -> FOMM:
    """Build a frozen, eval-mode FOMM from an official checkpoint.

    Args:
        path_or_doc: the ``.pth.tar`` file, or its already-loaded dict.
        config: architecture the file was trained with (vox-256 by default).
        device: where to put the model.

    Raises:
        CheckpointFormatError, CheckpointKeyError, CheckpointShapeError (ModelError).
    """
    doc = _read(path_or_doc)
    for section in ("generator", "kp_detector"):
        if not isinstance(doc.get(section), Mapping):
            raise CheckpointFormatError(f"checkpoint has no '{section}' state dict")
    model = FOMM(config)
    load_state_strict(model.generator, doc["generator"], "generator")
    load_state_strict(model.kp_detector, doc["kp_detector"], "kp_detector")
    return freeze(model, device)


def _half_params(module: nn.Module) -> dict[str, torch.Tensor]:
    params = {name for name, _ in module.named_parameters()}
    return {
        k: (v.detach().to(torch.float16) if k in params else v.detach().clone()).cpu()
        for k, v in module.state_dict().items()
    }


def save_fomm_mini(model: FOMM, path: Path) -> None:
    """Write the shipped surrogate format (fp16 parameters, fp32 buffers)."""
    doc = {
        "format": MINI_FORMAT,
        "config": model.config.to_dict(),
        "generator": _half_params(model.generator),
        "kp_detector": _half_params(model.kp_detector),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(doc, tmp)
    tmp.replace(path)


def load_fomm_file(path: Path | str, device: torch.device | str = "cpu") -> FOMM:
    """Load a file written by :func:`save_fomm_mini` (fp16 -> fp32), frozen, eval mode."""
    doc = _read(path)
    if doc.get("format") != MINI_FORMAT or not isinstance(doc.get("config"), Mapping):
        raise CheckpointFormatError(f"{path}: not a shield FOMM weights file ({MINI_FORMAT})")
    try:
        config = FommConfig.from_dict(dict(doc["config"]))
    except ConfigError as exc:
        raise CheckpointFormatError(f"{path}: {exc.message}") from exc
    model = FOMM(config)
    for section in ("generator", "kp_detector"):
        stored = doc.get(section)
        if not isinstance(stored, Mapping) or not all(isinstance(v, torch.Tensor) for v in stored.values()):
            raise CheckpointFormatError(f"{path}: '{section}' is not a state dict of tensors")
        state = {k: v.float() if v.is_floating_point() else v for k, v in stored.items()}
        load_state_strict(getattr(model, section), state, section)
    return freeze(model, device)


def weights_path(name: str) -> Path:
    """Path of a shipped weights file inside the package."""
    if name not in FOMM_MINI_NAMES:
        raise WeightsNotFoundError(f"unknown FOMM surrogate {name!r}; known: {', '.join(FOMM_MINI_NAMES)}")
    root = resources.files("shield.adversarial") / "weights" / f"{name}.pt"
    return Path(str(root))


def load_fomm_mini(name: str = "fomm-mini-a", device: torch.device | str = "cpu") -> FOMM:
    """Load a shipped surrogate (``fomm-mini-a`` is attacked, ``fomm-mini-b`` is held out).

    Returns a frozen, eval-mode :class:`FOMM` with ``resolution`` 64.

    Raises:
        WeightsNotFoundError: unknown name or missing file.
        CheckpointFormatError, CheckpointKeyError, CheckpointShapeError.
    """
    path = weights_path(name)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights of {name} are missing ({path})")
    log.debug("loading %s from %s", name, path)
    return load_fomm_file(path, device)
