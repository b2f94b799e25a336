"""Errors of the FOMM loaders; all are :class:`shield.errors.ModelError`."""

from __future__ import annotations

from shield.errors import ModelError

__all__ = ["CheckpointFormatError", "CheckpointKeyError", "CheckpointShapeError", "WeightsNotFoundError"]


class CheckpointFormatError(ModelError):
    """The file is not a readable checkpoint, or lacks the expected sections."""

    default_fix = "pass the official FOMM checkpoint (.pth.tar with 'generator' and 'kp_detector')"


class CheckpointKeyError(ModelError):
    """A state dict has missing or unexpected parameter names."""

    default_fix = "check that the checkpoint matches the configuration (vox-256 for the official files)"


class CheckpointShapeError(ModelError):
    """A parameter has a different shape from the module's."""

    default_fix = "check that the checkpoint matches the configuration (vox-256 for the official files)"


class WeightsNotFoundError(ModelError):
    """Shipped weights are missing from the installed package."""

    default_fix = "reinstall shield, or run `shield models verify`"
