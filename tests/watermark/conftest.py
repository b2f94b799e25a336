"""Shared fixtures of the watermark tests: a publisher key, payloads, synthetic images."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shield.watermark import embed
from wm_images import payload_for, synthetic


@pytest.fixture(scope="session")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="session")
def other_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))


@pytest.fixture(scope="session")
def original() -> np.ndarray:
    """224x300: not a multiple of 32 in width, so edge blocks are 44 wide."""
    return synthetic(224, 300, seed=1)


@pytest.fixture(scope="session")
def marked(original: np.ndarray, key: Ed25519PrivateKey) -> np.ndarray:
    out = embed(original, payload_for(1), key)
    out.setflags(write=False)
    return out


@pytest.fixture(scope="session")
def marked_b(key: Ed25519PrivateKey) -> np.ndarray:
    """A second protected image of the same publisher and size, another asset."""
    out = embed(synthetic(224, 300, seed=2), payload_for(2), key)
    out.setflags(write=False)
    return out
