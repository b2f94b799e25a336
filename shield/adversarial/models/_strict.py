"""Strict state-dict loading shared by the SimSwap and ArcFace loaders.

Official checkpoints must match our modules name for name and shape for shape;
the only tolerated difference is BatchNorm's ``num_batches_tracked`` counter,
which files saved by older torch versions lack.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shield.errors import ModelError

__all__ = ["LayoutError", "CheckpointReadError", "WeightsMissingError", "WeightsChecksumError", "load_strict", "read_state_dict"]

_TOLERATED = "num_batches_tracked"


class LayoutError(ModelError):
    """A state dict's parameter names or shapes differ from the architecture's."""

    default_fix = "pass the official checkpoint for this model (see `shield models list`)"


class CheckpointReadError(ModelError):
    """A checkpoint file is missing, unreadable, or not a plain state dict."""

    default_fix = "pass the official checkpoint file (a torch state_dict)"


class WeightsMissingError(ModelError):
    """Weights shipped with the package are not installed."""

    default_fix = "reinstall shield, or run `shield models verify`"


class WeightsChecksumError(ModelError):
    """A weights file does not match the SHA-256 recorded beside it."""

    default_fix = "reinstall shield; the weights file was changed or truncated"


def load_strict(module: nn.Module, state: Mapping[str, Any], what: str) -> None:
    """Load ``state`` into ``module`` with exact names and shapes.

    Raises:
        LayoutError: a missing or unexpected name, a non-tensor entry, or a shape mismatch.
    """
    own = module.state_dict()
    own_keys = {k for k in own if not k.endswith(_TOLERATED)}
    given = {k for k in state if not k.endswith(_TOLERATED) or k in own}
    missing = sorted(own_keys - given)
    unexpected = sorted(given - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (first: {missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (first: {unexpected[0]})")
        raise LayoutError(f"{what}: state dict does not match the architecture: " + "; ".join(parts))
    for key in given:
        value = state[key]
        if not isinstance(value, torch.Tensor):
            raise LayoutError(f"{what}: entry {key} is not a tensor")
        if tuple(value.shape) != tuple(own[key].shape):
            raise LayoutError(f"{what}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    module.load_state_dict({k: state[k] for k in given}, strict=False)


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a plain state dict saved with ``torch.save`` (tensors only, no code executed).

    Raises:
        CheckpointReadError: no such file, unreadable, or not a mapping of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"{path}: no such checkpoint file")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many unrelated types for a bad or unsafe file
        raise CheckpointReadError(
            f"{path}: not a plain torch state dict ({type(exc).__name__})",
            fix="a pickled whole module must be converted first (shield.adversarial.models.convert)",
        ) from exc
    if not isinstance(doc, Mapping) or not all(isinstance(v, torch.Tensor) for v in doc.values()):
        raise CheckpointReadError(f"{path}: expected a mapping of parameter names to tensors")
    return dict(doc)
