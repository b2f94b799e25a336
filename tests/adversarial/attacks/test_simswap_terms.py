"""SimSwap distortion and ArcFace push-away terms (shield.adversarial.attacks.losses) and their loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from shield.adversarial.attacks import PGD, WeightedObjective
from shield.adversarial.attacks.losses import ArcFacePushAway, SimSwapDistortion, random_identities, simswap_swaps
from shield.adversarial.models._strict import CheckpointReadError
from shield.adversarial.models.arcface import ArcFace, simswap_identity
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.adversarial.models.arcface import load_arcface
from shield.adversarial.models.simswap import load_simswap_generator
from shield.adversarial.threats import load_ensemble
from shield.adversarial.threats.simswap import SimSwap

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def nets() -> tuple[SimSwapGenerator, ArcFace]:
    """A narrow one-block SimSwap (official latent size) and the smallest IR-SE ArcFace, random weights."""
    torch.manual_seed(0)
    return SimSwapGenerator(latent=512, blocks=1, width=8).eval(), ArcFace(50).eval()


def _face(seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def identity(t: torch.Tensor) -> torch.Tensor:
    return t


def _mse_pm1(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(4 * F.mse_loss(a, b))


def test_random_identities_are_unit_and_nearly_orthogonal() -> None:
    z = random_identities(4, 512, torch.Generator().manual_seed(0))
    assert z.shape == (4, 512)
    assert torch.allclose(z.norm(dim=1), torch.ones(4))
    cos = z @ z.T - torch.eye(4)
    assert float(cos.abs().max()) < 0.25
    assert torch.equal(z, random_identities(4, 512, torch.Generator().manual_seed(0)))


def test_swaps_put_the_target_role_first_then_the_source_role(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    gen_net, _ = nets
    face, targets = _face(0), torch.cat([_face(1), _face(2)])
    latents = random_identities(2, 512, torch.Generator().manual_seed(1))
    source = random_identities(1, 512, torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = simswap_swaps(gen_net, face, latents, targets, source)
        assert out.shape == (4, 3, 224, 224)
        assert torch.allclose(out[:2], gen_net(face.expand(2, -1, -1, -1), latents), atol=1e-6)
        assert torch.allclose(out[2:], gen_net(targets, source.expand(2, -1)), atol=1e-6)


def test_terms_are_zero_on_the_clean_face_and_positive_off_it(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    gen_net, arcface = nets
    gen = torch.Generator().manual_seed(0)
    ids = random_identities(2, 512, gen)
    terms = [
        SimSwapDistortion(gen_net, arcface, identity, ids, per_step=1),
        SimSwapDistortion(gen_net, arcface, identity, ids, per_step=3),
        ArcFacePushAway(arcface, identity),
    ]
    x = _face(3)
    moved = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    for term in terms:
        term.prepare(x)
        with torch.no_grad():
            assert float(term(x, gen)) < 1e-10, term
            assert float(term(moved, gen)) > 1e-6, term


def test_simswap_term_is_the_mean_of_both_roles(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    gen_net, arcface = nets
    ids = random_identities(2, 512, torch.Generator().manual_seed(4))
    term = SimSwapDistortion(gen_net, arcface, identity, ids, per_step=3)  # every latent and target
    x = _face(5)
    adv = (x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(6))).clamp(0, 1)
    term.prepare(x)
    with torch.no_grad():
        value = float(term(adv, torch.Generator().manual_seed(0)))
        z, z_adv = simswap_identity(arcface, x), simswap_identity(arcface, adv)
        latents = torch.cat([z, ids])
        as_target = _mse_pm1(gen_net(adv.expand(3, -1, -1, -1), latents), gen_net(x.expand(3, -1, -1, -1), latents))
        targets = torch.cat([x, x.flip(-1)])
        as_source = _mse_pm1(gen_net(targets, z_adv.expand(2, -1)), gen_net(targets, z.expand(2, -1)))
    assert as_source > 0 and as_target > 0
    assert value == pytest.approx((as_target + as_source) / 2, rel=1e-4)


def test_arcface_push_away_is_the_squared_distance_of_simswap_latents(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    _, arcface = nets
    term = ArcFacePushAway(arcface, identity, weight=0.01)
    x, other = _face(7), _face(8)
    term.prepare(x)
    with torch.no_grad():
        value = float(term(other, torch.Generator()))
        expected = float((simswap_identity(arcface, other) - simswap_identity(arcface, x)).pow(2).sum())
    assert term.name == "arcface" and term.weight == 0.01
    assert 0 < value <= 4 and value == pytest.approx(expected, rel=1e-5)


def test_a_few_pgd_steps_raise_the_simswap_term_above_random_noise(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    gen_net, arcface = nets
    x = _face(9)
    term = SimSwapDistortion(gen_net, arcface, identity, random_identities(1, 512, torch.Generator().manual_seed(2)), per_step=2)
    objective = WeightedObjective([term])
    objective.prepare(x)
    eps = 4 / 255
    adv = PGD(objective, eps=eps, alpha=1 / 255, steps=4)(x, gen=torch.Generator().manual_seed(0))
    noise = (x + eps * torch.randn(x.shape, generator=torch.Generator().manual_seed(1)).sign()).clamp(0, 1)
    with torch.no_grad():
        attacked = float(objective(adv, torch.Generator().manual_seed(0)))
        random = float(objective(noise, torch.Generator().manual_seed(0)))
    assert float((adv - x).abs().max()) <= eps + 1e-6
    assert attacked > 10 * random > 0


def test_the_simswap_plug_in_runs_its_arcface_and_checks_its_identities(nets: tuple[SimSwapGenerator, ArcFace]) -> None:
    gen_net, arcface = nets
    target = SimSwap(gen_net, arcface)
    assert list(target.networks()) == [gen_net, arcface] and target.name == "simswap-224"
    with pytest.raises(ValueError, match="identities"):
        SimSwapDistortion(gen_net, arcface, identity, torch.zeros(2, 16))


def test_official_models_join_only_when_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIELD_HOME", str(tmp_path / "home"))
    assert load_ensemble({"simswap-224": 1.0, "arcface-r100": 1.0}) == ()


def test_official_models_load_from_their_files(tmp_path: Path) -> None:
    torch.manual_seed(1)
    arc = ArcFace(50)
    arc.fc.bias.data.fill_(0.25)
    torch.save(arc.state_dict(), tmp_path / "arcface.pt")
    torch.save(SimSwapGenerator().state_dict(), tmp_path / "G.pth")
    loaded_arc, loaded_gen = load_arcface(tmp_path / "arcface.pt", 50), load_simswap_generator(tmp_path / "G.pth")
    assert not loaded_arc.training and not any(p.requires_grad for p in loaded_gen.parameters())
    assert torch.equal(loaded_arc.fc.bias, torch.full((512,), 0.25))
    with pytest.raises(CheckpointReadError):
        load_arcface(tmp_path / "missing.pt", 50)
