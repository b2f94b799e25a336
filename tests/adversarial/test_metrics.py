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
