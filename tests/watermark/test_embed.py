"""Embedding: invisibility, hint agreement, determinism, argument checks, tiny images."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shield.watermark import ImageTooSmallError, Payload, WatermarkInputError, WatermarkStatus, embed, verify

from wm_images import payload_for, synthetic

DATA = Path(__file__).parent / "data"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(255.0**2 / mse)


def test_invisible_and_bounded(original: np.ndarray, marked: np.ndarray) -> None:
    assert marked.shape == original.shape and marked.dtype == np.uint8
    assert np.abs(marked.astype(int) - original).max() == 1
    assert psnr(original, marked) >= 50.0


def test_input_left_untouched(key: Ed25519PrivateKey) -> None:
    img = synthetic(64, 64, seed=3)
    before = img.copy()
    embed(img, payload_for(3), key)
    assert np.array_equal(img, before)


def test_deterministic(original: np.ndarray, marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    assert np.array_equal(embed(original, payload_for(1), key), marked)


def test_known_answer(key: Ed25519PrivateKey) -> None:
    """Pins the format: the same key, image and payload must give the same bytes."""
    kat = json.loads((DATA / "kat.json").read_text())
    img = synthetic(kat["height"], kat["width"], seed=kat["seed"])
    out = embed(img, Payload(1, bytes.fromhex(kat["asset_id"]), kat["chain_id"], bytes(20)), key)
    assert hashlib.sha256(out.tobytes()).hexdigest() == kat["sha256"]


def test_hint_sign_is_followed(key: Ed25519PrivateKey) -> None:
    img = synthetic(128, 128, seed=4)
    hint = np.random.default_rng(5).choice([-1.0, 1.0], size=img.shape)
    plain = embed(img, payload_for(4), key).astype(int) - img
    hinted_img = embed(img, payload_for(4), key, hint=hint)
    hinted = hinted_img.astype(int) - img

    def agreement(delta: np.ndarray) -> float:
        changed = delta != 0
        return float(np.mean(np.sign(delta[changed]) == np.sign(hint[changed])))

    assert agreement(plain) < 0.56  # unguided: about half by chance
    assert agreement(hinted) > 0.66  # record bits follow the hint; signature bits cannot
    assert verify(hinted_img, key.public_key()).status is WatermarkStatus.INTACT


@pytest.mark.parametrize("shape", [(97, 161), (40, 33), (31, 45), (33, 31)])
def test_odd_sizes_cover_every_pixel(shape: tuple[int, int], key: Ed25519PrivateKey) -> None:
    out = embed(synthetic(*shape, seed=6), payload_for(6), key)
    assert verify(out, key.public_key()).status is WatermarkStatus.INTACT
    rng = np.random.default_rng(7)
    corners = [(0, 0), (shape[0] - 1, shape[1] - 1), (shape[0] - 1, 0), (0, shape[1] - 1)]
    picks = corners + [tuple(p) for p in rng.integers(0, shape, size=(6, 2))]
    for y, x in picks:
        edited = out.copy()
        edited[y, x, 2] ^= 1
        report = verify(edited, key.public_key())
        assert report.status is WatermarkStatus.TAMPERED, (y, x)
        assert any(r.x <= x < r.x + r.width and r.y <= y < r.y + r.height for r in report.tampered_regions)


def test_too_small(key: Ed25519PrivateKey) -> None:
    with pytest.raises(ImageTooSmallError, match="rgb"):
        embed(synthetic(12, 40, seed=8), payload_for(8), key)


def test_malformed_arguments(original: np.ndarray, key: Ed25519PrivateKey) -> None:
    p = payload_for(1)
    with pytest.raises(TypeError, match="rgb"):
        embed(original.astype(np.float32), p, key)
    with pytest.raises(TypeError, match="rgb"):
        embed(original[:, :, 0], p, key)
    with pytest.raises(TypeError, match="rgb"):
        embed(original.tolist(), p, key)
    with pytest.raises(WatermarkInputError, match="rgb"):
        embed(original[:0], p, key)
    with pytest.raises(TypeError, match="payload"):
        embed(original, b"\0" * 16, key)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        embed(original, p, key.public_key())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hint"):
        embed(original, p, key, hint=np.zeros((3, 3, 3)))
    with pytest.raises(TypeError, match="hint"):
        embed(original, p, key, hint=np.zeros(original.shape, dtype=bool))


def test_payload_validation() -> None:
    with pytest.raises(WatermarkInputError, match="asset_id"):
        Payload(1, b"\0" * 15)
    with pytest.raises(TypeError, match="asset_id"):
        Payload(1, "0" * 16)  # type: ignore[arg-type]
    with pytest.raises(WatermarkInputError, match="registry"):
        Payload(1, b"\0" * 16, 1, b"\0" * 19)
    with pytest.raises(WatermarkInputError, match="chain_id"):
        Payload(1, b"\0" * 16, -1)
    with pytest.raises(WatermarkInputError, match="version"):
        Payload(256, b"\0" * 16)
