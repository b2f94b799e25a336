"""The classic autoencoder face swap and its shipped weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from shield.adversarial.models import FaceSwapAE, FaceSwapAEConfig, load_faceswap_ae
from shield.adversarial.models._strict import LayoutError, WeightsChecksumError, WeightsMissingError
from shield.adversarial.models.autoencoder import FACESWAP_AE_WEIGHTS
from shield.errors import ModelError

torch.set_num_threads(1)
SMALL = FaceSwapAEConfig(resolution=32, width=8, latent=16, identities=("p", "q", "r"))


def test_swap_shapes_range_and_decoders_differ() -> None:
    torch.manual_seed(0)
    model = FaceSwapAE(SMALL).eval()
    x = torch.rand(2, 3, 32, 32)
    code = model.encode(x)
    assert code.shape == (2, 32, 4, 4)
    with torch.no_grad():
        outs = [model.swap(x, i) for i in range(3)]
    for out in outs:
        assert out.shape == x.shape
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert not torch.allclose(outs[0], outs[1])
    assert torch.equal(model.decode(code, 2), outs[2])
    assert model.identities == ("p", "q", "r") and model.resolution == 32


def test_swap_is_differentiable_in_the_input() -> None:
    model = FaceSwapAE(SMALL).eval()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    model.swap(x, 1).mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize("bad", [torch.rand(1, 3, 64, 64), torch.rand(3, 32, 32), torch.rand(1, 1, 32, 32)])
def test_wrong_input_shape_is_rejected(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="face"):
        FaceSwapAE(SMALL).swap(bad, 0)


def test_identity_index_is_checked() -> None:
    with pytest.raises(IndexError):
        FaceSwapAE(SMALL).swap(torch.rand(1, 3, 32, 32), 3)


@pytest.mark.parametrize(
    "kwargs", [{"resolution": 40}, {"width": 3}, {"latent": 0}, {"identities": ("only",)}]
)
def test_config_is_validated(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaceSwapAEConfig(**kwargs)  # type: ignore[arg-type]


def test_config_json_round_trip() -> None:
    assert FaceSwapAEConfig.from_json(json.loads(json.dumps(SMALL.to_json()))) == SMALL


def test_shipped_weights_load_frozen_and_small() -> None:
    assert FACESWAP_AE_WEIGHTS.stat().st_size <= 25 * 1024 * 1024
    model = load_faceswap_ae()
    meta = json.loads(FACESWAP_AE_WEIGHTS.with_suffix(".json").read_text())
    assert not model.training
    assert all(not p.requires_grad for p in model.parameters())
    assert model.identities == tuple(meta["identities"])
    assert model.resolution == meta["config"]["resolution"]
    x = torch.rand(1, 3, model.resolution, model.resolution)
    assert model.swap(x, 0).shape == x.shape


def test_tampered_weights_fail_the_checksum(tmp_path: Path) -> None:
    pt = tmp_path / "faceswap-ae.pt"
    shutil.copy(FACESWAP_AE_WEIGHTS, pt)
    shutil.copy(FACESWAP_AE_WEIGHTS.with_suffix(".json"), pt.with_suffix(".json"))
    load_faceswap_ae(weights=pt)
    data = bytearray(pt.read_bytes())
    data[-100] ^= 0xFF
    pt.write_bytes(bytes(data))
    with pytest.raises(WeightsChecksumError):
        load_faceswap_ae(weights=pt)


def test_missing_weights_and_wrong_layout(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissingError):
        load_faceswap_ae(weights=tmp_path / "none.pt")
    pt = tmp_path / "wrong.pt"
    torch.save(FaceSwapAE(SMALL).state_dict(), pt)
    meta = json.loads(FACESWAP_AE_WEIGHTS.with_suffix(".json").read_text())
    import hashlib

    meta["sha256"] = hashlib.sha256(pt.read_bytes()).hexdigest()
    pt.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(LayoutError) as info:
        load_faceswap_ae(weights=pt)
    assert isinstance(info.value, ModelError)
