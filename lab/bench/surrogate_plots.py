"""Plots and sample grids of the surrogate harness (:mod:`lab.bench.surrogate_harness`, ``bench/results/protection*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from shield.tensors import to_uint8

__all__ = ["plot_summary", "plot_tradeoff", "save_grid"]

_CONDS = ("disruption", "disruption_jpeg90", "disruption_jpeg75", "disruption_jpeg50", "disruption_resize50")


def plot_summary(report: dict[str, Any], out: Path) -> None:
    """Bar chart: disruption per model and condition, ours vs the Ruiz et al. baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours, base = report["summary"], report["baseline_summary"]
    models = [k for k, v in ours.items() if isinstance(v, dict)]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    width = 0.38
    for ax, name in zip(axes[0], models, strict=True):
        xs = np.arange(len(_CONDS))
        ax.bar(xs - width / 2, [ours[name].get(c, np.nan) for c in _CONDS], width, label=f"ours ({report['config']['ours']['name']})")
        ax.bar(xs + width / 2, [base.get(name, {}).get(c, np.nan) for c in _CONDS], width, label="Ruiz et al. 2020")
        ax.set_xticks(xs, ["clean", "jpeg90", "jpeg75", "jpeg50", "resize50"], rotation=30)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{name} ({'white-box' if ours[name]['attacked'] else 'transfer'})")
        ax.set_ylabel("disruption (MSE >= 0.05 on [-1,1])")
    axes[0][0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"PSNR ours {ours['psnr']:.1f} dB / baseline {base['psnr']:.1f} dB; SSIM {ours['ssim']:.3f} / {base['ssim']:.3f}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _tile(img: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))


def save_grid(images: dict[str, Any], box: tuple[float, float, float, float], out: Path, size: int = 160) -> None:
    """One row per method: original face, protected face, 10x difference, deepfakes (clean | protected).

    ``images`` holds ``original``, ``ours``, ``baseline`` (HxWx3 uint8) and
    ``clean_fakes``/``<method>_fakes`` (model -> (C,T,3,R,R) tensors).
    """
    left, top, right, bottom = box
    pad = 0.35 * (right - left)
    h, w = images["original"].shape[:2]
    y0, y1 = int(max(0, top - pad)), int(min(h, bottom + pad))
    x0, x1 = int(max(0, left - pad)), int(min(w, right + pad))
    rows = []
    for method in ("ours", "baseline"):
        orig = images["original"][y0:y1, x0:x1]
        prot = images[method][y0:y1, x0:x1]
        diff = np.clip((prot.astype(np.int16) - orig.astype(np.int16)) * 10 + 128, 0, 255).astype(np.uint8)
        cells = [_tile(orig, size), _tile(prot, size), _tile(diff, size)]
        for name, fakes in images[f"{method}_fakes"].items():
            t = min(fakes.shape[1] - 1, 2)
            cells.append(_tile(to_uint8(images["clean_fakes"][name][0, t]), size))
            cells.append(_tile(to_uint8(fakes[0, t]), size))
        rows.append(np.concatenate(cells, axis=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)


def plot_tradeoff(doc: dict[str, Any], out: Path) -> None:
    """Mean MSE and disruption vs PSNR for the L-inf and L2 budget shapes; mean MSE vs steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape_pts = [p for p in doc["points"] if p["kind"] in ("linf", "l2")]
    step_pts = sorted((p for p in doc["points"] if p["kind"] == "steps"), key=lambda p: p["steps"])
    keys = sorted(shape_pts[0]["mean_mse"]) if shape_pts else []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for key in keys:
        for kind, style in (("l2", "-o"), ("linf", "--s")):
            pts = sorted((p for p in shape_pts if p["kind"] == kind), key=lambda p: p["psnr"])
            label = f"{key} ({'L2+mask, ours' if kind == 'l2' else 'L-inf sign'})"
            axes[0].plot([p["face_psnr"] for p in pts], [p["mean_mse"][key] for p in pts], style, label=label, markersize=3)
            axes[1].plot([p["face_psnr"] for p in pts], [p["disruption"][key] for p in pts], style, label=label, markersize=3)
    for ax in axes[:2]:
        ax.set_xlabel("PSNR of the protected face region (dB)")
    axes[0].set_ylabel("mean MSE on [-1,1] (deepfake protected vs clean)")
    axes[0].axhline(0.05, color="grey", lw=0.8)
    axes[0].set_yscale("log")
    axes[1].set_ylabel("disruption rate (MSE >= 0.05)")
    axes[1].set_ylim(-0.02, 1.02)
    for key in keys:
        axes[2].plot([p["steps"] for p in step_pts], [p["mean_mse"][key] for p in step_pts], "-o", label=key, markersize=3)
    axes[2].set_xlabel("PGD steps")
    axes[2].set_ylabel("mean MSE on [-1,1]")
    axes[2].axhline(0.05, color="grey", lw=0.8)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=6)
    if step_pts:
        axes[2].legend(fontsize=6)
        axes[2].set_title("steps at the same budget", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
