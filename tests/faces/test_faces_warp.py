"""crop_tensor / paste_back: the differentiable way into a face crop and back out."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F

from shield.faces import AlignedCrop, AlignTarget, align, crop_tensor, detect_faces, feather_mask, paste_back
from shield.tensors import to_tensor

torch.set_num_threads(1)
FEATHER = 12


@pytest.fixture(scope="module")
def scene() -> tuple[torch.Tensor, AlignedCrop]:
    rgb = skimage.data.astronaut()
    crop = align(rgb, detect_faces(rgb)[0], AlignTarget.ARCFACE_224)
    return to_tensor(rgb), crop


def _smooth_delta(size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 8, 8, generator=g) * 2 - 1
    return 0.03 * F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)


def test_round_trip_restores_delta_inside_face(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    delta = _smooth_delta(crop.size)
    pasted = paste_back(full, delta, crop, FEATHER, clamp=False)
    recovered = crop_tensor(pasted, crop) - crop_tensor(full, crop)
    inner = slice(FEATHER + 2, crop.size - FEATHER - 2)
    err = (recovered - delta)[..., inner, inner].abs()
    assert err.max() < 2e-3  # bilinear there and back on a smooth delta
    assert delta.abs().max() > 0.01  # the check is not trivially satisfied


def test_outside_footprint_unchanged_and_clamped(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    pasted = paste_back(full, torch.full((1, 3, crop.size, crop.size), 0.5), crop, FEATHER)
    changed = (pasted != full).any(dim=1)[0]
    ys, xs = torch.nonzero(changed, as_tuple=True)
    corners = np.array([[0, 0], [crop.size - 1, 0], [0, crop.size - 1], [crop.size - 1, crop.size - 1]], float)
    img = corners @ crop.inverse()[:, :2].T + crop.inverse()[:, 2]
    assert xs.min() >= img[:, 0].min() - 1 and xs.max() <= img[:, 0].max() + 1
    assert ys.min() >= img[:, 1].min() - 1 and ys.max() <= img[:, 1].max() + 1
    assert pasted.min() >= 0 and pasted.max() <= 1
    assert changed.sum() > 0.5 * (crop.scale() * crop.size) ** 2  # most of the footprint changed


def test_feather_mask() -> None:
    m = feather_mask(64, 8)
    assert m.shape == (1, 1, 64, 64)
    assert m[0, 0, 32, 32] == 1 and m[0, 0, 8:56, 8:56].min() == 1
    assert m[0, 0, 0, 32] < 0.05 and m[0, 0, 0, 0] < m[0, 0, 0, 32]
    row = m[0, 0, 32, :9]
    assert bool((row[1:] >= row[:-1]).all())  # monotone ramp
    assert feather_mask(64, 0).min() == 1
    with pytest.raises(ValueError, match="feather"):
        feather_mask(64, 40)


def test_feather_softens_the_seam(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    delta = torch.full((1, 3, crop.size, crop.size), 0.2)
    hard = paste_back(full, delta, crop, 0, clamp=False) - full
    soft = paste_back(full, delta, crop, FEATHER, clamp=False) - full
    # the largest jump between neighbouring pixels is much smaller with feathering
    def jump(x: torch.Tensor) -> float:
        return float(max((x[..., 1:, :] - x[..., :-1, :]).abs().max(), (x[..., 1:] - x[..., :-1]).abs().max()))

    assert jump(soft) < 0.5 * jump(hard)


def test_gradients_flow_through_both_warps(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    delta = torch.zeros(1, 3, crop.size, crop.size, requires_grad=True)
    full_var = full.clone().requires_grad_(True)
    out = crop_tensor(paste_back(full_var, delta, crop, FEATHER, clamp=False), crop)
    out.mean().backward()
    assert delta.grad is not None and delta.grad[..., 100, 100].abs().sum() > 0
    assert delta.grad[..., 0, 0].abs().sum() < delta.grad[..., 100, 100].abs().sum()  # feathered edge
    assert full_var.grad is not None and full_var.grad.abs().sum() > 0


def test_crop_tensor_matches_align_image(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    ours = (crop_tensor(full, crop)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    assert np.abs(ours.astype(int) - crop.image.astype(int)).max() <= 1


def test_bad_shapes(scene: tuple[torch.Tensor, AlignedCrop]) -> None:
    full, crop = scene
    with pytest.raises(TypeError, match="crop_delta"):
        paste_back(full, torch.zeros(1, 3, 10, 10), crop, 4)
    with pytest.raises(TypeError, match="full"):
        crop_tensor(full[0], crop)
