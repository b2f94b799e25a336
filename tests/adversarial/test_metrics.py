"""PSNR, SSIM and the disruption criterion (shield.adversarial.metrics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse, is_disrupted, psnr, ssim


def test_psnr_of_a_known_offset() -> None:
    a = torch.full((1, 3, 16, 16), 0.5)
    b = a + 0.01  # MSE 1e-4 -> 40 dB
    assert psnr(a, b).item() == pytest.approx(40.0, abs=1e-3)
    assert math.isinf(psnr(a, a).item())


def test_ssim_matches_scikit_image_gaussian_variant() -> None:
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 40, 48, generator=gen)
    b = (a + 0.1 * torch.randn(1, 3, 40, 48, generator=gen)).clamp(0, 1)
    ours = ssim(a, b).item()
    ref = structural_similarity(
        a[0].permute(1, 2, 0).numpy().astype(np.float64),
        b[0].permute(1, 2, 0).numpy().astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=2,
    )
    assert ours == pytest.approx(ref, abs=1e-4)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)


def test_disruption_mse_is_on_the_minus_one_to_one_scale() -> None:
    a = torch.zeros(2, 3, 8, 8)
    b = torch.full((2, 3, 8, 8), 0.1)
    # 0.1 in [0,1] is 0.2 on [-1,1]: MSE 0.04, below the 0.05 threshold
    assert disruption_mse(b, a).tolist() == pytest.approx([0.04, 0.04])
    assert not bool(is_disrupted(disruption_mse(b, a)).any())
    assert bool(is_disrupted(disruption_mse(b + 0.02, a)).all())
    assert DISRUPTION_THRESHOLD == 0.05


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


def test_ssim_is_differentiable_for_training_losses() -> None:
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    guess = torch.full_like(target, 0.5, requires_grad=True)
    (1 - ssim(guess, target).mean()).backward()
    assert guess.grad is not None and torch.isfinite(guess.grad).all() and guess.grad.abs().sum() > 0


def test_grid_measures_see_a_block_pattern_and_resampling_but_not_noise() -> None:
    from shield.adversarial.metrics import grid_energy, grid_modulation

    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 3, 128, 128, generator=gen)
    assert 0.8 < grid_energy(noise) < 1.2
    assert grid_modulation(noise)[1] < 0.1
    tile = torch.randn(1, 3, 8, 8, generator=gen).repeat(1, 1, 16, 16)  # the same 8x8 pattern in every block
    assert grid_energy(noise * 0.5 + tile) > 5
    upsampled = torch.nn.functional.interpolate(torch.randn(1, 3, 96, 96, generator=gen), size=(128, 128), mode="bilinear")
    period, excess = grid_modulation(upsampled)
    assert period % 4 == 0 and excess > 0.3


def test_colour_shift_separates_luma_from_chroma_and_fine_from_local() -> None:
    from shield.adversarial.metrics import colour_shift

    x = torch.full((1, 3, 32, 32), 0.5)
    grey = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)).expand(-1, 3, -1, -1) * 2 / 255
    fine = colour_shift(x + grey, x)
    assert fine.cb < 1e-6 and fine.cr < 1e-6 and fine.luma > 1 and fine.local_luma < 0.5 * fine.luma
    tint = x.clone()
    tint[:, 0] += 4 / 255  # redder
    cast = colour_shift(tint, x)
    assert cast.cr == pytest.approx(2.0, abs=0.01) and cast.local_chroma > 1
