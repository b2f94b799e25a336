"""The surrogate harness (lab): its JSON summary contract (DESIGN.md) on a synthetic
report, its command line, and its port to the threat plug-ins on tiny random networks."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.data import astronaut

from lab.bench.surrogate_harness import (
    SURROGATE_WEIGHTS,
    FACESWAP,
    Surrogates,
    _animate,
    _deepfakes,
    _pair_mse,
    main,
    merge_reports,
    on_surrogates,
    summarise,
)
from shield.adversarial.face_views import locate_faces
from shield.adversarial.presets import PRESETS, RUIZ_BASELINE
from shield.adversarial.protect import protect_pixels
from tests.adversarial.shield_tiny_models import tiny_threat_models

ATTACKED = {"fomm-mini-a": True, "faceswap-ae": True, "fomm-mini-b": False}


def _method(mse: float) -> dict[str, object]:
    conds = ("none", "jpeg90", "jpeg75", "jpeg50", "resize50", "blur1")
    ident = {"face_found_rate": 1.0, "same_person_rate": 0.25, "mean_distance": 0.5, "frames": 4.0}
    return {
        "psnr": 40.0, "ssim": 0.99, "face_psnr": 37.0, "seconds": 3.0,
        "models": {
            "fomm-mini-a": {c: [mse, 0.01] for c in conds},
            "fomm-mini-b": {c: [0.01, 0.01] for c in conds},
            "faceswap-ae": {c: [mse, mse] for c in conds},
        },
        "identity": {"fomm-mini-a": ident, "fomm-mini-b": ident},
    }  # fmt: skip


def _report(mse_ours: float, name: str) -> dict[str, object]:
    clean = {"face_found_rate": 1.0, "same_person_rate": 1.0, "mean_distance": 0.3, "frames": 4.0}
    photo = {"photo": name, "methods": {"ours": _method(mse_ours), "baseline": _method(0.01)}, "clean_identity": {"fomm-mini-a": clean, "fomm-mini-b": clean}}
    return {"config": {"attacked": ATTACKED}, "photos": [photo, {"photo": "cat.jpg", "skipped": "no face found"}]}


def test_summary_follows_the_contract() -> None:
    report = _report(0.08, "a.jpg")
    ours, base, ratios, extra = summarise(report, ATTACKED)
    assert ours["psnr"] == 40.0 and ours["ssim"] == 0.99
    for name, attacked in ATTACKED.items():
        entry = ours[name]
        for key in ("disruption", "disruption_jpeg90", "disruption_jpeg75", "disruption_jpeg50", "disruption_resize50", "mean_mse"):
            assert key in entry
        assert entry["attacked"] is attacked
    assert ours["fomm-mini-a"]["disruption"] == 0.5  # one of two pairs reaches 0.05
    assert ours["faceswap-ae"]["disruption"] == 1.0 and base["faceswap-ae"]["disruption"] == 0.0
    assert ours["fomm-mini-a"]["same_person_rate"] == 0.25 and "same_person_rate" not in ours["faceswap-ae"]
    assert ratios["fomm-mini-a"]["mean_mse"] == pytest.approx((0.08 + 0.01) / 2 / 0.01)
    assert ratios["faceswap-ae"]["disruption"] is None  # baseline 0: no ratio
    assert extra["ours"]["fomm-mini-a"]["disruption_blur1"] == 0.5
    assert extra["ours"]["fomm-mini-a"]["same_person_rate_clean"] == 1.0


def test_merge_resummarises_disjoint_runs() -> None:
    merged = merge_reports([_report(0.08, "a.jpg"), _report(0.0, "b.jpg")])
    assert len(merged["photos"]) == 4
    assert merged["summary"]["faceswap-ae"]["disruption"] == 0.5
    with pytest.raises(ValueError):
        merge_reports([_report(0.1, "a.jpg"), {"config": {"attacked": {}}, "photos": []}])


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["merge", "--help"]])
def test_the_command_line_answers_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0
    assert "usage: python -m lab.bench.surrogate_harness" in capsys.readouterr().out


def test_merge_command_writes_the_merged_report(tmp_path: Path) -> None:
    folder = tmp_path
    inputs = []
    for i, mse in enumerate((0.08, 0.0)):
        path = folder / f"part{i}.json"
        path.write_text(json.dumps(_report(mse, f"{i}.jpg")))
        inputs.append(str(path))
    assert main(["merge", str(folder / "all.json"), *inputs]) == 0
    assert json.loads((folder / "all.json").read_text())["summary"]["faceswap-ae"]["disruption"] == 0.5


def test_surrogates_wrap_the_plugins_and_presets_weigh_only_them() -> None:
    targets = tiny_threat_models(identity=True)
    models = Surrogates.from_targets(targets)
    assert models.fomm is targets[0].fomm and models.fomm_name == "fomm-mini-a"  # type: ignore[attr-defined]
    assert models.faceswap is targets[1].model  # type: ignore[attr-defined]
    assert models.names() == ["fomm-mini-a", "faceswap-ae", "dlib-resnet"]
    for preset in PRESETS.values():
        assert dict(on_surrogates(preset, targets).weights) == SURROGATE_WEIGHTS[preset.name]
    assert set(on_surrogates("fast", targets).weights) == {"fomm-mini-a", "faceswap-ae"}
    assert "dlib-resnet" in on_surrogates("balanced", targets).weights
    # the baseline's official checkpoints are left out, its other settings kept
    ruiz = on_surrogates(RUIZ_BASELINE, targets)
    assert dict(ruiz.weights) == {"fomm-mini-a": 1.0, "faceswap-ae": 1.0} and ruiz.output_only and ruiz.eps == RUIZ_BASELINE.eps
    with pytest.raises(ValueError):
        on_surrogates(replace(PRESETS["fast"], name="custom", weights={"fomm-vox-256": 1.0}), targets)
    with pytest.raises(ValueError):
        Surrogates.from_targets(targets[1:])


def test_animate_and_pair_mse_on_a_tiny_fomm() -> None:
    fomm = Surrogates.from_targets(tiny_threat_models()).fomm
    gen = torch.Generator().manual_seed(0)
    source = torch.rand(1, 3, fomm.resolution, fomm.resolution, generator=gen)
    driving = torch.rand(3, 3, fomm.resolution, fomm.resolution, generator=gen)
    clips = [fomm.keypoints(driving), fomm.keypoints(driving.flip(0))]
    out = _animate(fomm, source, clips)
    assert out.shape == (2, 3, 3, fomm.resolution, fomm.resolution)
    assert _pair_mse(out, out) == [0.0, 0.0]
    shifted = _pair_mse(out, (out + 0.5).clamp(0, 1))
    assert len(shifted) == 2 and all(v > 0 for v in shifted)


def test_protection_on_the_surrogate_plugins_changes_their_deepfakes() -> None:
    """The harness's path end to end on tiny networks: protect with the plug-ins, compare deepfakes."""
    rgb = np.ascontiguousarray(astronaut())
    faces = locate_faces(rgb)
    assert faces, "dlib finds the astronaut's face"
    face = faces[0]
    models = Surrogates.from_targets(tiny_threat_models())
    preset = replace(on_surrogates(PRESETS["fast"], models.targets), steps=2, eot=None)
    result = protect_pixels(rgb, strength=preset, seed=0, models=models.targets, faces=[face])
    assert set(result.self_check) == {"fomm-mini-a", FACESWAP}
    fomm = models.fomm
    driving = torch.rand(3, 3, fomm.resolution, fomm.resolution, generator=torch.Generator().manual_seed(1))
    clip_kp = {models.fomm_name: [fomm.keypoints(driving)]}
    clean = _deepfakes(rgb, face, {models.fomm_name: fomm}, clip_kp, models.faceswap)
    fakes = _deepfakes(result.rgb, face, {models.fomm_name: fomm}, clip_kp, models.faceswap)
    assert set(fakes) == {"fomm-mini-a", FACESWAP}
    assert fakes[FACESWAP].shape[0] == 2  # one swap per identity
    assert all(v > 0 for name in fakes for v in _pair_mse(fakes[name], clean[name]))
