"""Train a ``fomm-mini`` surrogate: ``python -m lab.surrogates.train.fomm --seed N --out DIR``.

Source and driving frames are two random frames of one training clip (the paper's
self-supervised reconstruction setting); the objective is in :mod:`.fomm_losses`.
The run stops at ``--steps`` or after ``--max-minutes`` of wall time in this session,
checkpoints every ``--ckpt-every`` steps and on SIGTERM/SIGINT, and resumes from the
newest checkpoint in ``--out`` when started again with the same arguments.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.surrogates.train.common import (
    CheckpointStore,
    LossLog,
    RunRecord,
    StopFlag,
    WeightAverage,
    restore_rng_state,
    rng_state,
    seed_everything,
)
from lab.surrogates.train.fomm_losses import DlibFeatures, FommObjective, LossWeights
from shield.adversarial.models.dlib_resnet import load_dlib_descriptor
from shield.adversarial.models.fomm import FOMM, FOMM_MINI, TINY, FommConfig

__all__ = ["CONFIGS", "TrainArgs", "Augment", "AUGMENTS", "PairSampler", "train", "final_weights", "main"]

log = logging.getLogger(__name__)

#: ``--config`` choices; ``tiny`` (:data:`shield.adversarial.models.fomm.TINY`, 32 px) for tests of the loop.
CONFIGS: dict[str, FommConfig] = {"mini": FOMM_MINI, "tiny": TINY}


@dataclass(frozen=True)
class TrainArgs:
    """Hyper-parameters of one run (recorded in run.json)."""

    seed: int
    out: Path
    config: str = "mini"
    batch: int = 8
    lr: float = 2e-4
    steps: int = 100_000
    max_minutes: float = 75.0
    ckpt_every: int = 100
    log_every: int = 10
    threads: int = 1
    ssim: float = 0.0
    augment: str = "flip"
    ema: float = 0.0  # decay of the weight average; 0: none
    stills: str = "none"  # training photos added as still "clips": none, portraits, all (see main)
    scales: tuple[float, ...] = LossWeights.scales  # pyramid levels of the L1 term
    autoencode: float = 0.0  # weight of the no-warp rebuild term, relative to the reconstruction
    perceptual: float = 0.0  # weight of the dlib-feature term, relative to the reconstruction


@dataclass(frozen=True)
class Augment:
    """Random changes to a (source, driving) pair, drawn per pair.

    The clips hold few people and little camera motion, so a model trained on them
    alone learns their faces and their motions; these widen both. ``flip``: shared
    horizontal flip. ``color``: probability of one brightness/contrast/saturation
    change applied to both frames (a new "person" under new light). ``move``:
    probability of a random similarity warp of the *source* only (rotation up to
    ``rotate_deg``, scale in 1 +- ``zoom``, shift up to ``shift`` of the width), so the
    model must undo head motion it never saw; the driving frame, the target, is
    always a real frame.
    """

    flip: float = 0.5
    color: float = 0.0
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.2
    move: float = 0.0
    rotate_deg: float = 10.0
    zoom: float = 0.1
    shift: float = 0.08


#: Flips only (the setting of the first sessions of the shipped runs).
FLIP_ONLY = Augment()
#: Flips, colour and source motion.
FULL = Augment(color=0.8, move=0.5)
AUGMENTS: dict[str, Augment] = {"flip": FLIP_ONLY, "full": FULL}
#: Choices of ``--stills``.
STILLS = ("none", "portraits", "all")


class PairSampler:
    """Random (source, driving) frame pairs from the same clip, augmented per pair.

    Args:
        clips: list of (T, R, R, 3) uint8 arrays (training clips only).
        rng: numpy generator (its state is checkpointed).
        augment: what to vary (see :class:`Augment`).
        weights: relative chance of drawing each clip; None: all equal.
    """

    def __init__(
        self, clips: Sequence[np.ndarray], rng: np.random.Generator, augment: Augment = FLIP_ONLY, weights: Sequence[float] | None = None
    ) -> None:
        if weights is not None and len(weights) != len(clips):
            raise ValueError(f"{len(weights)} weights for {len(clips)} clips")
        keep = [k for k, c in enumerate(clips) if len(c) >= 2]
        if not keep:
            raise ValueError("need at least one clip with two frames")
        self.clips = [clips[k] for k in keep]
        self.chances: np.ndarray | None = None
        if weights is not None:
            w = np.array([weights[k] for k in keep], dtype=np.float64)
            if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
                raise ValueError("clip weights must be finite, >= 0 and not all 0")
            self.chances = w / w.sum()
        self.rng = rng
        self.augment = augment

    def _pick(self) -> np.ndarray:
        if self.chances is None:
            return self.clips[int(self.rng.integers(len(self.clips)))]
        return self.clips[int(self.rng.choice(len(self.clips), p=self.chances))]

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        from shield.tensors import to_tensor

        src, drv = [], []
        for _ in range(size):
            clip = self._pick()
            i, j = self.rng.choice(len(clip), size=2, replace=False)
            a, b = clip[i], clip[j]
            if self.rng.random() < self.augment.flip:
                a, b = a[:, ::-1], b[:, ::-1]
            src.append(a)
            drv.append(b)
        source, driving = to_tensor(np.stack(src)), to_tensor(np.stack(drv))
        for k in range(size):
            source[k], driving[k] = self._color(source[k], driving[k])
        return self._move(source), driving

    def _color(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        aug = self.augment
        if not self.rng.random() < aug.color:
            return a, b
        gain = 1 + self.rng.uniform(-aug.brightness, aug.brightness)
        contrast = 1 + self.rng.uniform(-aug.contrast, aug.contrast)
        saturation = 1 + self.rng.uniform(-aug.saturation, aug.saturation)
        mean = a.mean()  # one reference level for both frames keeps them consistent

        def change(x: torch.Tensor) -> torch.Tensor:
            x = (x - mean) * contrast + mean * gain
            gray = x.mean(dim=0, keepdim=True)
            return (gray + (x - gray) * saturation).clamp(0, 1)

        return change(a), change(b)

    def _move(self, images: torch.Tensor) -> torch.Tensor:
        aug = self.augment
        n = images.shape[0]
        theta = torch.eye(2, 3).repeat(n, 1, 1)
        moved = False
        for k in range(n):
            if not self.rng.random() < aug.move:
                continue
            angle = np.deg2rad(self.rng.uniform(-aug.rotate_deg, aug.rotate_deg))
            scale = 1 + self.rng.uniform(-aug.zoom, aug.zoom)
            tx, ty = self.rng.uniform(-2 * aug.shift, 2 * aug.shift, size=2)  # normalised coordinates span 2
            c, s = np.cos(angle) / scale, np.sin(angle) / scale
            theta[k] = torch.tensor([[c, -s, tx], [s, c, ty]], dtype=torch.float32)
            moved = True
        if not moved:
            return images
        grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
        return torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _state(
    model: FOMM, opt: torch.optim.Optimizer, step: int, wall: float, sampler: PairSampler, average: WeightAverage | None
) -> dict[str, object]:
    state: dict[str, object] = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "wall_time_s": wall,
        "rng": rng_state(sampler.rng),
        "config": model.config.to_dict(),
    }
    if average is not None:
        state["ema"] = average.weights
        state["ema_decay"] = average.decay
    return state


def final_weights(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint stands for: the weight average when the run kept one."""
    weights: dict[str, torch.Tensor] = state.get("ema", state["model"])
    return weights


