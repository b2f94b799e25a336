"""The tamper map: tampered cells tinted and outlined, intact pixels unchanged, a legend below."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shield.watermark import WatermarkInputError, render_tamper_map, verify
from shield.watermark.tamper_map import LEGEND, tamper_map_caption


def _has_swatch(a: np.ndarray, colour: tuple[int, int, int]) -> bool:
    """At least a 7x7 patch worth of pixels of exactly ``colour`` (anti-aliased text gives a few, not 49)."""
    return int(np.all(a.reshape(-1, 3) == np.array(colour, dtype=np.uint8), axis=1).sum()) >= 49


def test_map_marks_only_tampered_cells(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    edited = marked.copy()
    edited[100:120, 100:140] = 0
    report = verify(edited, key.public_key())
    h, w = edited.shape[:2]
    full = render_tamper_map(edited, report)
    assert full.dtype == np.uint8 and full.shape[1:] == (w, 3) and full.shape[0] > h
    picture = full[:h]
    assert np.array_equal(picture, render_tamper_map(edited, report, legend=False))
    mask = np.zeros(edited.shape[:2], dtype=bool)
    for r in report.tampered_regions:
        mask[r.y : r.y + r.height, r.x : r.x + r.width] = True
    assert np.array_equal(picture[~mask], edited[~mask])
    def redness(a: np.ndarray) -> np.ndarray:
        a = a.astype(int)
        return a[:, 0] - (a[:, 1] + a[:, 2]) // 2

    assert (picture[mask] != edited[mask]).any(axis=1).mean() > 0.9
    assert redness(picture[mask]).mean() > redness(edited[mask]).mean() + 30
    assert tamper_map_caption(report).startswith(f"{len(report.tampered_regions)} region")


def test_untouched_map_is_the_image_and_says_intact(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(marked, key.public_key())
    h = marked.shape[0]
    full = render_tamper_map(marked, report)
    assert np.array_equal(full[:h], marked)
    assert np.array_equal(render_tamper_map(marked, report, legend=False), marked)
    assert tamper_map_caption(report).startswith("Intact")
    strip = full[h:]
    assert strip.shape[0] >= 30  # caption and key: told apart from the photo itself
    assert (strip.max(axis=2) > 200).any(), "the strip holds light text"


def test_legend_shows_every_swatch(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    strip = render_tamper_map(marked, verify(marked, key.public_key()))[marked.shape[0] :]
    for colour, _ in LEGEND:
        assert _has_swatch(strip, colour), colour


def test_crop_border_is_explained(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    cropped = np.ascontiguousarray(marked[10:, 7:])
    report = verify(cropped, key.public_key())
    assert report.unverified_blocks.any()
    assert "crop" in tamper_map_caption(report).lower()
    assert render_tamper_map(cropped, report).shape[1] == cropped.shape[1]


def test_narrow_image_keeps_its_width(key: Ed25519PrivateKey, marked: np.ndarray) -> None:
    narrow = np.ascontiguousarray(marked[:, :64])
    report = verify(narrow, key.public_key())
    out = render_tamper_map(narrow, report)
    assert out.shape[1] == 64 and out.shape[0] > narrow.shape[0]


def test_size_mismatch(marked: np.ndarray, key: Ed25519PrivateKey) -> None:
    report = verify(marked, key.public_key())
    with pytest.raises(WatermarkInputError, match="rgb"):
        render_tamper_map(marked[:100], report)
