"""Differentiable EOT transformations (shield.adversarial.transforms)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from shield.adversarial.transforms import (
    EotConfig,
    EotSampler,
    GaussianBlur,
    Jpeg,
    Resize,
    Rounding,
    Shift,
    jpeg_quant_tables,
)
from shield.tensors import to_tensor


def _photo() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[40:240, 140:372])


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_jpeg_model_tracks_a_real_encoder(quality: int) -> None:
    img = _photo()
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    real = to_tensor(np.asarray(Image.open(buf)))
    x = to_tensor(img)
    ours = Jpeg(quality)(x)
    err_model = (ours - real).abs().mean().item()
    err_identity = (x - real).abs().mean().item()
    assert err_model < 0.006
    assert err_model < 0.5 * err_identity


@pytest.mark.parametrize("rounding", list(Rounding))
def test_jpeg_passes_gradients_and_stays_in_range(rounding: Rounding) -> None:
    x = torch.rand(1, 3, 20, 27, generator=torch.Generator().manual_seed(0), requires_grad=True)
    y = Jpeg(60, rounding)(x)
    assert y.shape == x.shape and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    (g,) = torch.autograd.grad(y.sum(), x)
    assert float(g.abs().sum()) > 0


def test_quant_tables_follow_the_ijg_scaling() -> None:
    luma50, _ = jpeg_quant_tables(50)
    luma100, _ = jpeg_quant_tables(100)
    assert luma50[0, 0] == 16 and float(luma100.max()) == 1
    with pytest.raises(ValueError):
        jpeg_quant_tables(0)


def test_geometric_transforms() -> None:
    x = torch.zeros(1, 3, 16, 16)
    x[..., 8, 8] = 1.0
    moved = Shift(2, -1)(x)
    assert moved[0, 0, 7, 10] == 1.0 and moved.shape == x.shape
    assert Resize(0.5)(torch.rand(1, 3, 17, 23)).shape == (1, 3, 17, 23)
    flat = torch.full((1, 3, 12, 12), 0.3)
    assert torch.allclose(GaussianBlur(1.0)(flat), flat, atol=1e-6)


def test_eot_sampler_is_driven_by_its_generator() -> None:
    sampler = EotSampler(EotConfig(p_jpeg=0.5, p_resize=0.5, p_shift=0.5, p_blur=0.5))
    a = [repr(sampler.sample(torch.Generator().manual_seed(3))) for _ in range(2)]
    assert a[0] == a[1]
    gen = torch.Generator().manual_seed(4)
    draws = {repr(sampler.sample(gen)) for _ in range(20)}
    assert len(draws) > 5
    x = torch.rand(1, 3, 32, 32)
    for _ in range(10):
        y = sampler.sample(gen)(x)
        assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
