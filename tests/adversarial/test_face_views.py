"""Differentiable aligned views (shield.adversarial.face_views)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data

from shield.adversarial.face_views import (
    FOMM_CROP_ENLARGE,
    FaceGeometry,
    View,
    affine_crop,
    locate_faces,
    view_bbox,
    whole_frame_view,
)
from shield.faces import AlignTarget, align, crop_matrix, detect_faces
from shield.tensors import to_tensor


def _largest(faces: list[FaceGeometry]) -> FaceGeometry:
    return max(faces, key=lambda f: f.face.box.area)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ np.asarray(m)[:, :2].T + np.asarray(m)[:, 2]


def test_chip_view_reproduces_dlib_get_face_chip() -> None:
    img = np.array(data.astronaut())
    face = _largest(locate_faces(img))
    ref = align(img, face.face, AlignTarget.DLIB_150)  # pixels from dlib.get_face_chip itself
    view = face.chip_view(150)
    assert np.array_equal(view.matrix, ref.matrix)
    ours = affine_crop(to_tensor(img), view)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - ref.image.astype(np.float32)).mean() < 1.5


def test_small_chips_are_the_150_chip_resized() -> None:
    img = np.array(data.astronaut())
    face = _largest(locate_faces(img))
    chip150, chip64 = face.chip_view(150).matrix, face.chip_view(64).matrix
    pts = np.array([[200.0, 100.0], [260.0, 180.0], [170.0, 150.0]])
    # area convention: chip pixel edges -0.5 and 149.5 land on -0.5 and 63.5
    assert np.allclose((_apply(chip150, pts) + 0.5) * 64 / 150 - 0.5, _apply(chip64, pts), atol=1e-9)


def test_arcface_view_is_the_shield_faces_arcface_crop() -> None:
    img = np.array(data.astronaut())
    face = _largest(locate_faces(img))
    detected = max(detect_faces(img), key=lambda f: f.box.area)
    for size in (112, 224):
        view = face.arcface_view(size)
        assert view.size == size
        assert np.allclose(view.matrix, crop_matrix(detected, AlignTarget.ARCFACE_224, size=size), atol=1e-9)


def test_fomm_view_frames_the_box_and_stays_inside_the_photo() -> None:
    img = np.array(data.astronaut())
    face = _largest(locate_faces(img))
    left, top, right, bottom = face.box
    view = face.fomm_view(64)
    side = FOMM_CROP_ENLARGE * max(right - left, bottom - top)
    assert abs(64 / view.scale() - side) < 1e-9
    x0, y0, x1, y1 = view_bbox(view)  # centres of the corner crop pixels: the square's centre is 0.5 further
    assert abs((x0 + x1 + 1) / 2 - (left + right) / 2) <= 0.5 + 1e-9  # corner snapped to whole pixels
    assert abs((y0 + y1 + 1) / 2 - (top + bottom) / 2) <= 0.5 + 1e-9
    # the same face near the photo's top-left corner: the square slides inside, same size
    shift = int(left) - 5, int(top) - 5
    cornered = img[shift[1] :, shift[0] :]
    moved = _largest(locate_faces(np.ascontiguousarray(cornered)))
    cx0, cy0, cx1, cy1 = view_bbox(moved.fomm_view(64))
    assert min(cx0, cy0) >= -0.5 and cx1 <= cornered.shape[1] - 0.5 and cy1 <= cornered.shape[0] - 0.5
    assert abs(64 / moved.fomm_view(64).scale() - side) < 4.0


def test_large_photos_are_searched_downscaled_and_faces_come_left_to_right(shared_data: Path) -> None:
    rgb = np.asarray(Image.open(shared_data / "photos" / "deepface_couple.jpg").convert("RGB"))
    faces = locate_faces(rgb)
    assert len(faces) >= 2
    lefts = [f.box[0] for f in faces]
    assert lefts == sorted(lefts)
    pixel = max(rgb.shape[:2]) / 640
    for f in faces:
        assert f.image_size == (rgb.shape[1], rgb.shape[0]) and abs(f.detector_pixel - pixel) < 1e-9
        # dlib's inclusive corner: one detector pixel inside the exclusive edge
        assert abs(f.face.box.right - f.box[2] - pixel) < 1e-9 and abs(f.face.box.bottom - f.box[3] - pixel) < 1e-9


def test_downscaling_view_is_antialiased_like_a_resampling_filter() -> None:
    img = np.array(data.astronaut())
    x0, y0, side = 150, 40, 200
    k = 64 / side
    view = View(np.array([[k, 0, -x0 * k + 0.5 * k - 0.5], [0, k, -y0 * k + 0.5 * k - 0.5]]), 64)
    ours = affine_crop(to_tensor(img), view)
    ref = to_tensor(np.array(Image.fromarray(img[y0 : y0 + side, x0 : x0 + side]).resize((64, 64), Image.Resampling.LANCZOS)))
    assert (ours - ref).abs().mean().item() < 0.01
    bx0, _, _, by1 = view_bbox(view)
    assert abs(bx0 - x0) < 3 and abs(by1 - (y0 + side)) < 3  # centres of the corner crop pixels


def test_views_pass_gradients_and_shift_consistently() -> None:
    x = torch.rand(1, 3, 50, 70, requires_grad=True)
    view = whole_frame_view(70, 50, 32)
    out = affine_crop(x, view)
    (g,) = torch.autograd.grad(out.sum(), x)
    assert out.shape == (1, 3, 32, 32) and float(g.abs().sum()) > 0
    k = 32 / 30
    inner = View(np.array([[k, 0, -25 * k], [0, k, -12 * k]]), 32)  # reads x in [25, 55) x [12, 42)
    sub = x[..., 5:, 10:]
    assert torch.allclose(affine_crop(sub, inner.shifted(10, 5)), affine_crop(x, inner), atol=1e-5)


def test_no_face_in_a_flat_image() -> None:
    assert locate_faces(np.full((80, 80, 3), 128, dtype=np.uint8)) == []
