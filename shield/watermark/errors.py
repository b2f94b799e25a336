"""Errors of the fragile-watermark stage (all subclasses of :class:`WatermarkError`)."""

from __future__ import annotations

from shield.errors import WatermarkError

__all__ = [
    "WatermarkInputError",
    "LossyFormatError",
    "ImageTooSmallError",
    "WatermarkKeyError",
]


class WatermarkInputError(WatermarkError):
    """An array, payload or key handed to the watermark functions is malformed."""

    default_fix = "pass an HxWx3 uint8 RGB array and a well-formed payload"


class LossyFormatError(WatermarkError):
    """The requested output format would destroy the fragile watermark."""

    default_fix = "save the protected image as PNG, lossless WebP or TIFF"


class ImageTooSmallError(WatermarkError):
    """The image has too few pixels to carry even one watermark block."""

    default_fix = "protect an image of at least 32x32 pixels"


class WatermarkKeyError(WatermarkError):
    """The public key given for verification is not a valid Ed25519 key."""

    default_fix = "pass the publisher's 32-byte Ed25519 public key from the manifest or the ledger"
