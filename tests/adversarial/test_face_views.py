"""Differentiable aligned views (shield.adversarial.face_views)."""

from __future__ import annotations

import dlib
import numpy as np
import torch
from PIL import Image
from skimage import data

from shield.adversarial.face_views import View, affine_crop, locate_faces, view_bbox, whole_frame_view
from shield.faces.dlib_models import SHAPE_PREDICTOR_5, dlib_model_path
from shield.tensors import to_tensor


def test_chip_view_reproduces_dlib_get_face_chip() -> None:
    img = np.array(data.astronaut())
    faces = locate_faces(img)
    face = max(faces, key=lambda f: f.box[2] - f.box[0])
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_5)))
    shape = predictor(img, dlib.rectangle(*(int(round(v)) for v in face.box)))
    ref = np.asarray(dlib.get_face_chip(img, shape, size=150, padding=0.25)).astype(np.float32)
    ours = affine_crop(to_tensor(img), face.chip_view(150))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - ref).mean() < 1.5


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
