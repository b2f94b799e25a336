"""Training of the ``faceswap-ae`` surrogate (classic autoencoder face swap).

Recipe (faceswap "original" model): each step draws a batch of aligned chips of
each identity, applies the same random affine transform (rotation, scale,
shift, mirror) to input and target and an extra smooth random warp to the input
only, and trains the shared encoder with each identity's decoder to undo the
warp: loss = L1 + (1 - SSIM)/2 per identity. The warp forces the code to carry
pose and expression rather than pixels, which is what makes the swap work.

The run is seeded and resumable: an atomic checkpoint (model, optimiser, RNG,
step, accumulated wall time) is written every ``--checkpoint-every`` steps and on
SIGTERM/SIGINT; a restarted run (even after ``kill -9``) continues from the last
checkpoint with the same data order. Losses go to ``losses.jsonl`` (one JSON
object per logged step), and ``run.json`` records the command, data, seed and
wall time.

Usage::

    python -m lab.surrogates.train.faceswap train --out .shield/train/faceswap-ae
    python -m lab.surrogates.train.faceswap export --out .shield/train/faceswap-ae \\
        --weights shield/adversarial/weights
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from lab.surrogates.faceswap_data import DEFAULT_CLIPS, IdentitySplit, load_identity
from shield.adversarial.metrics import ssim
from shield.adversarial.models.autoencoder import FaceSwapAE, FaceSwapAEConfig
from shield.imaging.hashing import file_sha256

__all__ = ["TrainOptions", "train", "export", "augment", "main"]

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
LOSSES = "losses.jsonl"
RECORD = "run.json"


@dataclass(frozen=True)
class TrainOptions:
    """Hyperparameters of one run (all recorded in ``run.json``)."""

    out: Path
    clips: tuple[str, ...] = DEFAULT_CLIPS
    resolution: int = 64
    width: int = 32
    latent: int = 512
    batch: int = 16
    lr: float = 1e-4
    steps: int = 100_000
    max_seconds: float = math.inf
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 10
    val_every: int = 500
    warp: float = 0.04


# ---------------------------------------------------------------- losses ---------


def _recon_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (out - target).abs().mean() + (1.0 - ssim(out, target).mean()) / 2


# ----------------------------------------------------------- augmentation ---------


def augment(
    chips: torch.Tensor, resolution: int, gen: torch.Generator, warp: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random affine (+ warp for the input) resampling of chips to ``resolution``.

    Args:
        chips: (B,3,S,S) float chips in [0,1] (S >= resolution).
        resolution: output side.
        gen: the run's random generator.
        warp: std of the smooth random displacement, in normalised [-1,1] units.

    Returns:
        (warped input, target), both (B,3,resolution,resolution) in [0,1].
    """
    b = chips.shape[0]
    u = torch.rand(b, 5, generator=gen)
    angle = (u[:, 0] - 0.5) * 2 * math.radians(10)
    scale = 1.0 + (u[:, 1] - 0.5) * 0.1
    shift = (u[:, 2:4] - 0.5) * 0.1
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, [b, 3, resolution, resolution], align_corners=False)
    coarse = torch.randn(b, 2, 5, 5, generator=gen) * warp
    coarse[:, :, [0, -1], :] = 0
    coarse[:, :, :, [0, -1]] = 0
    field = F.interpolate(coarse, size=(resolution, resolution), mode="bicubic", align_corners=True)
    target = F.grid_sample(chips, grid, mode="bilinear", padding_mode="border", align_corners=False)
    warped = F.grid_sample(
        chips, grid + field.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border", align_corners=False
    )
    return warped.clamp(0, 1), target.clamp(0, 1)


def _center(chips: torch.Tensor, resolution: int) -> torch.Tensor:
    return F.interpolate(chips, size=(resolution, resolution), mode="area")


