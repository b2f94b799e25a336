"""Perceptual shaping of the perturbation (shield.adversarial.perceptual)."""

from __future__ import annotations

import pytest
import torch

from shield.adversarial.perceptual import Shaping, jnd_scale, rgb_to_ycbcr, shaper, ycbcr_to_rgb
from shield.tensors import gaussian_blur

torch.set_num_threads(1)


def _noise(seed: int, size: int = 64) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_ycbcr_round_trip_and_grey_has_no_chroma() -> None:
    x = _noise(0)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5)
    grey = x[:, :1].expand(-1, 3, -1, -1)
    assert float(rgb_to_ycbcr(grey)[:, 1:].abs().max()) < 1e-5


def test_the_shaped_perturbation_is_luma_dominant_zero_mean_and_inside_the_box() -> None:
    shaping = Shaping(chroma=0.25, highpass_sigma=3.0)
    budget = torch.full((1, 1, 64, 64), 8 / 255)
    raw = _noise(1) * 0.05 + torch.tensor([0.03, -0.02, 0.04]).view(1, 3, 1, 1)  # noise plus a colour cast
    shaped = shaper(shaping, budget)(raw)
    ycc = rgb_to_ycbcr(shaped)
    cap = 8 / 255
    assert float(ycc[:, 0].abs().max()) <= cap + 1e-6
    assert float(ycc[:, 1:].abs().max()) <= 0.25 * cap + 1e-6
    assert float(ycc[:, 0].abs().max()) > 0.9 * cap  # luma carries it, up to the cap
    inner = (slice(None), slice(None), slice(12, -12), slice(12, -12))
    # the cast is gone: the local mean of the shaped perturbation is far below that of the raw one
    assert float(gaussian_blur(shaped, 3.0)[inner].abs().mean()) < 0.1 * float(gaussian_blur(raw, 3.0)[inner].abs().mean())


def test_jnd_scale_gives_smooth_areas_the_floor_and_texture_the_full_budget() -> None:
    x = torch.full((1, 3, 32, 32), 0.6)
    x[..., 16:] = torch.rand(1, 3, 32, 16, generator=torch.Generator().manual_seed(0))
    scale = jnd_scale(x, floor=0.1, tau=0.06, window=7)
    assert float(scale[..., 4:28, 2:10].max()) == pytest.approx(0.1)
    assert float(scale[..., 4:28, 22:30].min()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs", [{"chroma": 1.5}, {"highpass_sigma": 0.0}, {"floor": 0.0}, {"tau": -1.0}, {"window": 4}]
)
def test_bad_shaping_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Shaping(**kwargs)  # type: ignore[arg-type]
