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
@click.option("--driving", "driving_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True, help="Folder of driving clips (*.mp4); its validation clips are used when present.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the full report here (else print the summary only).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N photos (sorted by name).")
@click.option("--skip", type=click.IntRange(min=0), default=0, show_default=True, help="Skip the first N photos (to split a run).")
@click.option("--strength", type=click.Choice(["fast", "balanced", "max"]), default="balanced", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the protection runs.")
@click.option("--frames", type=click.IntRange(min=2), default=6, show_default=True, help="Driving frames per clip.")
@click.option("--figures", "figures_dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder for the plot and sample grids (default: beside --json).")
@click.option("--tradeoff-eps", default=None, help="Instead of the main run: comma-separated budgets in 1/255 units for a disruption-vs-PSNR curve.")
@click.option("--tradeoff-steps", default=None, help="With --tradeoff-eps: comma-separated step counts for a disruption-vs-steps curve.")
def protection(
    photos_dir: Path,
    driving_dir: Path,
    json_out: Path | None,
    limit: int | None,
    skip: int,
    strength: str,
    seed: int,
    frames: int,
    figures_dir: Path | None,
    tradeoff_eps: str | None,
    tradeoff_steps: str | None,
) -> None:
    """Protect photos, make deepfakes from them, and measure the disruption (vs Ruiz et al. 2020)."""
    import torch

    from shield.adversarial.bench_plots import plot_summary, plot_tradeoff, save_grid
    from shield.adversarial.bench_protection import BenchConfig, run_bench, run_tradeoff
    from shield.adversarial.models.fomm import load_fomm_mini
    from shield.adversarial.presets import get_preset
    from shield.adversarial.threat_models import TRANSFER_FOMM, load_threat_models

    torch.set_num_threads(1)  # small 64 px models: one thread per process is fastest on a shared CPU
    photos = benchmark_photos(photos_dir, skip, limit)
    models = load_threat_models("cpu")
    transfer = {TRANSFER_FOMM: load_fomm_mini(TRANSFER_FOMM, "cpu")}
    fig_dir = figures_dir or (json_out.parent if json_out is not None else None)
    stem = json_out.stem if json_out is not None else "protection"

    if tradeoff_eps:
        doc = run_tradeoff(
            photos, driving_dir, models=models, transfer=transfer, home=settings().home, base=get_preset(strength),
            eps_values=[v / 255 for v in _numbers(tradeoff_eps)], steps_values=[int(v) for v in _numbers(tradeoff_steps)],
            seed=seed, progress=lambda name: notice(f"trade-off point {name} done"),
        )  # fmt: skip
        doc = {"command": _command(), **doc}
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(doc, indent=1))
        if fig_dir is not None:
            plot_tradeoff(doc, fig_dir / f"{stem}.png")
        emit_json(doc["points"])
        return

    boxes: dict[str, tuple[float, float, float, float]] = {}

    def keep(photo: str, images: dict[str, Any]) -> None:
        if fig_dir is not None:
            save_grid(images, boxes[photo], fig_dir / f"{stem}_grid_{photo}.png")

    report = run_bench(
        photos,
        driving_dir,
        models=models,
        transfer=transfer,
        home=settings().home,
        config=BenchConfig(strength=strength, frames_per_clip=frames, seed=seed),
        progress=lambda name: notice(f"evaluated {name}"),
        keep_images=keep if fig_dir is not None else None,
        face_boxes=boxes,
    )
    report = {"command": _command(), **report}
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1))
        notice(f"wrote {json_out}")
    if fig_dir is not None:
        plot_summary(report, fig_dir / f"{stem}.png")
    emit_json({"summary": report["summary"], "baseline_summary": report["baseline_summary"], "ratios": report["ratios"]})


def benchmark_photos(photos_dir: Path, skip: int = 0, limit: int | None = None) -> list[Path]:
    """The photos ``shield bench protection`` evaluates: images sorted by name, ``skip`` then ``limit``."""
    photos = sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[skip:]
    return photos if limit is None else photos[:limit]
