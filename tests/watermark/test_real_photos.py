"""The attacks of the issue on real photographs from the shared data (skips when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw, ImageFilter

from shield.watermark import Payload, WatermarkReport, WatermarkStatus, embed, read_payload, verify

PHOTOS = ("deepface_img12.jpg", "deepface_img51.jpg", "deepface_img25.jpg")
Photos = list[tuple[np.ndarray, np.ndarray, Payload]]  # original, marked, payload


def _load(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
        return np.asarray(rgb.resize(size) if size else rgb)


@pytest.fixture(scope="module")
def photos(shared_data: Path, key: Ed25519PrivateKey) -> Photos:
    out = []
    for i, name in enumerate(PHOTOS):
        rgb = _load(shared_data / "photos" / name)
        p = Payload(1, bytes([0x50 + i]) * 16, 1, b"\x11" * 20)
        out.append((rgb, embed(rgb, p, key), p))
    return out


def _changed(a: np.ndarray, b: np.ndarray) -> set[tuple[int, int]]:
    h, w = a.shape[:2]
    ys, xs = np.nonzero((a != b).any(axis=2))
    return {(min(y // 32, max(1, h // 32) - 1), min(x // 32, max(1, w // 32) - 1)) for y, x in zip(ys, xs)}


def _flagged(report: WatermarkReport) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(report.tampered_blocks))}


def test_intact_and_invisible(photos: Photos, key: Ed25519PrivateKey) -> None:
    for rgb, marked, p in photos:
        mse = np.mean((marked.astype(float) - rgb) ** 2)
        assert 10 * np.log10(255**2 / mse) >= 50
        report = verify(marked, key.public_key())
        assert report.status is WatermarkStatus.INTACT and report.payload == p


def test_local_edits_localized(photos: Photos, key: Ed25519PrivateKey) -> None:
    (_, a, _), (_, b, _), _ = photos
    edits = []
    one = a.copy()
    one[57, 203, 1] ^= 1
    edits.append(one)
    splice = a.copy()
    splice[40:140, 50:150] = b[10:110, 20:120]
    edits.append(splice)
    moved = a.copy()
    moved[100:164, 100:164] = a[20:84, 230:294]
    edits.append(moved)
    text = Image.fromarray(a.copy())
    ImageDraw.Draw(text).text((30, 200), "edited caption", fill=(250, 250, 0))
    edits.append(np.asarray(text))
    blur = a.copy()
    blur[120:184, 60:124] = np.asarray(Image.fromarray(np.ascontiguousarray(a[120:184, 60:124])).filter(ImageFilter.GaussianBlur(4)))
    edits.append(blur)
    for edited in edits:
        report = verify(edited, key.public_key())
        assert report.status is WatermarkStatus.TAMPERED
        assert _flagged(report) == _changed(a, edited)


def test_collage_same_publisher(shared_data: Path, photos: Photos, key: Ed25519PrivateKey) -> None:
    _, a, pa = photos[0]
    h, w = a.shape[:2]
    b = embed(_load(shared_data / "photos" / PHOTOS[1], (w, h)), Payload(1, b"\x77" * 16, 1, b"\x11" * 20), key)
    collage = a.copy()
    collage[: h // 2, : w // 2] = b[: h // 2, : w // 2]
    report = verify(collage, key.public_key(), asset_id=pa.asset_id)
    assert _flagged(report) == _changed(a, collage)


def test_crop_and_payload(photos: Photos, key: Ed25519PrivateKey) -> None:
    for _, marked, p in photos:
        h, w = marked.shape[:2]
        y0, x0 = h // 5 + 3, w // 3 + 7
        crop = marked[y0 : y0 + h // 2, x0 : x0 + w // 2]
        report = verify(crop, key.public_key())
        assert report.status is WatermarkStatus.CROPPED and report.crop_offset == (x0, y0)
        assert read_payload(crop).payload == p
