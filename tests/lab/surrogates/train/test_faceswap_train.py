"""faceswap-ae training: augmentation, loss, seeded resume after a crash, export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from lab.surrogates.faceswap_data import IdentitySplit
from lab.surrogates.train.faceswap import CHECKPOINT, LOSSES, RECORD, TrainOptions, augment, export, train
from shield.adversarial.models import load_faceswap_ae

torch.set_num_threads(1)


def _splits() -> list[IdentitySplit]:
    rng = np.random.default_rng(0)
    out = []
    for name, tint in (("anna", (200, 120, 90)), ("ben", (60, 90, 200))):
        base = np.zeros((12, 48, 48, 3), np.uint8) + np.asarray(tint, np.uint8)
        chips = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
        out.append(IdentitySplit(name, chips[:9], chips[9:], np.arange(9), np.arange(9, 12)))
    return out


def _opts(out: Path, steps: int) -> TrainOptions:
    return TrainOptions(out=out, resolution=16, width=4, latent=8, batch=3, steps=steps,
                        checkpoint_every=2, log_every=1, val_every=3)


class _Crash(Exception):
    pass


def _crashing_clock(after: int) -> Callable[[], float]:
    calls = {"n": 0}

    def clock() -> float:
        calls["n"] += 1
        if calls["n"] > after:
            raise _Crash("killed")
        return float(calls["n"])

    return clock


def test_augment() -> None:
    warped, target = augment(torch.rand(4, 3, 48, 48), 16, torch.Generator().manual_seed(0), 0.04)
    assert warped.shape == target.shape == (4, 3, 16, 16)
    assert float(warped.min()) >= 0 and float(warped.max()) <= 1
    assert not torch.allclose(warped, target)


def test_resume_after_crash_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    splits = _splits()
    straight = tmp_path / "straight"
    train(_opts(straight, 7), splits)
    crashed = tmp_path / "crashed"
    with pytest.raises(_Crash):
        # the clock is read once at start and once per step: dies during step 5, after the step-4 checkpoint
        train(_opts(crashed, 7), splits, clock=_crashing_clock(5))
    assert torch.load(crashed / CHECKPOINT, weights_only=True)["step"] == 4
    record = train(_opts(crashed, 7), splits, command=["resume"])
    a = torch.load(straight / CHECKPOINT, weights_only=True)["model"]
    b = torch.load(crashed / CHECKPOINT, weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (crashed / LOSSES).read_text().splitlines()]
    assert steps == list(range(1, 8))
    assert record["steps"] == 7 and record["seed"] == 0 and record["command"] == ["resume"]
    saved = json.loads((crashed / RECORD).read_text())
    assert saved["data"][0]["clip"] == "videos/anna.mp4" and saved["wall_seconds"] > 0


def test_export_is_fp16_with_checksum_and_loads(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_opts(run, 2), _splits())
    pt = export(run, tmp_path / "weights")
    meta = json.loads(pt.with_suffix(".json").read_text())
    state = torch.load(pt, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values())
    assert meta["identities"] == ["anna", "ben"] and meta["training"]["steps"] == 2
    model = load_faceswap_ae(weights=pt)
    assert model.resolution == 16 and model.swap(torch.rand(1, 3, 16, 16), 1).shape == (1, 3, 16, 16)
