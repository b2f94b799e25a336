"""Embedding the robust mark (the scheme is described in :mod:`shield.softbinding`).

Host-interference rejection (improved spread spectrum, Malvar & Florencio, "Improved
spread spectrum: a new modulation technique for robust watermarking", IEEE TSP 51(4),
2003): the photo itself correlates with each bit's chips, and on a busy photo that
correlation outweighs a mark at 45 dB. The embedder knows the photo, so it measures that
correlation with the extractor's own statistic and gives each bit the amplitude that
brings every bit to the same margin, within the same energy (PSNR) budget.
"""

from __future__ import annotations

import math

import numpy as np

from shield.softbinding.canonical import activity, box_mean, canonical_scale, canonical_size, luma, rescale
from shield.softbinding.checks import check_asset_id, check_key, check_rgb
from shield.softbinding.codec import encode_bits
from shield.softbinding.errors import SoftBindingInputError
from shield.softbinding.keyed import CODE_BITS, GROUPS, TILE, Tile, tile_for_key

__all__ = ["DEFAULT_PSNR", "embed"]

#: Target PSNR of the mark alone, dB (the issue asks for at least 45).
DEFAULT_PSNR = 45.3
# Masking range: flat areas get at most 2x less than the median, busy ones 1.5x more (a
# flatter mask survives JPEG better: quantisation noise grows with texture too).
_MASK_MIN, _MASK_MAX = 0.5, 1.5
# No bit drops below this share of the plain amplitude, however much the photo helps it.
_AMP_FLOOR = 0.35
_AMP_CEIL = 4.0
_SYNC_MARGIN = 1.5


def _tiled(tile: np.ndarray, hc: int, wc: int) -> np.ndarray:
    return np.tile(tile, (-(-hc // TILE), -(-wc // TILE)))[:hc, :wc]


def _despread(plane: np.ndarray, act: np.ndarray, signs: np.ndarray, tile: Tile) -> np.ndarray:
    """Per-bit statistic of the extractor at scale 1, phase 0 (whitening linearised on
    the host's activity), with each bit's sign applied: positive helps."""
    hc, wc = plane.shape
    w = (plane - box_mean(plane, 1)) / (act + 1.0)
    weights = w * _tiled(tile.chips * signs, hc, wc)
    idx = _tiled(tile.group, hc, wc)
    return np.bincount(idx.reshape(-1), weights=weights.reshape(-1).astype(np.float64), minlength=GROUPS)


def _amplitudes(host: np.ndarray, gain: np.ndarray, energy: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per-group amplitudes (1 = plain) that bring every group's margin host + a*gain to
    the same multiple of ``scale`` (its noise spread), within the plain energy."""
    gain = np.maximum(gain, 1e-9)
    budget = float(energy.sum())

    def amps(tau: float) -> np.ndarray:
        return np.clip((tau * scale - host) / gain, _AMP_FLOOR, _AMP_CEIL)

    lo, hi = float(((host + _AMP_FLOOR * gain) / scale).min()), float(((host + _AMP_CEIL * gain) / scale).max())
    for _ in range(40):  # energy grows with tau: bisect to the budget
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if float((amps(mid) ** 2 * energy).sum()) < budget else (lo, mid)
    return amps(lo)


def embed(rgb: np.ndarray, asset_id: bytes, key: bytes, *, psnr: float = DEFAULT_PSNR) -> np.ndarray:
    """Return a copy of ``rgb`` carrying ``asset_id`` under ``key``.

    Args:
        rgb: HxWx3 uint8 RGB, at least 64 pixels on the shorter side.
        asset_id: the 16-byte asset id.
        key: the spreading key (any non-empty bytes; the same key reads the mark).
        psnr: target PSNR of the mark in dB, 30..60 (the rounding to uint8 is included).

    Returns:
        HxWx3 uint8; the same luma change is added to R, G and B.

    Raises:
        TypeError: a malformed argument (the message names it).
        SoftBindingInputError: an image too small, an asset id not 16 bytes, a bad psnr.
    """
    img = check_rgb(rgb)
    asset_id, key = check_asset_id(asset_id), check_key(key)
    if not isinstance(psnr, (int, float)) or not 30.0 <= float(psnr) <= 60.0:
        raise SoftBindingInputError(f"psnr: must be 30..60 dB, got {psnr!r}")
    h, w = img.shape[:2]
    hc, wc = canonical_size(h, w)
    s0 = canonical_scale(h, w)
    tile = tile_for_key(key)
    bits = encode_bits(asset_id)
    signs = np.where(tile.bit_index >= 0, 2.0 * bits[np.maximum(tile.bit_index, 0)] - 1.0, 1.0)
    yc = rescale(luma(img), s0, s0, hc, wc)
    act = activity(yc)
    mask = np.clip(act / max(float(np.median(act)), 1e-3), _MASK_MIN, _MASK_MAX)
    chips = _tiled(tile.chips * signs, hc, wc) * mask
    # What the extractor will see of a plain (all amplitudes 1) mark and of the photo. A
    # 4x canonical round trip stands in for the full-size one (same blur, a tenth of the work).
    f = min(1.0 / s0, 4.0)
    up = rescale(chips, f, f, math.ceil(hc * f), math.ceil(wc * f))
    seen = rescale(up, 1 / f, 1 / f, hc, wc)
    gain = _despread(seen, act, signs, tile)
    host = _despread(yc, act, signs, tile)
    idx = _tiled(tile.group, hc, wc)
    energy = np.bincount(idx.reshape(-1), weights=mask.reshape(-1).astype(np.float64) ** 2, minlength=GROUPS)
    # gain is per unit of the plain mark; scale it to the plain mark's size at the budget.
    target = max((255.0 / 10 ** (psnr / 20)) ** 2 - 1.0 / 12, 1e-3)
    plain_rms = float(np.sqrt(np.mean(up.astype(np.float64) ** 2)))
    # A group's statistic sums its pixels: its noise grows as the root of their count. The
    # sync groups aim higher, since the phase search picks the best of TILE^2 shifts.
    scale = np.sqrt(np.bincount(idx.reshape(-1), minlength=GROUPS).astype(np.float64))
    scale[CODE_BITS:] *= _SYNC_MARGIN
    amp = _amplitudes(host, gain * np.sqrt(target) / max(plain_rms, 1e-9), energy, scale)
    delta = rescale(chips * amp[idx].astype(np.float32), 1 / s0, 1 / s0, h, w)
    flat = delta.reshape(-1)
    delta *= np.float32(np.sqrt(target / max(float(np.dot(flat, flat)) / flat.size, 1e-12)))
    # The same luma change on R, G and B; the photo is integer, so rounding the change
    # first equals rounding the sum.
    step = np.rint(delta).astype(np.int16)
    out = img.astype(np.int16)
    out += step[..., None]
    np.maximum(out, 0, out=out)
    np.minimum(out, 255, out=out)
    return out.astype(np.uint8)
