"""Official-layout compatibility of the FOMM modules (spec section 1) and shipped weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shield.adversarial.models.fomm import (
    FOMM,
    FOMM_MINI_NAMES,
    VOX_256,
    CheckpointFormatError,
    CheckpointKeyError,
    CheckpointShapeError,
    load_fomm_file,
    load_fomm_mini,
    load_official_checkpoint,
    official_checkpoint,
    save_fomm_mini,
    save_official_checkpoint,
    weights_path,
)
from shield.adversarial.models.fomm.config import TINY
from shield.errors import ModelError

torch.set_num_threads(1)


def _randomise(model: FOMM, seed: int) -> FOMM:
    """Random weights and BatchNorm statistics, so that a wrong load would show."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.1)
            elif name.endswith("norm.weight") or ".norm1.weight" in name or ".norm2.weight" in name:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
    return model.eval()


def _count(module: torch.nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def test_full_size_parameter_counts_match_the_spec() -> None:
    model = FOMM(VOX_256)
    assert _count(model.kp_detector) == pytest.approx(14.2, abs=0.05)
    assert _count(model.generator.dense_motion_network) == pytest.approx(37.7, abs=0.05)
    assert _count(model.generator) == pytest.approx(45.6, abs=0.05)


def test_full_size_key_names_and_shapes() -> None:
    model = FOMM(VOX_256)
    kp = model.kp_detector.state_dict()
    gen = model.generator.state_dict()
    assert kp["down.weight"].shape == (3, 1, 13, 13)
    assert kp["kp.weight"].shape == (10, 35, 7, 7)
    assert kp["jacobian.weight"].shape == (40, 35, 7, 7)
    assert torch.equal(kp["jacobian.bias"], torch.tensor([1.0, 0.0, 0.0, 1.0] * 10))
    enc = [kp[f"predictor.encoder.down_blocks.{i}.conv.weight"].shape[:2] for i in range(5)]
    assert enc == [(64, 3), (128, 64), (256, 128), (512, 256), (1024, 512)]
    dec = [kp[f"predictor.decoder.up_blocks.{i}.conv.weight"].shape[:2] for i in range(5)]
    assert dec == [(512, 1024), (256, 1024), (128, 512), (64, 256), (32, 128)]
    assert "predictor.encoder.down_blocks.0.norm.running_var" in kp
    dm = [gen[f"dense_motion_network.hourglass.encoder.down_blocks.{i}.conv.weight"].shape[:2] for i in range(5)]
    assert dm == [(128, 44), (256, 128), (512, 256), (1024, 512), (1024, 1024)]
    assert gen["dense_motion_network.mask.weight"].shape == (11, 108, 7, 7)
    assert gen["dense_motion_network.occlusion.weight"].shape == (1, 108, 7, 7)
    assert gen["dense_motion_network.down.weight"].shape == (3, 1, 13, 13)
    assert gen["first.conv.weight"].shape == (64, 3, 7, 7)
    assert [gen[f"down_blocks.{i}.conv.weight"].shape[:2] for i in range(2)] == [(128, 64), (256, 128)]
    assert [gen[f"up_blocks.{i}.conv.weight"].shape[:2] for i in range(2)] == [(128, 256), (64, 128)]
    assert {f"bottleneck.r{i}.conv1.weight" for i in range(6)} <= set(gen)
    assert "bottleneck.r6.conv1.weight" not in gen
    assert gen["final.weight"].shape == (3, 64, 7, 7)


@pytest.mark.slow
def test_full_size_official_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _randomise(FOMM(VOX_256), seed=1)
    path = tmp_path / "vox-cpk.pth.tar"
    save_official_checkpoint(model, path, epoch=99)
    doc = torch.load(path, weights_only=True)
    assert set(doc) == {
        "generator", "kp_detector", "discriminator", "optimizer_generator",
        "optimizer_discriminator", "optimizer_kp_detector", "epoch",
    }  # fmt: skip
    loaded = load_official_checkpoint(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    src, drv = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        kp_s, kp_d = model.keypoints(src), model.keypoints(drv)
        kp_s2, kp_d2 = loaded.keypoints(src), loaded.keypoints(drv)
        assert torch.equal(kp_s.value, kp_s2.value) and torch.equal(kp_d.jacobian, kp_d2.jacobian)
        assert torch.equal(model.generate(src, kp_s, kp_d), loaded.generate(src, kp_s2, kp_d2))


def test_full_size_loader_rejects_wrong_layouts() -> None:
    doc = official_checkpoint(FOMM(VOX_256))
    missing = dict(doc, generator={k: v for k, v in doc["generator"].items() if k != "final.bias"})
    with pytest.raises(CheckpointKeyError, match="missing"):
        load_official_checkpoint(missing)
    extra = dict(doc, kp_detector={**doc["kp_detector"], "kp.extra": torch.zeros(1)})
    with pytest.raises(CheckpointKeyError, match="unexpected"):
        load_official_checkpoint(extra)
    wrong = dict(doc, kp_detector={**doc["kp_detector"], "kp.weight": torch.zeros(10, 35, 5, 5)})
    with pytest.raises(CheckpointShapeError, match="kp.weight"):
        load_official_checkpoint(wrong)
    with pytest.raises(CheckpointFormatError):
        load_official_checkpoint({"generator": doc["generator"]})
    for err in (CheckpointKeyError, CheckpointShapeError, CheckpointFormatError):
        assert issubclass(err, ModelError)


def test_num_batches_tracked_may_be_absent_but_nothing_else() -> None:
    torch.manual_seed(0)
    model = _randomise(FOMM(TINY), seed=2)
    doc = official_checkpoint(model)
    stripped = {
        sec: {k: v for k, v in doc[sec].items() if not k.endswith("num_batches_tracked")}
        for sec in ("generator", "kp_detector")
    }
    loaded = load_official_checkpoint(stripped, config=TINY)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, x.flip(-1)), loaded(x, x.flip(-1)))
    stray = dict(stripped, generator={**stripped["generator"], "final.num_batches_tracked": torch.tensor(0)})
    with pytest.raises(CheckpointKeyError):
        load_official_checkpoint(stray, config=TINY)


def test_unreadable_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointFormatError):
        load_official_checkpoint(bad)
    with pytest.raises(CheckpointFormatError):
        load_official_checkpoint(tmp_path / "absent.pth.tar")


def test_fp16_surrogate_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _randomise(FOMM(TINY), seed=3)
    path = tmp_path / "mini.pt"
    save_fomm_mini(model, path)
    loaded = load_fomm_file(path)
    assert loaded.resolution == 32 and not loaded.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in loaded.parameters())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x, x.flip(-1)), loaded(x, x.flip(-1)), atol=2e-2)


@pytest.mark.parametrize("name", FOMM_MINI_NAMES)
def test_shipped_surrogates_load_frozen_at_64px(name: str) -> None:
    path = weights_path(name)
    assert path.is_file(), f"{path} is missing: export the trained weights"
    assert path.stat().st_size <= 25 * 1024 * 1024
    model = load_fomm_mini(name)
    assert model.resolution == 64 and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    out = model(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 3, 64, 64)


def test_unknown_surrogate_name_is_a_model_error() -> None:
    with pytest.raises(ModelError):
        load_fomm_mini("fomm-mini-z")