def train(
    args: TrainArgs,
    clips: Sequence[np.ndarray],
    record: RunRecord,
    *,
    clock: Callable[[], float] = time.monotonic,
    stop: StopFlag | None = None,
    weights: Sequence[float] | None = None,
) -> RunRecord:
    """Run (or resume) training in ``args.out``; returns the updated run record.

    ``weights``: relative chance of drawing each of ``clips`` (see :class:`PairSampler`).
    """
    torch.set_num_threads(args.threads)
    config = CONFIGS[args.config]
    rng = seed_everything(args.seed)
    # channels-last convolutions run about 1.3x faster on CPU (oneDNN); same arithmetic.
    model = FOMM(config).train()
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # in place; torch's stubs omit the keyword
    features = DlibFeatures(load_dlib_descriptor()) if args.perceptual > 0 else None
    loss_weights = LossWeights(ssim=args.ssim, scales=args.scales, autoencode=args.autoencode, perceptual=args.perceptual)
    objective = FommObjective(model, loss_weights, features)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.5, 0.999))
    sampler = PairSampler(clips, rng, AUGMENTS[args.augment], weights)
    store = CheckpointStore(args.out)
    losses = LossLog(args.out / "losses.jsonl")
    step, wall_before = 0, 0.0
    state = store.load_latest()
    average: WeightAverage | None = None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # the learning rate of this session wins (step decay by restart)
            group["lr"] = args.lr
        restore_rng_state(state["rng"], rng)
        step, wall_before = int(state["step"]), float(state["wall_time_s"])
        losses.truncate_after(step)
        log.info("resumed at step %d", step)
    if args.ema > 0:
        # An average carried over from the checkpoint goes on; otherwise it starts here.
        average = WeightAverage(model, args.ema)
        if state is not None and "ema" in state:
            average.load(state["ema"])
    record.begin_session()
    record.sessions[-1].update(
        lr=args.lr, augment=args.augment, ema=args.ema, stills=args.stills, scales=list(args.scales), autoencode=args.autoencode,
        perceptual=args.perceptual,
    )
    start = clock()
    stop = stop or StopFlag()
    saved_step = step
    last: dict[str, float] = {}
    while step < args.steps and not stop.requested and (clock() - start) < args.max_minutes * 60:
        source, driving = (t.contiguous(memory_format=torch.channels_last) for t in sampler.batch(args.batch))
        terms = objective(source, driving)
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        if average is not None:
            average.update(model)
        step += 1
        last = {name: float(getattr(terms, name).detach()) for name in terms._fields}
        if step % args.log_every == 0:
            losses.write({"step": step, "wall_time_s": round(wall_before + clock() - start, 2), **last})
        if step % args.ckpt_every == 0:
            store.save(step, _state(model, opt, step, wall_before + clock() - start, sampler, average))
            saved_step = step
            record.steps, record.wall_time_s, record.final_losses = step, wall_before + clock() - start, last
            record.save(args.out)
    if step != saved_step:
        store.save(step, _state(model, opt, step, wall_before + clock() - start, sampler, average))
    record.steps, record.wall_time_s = step, wall_before + clock() - start
    if last:
        record.final_losses = last
    record.sessions[-1]["end_step"] = step
    record.save(args.out)
    log.info("stopped at step %d after %.0f s in total", step, record.wall_time_s)
    return record


