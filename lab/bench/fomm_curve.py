"""Learning curves of fomm-mini training runs: held-out L1 per checkpoint, training L1 per step.

Each call evaluates the newest checkpoint of every ``--run`` on the held-out clips
(protocol of ``lab.bench.fomm_quality``: first frame as source, later frames as
driving, absolute keypoints, L1 on [0,1]) and appends one line per run to ``--log``
(a checkpoint already in the log is not evaluated again); for a run that keeps a
weight average (``--ema``) the average is evaluated as well. ``--plot`` draws, per run,
the training L1 from the run's ``losses.jsonl`` (moving average) and the held-out
points from the log, with the copy-source baseline, the 0.06 target and the steps
where a session changed the learning rate or the augmentation.

    .venv/bin/python -m lab.bench.fomm_curve --run fomm-mini-a=.shield/train/fomm-mini-a \
        --run fomm-mini-b=.shield/train/fomm-mini-b --log bench/results/fomm_curve.jsonl \
        --plot bench/results/fomm_curve.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.bench.fomm_quality import TARGET_L1, clip_errors
from lab.surrogates.data import VALIDATION_CLIPS, Clip, load_clips
from lab.surrogates.train.common import CheckpointStore
from shield.adversarial.models.fomm import FOMM, FommConfig, freeze
from shield.adversarial.zoo import FOMM_MINI_INDEX
from shield.config import load_settings


def _read_log(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def held_out_l1(model: FOMM, clips: list[Clip], frames: int) -> tuple[float, float]:
    """Frame-weighted L1 of ``model`` on the held-out ``clips`` and of copying the source frame."""
    errors = [clip_errors(model, clip, frames) for clip in clips]
    return float(torch.cat([e.l1 for e in errors]).mean()), float(torch.cat([e.copy_source_l1 for e in errors]).mean())


def record(runs: dict[str, Path], log: Path, frames: int) -> None:
    settings = load_settings()
    if settings.data_dir is None:
        raise SystemExit("needs the shared face data (SHIELD_DATA_DIR)")
    clips_at: dict[int, list[Clip]] = {}  # held-out clips per model resolution, loaded once
    done = {(e["run"], e["step"]) for e in _read_log(log)}
    for name, run in runs.items():
        state = CheckpointStore(run).load_latest()
        if state is None:
            print(f"{name}: no checkpoint in {run}")
            continue
        step = int(state["step"])
        if (name, step) in done:
            print(f"{name}@{step}: already in {log}")
            continue
        model = FOMM(FommConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        if model.resolution not in clips_at:
            clips_at[model.resolution] = load_clips(settings.data_dir, model.resolution, settings.home, names=VALIDATION_CLIPS)
        clips = clips_at[model.resolution]
        l1, copy = held_out_l1(freeze(model), clips, frames)
        entry = {"run": name, "step": step, "wall_time_s": round(float(state["wall_time_s"]), 1), "held_out_l1": round(l1, 5),
                 "copy_source_l1": round(copy, 5), "frames_per_clip": frames, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if "ema" in state:  # the run keeps a weight average: evaluate it too
            model.load_state_dict(state["ema"])
            entry["ema_held_out_l1"] = round(held_out_l1(freeze(model), clips, frames)[0], 5)
            entry["ema_decay"] = state["ema_decay"]
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
        print(f"{name}@{step}: held-out L1 {l1:.4f}, weight average {entry.get('ema_held_out_l1', '-')} (copy source {copy:.4f})")


def _smoothed(run: Path, window: int = 25) -> tuple[np.ndarray, np.ndarray]:
    rows = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines() if line.strip()]
    steps = np.array([r["step"] for r in rows], dtype=float)
    l1 = np.array([r["l1"] for r in rows], dtype=float)
    if len(l1) < window:
        return steps, l1
    kernel = np.ones(window) / window
    return steps[window - 1 :], np.convolve(l1, kernel, mode="valid")


def _settings(session: dict[str, Any]) -> dict[str, str]:
    """What a training session was run with, as plot labels."""
    stills = session.get("stills") or "none"
    return {
        "lr": f"lr {session.get('lr', '?')}",
        "augment": f"aug {session.get('augment', 'flip')}",
        "ema": f"avg {session.get('ema') or 'off'}",
        "stills": "stills " + ("portraits" if stills is True else str(stills)),  # older sessions recorded True for the portraits
        "autoencode": f"autoencode {float(session.get('autoencode') or 0):g}",
        "perceptual": f"perceptual {float(session.get('perceptual') or 0):g}",
    }


def _session_labels(sessions: list[dict[str, Any]]) -> list[str]:
    """For each session after the first, the settings that changed from the session before it."""
    before = [_settings(s) for s in sessions]
    return ["\n".join(v for k, v in now.items() if now[k] != prev[k]) for prev, now in zip(before, before[1:], strict=False)]


def plot(runs: dict[str, Path], log: Path, out: Path, from_step: int = 0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = _read_log(log)
    index = FOMM_MINI_INDEX
    models = json.loads(index.read_text())["models"] if index.is_file() else {}
    shipped = {name: int(m["checkpoint_step"]) for name, m in models.items()}  # the step each shipped file was exported at
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items(), strict=True):
        steps, l1 = _smoothed(run)
        ax.plot(steps, l1, color="0.6", lw=1, label="training L1 (moving average, train clips)")
        pts = sorted((int(e["step"]), float(e["held_out_l1"])) for e in entries if e["run"] == name)
        if pts:
            ax.plot(*zip(*pts, strict=True), "o-", color="C0", label="held-out L1 (validation clips)")
        ema = sorted((int(e["step"]), float(e["ema_held_out_l1"])) for e in entries if e["run"] == name and "ema_held_out_l1" in e)
        if ema:
            ax.plot(*zip(*ema, strict=True), "s-", color="C1", ms=4, label="held-out L1, weight average")
            if name in shipped and shipped[name] in dict(ema):
                ax.plot(shipped[name], dict(ema)[shipped[name]], "*", color="k", ms=11, zorder=5,
                        label=f"shipped (step {shipped[name]})")
        copies = [float(e["copy_source_l1"]) for e in entries if e["run"] == name]
        if copies:
            ax.axhline(copies[-1], color="C3", ls="--", lw=1, label=f"copy the source frame ({copies[-1]:.3f})")
        ax.axhline(TARGET_L1, color="C2", ls=":", lw=1.5, label=f"target {TARGET_L1}")
        record_path = run / "run.json"
        sessions = json.loads(record_path.read_text()).get("sessions", []) if record_path.is_file() else []
        labels = _session_labels(sessions)
        for i, (s, label) in enumerate(zip(sessions[1:], labels, strict=True)):
            if s["start_step"] < from_step:
                continue
            ax.axvline(s["start_step"], color="0.85", lw=1)
            if label:  # a session that changed nothing is only a resume
                # staggered rows keep the labels of close sessions apart
                ax.text(s["start_step"], 0.109 - 0.008 * (i % 3), " " + label.replace("\n", "\n "), fontsize=6, va="top")
        ax.set_title(name)
        ax.set_xlabel("training step (batch 8)")
        ax.set_ylim(0.03, 0.11)
        if from_step:
            ax.set_xlim(left=from_step)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("L1 on [0,1]")
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (repeatable)")
    p.add_argument("--log", type=Path, required=True, help="JSON lines of held-out evaluations (appended)")
    p.add_argument("--frames", type=int, default=30, help="driving frames per clip (evenly spaced)")
    p.add_argument("--plot", type=Path, default=None, help="write the learning-curve PNG")
    p.add_argument("--plot-only", action="store_true", help="do not evaluate, only plot the log")
    p.add_argument("--from-step", type=int, default=0, help="plot only from this training step on")
    ns = p.parse_args(argv)
    torch.set_num_threads(1)
    runs = dict(spec.split("=", 1) for spec in ns.run)
    paths = {name: Path(run) for name, run in runs.items()}
    if not ns.plot_only:
        record(paths, ns.log, ns.frames)
    if ns.plot is not None:
        plot(paths, ns.log, ns.plot, ns.from_step)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
