"""ArcFace IR-SE identity network and SimSwap's identity preprocessing (spec section 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from shield.adversarial.models import ArcFace, simswap_identity
from shield.adversarial.models._strict import LayoutError
from shield.adversarial.models.arcface import IMAGENET_MEAN, IMAGENET_STD, load_arcface

torch.set_num_threads(1)


def test_unknown_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match="depth"):
        ArcFace(18)


def test_input_size_is_checked() -> None:
    with pytest.raises(ValueError, match="112"):
        ArcFace(50).eval()(torch.rand(1, 3, 224, 224))


def test_identity_preprocessing_is_nearest_imagenet_and_unit_norm() -> None:
    """simswap_identity equals: ImageNet normalise, take every other pixel (nearest 224->112), embed, L2."""
    seen: list[torch.Tensor] = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x)
            return x.flatten(1)[:, :512] * 3.0

    face = torch.rand(2, 3, 224, 224)
    z = simswap_identity(Probe(), face)  # type: ignore[arg-type]
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    expected = ((face - mean) / std)[:, :, ::2, ::2]
    assert torch.allclose(seen[0], expected, atol=1e-6)
    assert torch.allclose(z.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(z, F.normalize(expected.flatten(1)[:, :512], dim=1), atol=1e-6)


@pytest.mark.slow
def test_official_layout_round_trip(tmp_path: Path) -> None:
    model = ArcFace(101)
    state = model.state_dict()
    n_params = sum(p.numel() for p in model.parameters())
    assert round(n_params / 1e6, 1) == 52.2  # spec: 52.2M for the SimSwap network
    assert state["conv1.weight"].shape == (64, 3, 3, 3)
    assert state["fc.weight"].shape == (512, 25088)
    assert state["bn3.running_var"].shape == (512,)
    assert state["layer3.22.se.fc.0.weight"].shape == (16, 256)
    assert state["layer3.22.se.fc.1.weight"].shape == (1,)
    assert state["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert "layer1.0.downsample.0.weight" not in state
    assert "layer3.23.bn0.weight" not in state
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, t in state.items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 0.1 + (0.9 if "running_var" in name else 0.0))
    path = tmp_path / "arcface_r101.pth"
    torch.save(model.state_dict(), path)
    loaded = load_arcface(path, depth=101)
    model.eval()
    face = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        a, b = simswap_identity(model, face), simswap_identity(loaded, face)
    assert torch.equal(a, b)
    assert a.shape == (2, 512)
    with pytest.raises(LayoutError):
        load_arcface(path, depth=50)
