"""How much can the shipped surrogates be disrupted at all? A white-box upper bound.

The surrogate harness (`lab.bench.surrogate_harness`) measures the whole pipeline: a perturbation of the full
photo, seen by each model through its aligned crop. This benchmark removes every
handicap of that pipeline to find the ceiling the models themselves allow: PGD acts
directly on the model's own input (the 64 px FOMM crop, the face-swap chip), with an
L-inf budget ``eps`` at the model's resolution, 40 steps, step eps/8, random start, no
transformations, maximising the MSE between the deepfake from the perturbed input and
the one from the clean input (Ruiz et al. 2020). The disruption criterion is the
harness's: MSE on [-1,1] >= 0.05.

Inputs never used in training: FOMM sources are the first and middle frame of each
validation clip, animated by every validation clip (relative motion, adapted scale;
12 frames each) with ``fomm-mini-a`` (attacked) and ``fomm-mini-b`` (transfer); swap
inputs are validation chips of each identity of ``faceswap-ae``, swapped into every
other identity.

"Gain" is RMS(output change) / RMS(input change): how strongly a model amplifies a
perturbation of its input. A disruption needs an output RMS change of 0.112 on [0,1]
(MSE 0.05 on [-1,1]); at a gain g, the input RMS change must be 0.112 / g.

    .venv/bin/python -m lab.bench.protection_ceiling --json bench/results/protection_ceiling.json \
        --plot bench/results/protection_ceiling.png
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab.bench.surrogate_harness import _animate, load_driving
from lab.surrogates.faceswap_data import load_identity
from shield.adversarial.attacks.losses import random_motions
from shield.adversarial.metrics import DISRUPTION_THRESHOLD
from shield.adversarial.models.autoencoder import FaceSwapAE, load_faceswap_ae
from shield.adversarial.models.fomm import FOMM, Keypoints, load_fomm_mini
from shield.config import load_settings

log = logging.getLogger("bench.protection_ceiling")

Loss = Callable[[torch.Tensor], torch.Tensor]


def pgd_linf(x: torch.Tensor, loss: Loss, eps: float, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Maximise ``loss`` over an L-inf ball of radius ``eps`` around ``x`` (sign steps of eps/8)."""
    delta = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(x + delta), delta)
        with torch.no_grad():
            delta = (delta + eps / 8 * grad.sign()).clamp(-eps, eps)
            delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def _mse_pm1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 4.0 * (a - b).pow(2).flatten(1).mean(1)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float((a - b).pow(2).mean())
    return float("inf") if mse == 0 else 10 * np.log10(1 / mse)


def fomm_rows(
    attacked: FOMM, transfer: FOMM, sources: list[torch.Tensor], clip_kp: dict[str, list[Keypoints]], eps: float, steps: int, seed: int
) -> dict[str, Any]:
    """Attack ``attacked`` on each source; disruption on both models over every driving clip."""
    gen = torch.Generator().manual_seed(seed)
    bank = random_motions(8, attacked.config.common.num_kp, gen)

    def animate_bank(source: torch.Tensor) -> torch.Tensor:
        kp = attacked.keypoints(source)
        m = len(bank)
        kp_src = Keypoints(kp.value.expand(m, -1, -1), kp.jacobian.expand(m, -1, -1, -1))
        return attacked.generate(source.expand(m, -1, -1, -1), kp_src, bank.apply(kp))

    mses: dict[str, list[float]] = {"fomm-mini-a": [], "fomm-mini-b": []}
    gains: list[float] = []
    psnrs: list[float] = []
    for src in sources:
        with torch.no_grad():
            clean = animate_bank(src)

        def loss(x: torch.Tensor, clean: torch.Tensor = clean) -> torch.Tensor:
            return _mse_pm1(animate_bank(x), clean).mean()

        adv = pgd_linf(src, loss, eps, steps, gen)
        psnrs.append(_psnr(adv, src))
        in_rms = float((adv - src).pow(2).mean().sqrt())
        with torch.no_grad():
            for name, model in (("fomm-mini-a", attacked), ("fomm-mini-b", transfer)):
                a = _animate(model, adv, clip_kp[name])
                b = _animate(model, src, clip_kp[name])
                per_clip = [float(_mse_pm1(a[c], b[c]).mean()) for c in range(a.shape[0])]
                mses[name].extend(per_clip)
                if name == "fomm-mini-a":
                    out_rms = float((a - b).pow(2).mean().sqrt())
                    gains.append(out_rms / max(in_rms, 1e-12))
    return {
        "input_psnr": float(np.mean(psnrs)),
        "gain": float(np.mean(gains)),
        "models": {
            name: {
                "pairs": len(v),
                "mean_mse": float(np.mean(v)),
                "disruption": float(np.mean(np.array(v) >= DISRUPTION_THRESHOLD)),
            }
            for name, v in mses.items()
        },
    }


