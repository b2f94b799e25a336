"""Plumbing shared by the training scripts: seeding, loss log, checkpoints, run record.

A run directory holds ``ckpt-<step>.pt`` (the last :data:`KEEP` are kept), ``losses.jsonl``
(one JSON object per logged step) and ``run.json`` (command, data, seed, wall time).
Checkpoints are written atomically (temporary file then rename), so a run killed at
any moment, even with SIGKILL, resumes from the last complete checkpoint with its
model, optimizer, RNG states and step.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch

__all__ = [
    "KEEP",
    "seed_everything",
    "rng_state",
    "restore_rng_state",
    "LossLog",
    "CheckpointStore",
    "StopFlag",
    "RunRecord",
    "WeightAverage",
]

log = logging.getLogger(__name__)

#: Complete checkpoints kept in a run directory.
KEEP = 2
_CKPT = re.compile(r"^ckpt-(\d{8})\.pt$")


def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch; return the numpy generator the data sampler uses."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def rng_state(sampler: np.random.Generator) -> dict[str, Any]:
    """Every RNG state a resumed run needs to continue the same random stream."""
    return {
        "torch": torch.get_rng_state(),
        "python": json.dumps(random.getstate()),
        "sampler": json.dumps(sampler.bit_generator.state),
    }


def restore_rng_state(state: Mapping[str, Any], sampler: np.random.Generator) -> None:
    torch.set_rng_state(state["torch"])
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    sampler.bit_generator.state = json.loads(state["sampler"])


class LossLog:
    """Append-only JSON-lines log of losses (one object per line, flushed each write)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(dict(record), sort_keys=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line after a hard kill
        return rows

    def truncate_after(self, step: int) -> None:
        """Drop rows newer than ``step`` (they are redone after a resume)."""
        rows = [r for r in self.read() if int(r.get("step", 0)) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
        tmp.replace(self.path)


class CheckpointStore:
    """Atomic numbered checkpoints in one directory."""

    def __init__(self, directory: Path, keep: int = KEEP) -> None:
        self.directory = directory
        self.keep = keep
        directory.mkdir(parents=True, exist_ok=True)

    def steps(self) -> list[int]:
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _CKPT.match(p.name)))

    def path(self, step: int) -> Path:
        return self.directory / f"ckpt-{step:08d}.pt"

    def save(self, step: int, state: Mapping[str, Any]) -> Path:
        final = self.path(step)
        tmp = self.directory / f".ckpt-{step:08d}.{os.getpid()}.tmp"
        with tmp.open("wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(final)
        for old in self.steps()[: -self.keep]:
            self.path(old).unlink(missing_ok=True)
        return final

    def load_latest(self) -> dict[str, Any] | None:
        """The newest checkpoint that loads; a corrupt one is skipped with a warning."""
        for step in reversed(self.steps()):
            try:
                state: dict[str, Any] = torch.load(self.path(step), map_location="cpu", weights_only=True)
                return state
            except Exception as exc:  # a torn file: fall back to the previous one
                log.warning("checkpoint %s unreadable (%s), trying an older one", self.path(step).name, exc)
        return None


class WeightAverage:
    """Exponential moving average of a model's weights (parameters and float buffers).

    With a small batch the weights of the last step jitter around the optimum;
    the average over the last ``1 / (1 - decay)`` steps sits closer to it. Integer
    buffers (BatchNorm's ``num_batches_tracked``) are copied, not averaged.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for key, value in model.state_dict().items():
            average = self.weights[key]
            if average.is_floating_point():
                average.lerp_(value.detach(), 1.0 - self.decay)
            else:
                average.copy_(value)

    def load(self, weights: Mapping[str, torch.Tensor]) -> None:
        if weights.keys() != self.weights.keys():
            raise ValueError("averaged weights do not match the model's state dict")
        for key, value in weights.items():
            self.weights[key].copy_(value)


class StopFlag:
    """Set by SIGTERM/SIGINT; the loop checks it, saves a checkpoint and exits."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping after this step", signum)
        self.requested = True

    def install(self) -> StopFlag:
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


@dataclass
class RunRecord:
    """What produced a set of weights (``run.json``); wall time adds up over resumes."""

    command: list[str]
    seed: int
    config: dict[str, Any]
    train_clips: list[str]
    validation_clips: list[str]
    hyperparameters: dict[str, Any]
    steps: int = 0
    wall_time_s: float = 0.0
    sessions: list[dict[str, Any]] = field(default_factory=list)
    final_losses: dict[str, float] = field(default_factory=dict)
    environment: dict[str, str] = field(
        default_factory=lambda: {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "machine": platform.machine(),
        }
    )

    @staticmethod
    def path_in(directory: Path) -> Path:
        return directory / "run.json"

    def save(self, directory: Path) -> None:
        tmp = directory / "run.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        tmp.replace(self.path_in(directory))

    @classmethod
    def load(cls, directory: Path) -> RunRecord | None:
        path = cls.path_in(directory)
        if not path.is_file():
            return None
        return cls(**json.loads(path.read_text()))

    def begin_session(self, now: Callable[[], float] = time.time) -> None:
        self.sessions.append({"started": now(), "argv": list(sys.argv), "start_step": self.steps})
