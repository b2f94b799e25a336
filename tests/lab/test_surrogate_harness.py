"""The JSON summary contract of `shield bench protection` (DESIGN.md), on a synthetic report."""

from __future__ import annotations

import pytest

from shield.adversarial.bench_protection import merge_reports, summarise

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