# ------------------------------------------------------------- checkpoint ---------


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _atomic_json(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _trim_log(path: Path, step: int) -> None:
    """Drop loss lines written after the checkpoint being resumed (they will be redone)."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                keep.append(line)
        except (ValueError, KeyError):
            continue  # a line torn by a kill is dropped
    path.write_text("".join(k + "\n" for k in keep))


def _to_tensor(chips: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(chips).permute(0, 3, 1, 2).float().div_(255.0)


# ------------------------------------------------------------------ train ---------


def train(
    opts: TrainOptions,
    splits: list[IdentitySplit],
    *,
    command: list[str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Train (or resume) a faceswap-ae run in ``opts.out``; returns the run record.

    Args:
        opts: hyperparameters; ``opts.out`` holds checkpoint, loss log and record.
        splits: one train/validation split per identity, in decoder order.
        command: the command line recorded in ``run.json``.
        clock: monotonic seconds (injected for tests).
    """
    opts.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(opts.seed)
    cfg = FaceSwapAEConfig(opts.resolution, opts.width, opts.latent, tuple(s.identity for s in splits))
    model = FaceSwapAE(cfg)
    optim = torch.optim.Adam(model.parameters(), lr=opts.lr, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(opts.seed)
    step, wall = 0, 0.0
    ckpt_path = opts.out / CHECKPOINT
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        gen.set_state(state["rng"])
        step, wall = int(state["step"]), float(state["wall_seconds"])
        log.info("resuming from step %d", step)
    _trim_log(opts.out / LOSSES, step)
    train_t = [_to_tensor(s.train) for s in splits]
    val_t = [_center(_to_tensor(s.val[:: max(1, len(s.val) // 64)]), opts.resolution) for s in splits]

    stop = {"flag": False}

    def _on_signal(signum: int, _frame: object) -> None:
        stop["flag"] = True

    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    record: dict[str, Any] = {}

    def _checkpoint() -> None:
        _atomic_save(
            {"model": model.state_dict(), "optim": optim.state_dict(), "rng": gen.get_state(),
             "step": step, "wall_seconds": wall, "config": cfg.to_json()},
            ckpt_path,
        )
        record.update(_record(opts, cfg, splits, step, wall, command))
        _atomic_json(record, opts.out / RECORD)

    started = clock()
    base_wall = wall
    try:
        with (opts.out / LOSSES).open("a") as losses:
            while step < opts.steps and not stop["flag"] and wall - base_wall < opts.max_seconds:
                model.train()
                terms = []
                for ident, chips in enumerate(train_t):
                    idx = torch.randint(len(chips), (opts.batch,), generator=gen)
                    x, y = augment(chips[idx], opts.resolution, gen, opts.warp)
                    terms.append(_recon_loss(model.swap(x, ident), y))
                loss = torch.stack(terms).sum()
                optim.zero_grad(set_to_none=True)
                loss.backward()
                optim.step()
                step += 1
                wall = base_wall + (clock() - started)
                if step % opts.log_every == 0:
                    entry: dict[str, Any] = {"step": step, "wall_s": round(wall, 1),
                                             "loss": [round(float(t.detach()), 5) for t in terms]}
                    if step % opts.val_every == 0:
                        entry["val_l1"] = _val_l1(model, val_t)
                    losses.write(json.dumps(entry) + "\n")
                    losses.flush()
                if step % opts.checkpoint_every == 0:
                    _checkpoint()
        _checkpoint()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return record


@torch.no_grad()
def _val_l1(model: FaceSwapAE, val: list[torch.Tensor]) -> list[float]:
    model.eval()
    out = [round(float((model.swap(v, i) - v).abs().mean()), 5) for i, v in enumerate(val)]
    model.train()
    return out


def _record(
    opts: TrainOptions, cfg: FaceSwapAEConfig, splits: list[IdentitySplit], step: int, wall: float,
    command: list[str] | None,
) -> dict[str, Any]:
    return {
        "model": "faceswap-ae",
        "command": command or [],
        "seed": opts.seed,
        "config": cfg.to_json(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(opts).items()
                    if k not in ("max_seconds",)},
        "data": [
            {"clip": f"videos/{s.identity}.mp4", "train_frames": [int(s.train_frames.min()), int(s.train_frames.max())],
             "train_count": int(len(s.train)), "val_frames": [int(s.val_frames.min()), int(s.val_frames.max())],
             "val_count": int(len(s.val))}
            for s in splits
        ],
        "steps": step,
        "wall_seconds": round(wall, 1),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# ----------------------------------------------------------------- export ---------


def export(run_dir: Path, weights_dir: Path, name: str = "faceswap-ae") -> Path:
    """Write ``<name>.pt`` (fp16 state_dict) and ``<name>.json`` (config, record, SHA-256).

    Returns the path of the weights file.
    """
    state = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    record = json.loads((run_dir / RECORD).read_text())
    weights_dir.mkdir(parents=True, exist_ok=True)
    pt = weights_dir / f"{name}.pt"
    half = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    _atomic_save(half, pt)
    digest = file_sha256(pt)
    meta = {
        "name": name,
        "architecture": "shield.adversarial.models.autoencoder.FaceSwapAE",
        "config": state["config"],
        "identities": state["config"]["identities"],
        "storage": "float16 state_dict",
        "sha256": digest,
        "training": record,
    }
    _atomic_json(meta, weights_dir / f"{name}.json")
    return pt


# ------------------------------------------------------------------- main ---------


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab.surrogates.train.faceswap")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train or resume a run")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--clips", nargs=2, default=list(DEFAULT_CLIPS))
    for name, kind in (("resolution", int), ("width", int), ("latent", int), ("batch", int), ("lr", float),
                       ("steps", int), ("max-seconds", float), ("seed", int), ("checkpoint-every", int),
                       ("val-every", int), ("warp", float)):
        t.add_argument(f"--{name}", type=kind, default=getattr(TrainOptions, name.replace("-", "_")))
    t.add_argument("--threads", type=int, default=1)
    e = sub.add_parser("export", help="export fp16 weights of a run")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--weights", type=Path, required=True)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see module docstring)."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.cmd == "export":
        log.info("wrote %s", export(args.out, args.weights))
        return 0
    torch.set_num_threads(args.threads)
    from shield.config import load_settings
    from shield.errors import ConfigError

    settings = load_settings()
    if settings.data_dir is None:
        raise ConfigError("the shared face data folder was not found", fix="set SHIELD_DATA_DIR")
    splits = [load_identity(settings.data_dir, settings.home, c) for c in args.clips]
    opts = TrainOptions(
        out=args.out, clips=tuple(args.clips), resolution=args.resolution, width=args.width, latent=args.latent,
        batch=args.batch, lr=args.lr, steps=args.steps, max_seconds=args.max_seconds, seed=args.seed,
        checkpoint_every=args.checkpoint_every, val_every=args.val_every, warp=args.warp,
    )
    rec = train(opts, splits, command=["python", "-m", "lab.surrogates.train.faceswap", *sys.argv[1:]])
    log.info("stopped at step %d after %.0f s", rec["steps"], rec["wall_seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
