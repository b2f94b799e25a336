"""Test images and payloads for the watermark tests (imported by the test modules)."""

from __future__ import annotations

import numpy as np

from shield.watermark import Payload


def synthetic(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like test image: smooth colour gradients, a few shapes and sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(xx / (17 + seed % 5)) * np.cos(yy / 23),
            100 + 0.4 * xx - 0.2 * yy,
            160 + 60 * np.cos((xx + yy) / 31),
        ],
        axis=-1,
    )
    for _ in range(6):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(8, 40)
        disk = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        base[disk] = rng.integers(0, 256, size=3)
    base += rng.normal(0, 4, size=base.shape)
    return np.clip(base, 0, 255).astype(np.uint8)


def payload_for(n: int) -> Payload:
    return Payload(1, bytes([n]) * 16, chain_id=31337, registry=bytes(range(20)))
