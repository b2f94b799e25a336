"""Evaluation harness of the protection (`shield bench protection`): real networks, side by side.

For each photo (its largest face, found by dlib HOG on the clean photo) and each method
-- our preset and the published baseline of Ruiz et al. 2020 (plain PGD, eps 0.05 and
step 0.01 on [-1,1], 10 steps, random start, no transformation, the same models) --
the photo is protected against the preset's attacked networks, then passed through each
*condition* (none, real JPEG 90/75/50 with Pillow, 0.5x downscale-upscale). Every
network of the evaluation set -- the attacked ones (white-box) and the held-out ones
(never attacked, never tuned against: the transfer test) -- runs its own break test
(``Target.check``) on the processed protected photo against the processed original.

A *pipeline* stands in for the front-end of a real swap tool (SimSwap, inswapper,
FaceFusion): detect the face, place its landmarks, align five points to the ArcFace
template, read the identity (:mod:`shield.adversarial.pipeline_check`). A photo's
pipeline is broken when any stage breaks. Two are measured: one built from attacked
networks, and face-api.js end to end, whose three networks are all held out.

Visibility is measured beside PSNR and SSIM on the face region: the colour shift (mean
|Cb|, |Cr| change and the local, low-frequency change of luma and chroma, 8-bit units)
and two block-grid measures of the perturbation (``metrics.grid_energy`` at the 8-px
JPEG period, ``metrics.grid_modulation`` over periods 2-16).

With ``with_marks``, the protected photo is also evaluated after the two marks
``shield protect`` adds after the attack -- the robust soft-binding mark
(``shield.softbinding``) then the fragile watermark (``shield.watermark``, with the
perturbation as its hint) -- under a fixed test key: the marked photo's break rates
are reported beside the unmarked ones (``marked_summary``).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from shield.adversarial.face_views import FaceGeometry, View, affine_crop, largest_face, locate_faces
from shield.adversarial.metrics import colour_shift, grid_energy, grid_modulation, psnr, ssim
from shield.adversarial.pipeline_check import FrontEnd, pipeline_verdict
from shield.adversarial.presets import HELD_OUT, RUIZ_BASELINE, Preset, get_preset
from shield.adversarial.protect import ProtectionResult, protect_pixels
from shield.adversarial.threats import Target
from shield.tensors import to_tensor

__all__ = ["Condition", "CONDITIONS", "jpeg_condition", "resize_condition", "CONTRACT_KEYS", "HarnessConfig", "run_harness", "baseline_for", "summarise", "merge_reports"]

log = logging.getLogger(__name__)

Condition = Callable[[np.ndarray], np.ndarray]


def jpeg_condition(quality: int) -> Condition:
    """Pillow JPEG at ``quality`` and back to RGB (what a platform re-encode does)."""

    def apply(rgb: np.ndarray) -> np.ndarray:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
        return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

    return apply


def resize_condition(scale: float) -> Condition:
    """Bicubic downscale by ``scale`` and back to the original size."""

    def apply(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        small = Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)
        return np.array(small.resize((w, h), Image.Resampling.BICUBIC))

    return apply


#: What happens to a posted photo before a deepfake tool reads it.
CONDITIONS: dict[str, Condition] = {
    "none": lambda rgb: rgb,
    "jpeg90": jpeg_condition(90),
    "jpeg75": jpeg_condition(75),
    "jpeg50": jpeg_condition(50),
    "resize50": resize_condition(0.5),
}
#: JSON key of the break rate under each condition.
CONTRACT_KEYS = {"none": "disruption", "jpeg90": "disruption_jpeg90", "jpeg75": "disruption_jpeg75", "jpeg50": "disruption_jpeg50", "resize50": "disruption_resize50"}
#: Photos are evaluated with their longer side at most this many pixels (a swap tool's working size).
MAX_SIDE = 640


@dataclass(frozen=True)
class HarnessConfig:
    """What one harness run evaluates.

    Attributes:
        strength: our preset (name or Preset).
        baseline: the published baseline (its weights are replaced by our preset's, so
            both attack the same networks).
        seed: seed of every protection run (the photo index is added).
        conditions: names from :data:`CONDITIONS`.
        with_baseline: also run the baseline (off for trade-off sweeps).
        with_marks: also evaluate our protected photo after the robust mark and the
            fragile watermark (as ``shield protect`` applies them after the attack).
        max_side: photos are first scaled down to this longer side (a swap tool's working
            size), or evaluated at their own size when None (a user's full-resolution photo).
    """

    strength: str | Preset = "balanced"
    baseline: Preset = RUIZ_BASELINE
    seed: int = 0
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    with_baseline: bool = True
    with_marks: bool = False
    max_side: int | None = MAX_SIDE


def baseline_for(preset: Preset, baseline: Preset = RUIZ_BASELINE) -> Preset:
    """The Ruiz et al. 2020 baseline on the networks ``preset`` attacks (outputs only, no masking)."""
    return replace(baseline, weights=dict(preset.weights), output_only=True)


def _fit(rgb: np.ndarray, max_side: int | None = MAX_SIDE) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = 1.0 if max_side is None else max_side / max(h, w)
    if s >= 1:
        return rgb
    return np.array(Image.fromarray(rgb).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS))


def _verdict_doc(broken: bool | None, measure: float) -> dict[str, Any]:
    return {"broken": broken, "measure": round(float(measure), 5)}


def _cropper(view: View) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: affine_crop(x, view)


@torch.no_grad()
def _checks(
    clean: np.ndarray, protected: np.ndarray, face: FaceGeometry, targets: Sequence[Target], conditions: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> condition -> verdict, each network's break test on the processed photos."""
    h, w = clean.shape[:2]
    out: dict[str, dict[str, dict[str, Any]]] = {t.name: {} for t in targets}
    for cond in conditions:
        c, p = to_tensor(CONDITIONS[cond](clean)), to_tensor(CONDITIONS[cond](protected))
        for t in targets:
            view = t.view(face, w, h)
            if view is None:
                continue
            v = t.check(c, p, _cropper(view))
            out[t.name][cond] = _verdict_doc(v.broken, v.measure)
    return out


@torch.no_grad()
def _pipelines(clean: np.ndarray, protected: np.ndarray, front_ends: Mapping[str, FrontEnd], conditions: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, fe in front_ends.items():
        out[name] = {}
        for cond in conditions:
            v = pipeline_verdict(fe, CONDITIONS[cond](clean), CONDITIONS[cond](protected))
            out[name][cond] = {"broken": v.broken, "stage": v.stage, "detail": v.detail}
    return out


#: Fixed keys and asset id of the marks in the harness (test values, not a publisher's).
_MARK_ASSET_ID = bytes(range(16))
_MARK_KEY_SEED = bytes(32)


def apply_marks(rgb: np.ndarray, hint: np.ndarray | None) -> np.ndarray:
    """``rgb`` after the robust soft-binding mark and the fragile watermark, as ``shield protect`` adds them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from shield import softbinding, watermark

    robust = softbinding.embed(rgb, _MARK_ASSET_ID, softbinding.DEFAULT_KEY)
    payload = watermark.Payload(version=1, asset_id=_MARK_ASSET_ID)
    return watermark.embed(robust, payload, Ed25519PrivateKey.from_private_bytes(_MARK_KEY_SEED), hint=hint)


def _region_psnr(a: np.ndarray, b: np.ndarray, region: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = region
    return float(psnr(to_tensor(a[y0:y1, x0:x1]), to_tensor(b[y0:y1, x0:x1]))[0])


def _visibility(clean: np.ndarray, protected: np.ndarray, region: tuple[int, int, int, int]) -> dict[str, Any]:
    """Colour shift and block-grid measures of the perturbation over the face region."""
    x0, y0, x1, y1 = region
    o, p = to_tensor(clean[y0:y1, x0:x1]), to_tensor(protected[y0:y1, x0:x1])
    shift = colour_shift(p, o)
    period, excess = grid_modulation(p - o)
    return {
        "cb": round(shift.cb, 4), "cr": round(shift.cr, 4), "luma": round(shift.luma, 4),
        "local_luma": round(shift.local_luma, 4), "local_chroma": round(shift.local_chroma, 4),
        "grid8": round(grid_energy(p - o), 4), "grid_modulation": round(excess, 4), "grid_period": period,
    }  # fmt: skip


def _protect(rgb: np.ndarray, face: FaceGeometry, preset: Preset, seed: int, models: Sequence[Target]) -> tuple[ProtectionResult, float]:
    started = time.perf_counter()
    result = protect_pixels(rgb, strength=preset, seed=seed, models=models, faces=[face])
    return result, time.perf_counter() - started


def run_harness(
    photos: Sequence[Path],
    *,
    attacked: Sequence[Target],
    measured: Sequence[Target],
    front_ends: Mapping[str, FrontEnd],
    config: HarnessConfig = HarnessConfig(),
    progress: Callable[[str], None] | None = None,
    keep_images: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Protect and evaluate every photo; returns the JSON-ready report (see the module docstring).

    Args:
        photos: photo files; the largest face of each is evaluated (photos without a face are listed and skipped).
        attacked: the networks our preset and the baseline attack (white-box).
        measured: networks this preset does not attack, measured too: the held-out
            transfer networks (``presets.HELD_OUT``) and the ones only other presets attack.
        front_ends: stand-in swap front-ends for the pipeline break test, by name.
        keep_images: called per photo with the clean, protected and baseline images (sample grids).
    """
    preset = get_preset(config.strength)
    methods = {"ours": preset}
    if config.with_baseline:
        methods["baseline"] = baseline_for(preset, config.baseline)
    evaluated = [*attacked, *measured]
    rows: list[dict[str, Any]] = []
    for index, path in enumerate(photos):
        rgb = _fit(np.array(Image.open(path).convert("RGB")), config.max_side)
        faces = locate_faces(rgb)
        if not faces:
            rows.append({"photo": path.name, "face": None})
            continue
        face = largest_face(faces)
        row: dict[str, Any] = {"photo": path.name, "size": [rgb.shape[1], rgb.shape[0]], "face": [round(v, 1) for v in face.box]}
        images: dict[str, Any] = {"original": rgb}
        for method, p in methods.items():
            result, seconds = _protect(rgb, face, p, config.seed + index, attacked)
            outputs = {method: result.rgb}
            if config.with_marks and method == "ours":
                outputs["ours_marked"] = apply_marks(result.rgb, result.delta)
            region = result.faces[0].region
            for name, out in outputs.items():
                x, y = to_tensor(rgb), to_tensor(out)
                row[name] = {
                    "psnr": round(float(psnr(y, x)[0]), 3),
                    "ssim": round(float(ssim(y, x)[0]), 5),
                    "face_psnr": round(_region_psnr(out, rgb, region), 3),
                    "visibility": _visibility(rgb, out, region),
                    "seconds": round(seconds, 2),
                    "models": _checks(rgb, out, face, evaluated, config.conditions),
                    "pipelines": _pipelines(rgb, out, front_ends, config.conditions),
                }
                images[name] = out
        rows.append(row)
        if keep_images is not None:
            keep_images(path.stem, {**images, "face": face.box})
        if progress is not None:
            progress(path.name)
    roles = {t.name: (t.role.value, t.pretrained, t in attacked) for t in evaluated}
    held_out = [t.name for t in measured if t.name in HELD_OUT]
    return {
        "config": {
            "strength": preset.name,
            "weights": dict(preset.weights),
            "rms": preset.rms,
            "shaping": asdict(preset.shaping) if preset.shaping is not None else None,
            "with_marks": config.with_marks,
            "baseline": {k: getattr(methods["baseline"], k) for k in ("eps", "alpha", "steps")} if "baseline" in methods else None,
            "seed": config.seed,
            "conditions": list(config.conditions),
            "held_out": held_out,
            "max_side": config.max_side,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "photos": rows,
        **summarise(rows, roles, list(front_ends), config.conditions, with_baseline=config.with_baseline),
    }


def _rate(values: Sequence[bool | None]) -> tuple[float | None, int]:
    tested = [v for v in values if v is not None]
    return (sum(1 for v in tested if v) / len(tested) if tested else None), len(tested)


def summarise(
    rows: Sequence[Mapping[str, Any]],
    roles: Mapping[str, tuple[str, bool, bool]],
    pipelines: Sequence[str],
    conditions: Sequence[str],
    *,
    with_baseline: bool = True,
) -> dict[str, Any]:
    """``summary`` (ours), ``baseline_summary`` and ``ratios`` from per-photo rows.

    A break rate counts only the photos on which the test applied (``broken`` not None).
    """
    done = [r for r in rows if r.get("face") is not None]

    def block(method: str) -> dict[str, Any]:
        part = [r[method] for r in done]
        out: dict[str, Any] = {
            "photos": len(part),
            "psnr": float(np.mean([p["psnr"] for p in part])) if part else None,
            "ssim": float(np.mean([p["ssim"] for p in part])) if part else None,
            "psnr_min": float(np.min([p["psnr"] for p in part])) if part else None,
            "seconds_per_face": float(np.mean([p["seconds"] for p in part])) if part else None,
        }
        seen = [p["visibility"] for p in part if "visibility" in p]
        if seen:
            out["visibility"] = {k: float(np.mean([v[k] for v in seen])) for k in seen[0] if k != "grid_period"}
        for name, (role, pretrained, attacked) in roles.items():
            entry: dict[str, Any] = {"role": role, "pretrained": pretrained, "attacked": attacked, "held_out": name in HELD_OUT}
            for cond in conditions:
                rate, tested = _rate([p["models"].get(name, {}).get(cond, {}).get("broken") for p in part])
                entry[CONTRACT_KEYS[cond]] = rate
                entry[f"tested_{cond}"] = tested
            out[name] = entry
        out["pipeline"] = {
            name: {CONTRACT_KEYS[c]: _rate([p["pipelines"][name][c]["broken"] for p in part])[0] for c in conditions} for name in pipelines
        }
        return out

    ours = block("ours")
    extra: dict[str, Any] = {}
    if done and all("ours_marked" in r for r in done):
        extra["marked_summary"] = block("ours_marked")
    if not with_baseline:
        return {"summary": ours, **extra}
    base = block("baseline")
    ratios: dict[str, Any] = {}
    for name in roles:
        pair = {}
        for cond in conditions:
            a, b = ours[name][CONTRACT_KEYS[cond]], base[name][CONTRACT_KEYS[cond]]
            pair[CONTRACT_KEYS[cond]] = (a / b) if a is not None and b else None
        ratios[name] = pair
    for name, (role, pretrained, attacked) in roles.items():
        ours[name]["baseline"] = {k: v for k, v in base[name].items() if k.startswith("disruption")}
    return {"summary": ours, "baseline_summary": base, "ratios": ratios, **extra}


def merge_reports(docs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from runs of the same configuration on different photos (``--skip``/``--limit`` parts).

    Raises:
        ValueError: the parts differ in preset, weights, seed or conditions.
    """
    if not docs:
        raise ValueError("nothing to merge")
    first = docs[0]["config"]
    keys = ("strength", "weights", "seed", "conditions")
    for doc in docs[1:]:
        if any(doc["config"].get(k) != first.get(k) for k in keys):
            raise ValueError("the parts were run with different settings")
    rows = [row for doc in docs for row in doc["photos"]]
    summary = docs[0]["summary"]
    roles = {k: (v["role"], v["pretrained"], v["attacked"]) for k, v in summary.items() if isinstance(v, dict) and "role" in v}
    pipelines = list(summary.get("pipeline", {}))
    with_baseline = "baseline_summary" in docs[0]
    return {
        "command": [doc.get("command") for doc in docs],
        "config": first,
        "photos": rows,
        **summarise(rows, roles, pipelines, first["conditions"], with_baseline=with_baseline),
    }
