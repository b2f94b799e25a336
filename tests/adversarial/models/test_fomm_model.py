"""Behaviour of the FOMM modules at tiny width (fast, no data, no weights)."""

from __future__ import annotations

import pytest
import torch

from shield.adversarial.models.fomm import FOMM, FOMM_MINI, FommConfig, Keypoints
from shield.adversarial.models.fomm.config import TINY
from shield.errors import ConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny() -> FOMM:
    torch.manual_seed(0)
    return FOMM(TINY).eval()


def test_keypoints_are_typed_and_in_range(tiny: FOMM) -> None:
    kp = tiny.keypoints(torch.rand(2, 3, 32, 32))
    assert isinstance(kp, Keypoints)
    assert kp.value.shape == (2, TINY.common.num_kp, 2)
    assert kp.jacobian.shape == (2, TINY.common.num_kp, 2, 2)
    assert kp.value.abs().max() <= 1.0


def test_fresh_jacobian_head_predicts_identity(tiny: FOMM) -> None:
    kp = tiny.keypoints(torch.rand(1, 3, 32, 32))
    assert torch.allclose(kp.jacobian, torch.eye(2).expand_as(kp.jacobian), atol=1e-6)


def test_same_keypoints_give_identity_deformation(tiny: FOMM) -> None:
    src = torch.rand(1, 3, 32, 32)
    kp = tiny.keypoints(src)
    out = tiny.generate_full(src, kp, kp)
    assert torch.allclose(out.deformed, src, atol=1e-5)
    assert out.prediction.shape == (1, 3, 32, 32)
    assert 0.0 <= out.prediction.min() and out.prediction.max() <= 1.0
    assert out.mask.shape[1] == TINY.common.num_kp + 1


def test_generator_moves_content_with_keypoints(tiny: FOMM) -> None:
    src = torch.rand(1, 3, 32, 32)
    kp = tiny.keypoints(src)
    shifted = Keypoints(kp.value + torch.tensor([0.2, 0.0]), kp.jacobian)
    out = tiny.generate_full(src, kp, shifted)
    assert not torch.allclose(out.deformed, src, atol=1e-3)


def test_gradients_reach_the_source_image(tiny: FOMM) -> None:
    src = torch.rand(1, 3, 32, 32, requires_grad=True)
    drv = torch.rand(1, 3, 32, 32)
    tiny(src, drv).mean().backward()
    assert src.grad is not None and src.grad.abs().sum() > 0


def test_animate_returns_one_frame_per_driving_frame(tiny: FOMM) -> None:
    src = torch.rand(1, 3, 32, 32)
    frames = torch.rand(3, 3, 32, 32)
    out = tiny.animate(src, frames, relative=True, adapt_scale=True)
    assert out.shape == (3, 3, 32, 32)
    # frame 0 is the reference pose: relative animation reproduces the source pose
    kp_src = tiny.keypoints(src)
    ref = tiny.generate(src, kp_src, kp_src)
    assert torch.allclose(out[0], ref[0], atol=1e-5)
    with pytest.raises(ValueError):
        tiny.animate(torch.rand(2, 3, 32, 32), frames)


def test_config_round_trip_and_validation() -> None:
    assert FommConfig.from_dict(FOMM_MINI.to_dict()) == FOMM_MINI
    assert FOMM_MINI.resolution == 64
    with pytest.raises(ConfigError):
        FommConfig(resolution=72)  # 72 * 0.25 = 18 is not divisible by 2^5
    with pytest.raises(ConfigError):
        FommConfig.from_dict({"resolution": 64})
