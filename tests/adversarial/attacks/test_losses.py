"""Loss terms against FOMM, face swap and identity (shield.adversarial.attacks.losses)."""

from __future__ import annotations

import torch
from torch import nn

from shield.adversarial.attacks import (
    PGD,
    FommDistortion,
    IdentityPushAway,
    KeypointDisplacement,
    SwapDistortion,
    WeightedObjective,
    motions_from_driving,
    random_motions,
)
from shield.adversarial.models.autoencoder import FaceSwapAE, FaceSwapAEConfig
from shield.adversarial.models.fomm import FOMM, CommonParams, DenseMotionParams, FommConfig, GeneratorParams, KeypointDetectorParams

torch.set_num_threads(1)

TINY = FommConfig(
    resolution=32,
    common=CommonParams(num_kp=5),
    kp_detector=KeypointDetectorParams(block_expansion=8, max_features=32, scale_factor=0.5, num_blocks=2),
    generator=GeneratorParams(block_expansion=8, max_features=32, num_down_blocks=1, num_bottleneck_blocks=1),
    dense_motion=DenseMotionParams(block_expansion=8, max_features=32, num_blocks=2, scale_factor=0.5),
)


def _fomm() -> FOMM:
    torch.manual_seed(0)
    return FOMM(TINY).eval()


def _x(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def identity(t: torch.Tensor) -> torch.Tensor:
    return t


def test_random_motions_start_with_the_identity() -> None:
    bank = random_motions(5, 4, torch.Generator().manual_seed(0))
    assert len(bank) == 5
    assert torch.equal(bank.offset[0], torch.zeros(4, 2))
    assert torch.equal(bank.jacobian[0], torch.eye(2).expand(4, 2, 2))
    assert float(bank.offset[1:].abs().sum()) > 0


def test_motions_from_driving_are_relative_to_frame_zero() -> None:
    fomm = _fomm()
    frames = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    bank = motions_from_driving(fomm, frames)
    assert torch.allclose(bank.offset[0], torch.zeros_like(bank.offset[0]))
    assert torch.allclose(bank.jacobian[0], torch.eye(2).expand_as(bank.jacobian[0]), atol=1e-5)


def test_every_term_is_zero_on_the_clean_image_and_positive_off_it() -> None:
    fomm = _fomm()
    swap = FaceSwapAE(FaceSwapAEConfig(resolution=32, width=8, latent=32, identities=("a", "b"))).eval()
    embed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    gen = torch.Generator().manual_seed(0)
    terms = [
        FommDistortion(fomm, identity, random_motions(4, 5, gen), per_step=2),
        KeypointDisplacement(fomm, identity),
        SwapDistortion(swap, swap.swap, [0, 1], identity),
        IdentityPushAway(embed, identity),
    ]
    x = _x()
    for term in terms:
        term.prepare(x)
        with torch.no_grad():
            assert float(term(x, gen)) < 1e-10, term
            assert float(term((x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1), gen)) > 0, term


def test_pgd_on_fomm_beats_random_noise() -> None:
    fomm = _fomm()
    x = _x(3)
    bank = random_motions(6, 5, torch.Generator().manual_seed(0))
    objective = WeightedObjective([FommDistortion(fomm, identity, bank, per_step=6)])
    objective.prepare(x)
    eps = 8 / 255
    adv = PGD(objective, eps=eps, alpha=2 / 255, steps=8)(x, gen=torch.Generator().manual_seed(0))
    noise = (x + eps * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).sign()).clamp(0, 1)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        attacked, random = float(objective(adv, g)), float(objective(noise, g))
    assert attacked > 2 * random > 0
