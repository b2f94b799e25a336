"""Quality of the shipped faceswap-ae surrogate on held-out frames (issue 5, quality bar).

For every validation chip (the held-out tail of each identity's clip, never
trained on) the swap output (encode, decode with the *other* identity's decoder)
is upsampled to a 150 px dlib chip and described with dlib's own face descriptor
(``dlib_face_recognition_resnet_model_v1.dat``). The swap counts as a success
when that descriptor is closer to the target identity (mean descriptor of the
target's training chips) than to the source identity. Also reported:
reconstruction L1 on validation chips, the same identity test on the
unswapped validation chips (a sanity reference), and CPU forward time.

    .venv/bin/python -m lab.bench.faceswap_quality --json bench/results/faceswap_quality.json \\
        --grid bench/results/faceswap_quality.png
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lab.surrogates.faceswap_data import IdentitySplit, dlib_model_path, load_identity
from shield.adversarial.models import FaceSwapAE, load_faceswap_ae
from shield.config import load_settings

log = logging.getLogger("bench.faceswap_quality")
DESCRIPTOR_CHIP = 150


def _tensor(chips: np.ndarray, res: int) -> torch.Tensor:
    t = torch.from_numpy(chips).permute(0, 3, 1, 2).float().div(255.0)
    return F.interpolate(t, size=(res, res), mode="area")


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()


class _Describer:
    """dlib's 128-d descriptor of aligned chips (upsampled to 150 px, bicubic)."""

    def __init__(self) -> None:
        import dlib

        self.net = dlib.face_recognition_model_v1(str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")))

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        side = (DESCRIPTOR_CHIP, DESCRIPTOR_CHIP)
        big = [np.asarray(Image.fromarray(c).resize(side, Image.Resampling.BICUBIC)) for c in chips]
        return np.asarray(self.net.compute_face_descriptor(big), dtype=np.float64)


def _identity_test(desc: np.ndarray, target: np.ndarray, source: np.ndarray) -> dict[str, float]:
    d_t = np.linalg.norm(desc - target, axis=1)
    d_s = np.linalg.norm(desc - source, axis=1)
    return {
        "closer_to_target_rate": float(np.mean(d_t < d_s)),
        "target_match_rate_0.6": float(np.mean(d_t < 0.6)),
        "mean_dist_to_target": float(d_t.mean()),
        "mean_dist_to_source": float(d_s.mean()),
        "frames": int(len(desc)),
    }


@torch.no_grad()
def _forward_ms(model: FaceSwapAE, runs: int) -> float:
    x = torch.rand(1, 3, model.resolution, model.resolution)
    model.swap(x, 1)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.swap(x, 1)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _grid(rows: list[np.ndarray], path: Path) -> None:
    """rows of (N,R,R,3) uint8 -> one PNG, each row one strip, upscaled x2 for viewing."""
    strip = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    img = Image.fromarray(strip)
    img.resize((img.width * 2, img.height * 2), Image.Resampling.NEAREST).save(path)


def _references(
    describe: _Describer, splits: list[IdentitySplit], ref_every: int, res: int, cache: Path
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Identity means (training chips) and descriptors of the unswapped validation chips.

    Neither depends on the model, so they are cached (keyed by identities, counts and stride).
    """
    key = "-".join(f"{s.identity}{len(s.train)}x{len(s.val)}" for s in splits) + f"-r{ref_every}-{res}"
    path = cache / f"descriptors-{key}.npz"
    if path.is_file():
        with np.load(path) as npz:
            return [npz[f"mean{i}"] for i in range(len(splits))], [npz[f"val{i}"] for i in range(len(splits))]
    means = [describe(s.train[::ref_every]).mean(axis=0) for s in splits]
    vals = [describe(_uint8(_tensor(s.val, res))) for s in splits]
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"mean{i}": m for i, m in enumerate(means)} | {f"val{i}": v for i, v in enumerate(vals)}
    np.savez(path, **arrays)
    return means, vals


def run(
    model: FaceSwapAE, splits: list[IdentitySplit], ref_every: int, grid: Path | None, cache: Path
) -> dict[str, object]:
    describe = _Describer()
    res = model.resolution
    means, val_desc = _references(describe, splits, ref_every, res, cache)
    result: dict[str, object] = {"identities": [s.identity for s in splits], "directions": {}, "reconstruction_l1": {}}
    rows: list[np.ndarray] = []
    for src, split in enumerate(splits):
        dst = 1 - src
        x = _tensor(split.val, res)
        with torch.no_grad():
            swapped = torch.cat([model.swap(b, dst) for b in x.split(64)])
            recon = torch.cat([model.swap(b, src) for b in x.split(64)])
        name = f"{split.identity}->{splits[dst].identity}"
        test = _identity_test(describe(_uint8(swapped)), means[dst], means[src])
        test["unswapped_reference_closer_to_source_rate"] = _identity_test(
            val_desc[src], means[src], means[dst]
        )["closer_to_target_rate"]
        result["directions"][name] = test  # type: ignore[index]
        result["reconstruction_l1"][split.identity] = float((recon - x).abs().mean())  # type: ignore[index]
        pick = np.linspace(0, len(x) - 1, 8).astype(int)
        rows += [_uint8(x[pick]), _uint8(swapped[pick]), _uint8(recon[pick])]
    rates = [d["closer_to_target_rate"] for d in result["directions"].values()]  # type: ignore[attr-defined]
    result["closer_to_target_rate_min"] = min(rates)
    result["meets_bar_0.70"] = bool(min(rates) >= 0.70)
    if grid is not None:
        _grid(rows, grid)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="faceswap-ae .pt (default: shipped)")
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--grid", type=Path, default=None)
    p.add_argument("--ref-every", type=int, default=6, help="use every n-th training chip for the identity means")
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    torch.set_num_threads(1)
    settings = load_settings()
    if settings.data_dir is None:
        log.error("needs the shared face data (SHIELD_DATA_DIR)")
        return 2
    model = load_faceswap_ae(weights=args.weights)
    splits = [load_identity(settings.data_dir, settings.home, name) for name in model.identities]
    result = run(model, splits, args.ref_every, args.grid, settings.home / "cache" / "faceswap")
    meta = json.loads((args.weights or Path(model_path())).with_suffix(".json").read_text())
    result.update(
        command=" ".join(["python", *sys.argv]),
        weights_sha256=meta["sha256"],
        training_steps=meta["training"]["steps"],
        resolution=model.resolution,
        reference_chips_per_identity=[len(s.train[:: args.ref_every]) for s in splits],
        forward_ms_cpu_1thread_batch1=round(_forward_ms(model, args.runs), 2),
        params=sum(p.numel() for p in model.parameters()),
        date=time.strftime("%Y-%m-%d"),
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    log.info("%s", json.dumps(result, indent=2))
    return 0


def model_path() -> Path:
    from shield.adversarial.models.autoencoder import FACESWAP_AE_WEIGHTS

    return FACESWAP_AE_WEIGHTS


if __name__ == "__main__":
    raise SystemExit(main())
