"""Strict state-dict loading and safe reading of torch files, shared by every loader.

Official checkpoints must match our modules name for name and shape for shape;
the only tolerated difference is BatchNorm's ``num_batches_tracked`` counter,
which files saved by older torch versions lack. A counter the module does not
have is an unexpected name like any other.

Model families that already expose narrower error types (the FOMM loaders'
``CheckpointKeyError`` and friends) pass them in through :class:`StrictErrors`;
everything else gets :class:`LayoutError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shield.errors import ModelError

__all__ = [
    "LayoutError",
    "CheckpointReadError",
    "WeightsMissingError",
    "WeightsChecksumError",
    "StrictErrors",
    "load_strict",
    "read_torch_file",
    "read_state_dict",
]

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


@dataclass(frozen=True)
class StrictErrors:
    """Which error type :func:`load_strict` raises for each kind of mismatch.

    Attributes:
        names: missing or unexpected parameter names.
        shape: a tensor whose shape differs from the module's.
        entry: an entry that is not a tensor at all.
    """

    names: type[ModelError] = LayoutError
    shape: type[ModelError] = LayoutError
    entry: type[ModelError] = LayoutError


def load_strict(module: nn.Module, state: Mapping[str, Any], what: str, *, errors: StrictErrors = StrictErrors()) -> None:
    """Load ``state`` into ``module`` with exact names and shapes.

    ``num_batches_tracked`` entries of the module may be absent from ``state`` (the
    module keeps its own value); every other name must be present on both sides.
    Nothing is copied into ``module`` unless the whole state dict matches.

    Args:
        module: the architecture to fill.
        state: parameter name -> tensor.
        what: name of the network or checkpoint section, used in messages.
        errors: error types to raise (default :class:`LayoutError` for everything).

    Raises:
        errors.names: missing or unexpected names.
        errors.entry: a value that is not a tensor.
        errors.shape: a tensor's shape differs from the module's.
    """
    own = module.state_dict()
    required = {k for k in own if not k.endswith(_TOLERATED)}
    missing = sorted(required - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (first: {missing[0]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (first: {unexpected[0]})")
        raise errors.names(f"{what}: state dict does not match the architecture: " + "; ".join(parts))
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise errors.entry(f"{what}: entry {key} is not a tensor")
        if tuple(value.shape) != tuple(own[key].shape):
            raise errors.shape(f"{what}: {key} has shape {tuple(value.shape)}, expected {tuple(own[key].shape)}")
    module.load_state_dict(dict(state), strict=False)


def read_torch_file(path: Path | str, error: type[ModelError] = CheckpointReadError, *, fix: str | None = None) -> Any:
    """Read a ``torch.save`` file with ``weights_only=True`` (no code from the file runs).

    Args:
        path: the file.
        error: error type to raise.
        fix: the error's fix when the file exists but cannot be read (default: the type's).

    Raises:
        error: no such file, or not a readable torch file of plain tensors and containers.
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many unrelated types for a bad or unsafe file
        raise error(f"{path}: not a readable torch file of plain tensors ({type(exc).__name__})", fix=fix) from exc


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """Read a plain state dict saved with ``torch.save`` (tensors only, no code executed).

    Raises:
        CheckpointReadError: no such file, unreadable, or not a mapping of tensors.
    """
    fix = "a pickled whole module must be converted first (shield.adversarial.models.convert)"
    doc = read_torch_file(path, fix=fix)
    if not isinstance(doc, Mapping) or not all(isinstance(v, torch.Tensor) for v in doc.values()):
        raise CheckpointReadError(f"{path}: expected a mapping of parameter names to tensors")
    return dict(doc)