def swap_rows(model: FaceSwapAE, chips: list[tuple[int, torch.Tensor]], eps: float, steps: int, seed: int) -> dict[str, Any]:
    """Attack the swap of each validation chip into every other identity."""
    gen = torch.Generator().manual_seed(seed)
    mses: list[float] = []
    gains: list[float] = []
    psnrs: list[float] = []
    n = len(model.identities)
    for own, chip in chips:
        targets = [i for i in range(n) if i != own]
        with torch.no_grad():
            clean = torch.cat([model.swap(chip, i) for i in targets])

        def loss(x: torch.Tensor, clean: torch.Tensor = clean, targets: list[int] = targets) -> torch.Tensor:
            return _mse_pm1(torch.cat([model.swap(x, i) for i in targets]), clean).mean()

        adv = pgd_linf(chip, loss, eps, steps, gen)
        psnrs.append(_psnr(adv, chip))
        with torch.no_grad():
            out = torch.cat([model.swap(adv, i) for i in targets])
        mses.extend(_mse_pm1(out, clean).tolist())
        gains.append(float((out - clean).pow(2).mean().sqrt() / (adv - chip).pow(2).mean().sqrt().clamp_min(1e-12)))
    return {
        "input_psnr": float(np.mean(psnrs)),
        "gain": float(np.mean(gains)),
        "models": {
            "faceswap-ae": {
                "pairs": len(mses),
                "mean_mse": float(np.mean(mses)),
                "disruption": float(np.mean(np.array(mses) >= DISRUPTION_THRESHOLD)),
            }
        },
    }


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for family in ("fomm", "swap"):
        points = report[family]
        names = sorted({m for p in points for m in p["models"]})
        for name in names:
            xs = [p["input_psnr"] for p in points]
            axes[0].plot(xs, [p["models"][name]["disruption"] * 100 for p in points], "o-", label=name)
            axes[1].plot(xs, [p["models"][name]["mean_mse"] for p in points], "o-", label=name)
    axes[1].axhline(DISRUPTION_THRESHOLD, color="k", ls="--", lw=1, label="disruption threshold")
    axes[1].set_yscale("log")
    for ax, label in zip(axes, ("disruption (%)", "mean MSE on [-1,1]"), strict=True):
        ax.set_xlabel("PSNR of the model input (dB)")
        ax.set_ylabel(label)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("White-box ceiling: PGD on the model's own input (no photo, no transformations)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eps", type=float, nargs="+", default=[2, 4, 8, 16, 32], help="L-inf budgets in 8-bit levels")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--frames", type=int, default=12, help="driving frames per validation clip")
    p.add_argument("--chips", type=int, default=6, help="validation chips per identity")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, required=True)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    settings = load_settings()
    data = settings.data_dir
    videos = data / "videos" if data else None
    if data is None or videos is None or not videos.is_dir():
        print(f"no driving clips at {videos}", file=sys.stderr)
        return 2

    fa, fb = load_fomm_mini("fomm-mini-a"), load_fomm_mini("fomm-mini-b")
    names, frames = load_driving(videos, settings.home, fa.resolution, args.frames)
    with torch.no_grad():
        clip_kp = {"fomm-mini-a": [fa.keypoints(f) for f in frames], "fomm-mini-b": [fb.keypoints(f) for f in frames]}
    sources = [f[i : i + 1] for f in frames for i in (0, len(f) // 2)]

    swap = load_faceswap_ae()
    chips: list[tuple[int, torch.Tensor]] = []
    for i, identity in enumerate(swap.identities):
        split = load_identity(data, settings.home, identity)
        pick = np.linspace(0, len(split.val) - 1, args.chips).round().astype(int)
        for j in pick:
            img = torch.from_numpy(split.val[j]).permute(2, 0, 1).float().div(255).unsqueeze(0)
            img = torch.nn.functional.interpolate(img, size=(swap.resolution,) * 2, mode="area")
            chips.append((i, img))

    report: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "protocol": {
            "attack": f"L-inf PGD on the model input, {args.steps} steps of eps/8, random start, no EOT",
            "threshold_mse_pm1": DISRUPTION_THRESHOLD,
            "fomm_sources": len(sources),
            "driving_clips": names,
            "frames_per_clip": args.frames,
            "swap_chips": len(chips),
            "swap_identities": list(swap.identities),
        },
        "fomm": [],
        "swap": [],
    }
    for eps8 in args.eps:
        eps = eps8 / 255
        t0 = time.perf_counter()
        row = fomm_rows(fa, fb, sources, clip_kp, eps, args.steps, args.seed) | {"eps_8bit": eps8}
        report["fomm"].append(row)
        srow = swap_rows(swap, chips, eps, args.steps, args.seed) | {"eps_8bit": eps8}
        report["swap"].append(srow)
        log.info(
            "eps %s/255: fomm-a %.0f%% (mse %.4f, gain %.2f), fomm-b %.0f%%, swap %.0f%% (mse %.4f, gain %.2f) [%.0f s]",
            eps8,
            row["models"]["fomm-mini-a"]["disruption"] * 100,
            row["models"]["fomm-mini-a"]["mean_mse"],
            row["gain"],
            row["models"]["fomm-mini-b"]["disruption"] * 100,
            srow["models"]["faceswap-ae"]["disruption"] * 100,
            srow["models"]["faceswap-ae"]["mean_mse"],
            srow["gain"],
            time.perf_counter() - t0,
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1))
        tmp.replace(args.json)
    if args.plot:
        plot(report, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
