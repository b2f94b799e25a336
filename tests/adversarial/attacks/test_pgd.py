"""PGD and the attack base class (shield.adversarial.attacks)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from torch import nn

from shield.adversarial.attacks import PGD
from shield.adversarial.transforms import EotConfig, EotSampler

torch.set_num_threads(1)


class _Generator(nn.Module):
    """A small random image-to-image network standing in for a deepfake generator."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 3, 3, padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out


class _Distortion:
    """MSE between G(x) and G(clean): the objective of Ruiz et al. 2020."""

    def __init__(self, model: nn.Module, clean: torch.Tensor) -> None:
        self.model = model
        with torch.no_grad():
            self.reference = model.eval()(clean)

    def networks(self) -> Sequence[nn.Module]:
        return [self.model]

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return (self.model(x) - self.reference).pow(2).mean()


def _image(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(seed))


def test_budget_and_range_hold_with_a_per_pixel_budget() -> None:
    x = _image()
    model = _Generator()
    budget = torch.full_like(x[:, :1], 4 / 255)
    budget[..., :12, :] = 1 / 255
    attack = PGD(_Distortion(model, x), eps=4 / 255, alpha=1 / 255, steps=5, momentum=0.5)
    adv = attack(x, gen=torch.Generator().manual_seed(1), budget=budget)
    delta = (adv - x).abs()
    assert float(delta[..., :12, :].max()) <= 1 / 255 + 1e-7
    assert float(delta.max()) <= 4 / 255 + 1e-7
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_seeded_runs_are_identical_and_seeds_matter() -> None:
    x = _image()
    model = _Generator()
    eot = EotSampler(EotConfig())

    def run(seed: int) -> torch.Tensor:
        return PGD(_Distortion(model, x), eps=0.03, alpha=0.01, steps=3, eot=eot)(x, gen=torch.Generator().manual_seed(seed))

    assert torch.equal(run(5), run(5))
    assert not torch.equal(run(5), run(6))


def test_pgd_disrupts_far_more_than_random_noise_of_the_same_budget() -> None:
    x = _image(2)
    model = _Generator()
    objective = _Distortion(model, x)
    eps = 0.025
    adv = PGD(objective, eps=eps, alpha=0.005, steps=20)(x, gen=torch.Generator().manual_seed(0))
    noise = (x + eps * torch.randn(x.shape, generator=torch.Generator().manual_seed(9)).sign()).clamp(0, 1)
    with torch.no_grad():
        attacked, random = float(objective(adv, torch.Generator())), float(objective(noise, torch.Generator()))
    assert attacked > 2 * random > 0


def test_model_modes_and_gradients_are_restored() -> None:
    x = _image()
    model = _Generator().train()
    model.net[0].weight.requires_grad_(True)
    PGD(_Distortion(model, x), eps=0.01, alpha=0.005, steps=1)
    model.train()
    attack = PGD(_Distortion(model, x), eps=0.01, alpha=0.005, steps=1)
    model.train()
    attack(x, gen=torch.Generator().manual_seed(0))
    assert model.training and all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_repr_and_argument_checks() -> None:
    x = _image()
    attack = PGD(_Distortion(_Generator(), x), eps=0.025, alpha=0.005, steps=10)
    assert "eps=0.025" in repr(attack) and "steps=10" in repr(attack)
    with pytest.raises(ValueError):
        PGD(_Distortion(_Generator(), x), eps=0.0, alpha=0.005, steps=10)
    with pytest.raises(ValueError):
        attack(x * 2, gen=torch.Generator())


def test_l2_budget_holds_and_buys_more_disruption_than_sign_steps_at_equal_energy() -> None:
    x = _image(4)
    model = _Generator()
    objective = _Distortion(model, x)
    rms = 2 / 255
    l2 = PGD(objective, eps=8 / 255, alpha=1 / 255, steps=15, rms=rms)(x, gen=torch.Generator().manual_seed(0))
    delta = l2 - x
    assert float(delta.pow(2).mean().sqrt()) <= rms + 1e-6
    assert float(delta.abs().max()) <= 8 / 255 + 1e-7
    sign = PGD(objective, eps=rms, alpha=0.5 / 255, steps=15)(x, gen=torch.Generator().manual_seed(0))
    assert float((sign - x).pow(2).mean().sqrt()) <= rms + 1e-6
    with torch.no_grad():
        g = torch.Generator()
        assert float(objective(l2, g)) > float(objective(sign, g))
    with pytest.raises(ValueError):
        PGD(objective, eps=0.01, alpha=0.005, steps=1, rms=0.02)


def test_the_shape_map_runs_at_the_start_and_after_every_step() -> None:
    x = torch.full((1, 3, 24, 24), 0.5)
    calls: list[int] = []

    def luma_only(delta: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return delta.mean(1, keepdim=True).expand_as(delta)  # grey: R = G = B

    attack = PGD(_Distortion(_Generator(), x), eps=8 / 255, alpha=2 / 255, steps=4, shape=luma_only)
    adv = attack(x, gen=torch.Generator().manual_seed(0))
    delta = adv - x
    assert len(calls) == 5 and float(delta.abs().max()) > 0
    assert torch.allclose(delta[:, 0], delta[:, 1]) and torch.allclose(delta[:, 1], delta[:, 2])
    assert "shape=True" in repr(attack)


def test_a_weighted_rms_budget_is_measured_on_the_weighted_perturbation() -> None:
    x = _image(3)
    weight = torch.ones_like(x[:, :1])
    weight[..., :, :12] = 0.25  # energy on the left half costs 16x
    plain = PGD(_Distortion(_Generator(), x), eps=8 / 255, alpha=2 / 255, steps=6, rms=2 / 255)
    weighted = PGD(_Distortion(_Generator(), x), eps=8 / 255, alpha=2 / 255, steps=6, rms=2 / 255, rms_weight=weight)
    delta_plain = plain(x, gen=torch.Generator().manual_seed(0)) - x
    delta_weighted = weighted(x, gen=torch.Generator().manual_seed(0)) - x

    def weighted_rms(d: torch.Tensor) -> float:
        return float((d / weight).pow(2).mean().sqrt())

    assert weighted_rms(delta_weighted) <= 2 / 255 + 1e-6 < weighted_rms(delta_plain)
    assert float(delta_weighted.abs().max()) > 0
