"""Errors of the perceptual fingerprint (subclasses of :class:`InputError`)."""

from __future__ import annotations

from shield.errors import InputError

__all__ = ["FingerprintInputError"]


class FingerprintInputError(InputError):
    """An array or a fingerprint value handed to the fingerprint functions is malformed."""

    default_fix = "pass an HxWx3 uint8 RGB array, or a 32-byte (64 hex digit) PDQ hash"
