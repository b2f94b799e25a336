"""Errors of the robust soft-binding mark (subclasses of :class:`WatermarkError`)."""

from __future__ import annotations

from shield.errors import WatermarkError

__all__ = ["SoftBindingError", "SoftBindingInputError"]


class SoftBindingError(WatermarkError):
    """The robust soft-binding mark cannot be embedded or read."""


class SoftBindingInputError(SoftBindingError):
    """An array, asset id or key handed to the soft-binding functions is malformed."""

    default_fix = "pass an HxWx3 uint8 RGB array (at least 64x64), a 16-byte asset id and a non-empty key"
