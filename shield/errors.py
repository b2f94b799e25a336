"""The one error hierarchy of shield.

Every failure a user or an attacker can cause is a subclass of :class:`ShieldError`.
Each carries a one-line ``fix`` (what to do about it) and an ``exit_code`` that the CLI
uses, so scripts can tell failures apart. Stage packages define their narrower errors
as subclasses of the stage base class here.

Exit codes 0-3 belong to ``shield verify`` verdicts (see DESIGN.md); errors use 10+.
"""

from __future__ import annotations

__all__ = [
    "ShieldError",
    "ConfigError",
    "InputError",
    "ImageError",
    "UnsupportedImageError",
    "CorruptImageError",
    "ImageTooLargeError",
    "OutputError",
    "KeystoreError",
    "ProvenanceError",
    "WatermarkError",
    "LedgerError",
    "ModelError",
    "FaceError",
    "NoFaceError",
    "ProtectionError",
]


class ShieldError(Exception):
    """Base of every error shield raises on purpose."""

    exit_code: int = 10
    default_fix: str = ""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix if fix is not None else self.default_fix

    def __str__(self) -> str:
        return self.message


class ConfigError(ShieldError):
    """A setting in the environment or the config file is missing or invalid."""

    exit_code = 11
    default_fix = "check SHIELD_* environment variables and shield.toml"


class InputError(ShieldError):
    """A command-line argument or a value handed to the API is invalid."""

    exit_code = 12


class ImageError(InputError):
    """An image file cannot be used."""

    exit_code = 13


class UnsupportedImageError(ImageError):
    """The file is not an image, or not in a supported format (PNG, JPEG, WebP, TIFF)."""

    default_fix = "convert the file to PNG, JPEG, WebP or TIFF"


class CorruptImageError(ImageError):
    """The file claims to be an image but is empty, truncated or corrupt."""

    default_fix = "re-export the image from its source"


class ImageTooLargeError(ImageError):
    """The image exceeds the pixel-count limit (decompression-bomb guard)."""

    default_fix = "downscale the image, or raise SHIELD_MAX_PIXELS if you trust it"


class OutputError(ShieldError):
    """An output cannot be written where or how it was asked for."""

    exit_code = 14


class KeystoreError(ShieldError):
    """Keys or certificates are missing, locked, invalid or expired."""

    exit_code = 15
    default_fix = "run `shield keys show` to inspect, or `shield keys init` to create keys"


class ProvenanceError(ShieldError):
    """A C2PA manifest cannot be built, signed or read."""

    exit_code = 16


class WatermarkError(ShieldError):
    """The fragile watermark cannot be embedded or checked."""

    exit_code = 17


class LedgerError(ShieldError):
    """The Ethereum ledger cannot be reached or refused a request."""

    exit_code = 18
    default_fix = "run `shield chain status`; for a remote chain check SHIELD_RPC_URL"


class ModelError(ShieldError):
    """A model's weights are missing, corrupt or of the wrong layout."""

    exit_code = 19
    default_fix = "run `shield models verify`"


class FaceError(ShieldError):
    """Face detection or alignment failed."""

    exit_code = 20


class NoFaceError(FaceError):
    """No human face was found where one is needed."""

    default_fix = "use --whole-frame to protect the whole image without face alignment"


class ProtectionError(ShieldError):
    """The adversarial protection could not be computed within its budget."""

    exit_code = 21
