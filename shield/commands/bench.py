"""`shield bench ...`: benchmarks whose results go under bench/ (JSON, plots, grids)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from shield.commands._common import emit_json, notice, settings

__all__ = ["bench"]


def _numbers(text: str | None) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()] if text else []


def _command() -> str:
    return "shield " + " ".join(shlex.quote(a) for a in sys.argv[1:])


@click.group()
def bench() -> None:
    """Measure shield against its targets."""


@bench.command("protection")
@click.option("--photos", "photos_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Folder of face photos (*.jpg, *.png).")
@click.option("--driving", "driving_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="Unused by the real-network harness (reenactment is tested on held-out random motions); kept for scripts.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the full report here (else print the summary only).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the figure here (break rates, vs JPEG, vs PSNR); sample grids go beside it.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N photos (sorted by name).")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True, help="Skip the first N photos (to split a run).")
@click.option("--strength", type=click.Choice(["fast", "balanced", "max"]), default="balanced", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the protection runs.")
@click.option("--device", default=None, help="torch device (default: SHIELD_DEVICE, else cpu).")
@click.option("--all-models", is_flag=True, help="Also measure the networks this preset does not attack that are not held out (other presets' targets, surrogates).")
@click.option("--with-marks", is_flag=True, help="Apply the robust soft-binding mark and the fragile watermark after the attack, as shield protect does, before the break tests.")
@click.option("--tradeoff-rms", default=None, help="Instead of the main run: comma-separated RMS budgets in 1/255 units; our preset only, no JPEG 90/50; a break-rate-vs-PSNR curve.")
def protection(
    photos_dir: Path,
    driving_dir: Path | None,
    json_out: Path | None,
    plot_out: Path | None,
    limit: int | None,
    skip: int,
    strength: str,
    seed: int,
    device: str | None,
    all_models: bool,
    with_marks: bool,
    tradeoff_rms: str | None,
) -> None:
    """Protect photos and run every network's break test, ours vs Ruiz et al. 2020, white-box and held out."""
    import torch

    from shield.adversarial.harness import HarnessConfig, run_harness
    from shield.adversarial.pipeline_check import FaceApi, FrontEnd, MtcnnDlib
    from shield.adversarial.presets import HELD_OUT, get_preset
    from shield.adversarial.threats import load_ensemble, names

    dev = device or settings().device
    if dev == "cpu":
        torch.set_num_threads(max(1, torch.get_num_threads()))
    photos = benchmark_photos(photos_dir, skip, limit)
    preset = get_preset(strength)
    attacked = load_ensemble(dict(preset.weights), dev)
    others = [n for n in names() if n not in {t.name for t in attacked} and (all_models or n in HELD_OUT)]
    measured = load_ensemble({n: 1.0 for n in others}, dev)  # official checkpoints only when imported
    front_ends: dict[str, FrontEnd] = {"mtcnn+dlib": MtcnnDlib(dev), "face-api.js": FaceApi(dev)}
    grids = None
    if plot_out is not None:
        from shield.adversarial.harness_plots import save_grid

        def grids(photo: str, images: dict[str, Any]) -> None:
            save_grid(images, plot_out.with_name(f"{plot_out.stem}_grid_{photo}.png"))

    if tradeoff_rms:
        from dataclasses import replace

        points = []
        for rms in _numbers(tradeoff_rms):
            point = replace(preset, name=f"{preset.name}-rms{rms:g}", rms=rms / 255, eps=max(preset.eps, 4 * rms / 255))
            config = HarnessConfig(strength=point, seed=seed, conditions=("none", "jpeg75"), with_baseline=False)
            doc = run_harness(photos, attacked=attacked, measured=measured, front_ends=front_ends, config=config)
            points.append({"rms_255": rms, "eps_255": point.eps * 255, **doc["summary"]})
            notice(f"trade-off point rms {rms:g}/255 done")
        report = {"command": _command(), "points": points}
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=1))
        if plot_out is not None:
            from shield.adversarial.harness_plots import plot_tradeoff

            plot_tradeoff(report, plot_out)
        emit_json(points)
        return
    report = run_harness(
        photos, attacked=attacked, measured=measured, front_ends=front_ends,
        config=HarnessConfig(strength=strength, seed=seed, with_marks=with_marks), progress=lambda name: notice(f"evaluated {name}"), keep_images=grids,
    )  # fmt: skip
    report = {"command": _command(), **report}
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1))
        notice(f"wrote {json_out}")
    if plot_out is not None:
        from shield.adversarial.harness_plots import plot_report

        plot_report(report, plot_out)
    emit_json({"summary": report["summary"], "ratios": report["ratios"]})


def benchmark_photos(photos_dir: Path, skip: int = 0, limit: int | None = None) -> list[Path]:
    """The photos ``shield bench protection`` evaluates: images sorted by name, ``skip`` then ``limit``."""
    photos = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[skip:]
    return photos if limit is None else photos[:limit]
