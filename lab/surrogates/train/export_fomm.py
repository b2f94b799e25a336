"""Export trained fomm-mini runs to the shipped weights folder.

``python -m lab.surrogates.train.export_fomm --run NAME=DIR [--run NAME=DIR ...]``
writes ``shield/adversarial/weights/<NAME>.pt`` (fp16 parameters) from the newest
checkpoint of each run (its weight average when the run kept one), and
``fomm-mini.json`` describing every exported model: its config, training record
(command, seed, data, steps, wall time, final losses) and the SHA-256 of the weights file.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lab.surrogates.train.common import CheckpointStore, RunRecord
from lab.surrogates.train.fomm import final_weights
from shield.adversarial.models.fomm import FOMM, FOMM_MINI_NAMES, FommConfig, save_fomm_mini, weights_path
from shield.adversarial.zoo.registry import FOMM_MINI_INDEX
from shield.errors import InputError
from shield.imaging.hashing import file_sha256

__all__ = ["export_run", "main"]

log = logging.getLogger(__name__)


def export_run(run_dir: Path, out: Path) -> dict[str, Any]:
    """Write the newest checkpoint of ``run_dir`` to ``out``; return its index entry."""
    state = CheckpointStore(run_dir).load_latest()
    if state is None:
        raise InputError(f"{run_dir}: no checkpoint to export")
    model = FOMM(FommConfig.from_dict(state["config"]))
    model.load_state_dict(final_weights(state))
    save_fomm_mini(model.eval(), out)
    record = RunRecord.load(run_dir)
    return {
        "file": out.name,
        "sha256": file_sha256(out),
        "bytes": out.stat().st_size,
        "storage": "fp16 parameters, fp32 buffers",
        "resolution": model.resolution,
        "config": model.config.to_dict(),
        "checkpoint_step": int(state["step"]),
        "weights": f"moving average, decay {state['ema_decay']}" if "ema" in state else "last step",
        "training": asdict(record) if record is not None else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Export fomm-mini runs to shipped weights.")
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR, e.g. fomm-mini-a=.shield/train/fomm-mini-a")
    ns = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    index_path = FOMM_MINI_INDEX
    index: dict[str, Any] = json.loads(index_path.read_text()) if index_path.is_file() else {}
    index.setdefault("models", {})
    index["description"] = (
        "FOMM surrogates at reduced width (64x64 faces), trained by the project on the shared face clips; "
        "fomm-mini-a is attacked by the protection, fomm-mini-b is held out to measure transfer."
    )
    for spec in ns.run:
        name, _, run = spec.partition("=")
        if name not in FOMM_MINI_NAMES or not run:
            raise InputError(f"--run {spec!r}: expected NAME=DIR with NAME in {FOMM_MINI_NAMES}")
        entry = export_run(Path(run), weights_path(name))
        index["models"][name] = entry
        log.info("%s: step %d, %d bytes, sha256 %s", name, entry["checkpoint_step"], entry["bytes"], entry["sha256"])
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
