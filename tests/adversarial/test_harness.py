"""The protection harness end to end on a bundled portrait with a toy plug-in, and its JSON contract."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from toy_threat import ToyBlur

from shield.adversarial.harness import CONTRACT_KEYS, HarnessConfig, baseline_for, merge_reports, run_harness
from shield.adversarial.presets import PRESETS, RUIZ_BASELINE
from shield.adversarial.threats import register, unregister

torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="module")
def _toy_registered() -> Iterator[None]:
    register(ToyBlur)
    yield
    unregister(ToyBlur.name)


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photos") / "astronaut.png"
    Image.fromarray(np.array(data.astronaut())).save(path)
    return path


def test_the_report_keeps_its_contract_for_every_network_and_both_methods(photo: Path) -> None:
    toy = ToyBlur.load()
    preset = replace(PRESETS["fast"], name="unit", steps=2, weights={"toy-blur": 1.0})
    report = run_harness([photo], attacked=[toy], measured=[], front_ends={}, config=HarnessConfig(strength=preset, conditions=("none", "jpeg75")))
    summary = report["summary"]
    assert summary["photos"] == 1 and 30 < summary["psnr"] < 100 and 0.9 < summary["ssim"] <= 1
    entry = summary["toy-blur"]
    assert entry["role"] == "generator" and entry["attacked"] is True and entry["pretrained"] is False
    assert {CONTRACT_KEYS["none"], CONTRACT_KEYS["jpeg75"]} <= set(entry) and "baseline" in entry
    assert set(report["baseline_summary"]["toy-blur"]) >= {"disruption", "disruption_jpeg75"}
    row = report["photos"][0]
    assert set(row["ours"]["models"]["toy-blur"]) == {"none", "jpeg75"}
    assert row["baseline"]["psnr"] < row["ours"]["psnr"] + 20
    merged = merge_reports([report, report])
    assert len(merged["photos"]) == 2 and merged["summary"]["photos"] == 2
    assert merged["summary"]["toy-blur"]["disruption"] == entry["disruption"]
    with pytest.raises(ValueError):
        merge_reports([report, {**report, "config": {**report["config"], "seed": 9}}])


def test_the_baseline_is_ruiz_2020_on_our_networks() -> None:
    base = baseline_for(PRESETS["balanced"])
    assert (base.eps, base.alpha, base.steps, base.eot, base.rms) == (0.025, 0.005, 10, None, None)
    assert base.output_only and base.random_start and not base.perceptual
    assert dict(base.weights) == dict(PRESETS["balanced"].weights) and base.eps == RUIZ_BASELINE.eps


def test_a_photo_without_a_face_is_listed_and_skipped(tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save(flat)
    preset = replace(PRESETS["fast"], steps=1, weights={"toy-blur": 1.0})
    report = run_harness([flat], attacked=[ToyBlur.load()], measured=[], front_ends={}, config=HarnessConfig(strength=preset, with_baseline=False))
    assert report["photos"] == [{"photo": "flat.png", "face": None}] and report["summary"]["photos"] == 0


def test_with_marks_the_marked_photo_is_measured_beside_the_unmarked_one(photo: Path) -> None:
    toy = ToyBlur.load()
    preset = replace(PRESETS["fast"], name="unit", steps=2, weights={"toy-blur": 1.0})
    config = HarnessConfig(strength=preset, conditions=("none",), with_baseline=False, with_marks=True)
    report = run_harness([photo], attacked=[toy], measured=[], front_ends={}, config=config)
    row = report["photos"][0]
    ours, marked = row["ours"], row["ours_marked"]
    assert marked["psnr"] < ours["psnr"]  # the marks change pixels too
    assert set(ours["visibility"]) >= {"cb", "cr", "local_luma", "local_chroma", "grid8", "grid_modulation"}
    assert report["marked_summary"]["photos"] == 1 and "disruption" in report["marked_summary"]["toy-blur"]
    assert report["config"]["with_marks"] is True and report["config"]["shaping"]["chroma"] == 0.25
    assert "visibility" in report["summary"] and "marked_summary" in merge_reports([report])


def test_photos_are_scaled_to_the_working_size_unless_their_own_size_is_asked() -> None:
    from shield.adversarial.harness import MAX_SIDE, _fit

    big = np.zeros((900, 1200, 3), np.uint8)
    assert _fit(big).shape == (480, MAX_SIDE, 3)
    assert _fit(big, None) is big
    assert HarnessConfig().max_side == MAX_SIDE
