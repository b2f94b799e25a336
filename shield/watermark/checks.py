"""Argument checks at the boundary of the watermark API (errors name the parameter)."""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shield.watermark.errors import WatermarkInputError, WatermarkKeyError
from shield.watermark.layout import BLOCK, MAX_BLOCKS_PER_SIDE

__all__ = ["check_rgb", "check_hint", "check_private_key", "public_key_of", "MAX_SIDE"]

#: Largest side a record can describe: u24 in the record, and u16 block indices.
MAX_SIDE = min(2**24 - 1, MAX_BLOCKS_PER_SIDE * BLOCK)


def check_rgb(rgb: object, name: str = "rgb") -> np.ndarray:
    """Return ``rgb`` as a C-contiguous HxWx3 uint8 array, or raise naming ``name``."""
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8:
        raise TypeError(f"{name}: expected dtype uint8, got {rgb.dtype}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError(f"{name}: expected shape HxWx3 (RGB), got {rgb.shape}")
    h, w = rgb.shape[:2]
    if h == 0 or w == 0:
        raise WatermarkInputError(f"{name}: image is empty ({w}x{h} pixels)")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise WatermarkInputError(f"{name}: {w}x{h} pixels exceeds the {MAX_SIDE}-pixel side limit")
    return np.ascontiguousarray(rgb)


def check_hint(hint: object, shape: tuple[int, ...]) -> np.ndarray | None:
    """Return the sign of the hint (-1, 0, +1) as an int8 HxWx3 array, or None.

    NaN counts as 0 (no preference).
    """
    if hint is None:
        return None
    if not isinstance(hint, np.ndarray):
        raise TypeError(f"hint: expected a numpy array or None, got {type(hint).__name__}")
    if hint.shape != shape:
        raise TypeError(f"hint: expected shape {shape} like rgb, got {hint.shape}")
    if not (np.issubdtype(hint.dtype, np.integer) or np.issubdtype(hint.dtype, np.floating)):
        raise TypeError(f"hint: expected an integer or float array, got {hint.dtype}")
    if np.issubdtype(hint.dtype, np.floating):
        hint = np.nan_to_num(hint, nan=0.0)
    return np.sign(hint).astype(np.int8)


def check_private_key(key: object) -> Ed25519PrivateKey:
    if not isinstance(key, Ed25519PrivateKey):
        raise TypeError(f"key: expected an Ed25519PrivateKey, got {type(key).__name__}")
    return key


def public_key_of(public_key: object) -> Ed25519PublicKey:
    """Accept an Ed25519PublicKey or its raw 32 bytes."""
    if isinstance(public_key, Ed25519PublicKey):
        return public_key
    if isinstance(public_key, (bytes, bytearray, memoryview)):
        raw = bytes(public_key)
        if len(raw) != 32:
            raise WatermarkKeyError(f"public_key: expected 32 raw bytes, got {len(raw)}")
        try:
            return Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise WatermarkKeyError("public_key: not a valid Ed25519 public key") from exc
    raise TypeError(f"public_key: expected an Ed25519PublicKey or 32 bytes, got {type(public_key).__name__}")
