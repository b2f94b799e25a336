"""Public matrix helpers of shield.faces: square crops and the detector's downscale."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shield.faces import AlignTarget, Box, Face, crop_matrix
from shield.faces.align import FOMM_ENLARGE, FOMM_SHIFT_UP, square_matrix
from shield.faces.detect import detection_scale


def test_square_matrix_is_a_resize_of_the_cut_out_square() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    x0, y0, side, size = 30, 20, 80, 40
    m = square_matrix(x0, y0, side, size)
    # pixel-area convention: edges x0 - 0.5 and x0 + side - 0.5 land on -0.5 and size - 0.5
    edges = np.array([[x0 - 0.5, y0 - 0.5], [x0 + side - 0.5, y0 + side - 0.5]]) @ m[:, :2].T + m[:, 2]
    assert np.allclose(edges, [[-0.5, -0.5], [size - 0.5, size - 0.5]])
    # an exact 2x box downscale: crop pixel (i, j) is the mean of the 2x2 block it covers
    ref = np.asarray(Image.fromarray(img[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.Resampling.BOX))
    centre = np.array([[7.0, 11.0]])
    src = (centre - m[:, 2]) / np.diag(m[:, :2])  # photo point the crop pixel centre reads
    block = img[y0 + 22 : y0 + 24, x0 + 14 : x0 + 16].reshape(-1, 3).mean(0)
    assert np.allclose(src, [[x0 + 14.5, y0 + 22.5]])
    assert np.abs(ref[11, 7].astype(float) - block).max() <= 1


def test_square_matrix_rejects_an_empty_square() -> None:
    with pytest.raises(ValueError, match="side"):
        square_matrix(0, 0, 0, 64)


def test_fomm_crop_matrix_is_the_enlarged_shifted_square() -> None:
    face = Face(Box(100.0, 80.0, 180.0, 170.0), 1.0, np.zeros((5, 2)))
    side = FOMM_ENLARGE * 90.0
    cx, cy = 140.0, 125.0 - FOMM_SHIFT_UP * 90.0
    expected = square_matrix(cx - side / 2, cy - side / 2, side, 256)
    assert np.allclose(crop_matrix(face, AlignTarget.FOMM_SQUARE), expected, atol=1e-12)


def test_detection_scale() -> None:
    assert detection_scale(600, 400, 640) == 1.0
    assert detection_scale(640, 640, 640) == 1.0
    assert detection_scale(2280, 1588, 640) == pytest.approx(640 / 2280)
    assert detection_scale(1000, 1600, 800) == pytest.approx(0.5)
