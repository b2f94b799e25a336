"""Unit tests of the FOMM building blocks and keypoint math (tiny sizes, no data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from shield.adversarial.models.blocks import AntiAliasInterpolation2d, Hourglass, kp2gaussian, make_coordinate_grid
from shield.adversarial.models.fomm import Keypoints, convex_hull_area, movement_scale, relative_keypoints
from shield.adversarial.models.fomm.dense_motion import sparse_motions

torch.set_num_threads(1)


def test_grid_spans_minus_one_to_one_with_x_first() -> None:
    g = make_coordinate_grid(3, 5)
    assert g.shape == (3, 5, 2)
    assert g[0, 0].tolist() == [-1.0, -1.0]
    assert g[0, -1].tolist() == [1.0, -1.0]  # last column: x = +1
    assert g[-1, 0].tolist() == [-1.0, 1.0]  # last row: y = +1
    assert g[1, 2].tolist() == [0.0, 0.0]
    assert torch.allclose(g[0, :, 0], torch.linspace(-1, 1, 5))


def test_grid_matches_grid_sample_convention() -> None:
    img = torch.arange(12.0).view(1, 1, 3, 4)
    grid = make_coordinate_grid(3, 4).unsqueeze(0)
    out = torch.nn.functional.grid_sample(img, grid, align_corners=True)
    assert torch.allclose(out, img)


def test_gaussian_peaks_at_keypoint() -> None:
    kp = torch.tensor([[[1.0, -1.0], [0.0, 0.0]]])
    g = kp2gaussian(kp, 5, 5, kp_variance=0.01)
    assert g.shape == (1, 2, 5, 5)
    assert g[0, 0, 0, -1] == pytest.approx(1.0)  # (x=1, y=-1): first row, last column
    assert g[0, 1, 2, 2] == pytest.approx(1.0)
    # one grid step is 0.5: exp(-0.5 * 0.25 / 0.01)
    assert g[0, 1, 2, 3].item() == pytest.approx(np.exp(-12.5), rel=1e-4)


def test_antialias_kernel_for_quarter_scale() -> None:
    down = AntiAliasInterpolation2d(3, 0.25)
    assert down.weight.shape == (3, 1, 13, 13)
    assert torch.allclose(down.weight.sum(dim=(1, 2, 3)), torch.ones(3))
    centre = down.weight[0, 0, 6]
    assert centre[6] / centre[7] == pytest.approx(float(np.exp(1 / (2 * 1.5**2))), rel=1e-4)  # sigma 1.5
    x = torch.full((1, 3, 32, 32), 0.3)
    y = down(x)
    assert y.shape == (1, 3, 8, 8)
    assert torch.allclose(y[..., 2:6, 2:6], torch.full((1, 3, 4, 4), 0.3), atol=1e-6)
    with pytest.raises(ValueError):
        AntiAliasInterpolation2d(3, 0.3)


def test_hourglass_output_channels_and_size() -> None:
    hg = Hourglass(block_expansion=4, in_features=3, num_blocks=3, max_features=8).eval()
    out = hg(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 4 + 3, 16, 16)
    assert hg.out_filters == 7


def _kp(values: list[list[float]], jac: torch.Tensor | None = None) -> Keypoints:
    v = torch.tensor([values])
    j = jac if jac is not None else torch.eye(2).expand(1, v.shape[1], 2, 2).clone()
    return Keypoints(v, j)


def test_relative_keypoints_math() -> None:
    src = _kp([[0.1, 0.2], [-0.3, 0.4], [0.0, -0.5]], torch.tensor([[[[2.0, 0.0], [0.0, 1.0]]] * 3]))
    first = _kp([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.5]])
    same = relative_keypoints(src, first, first, scale=3.0)
    assert torch.allclose(same.value, src.value)
    assert torch.allclose(same.jacobian, src.jacobian)
    moved = Keypoints(first.value + torch.tensor([0.1, -0.2]), torch.tensor([[[[1.0, 0.5], [0.0, 1.0]]] * 3]))
    rel = relative_keypoints(src, moved, first, scale=2.0)
    assert torch.allclose(rel.value, src.value + 2.0 * torch.tensor([0.1, -0.2]), atol=1e-6)
    expected = torch.tensor([[1.0, 0.5], [0.0, 1.0]]) @ torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    assert torch.allclose(rel.jacobian[0, 0], expected)


def test_convex_hull_area_and_movement_scale() -> None:
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5], [0.2, 0.7]])
    assert convex_hull_area(square) == pytest.approx(1.0)
    assert convex_hull_area(np.array([[0, 0], [1, 1], [2, 2]])) == pytest.approx(0.0)
    drv = _kp([[0.0, 0.0], [0.2, 0.0], [0.2, 0.2], [0.0, 0.2]])
    src = Keypoints(drv.value * 2.0, drv.jacobian)
    assert movement_scale(src, drv) == pytest.approx(2.0)


def test_sparse_motion_maps_driving_keypoint_to_source_keypoint() -> None:
    h = w = 9
    jd = torch.tensor([[[[1.2, 0.3], [-0.1, 0.9]]]])
    js = torch.tensor([[[[0.8, 0.0], [0.2, 1.1]]]])
    kd = Keypoints(torch.tensor([[[0.25, -0.5]]]), jd)
    ks = Keypoints(torch.tensor([[[-0.5, 0.25]]]), js)
    m = sparse_motions(h, w, kd, ks)
    assert m.shape == (1, 2, h, w, 2)
    assert torch.allclose(m[0, 0], make_coordinate_grid(h, w))  # background: identity
    # grid cell (row 2, col 5) is exactly (x=0.25, y=-0.5) = kp_driving
    assert torch.allclose(m[0, 1, 2, 5], ks.value[0, 0], atol=1e-6)
    # one step in x away from kp_d moves by J_s inv(J_d) (0.25, 0)
    step = (js[0, 0] @ torch.inverse(jd[0, 0]) @ torch.tensor([0.25, 0.0]))
    assert torch.allclose(m[0, 1, 2, 6] - m[0, 1, 2, 5], step, atol=1e-6)
