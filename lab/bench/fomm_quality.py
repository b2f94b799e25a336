"""Quality and CPU cost of the fomm-mini surrogates on held-out clips.

Protocol (the FOMM paper's reconstruction evaluation): for each validation clip (never
used in training), the source is the clip's first frame and each driving frame is a
later frame of the same clip; the model reconstructs the driving frame from the
source with absolute keypoints. We report the mean L1 distance on [0,1] pixels
against the "copy the source frame" baseline, per clip and overall (frame-weighted),
and the self-reconstruction L1 (each driving frame rebuilt from itself, no motion):
the part of the error the generator makes even when the motion is known exactly;
and the no-warp L1 (each driving frame through the generator's encoder and decoder
alone, no motion network): whether that part comes from the decoder or the motion field.
CPU time is one forward pass at batch 1 on one thread: the keypoint detector on the
source and on the driving frame plus the generator.

    .venv/bin/python -m lab.bench.fomm_quality --json bench/results/fomm_quality.json \
        --grid-dir bench/results

``--models NAME=DIR`` evaluates the newest training checkpoint of a run (its weight
average when it keeps one) instead of the shipped weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from lab.surrogates.data import VALIDATION_CLIPS, Clip, list_clips, load_clips, split_clips
from lab.surrogates.train.common import CheckpointStore
from lab.surrogates.train.fomm import final_weights
from lab.surrogates.train.fomm_losses import autoencode
from shield.adversarial.models.fomm import FOMM, FOMM_MINI_NAMES, FommConfig, freeze, load_fomm_mini
from shield.config import load_settings
from shield.tensors import to_tensor

log = logging.getLogger("bench.fomm_quality")
TARGET_L1 = 0.06


def _load(spec: str) -> tuple[str, FOMM]:
    name, _, run = spec.partition("=")
    if not run:
        return name, load_fomm_mini(name)
    state = CheckpointStore(Path(run)).load_latest()
    if state is None:
        raise SystemExit(f"{run}: no checkpoint")
    model = FOMM(FommConfig.from_dict(state["config"]))
    model.load_state_dict(final_weights(state))
    return f"{name}@{state['step']}", freeze(model)


def _frames(clip: Clip, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = np.unique(np.linspace(1, len(clip.frames) - 1, min(count, len(clip.frames) - 1)).round().astype(int))
    return to_tensor(clip.frames[:1]), to_tensor(clip.frames[idx])


@torch.no_grad()
def reconstruct(model: FOMM, source: torch.Tensor, driving: torch.Tensor, batch: int = 16) -> torch.Tensor:
    kp_s = model.keypoints(source)
    outs = []
    for i in range(0, len(driving), batch):
        d = driving[i : i + batch]
        n = len(d)
        kp_d = model.keypoints(d)
        kp_sn = type(kp_s)(kp_s.value.expand(n, -1, -1), kp_s.jacobian.expand(n, -1, -1, -1))
        outs.append(model.generate(source.expand(n, -1, -1, -1), kp_sn, kp_d))
    return torch.cat(outs)


@torch.no_grad()
def self_reconstruct(model: FOMM, frames: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Each frame rebuilt from itself (no motion): the generator's appearance floor."""
    outs = []
    for i in range(0, len(frames), batch):
        f = frames[i : i + batch]
        kp = model.keypoints(f)
        outs.append(model.generate(f, kp, kp))
    return torch.cat(outs)


@torch.no_grad()
def cpu_time(model: FOMM, runs: int) -> dict[str, float]:
    r = model.resolution
    src, drv = torch.rand(1, 3, r, r), torch.rand(1, 3, r, r)
    kp_times, gen_times = [], []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        kp_s, kp_d = model.keypoints(src), model.keypoints(drv)
        t1 = time.perf_counter()
        model.generate(src, kp_s, kp_d)
        t2 = time.perf_counter()
        if i:  # the first run warms up
            kp_times.append(t1 - t0)
            gen_times.append(t2 - t1)
    kp, gen = float(np.median(kp_times)), float(np.median(gen_times))
    return {"kp_detector_x2_ms": kp * 1e3, "generator_ms": gen * 1e3, "total_ms": (kp + gen) * 1e3}


def _grid(rows: list[np.ndarray], path: Path, scale: int = 2) -> None:
    from PIL import Image

    img = np.concatenate(rows, axis=0)
    Image.fromarray(img).resize((img.shape[1] * scale, img.shape[0] * scale), Image.Resampling.NEAREST).save(path)