def _parse_scales(text: str) -> tuple[float, ...] | None:
    """"1,0.5" -> (1.0, 0.5); None when empty, not numbers, or outside (0, 1]."""
    try:
        scales = tuple(float(part) for part in text.split(","))
    except ValueError:
        return None
    if not all(0.0 < x <= 1.0 for x in scales):  # also refuses nan
        return None
    return scales


def _parse(argv: Sequence[str] | None) -> tuple[TrainArgs, argparse.Namespace]:
    p = argparse.ArgumentParser(description="Train a fomm-mini surrogate.")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", choices=sorted(CONFIGS), default="mini")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--max-minutes", type=float, default=75.0)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ssim", type=float, default=0.0, help="weight of (1 - SSIM); 0 disables it")
    p.add_argument("--augment", choices=sorted(AUGMENTS), default="flip", help="pair augmentation (see Augment)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.999); "
                        "it is what gets exported; 0 disables it")  # fmt: skip
    p.add_argument("--stills", nargs="?", choices=STILLS, default="none", const="portraits",
                   help="also train on still photos of the shared data: 'portraits' (the default when given alone: "
                        "liveportrait_*, photos of validation people excluded) or 'all' (also the labelled deepface_* "
                        "photos, people of the protection benchmark excluded)")  # fmt: skip
    p.add_argument("--scales", default=",".join(str(x) for x in LossWeights.scales),
                   help="comma-separated pyramid levels of the L1 reconstruction term, each in (0, 1] "
                        "(e.g. 1 for the full-resolution L1 alone)")  # fmt: skip
    p.add_argument("--autoencode", type=float, default=0.0,
                   help="weight, relative to the reconstruction term, of an L1 term on the generator's rebuild of the "
                        "driving frame with no warp (teaches the decoder to keep detail); 0 disables it")  # fmt: skip
    p.add_argument("--perceptual", type=float, default=0.0,
                   help="weight, relative to the reconstruction term, of an L1 term on features of dlib's face "
                        "descriptor network (the released weights, frozen) between prediction and driving frame; "
                        "0 disables it")  # fmt: skip
    p.add_argument("--data-dir", type=Path, default=None, help="shared data folder (default: settings)")
    p.add_argument("--home", type=Path, default=None, help="frame cache home (default: settings)")
    ns = p.parse_args(argv)
    if not 0.0 <= ns.ema < 1.0:
        p.error(f"--ema must be in [0, 1), got {ns.ema}")
    if not 0.0 <= ns.autoencode < float("inf"):  # also refuses nan
        p.error(f"--autoencode must be a finite weight >= 0, got {ns.autoencode}")
    if not 0.0 <= ns.perceptual < float("inf"):
        p.error(f"--perceptual must be a finite weight >= 0, got {ns.perceptual}")
    scales = _parse_scales(ns.scales)
    if scales is None:
        p.error(f"--scales must be comma-separated numbers in (0, 1], got {ns.scales!r}")
    args = TrainArgs(
        seed=ns.seed, out=ns.out, config=ns.config, batch=ns.batch, lr=ns.lr, steps=ns.steps, max_minutes=ns.max_minutes,
        ckpt_every=ns.ckpt_every, log_every=ns.log_every, threads=ns.threads, ssim=ns.ssim, augment=ns.augment, ema=ns.ema, stills=ns.stills,
        scales=scales, autoencode=ns.autoencode, perceptual=ns.perceptual,
    )  # fmt: skip
    return args, ns


