"""Figures of the protection harness (matplotlib, imported only here: the ``bench`` extra).

- break rate per network, ours vs the Ruiz et al. 2020 baseline, per condition;
- break rate vs JPEG quality (none, 90, 75, 50) per role and for the pipelines;
- break rate vs PSNR (each photo's PSNR against its share of broken attacked networks);
- a sample grid per photo: original, protected, amplified difference, baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_report", "plot_tradeoff", "save_grid"]

_JPEG = ("none", "jpeg90", "jpeg75", "jpeg50")
_KEYS = {"none": "disruption", "jpeg90": "disruption_jpeg90", "jpeg75": "disruption_jpeg75", "jpeg50": "disruption_jpeg50", "resize50": "disruption_resize50"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_report(report: Mapping[str, Any], out: Path) -> None:
    """Three panels: per-network break rates, break rate vs JPEG quality, break rate vs PSNR.

    The bars compare ours with the Ruiz et al. 2020 baseline, or, in a run without it,
    with ours after the marks (when measured)."""
    plt = _plt()
    summary = report["summary"]
    other, other_label, other_key = report.get("baseline_summary"), "Ruiz 2020", "baseline"
    if other is None:
        other, other_label, other_key = report.get("marked_summary"), "ours + marks", "ours_marked"
    models = [k for k, v in summary.items() if isinstance(v, dict) and "role" in v]
    fig, axes = plt.subplots(1, 3, figsize=(20, 6))
    ax = axes[0]
    y = np.arange(len(models))
    bars = [("ours", summary, "none"), ("ours, JPEG 75", summary, "jpeg75")]
    if other is not None:
        bars += [(other_label, other, "none"), (f"{other_label}, JPEG 75", other, "jpeg75")]
    for i, (label, doc, cond) in enumerate(bars):
        vals = [doc[m][_KEYS[cond]] or 0.0 for m in models]
        ax.barh(y + (i - (len(bars) - 1) / 2) * 0.2, vals, height=0.2, label=label)
    ax.set_yticks(y, [f"{m} ({summary[m]['role']}{', held out' if not summary[m]['attacked'] else ''})" for m in models], fontsize=8)
    ax.set_xlabel("break rate")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("break rate per network")
    ax = axes[1]
    quality = [100, 90, 75, 50]
    for m in models:
        vals = [summary[m][_KEYS[c]] for c in _JPEG]
        style = "-" if summary[m]["attacked"] else "--"
        ax.plot(quality, [v if v is not None else np.nan for v in vals], style, marker="o", label=m)
    for name, doc in summary["pipeline"].items():
        ax.plot(quality, [doc[_KEYS[c]] if doc[_KEYS[c]] is not None else np.nan for c in _JPEG], "k-" if "mtcnn" in name else "k--", lw=3, label=f"pipeline {name}")
    ax.invert_xaxis()
    ax.set_xlabel("JPEG quality (100 = no JPEG)")
    ax.set_ylabel("break rate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, ncol=2)
    ax.set_title("break rate vs JPEG (solid: attacked, dashed: held out)")
    ax = axes[2]
    for method, marker in (("ours", "o"), (other_key, "x")):
        xs, ys = [], []
        for row in report["photos"]:
            if row.get("face") is None or method not in row:
                continue
            doc = row[method]
            verdicts = [doc["models"][m]["none"]["broken"] for m in models if summary[m]["attacked"] and "none" in doc["models"].get(m, {})]
            tested = [v for v in verdicts if v is not None]
            if tested:
                xs.append(doc["psnr"])
                ys.append(sum(tested) / len(tested))
        if xs:
            ax.scatter(xs, ys, marker=marker, label="ours" if method == "ours" else other_label)
    ax.axvline(35, color="grey", ls=":", label="35 dB target")
    ax.set_xlabel("PSNR of the protected photo (dB)")
    ax.set_ylabel("share of attacked networks broken")
    ax.legend(fontsize=8)
    ax.set_title("break rate vs PSNR, per photo")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def save_grid(images: Mapping[str, Any], out: Path, size: int = 256) -> None:
    """Original, ours, |difference| x10, baseline, |difference| x10: crops around the face."""
    from PIL import Image

    x0, y0, x1, y1 = images["face"]
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.9 * max(x1 - x0, y1 - y0)
    original = images["original"]
    h, w = original.shape[:2]
    box = (max(0, int(cx - half)), max(0, int(cy - half)), min(w, int(cx + half)), min(h, int(cy + half)))

    def tile(img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img).crop(box).resize((size, size), Image.Resampling.LANCZOS))

    def diff(img: np.ndarray) -> np.ndarray:
        return np.clip(np.abs(img.astype(np.int16) - original.astype(np.int16)) * 10, 0, 255).astype(np.uint8)

    panels = [original, images["ours"], diff(images["ours"]), images["baseline"], diff(images["baseline"])]
    row = np.concatenate([tile(p) for p in panels], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(row).save(out)


def plot_tradeoff(doc: Mapping[str, Any], out: Path) -> None:
    """Break rate vs PSNR over the RMS budgets of a trade-off sweep, per role and for the pipelines."""
    plt = _plt()
    points = doc["points"]
    psnrs = [p["psnr"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, cond in zip(axes, ("none", "jpeg75")):
        key = _KEYS[cond]
        models = [k for k, v in points[0].items() if isinstance(v, dict) and "role" in v]
        for m in models:
            ys = [p[m][key] if p[m][key] is not None else np.nan for p in points]
            ax.plot(psnrs, ys, "-" if points[0][m]["attacked"] else "--", marker="o", label=m)
        for name in points[0]["pipeline"]:
            ys = [p["pipeline"][name][key] if p["pipeline"][name][key] is not None else np.nan for p in points]
            ax.plot(psnrs, ys, "k-" if "mtcnn" in name else "k--", lw=3, marker="s", label=f"pipeline {name}")
        ax.axvline(35, color="grey", ls=":")
        ax.set_xlabel("PSNR of the protected photo (dB); points: RMS budgets " + ", ".join(f"{p['rms_255']:g}" for p in points) + " /255")
        ax.set_ylabel("break rate")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("no processing" if cond == "none" else "after JPEG 75")
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
