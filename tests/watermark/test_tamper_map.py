"""The tamper map: tampered cells tinted and outlined, intact pixels unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shield.watermark import WatermarkInputError, render_tamper_map, verify


def test_map_marks_only_tampered_cells(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    edited = marked.copy()
    edited[100:120, 100:140] = 0
    report = verify(edited, key.public_key())
    picture = render_tamper_map(edited, report)
    assert picture.shape == edited.shape and picture.dtype == np.uint8
    mask = np.zeros(edited.shape[:2], dtype=bool)
    for r in report.tampered_regions:
        mask[r.y : r.y + r.height, r.x : r.x + r.width] = True
    assert np.array_equal(picture[~mask], edited[~mask])
    def redness(a: np.ndarray) -> np.ndarray:
        a = a.astype(int)
        return a[:, 0] - (a[:, 1] + a[:, 2]) // 2

    assert (picture[mask] != edited[mask]).any(axis=1).mean() > 0.9
    assert redness(picture[mask]).mean() > redness(edited[mask]).mean() + 30


def test_untouched_map_is_the_image(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    assert np.array_equal(render_tamper_map(marked, verify(marked, key.public_key())), marked)


def test_size_mismatch(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(marked, key.public_key())
    with pytest.raises(WatermarkInputError, match="rgb"):
        render_tamper_map(marked[:100], report)