def _strip(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy().transpose(1, 0, 2, 3).reshape(t.shape[2], -1, 3)


class ClipErrors(NamedTuple):
    source: torch.Tensor  # the clip's first frame, 1x3xHxW
    driving: torch.Tensor  # the frames rebuilt from it, Nx3xHxW
    pred: torch.Tensor  # the model's reconstruction of ``driving``
    l1: torch.Tensor  # per-frame L1 of ``pred``, N
    copy_source_l1: torch.Tensor  # per-frame L1 of copying ``source``, N


def clip_errors(model: FOMM, clip: Clip, frames: int) -> ClipErrors:
    """Same-clip reconstruction of up to ``frames`` frames of ``clip`` from its first frame, and its per-frame errors."""
    source, driving = _frames(clip, frames)
    pred = reconstruct(model, source, driving)
    return ClipErrors(source, driving, pred, (pred - driving).abs().mean(dim=(1, 2, 3)), (source - driving).abs().mean(dim=(1, 2, 3)))


def evaluate(name: str, model: FOMM, clips: list[Clip], frames: int, grid_dir: Path | None) -> dict[str, object]:
    per_clip = {}
    l1_all, base_all, self_all, no_warp_all, grid_rows = [], [], [], [], []
    for clip in clips:
        source, driving, pred, l1, base = clip_errors(model, clip, frames)
        itself = (self_reconstruct(model, driving) - driving).abs().mean(dim=(1, 2, 3))
        with torch.no_grad():
            no_warp = (autoencode(model, driving) - driving).abs().mean(dim=(1, 2, 3))
        no_warp_all.append(no_warp)
        l1_all.append(l1)
        base_all.append(base)
        self_all.append(itself)
        per_clip[clip.meta.name] = {
            "frames": len(driving),
            "synthetic": clip.meta.synthetic,
            "l1": float(l1.mean()),
            "copy_source_l1": float(base.mean()),
            "self_reconstruction_l1": float(itself.mean()),
            "no_warp_l1": float(no_warp.mean()),
        }
        pick = np.linspace(0, len(driving) - 1, 5).round().astype(int)
        grid_rows += [_strip(source.expand(5, -1, -1, -1)), _strip(driving[pick]), _strip(pred[pick])]
    l1_cat, base_cat = torch.cat(l1_all), torch.cat(base_all)
    if grid_dir is not None:
        _grid(grid_rows, grid_dir / f"fomm_quality_{name.split('@')[0]}.png")
    l1_mean, base_mean = float(l1_cat.mean()), float(base_cat.mean())
    return {
        "l1": l1_mean,
        "copy_source_l1": base_mean,
        "l1_clip_mean": float(np.mean([c["l1"] for c in per_clip.values()])),
        "copy_source_l1_clip_mean": float(np.mean([c["copy_source_l1"] for c in per_clip.values()])),
        "frames_better_than_copy": float((l1_cat < base_cat).float().mean()),
        "self_reconstruction_l1": float(torch.cat(self_all).mean()),
        "no_warp_l1": float(torch.cat(no_warp_all).mean()),
        "meets_target": l1_mean <= TARGET_L1 and l1_mean < base_mean,
        "per_clip": per_clip,
    }


@torch.no_grad()
def animation_grid(model: FOMM, clips: list[Clip], path: Path) -> None:
    """Cross-identity relative animation: each clip's first frame driven by the next clip."""
    rows = []
    for a, b in zip(clips, clips[1:] + clips[:1], strict=True):
        source = to_tensor(a.frames[:1])
        idx = np.linspace(0, len(b.frames) - 1, 5).round().astype(int)
        driving = to_tensor(b.frames[idx])
        out = model.animate(source, driving, relative=True, adapt_scale=True)
        rows += [_strip(source.expand(5, -1, -1, -1)), _strip(driving), _strip(out)]
    _grid(rows, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(FOMM_MINI_NAMES), help="shipped names, or NAME=RUN_DIR")
    p.add_argument("--frames", type=int, default=40, help="driving frames per clip (evenly spaced)")
    p.add_argument("--time-runs", type=int, default=20)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--grid-dir", type=Path, default=None)
    p.add_argument("--split", choices=("validation", "train"), default="validation",
                   help="train: every 4th training clip, to compare with the held-out figures (generalisation gap)")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    settings = load_settings()
    if settings.data_dir is None:
        raise SystemExit("needs the shared face data (SHIELD_DATA_DIR)")
    results: dict[str, object] = {}
    clip_names = list(VALIDATION_CLIPS)
    if ns.split == "train":
        clip_names = split_clips(p.stem for p in list_clips(settings.data_dir))[0][::4]
    for spec in ns.models:
        name, model = _load(spec)
        clips = load_clips(settings.data_dir, model.resolution, settings.home, names=clip_names)
        res = evaluate(name, model, clips, ns.frames, ns.grid_dir if ns.split == "validation" else None)
        res["cpu_forward_batch1_1thread"] = cpu_time(model, ns.time_runs)
        res["parameters"] = sum(p.numel() for p in model.parameters())
        results[name] = res
        log.info("%s: L1 %.4f vs copy-source %.4f (clip means %.4f vs %.4f), self-reconstruction %.4f, %.1f ms",
                 name, res["l1"], res["copy_source_l1"], res["l1_clip_mean"], res["copy_source_l1_clip_mean"], res["self_reconstruction_l1"],
                 res["cpu_forward_batch1_1thread"]["total_ms"])  # type: ignore[index]
        if ns.grid_dir is not None and ns.split == "validation" and name.startswith(FOMM_MINI_NAMES[0]):
            animation_grid(model, clips, ns.grid_dir / f"fomm_animation_{name.split('@')[0]}.png")
    doc = {
        "command": " ".join([".venv/bin/python", "-m", "lab.bench.fomm_quality", *(argv if argv is not None else sys.argv[1:])]),
        "protocol": "source = first frame, driving = later frames of the same clip, absolute keypoints; L1 on [0,1]; self-reconstruction: each driving frame from itself",
        "split": ns.split,
        "clips": clip_names,
        "target_l1": TARGET_L1,
        "torch_threads": 1,
        "load_average": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d"),
        "models": results,
    }
    if ns.json is not None:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
