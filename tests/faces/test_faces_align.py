"""Aligned crops: dlib chips exactly as dlib cuts them, ArcFace and FOMM conventions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.faces import AlignedCrop, AlignTarget, Face, align, crop_tensor, detect_faces
from shield.faces.align import ARCFACE_TEMPLATE_112, arcface_points, similarity_fit
from shield.faces.dlib_models import SHAPE_PREDICTOR_5, dlib_model_path
from shield.tensors import to_tensor, to_uint8

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, Face]:
    rgb = skimage.data.astronaut()
    return rgb, detect_faces(rgb, with_68=True)[0]


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def _dlib_reference_chip(rgb: np.ndarray, face: Face | None = None) -> tuple[np.ndarray, Any]:
    """A chip computed with dlib alone: detector (or the given face's box), predictor, get_face_chip."""
    import dlib

    if face is None:
        rect = max(dlib.get_frontal_face_detector()(rgb, 1), key=lambda r: r.area())
    else:
        b = face.box
        rect = dlib.rectangle(round(b.left), round(b.top), round(b.right) - 1, round(b.bottom) - 1)
    shape = dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_5)))(rgb, rect)
    return np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25)), shape


def test_dlib_chip_equals_dlib(astronaut: tuple[np.ndarray, Face]) -> None:
    rgb, face = astronaut
    crop = align(rgb, face, AlignTarget.DLIB_150)
    reference, shape = _dlib_reference_chip(rgb)
    assert crop.image.shape == (150, 150, 3) and crop.size == 150
    np.testing.assert_array_equal(crop.image, reference)
    lm = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
    np.testing.assert_array_equal(face.landmarks5, lm)


def test_dlib_matrix_reproduces_dlib_geometry(astronaut: tuple[np.ndarray, Face]) -> None:
    # This face is small enough (scale < 2) that dlib samples the photo directly, so a
    # bilinear crop through our matrix must agree with dlib's chip to rounding.
    rgb, face = astronaut
    crop = align(rgb, face, AlignTarget.DLIB_150)
    assert crop.scale() < 2.0
    ours = to_uint8(crop_tensor(to_tensor(rgb), crop)).astype(int)
    diff = np.abs(ours - crop.image.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.6


def test_dlib_chip_large_faces(shared_data: Path) -> None:
    # Large photos are detected downscaled, so dlib's reference gets the same box; large
    # faces: dlib low-passes through an image pyramid, we blur with a Gaussian.
    for name in ("deepface_img1.jpg", "deepface_img12.jpg"):
        rgb = np.array(Image.open(shared_data / "photos" / name).convert("RGB"))
        face = detect_faces(rgb)[0]
        crop = align(rgb, face, AlignTarget.DLIB_150)
        reference, _ = _dlib_reference_chip(rgb, face)
        np.testing.assert_array_equal(crop.image, reference)
        ours = to_uint8(crop_tensor(to_tensor(rgb), crop)).astype(int)
        assert np.abs(ours - crop.image.astype(int)).mean() < 4.0, name


def test_arcface_template(astronaut: tuple[np.ndarray, Face]) -> None:
    rgb, face = astronaut
    crop = align(rgb, face, AlignTarget.ARCFACE_224)
    assert crop.image.shape == (224, 224, 3)
    mapped = _apply(crop.matrix, arcface_points(face))
    template = ARCFACE_TEMPLATE_112 * 2.0
    assert np.abs(mapped - template).max() < 12.0  # a real face is not the mean face
    # eyes land left/right of centre, mouth below nose, as in the template
    assert mapped[0, 0] < 112 < mapped[1, 0] and mapped[3, 1] > mapped[2, 1]
    # without the 68 points (5-point landmarks through dlib's mean face) the eyes and the
    # nose still land within a few pixels; her smiling mouth is where the mean face differs
    five_only = Face(face.box, face.score, face.landmarks5, None)
    fallback = _apply(align(rgb, five_only, AlignTarget.ARCFACE_224).matrix, arcface_points(face))
    assert np.abs(fallback[:3] - template[:3]).max() < 4.0
    assert np.abs(fallback - template).max() < 20.0


def test_fomm_square(astronaut: tuple[np.ndarray, Face]) -> None:
    rgb, face = astronaut
    crop = align(rgb, face, AlignTarget.FOMM_SQUARE, size=128)
    assert crop.image.shape == (128, 128, 3)
    assert crop.matrix[0, 1] == 0 and crop.matrix[1, 0] == 0  # axis aligned, no rotation
    b = face.box
    # box edges in pixel-centre coordinates (pixel i spans i-0.5 .. i+0.5)
    corners = _apply(crop.matrix, np.array([[b.left, b.top], [b.right, b.bottom]]) - 0.5)
    assert (corners > 0).all() and (corners < 128).all()  # the whole face box is inside
    # pixel-area convention: the square is 2x the box, centred horizontally on it
    assert corners[1, 0] - corners[0, 0] == pytest.approx(128 / 2.0, rel=1e-6)
    assert (corners[0, 0] + corners[1, 0]) / 2 == pytest.approx(64 - 0.5, abs=1e-6)


def test_similarity_fit_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale = 0.3, 1.7
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ a.T + [4.0, -2.0]
    np.testing.assert_allclose(similarity_fit(src, dst), np.hstack([a, [[4.0], [-2.0]]]), atol=1e-9)


def test_aligned_crop_inverse(astronaut: tuple[np.ndarray, Face]) -> None:
    rgb, face = astronaut
    crop: AlignedCrop = align(rgb, face, "dlib_150")
    pts = np.array([[10.0, 20.0], [140.0, 75.0]])
    np.testing.assert_allclose(_apply(crop.matrix, _apply(crop.inverse(), pts)), pts, atol=1e-9)
