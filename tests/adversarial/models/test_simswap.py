"""SimSwap 224 generator: official layout, strict loading, behaviour (spec section 3)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import torch

from shield.adversarial.models import SimSwapGenerator
from shield.adversarial.models._strict import CheckpointReadError, LayoutError
from shield.adversarial.models.simswap import SIMSWAP_PARAMS, SIMSWAP_TENSORS, _ApplyStyle, load_simswap_generator
from shield.errors import ModelError

torch.set_num_threads(1)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random BatchNorm statistics too, so that a loader that skipped buffers would fail."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=gen) * 0.05 + (1.0 if "running_var" in name else 0.0))


def test_small_generator_range_and_identity_dependence() -> None:
    torch.manual_seed(0)
    gen = SimSwapGenerator(latent=16, blocks=2, width=8).eval()
    target = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        a = gen(target, torch.nn.functional.normalize(torch.randn(2, 16), dim=1))
        b = gen(target, torch.nn.functional.normalize(torch.randn(2, 16), dim=1))
    assert a.shape == target.shape
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert not torch.allclose(a, b)


def test_shapes_are_checked() -> None:
    gen = SimSwapGenerator(latent=16, blocks=1, width=8)
    with pytest.raises(ValueError, match="target"):
        gen(torch.rand(1, 3, 30, 32), torch.randn(1, 16))
    with pytest.raises(ValueError, match="id_latent"):
        gen(torch.rand(1, 3, 32, 32), torch.randn(2, 16))


def test_instance_norm_and_style_follow_the_spec() -> None:
    gen = SimSwapGenerator(latent=4, blocks=1, width=8)
    norm = gen.get_submodule("BottleNeck.0.conv1.2")
    x = torch.randn(2, 5, 6, 6) * 3 + 2
    y = norm(x)
    assert torch.allclose(y.mean(dim=(2, 3)), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(y.pow(2).mean(dim=(2, 3)), torch.ones(2, 5), atol=1e-4)
    style = cast(_ApplyStyle, gen.get_submodule("BottleNeck.0.style1"))
    with torch.no_grad():
        style.linear.weight.zero_()
        style.linear.bias.copy_(torch.cat([torch.full((64,), 0.5), torch.full((64,), -1.0)]))
    h = torch.randn(1, 64, 3, 3)
    assert torch.allclose(style(h, torch.randn(1, 4)), h * 1.5 - 1.0)


@pytest.mark.slow
def test_official_layout_round_trip(tmp_path: Path) -> None:
    model = SimSwapGenerator()
    state = model.state_dict()
    assert len(state) == SIMSWAP_TENSORS == 123
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == SIMSWAP_PARAMS and round(n_params / 1e6, 2) == 55.05
    for key in ("first_layer.1.weight", "first_layer.2.running_var", "down1.0.weight", "down3.1.bias",
                "BottleNeck.8.conv1.1.weight", "BottleNeck.0.style1.linear.weight", "BottleNeck.4.conv2.1.bias",
                "BottleNeck.8.style2.linear.bias", "up3.1.weight", "up1.2.running_mean", "last_layer.1.weight"):
        assert key in state, key
    assert state["BottleNeck.0.style1.linear.weight"].shape == (1024, 512)
    assert state["last_layer.1.weight"].shape == (3, 64, 7, 7)

    _randomise(model, 1)
    path = tmp_path / "latest_net_G.pth"
    torch.save(model.state_dict(), path)
    loaded = load_simswap_generator(path)
    model.eval()
    target = torch.rand(1, 3, 224, 224)
    latent = torch.nn.functional.normalize(torch.randn(1, 512), dim=1)
    with torch.no_grad():
        assert torch.equal(model(target, latent), loaded(target, latent))

    bad = dict(model.state_dict())
    bad.pop("BottleNeck.3.style2.linear.bias")
    torch.save(bad, path)
    with pytest.raises(LayoutError, match="missing"):
        load_simswap_generator(path)
    bad = dict(model.state_dict())
    bad["up2.1.weight"] = torch.zeros(128, 256, 5, 5)
    torch.save(bad, path)
    with pytest.raises(LayoutError, match="shape"):
        load_simswap_generator(path)


def test_not_a_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "whole.pth"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)  # a pickled module, not a state dict
    with pytest.raises(CheckpointReadError) as info:
        load_simswap_generator(path)
    assert isinstance(info.value, ModelError)
    with pytest.raises(CheckpointReadError):
        load_simswap_generator(tmp_path / "absent.pth")
