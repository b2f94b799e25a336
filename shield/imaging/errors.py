"""Narrow image errors, under the stage classes of :mod:`shield.errors`."""

from __future__ import annotations

from shield.errors import CorruptImageError, ImageError, UnsupportedImageError

__all__ = ["ImageReadError", "EmptyImageError", "TruncatedImageError", "NotAnImageError", "ExtensionMismatchError"]


class ImageReadError(ImageError):
    """The image file is missing, is a folder, or cannot be read."""

    default_fix = "check the path and that you may read the file"


class EmptyImageError(CorruptImageError):
    """The file has no bytes, or the image declares a width or height of zero."""


class TruncatedImageError(CorruptImageError):
    """The image data ends before the image does (an interrupted copy or download)."""

    default_fix = "copy or download the file again"


class NotAnImageError(UnsupportedImageError):
    """The content is not a PNG, JPEG, WebP or TIFF image."""


class ExtensionMismatchError(UnsupportedImageError):
    """The file name's extension promises a different format than the content holds."""
