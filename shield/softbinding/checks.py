"""Argument checks at the boundary of the soft-binding functions."""

from __future__ import annotations

import numpy as np

from shield.softbinding.codec import ID_BYTES
from shield.softbinding.errors import SoftBindingInputError

__all__ = ["MIN_SIDE", "MAX_PIXELS", "check_rgb", "check_asset_id", "check_key"]

#: Smallest shorter side that holds one full tile at the canonical scale's lowest use.
MIN_SIDE = 64
#: Largest image accepted (the imaging layer's decompression-bomb guard is the real limit;
#: this one bounds the memory of the float copies made here: 4 x 3 x 4 bytes per pixel).
MAX_PIXELS = 200_000_000


def check_rgb(rgb: object) -> np.ndarray:
    """The array as HxWx3 uint8, or TypeError / SoftBindingInputError naming ``rgb``."""
    if not isinstance(rgb, np.ndarray):
        raise TypeError(f"rgb: expected a numpy array, got {type(rgb).__name__}")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise SoftBindingInputError(f"rgb: expected HxWx3 uint8, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise SoftBindingInputError(f"rgb: a {w}x{h} image is too small (the shorter side must be >= {MIN_SIDE})")
    if h * w > MAX_PIXELS:
        raise SoftBindingInputError(f"rgb: {w}x{h} exceeds {MAX_PIXELS} pixels")
    return rgb


def check_asset_id(asset_id: object) -> bytes:
    """The asset id as bytes of length 16."""
    if not isinstance(asset_id, bytes):
        raise TypeError(f"asset_id: expected bytes, got {type(asset_id).__name__}")
    if len(asset_id) != ID_BYTES:
        raise SoftBindingInputError(f"asset_id: must be {ID_BYTES} bytes, got {len(asset_id)}")
    return asset_id


def check_key(key: object) -> bytes:
    """The key as non-empty bytes."""
    if not isinstance(key, bytes):
        raise TypeError(f"key: expected bytes, got {type(key).__name__}")
    if not key:
        raise SoftBindingInputError("key: must not be empty")
    return key