def main(argv: Sequence[str] | None = None) -> int:
    from lab.surrogates.data import load_clips, load_stills, split_clips
    from shield.config import load_settings
    from shield.errors import ConfigError

    args, ns = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    data_dir = ns.data_dir or settings.data_dir
    if data_dir is None:
        raise ConfigError("no face data folder", fix="set SHIELD_DATA_DIR or pass --data-dir")
    home = ns.home or settings.home
    config = CONFIGS[args.config]
    from lab.surrogates.data import list_clips

    train_names, val_names = split_clips(p.stem for p in list_clips(data_dir))
    frames = [c.frames for c in load_clips(data_dir, config.resolution, home, names=train_names)]
    weights: list[float] | None = None
    if args.stills != "none":
        # Each photo is a clip of two identical frames: half its pairs teach the
        # generator to rebuild a face it never saw, the other half (with --augment full)
        # to undo the random source warp.
        portraits = load_stills(data_dir, config.resolution)
        labelled = load_stills(data_dir, config.resolution, "labelled") if args.stills == "all" else []
        stills = portraits + labelled
        if labelled:
            # The photos together are drawn as often as the portraits alone would
            # be: more faces, not fewer video pairs.
            weights = [1.0] * len(frames) + [len(portraits) / len(stills)] * len(stills)
        log.info("%d still photos, drawn in %.0f%% of the pairs", len(stills), 100 * len(portraits) / (len(frames) + len(portraits)))
        frames += [np.stack([still, still]) for still in stills]
    args.out.mkdir(parents=True, exist_ok=True)
    record = RunRecord.load(args.out) or RunRecord(
        command=[sys.executable, "-m", "lab.surrogates.train.fomm", *(argv if argv is not None else sys.argv[1:])],
        seed=args.seed,
        config=config.to_dict(),
        train_clips=train_names,
        validation_clips=val_names,
        hyperparameters={k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(args).items()},
    )
    stop = StopFlag().install()
    try:
        train(args, frames, record, stop=stop, weights=weights)
    finally:
        stop.uninstall()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
