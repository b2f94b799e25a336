"""The surrogate harness: how the results in ``bench/results/protection*.json`` were made.

Before the threat models became plug-ins this was ``shield bench protection``; the
runtime's harness is now :mod:`shield.adversarial.harness` (real pretrained networks,
per-role break tests). This lab experiment keeps the old measurement on the shipped
64 px surrogates so that those numbers can be re-measured.

For each photo (largest face) and each method -- our preset and the published
baseline of Ruiz et al. 2020 -- the photo is protected against the attacked
surrogates, then passed through each *condition* (none, real JPEG 90/75/50 with
Pillow, 0.5x downscale-upscale, and the purifications of the honest-limits section:
Gaussian blur, 3x3 median, JPEG 75 + blur). Deepfakes are made from the processed
protected photo and from the processed original, exactly as a deepfake tool would:
aligned crop (geometry detected on the original), then

- FOMM (attacked ``fomm-mini-a`` and transfer ``fomm-mini-b``): relative animation
  with movement-scale adaptation by every driving clip (validation clips only);
- face swap (``faceswap-ae``): the photo as target, swapped into every identity.

The attack runs on the surrogate plug-ins only (:class:`Surrogates`: ``fomm-mini-a``,
``faceswap-ae`` and, for the presets that weigh it, ``dlib-resnet``), with each preset's
weights restricted to them (:func:`on_surrogates`); official checkpoints a preset names
are left out.

A (photo, clip) or (photo, identity) pair is disrupted when the MSE on [-1,1]
between the two deepfakes (mean over frames) is >= 0.05 (Ruiz et al. 2020;
CMUA-Watermark). Identity is judged by dlib itself (``dlib-bin``: HOG detector,
5-point landmarks, ResNet descriptor; same person below 0.6): for each FOMM output
frame, is a face still found, and is it still the protected person?

    .venv/bin/python -m lab.bench.surrogate_harness run --photos ../shared/data/photos \
        --driving ../shared/data/videos --json bench/results/protection.json
    .venv/bin/python -m lab.bench.surrogate_harness merge OUT.json IN1.json IN2.json --plot OUT.png
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter

from shield.adversarial.face_views import FaceGeometry, affine_crop, largest_face, locate_faces
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse
from shield.adversarial.models.autoencoder import FaceSwapAE
from shield.adversarial.models.fomm import FOMM, Keypoints, movement_scale, relative_keypoints
from shield.adversarial.presets import RUIZ_BASELINE, Preset, get_preset
from shield.adversarial.protect import protect_pixels
from shield.adversarial.threats import Target, load_targets
from shield.adversarial.threats.faceswap_ae import FaceSwapAe
from shield.adversarial.threats.fomm_mini import FommTarget
from shield.tensors import to_tensor, to_uint8

__all__ = [
    "Surrogates", "on_surrogates", "BenchConfig", "Condition", "CONDITIONS", "load_driving",
    "run_bench", "run_tradeoff", "summarise", "merge_reports", "main",
]  # fmt: skip

log = logging.getLogger(__name__)

SAME_PERSON = 0.6
#: The attacked surrogates, the held-out transfer FOMM, and the swap model's key in reports.
ATTACKED_FOMM = "fomm-mini-a"
TRANSFER_FOMM = "fomm-mini-b"
FACESWAP = "faceswap-ae"
IDENTITY = "dlib-resnet"

#: The surrogate weights of each preset when bench/results/protection*.json were measured.
SURROGATE_WEIGHTS: dict[str, dict[str, float]] = {
    "fast": {ATTACKED_FOMM: 1.0, FACESWAP: 1.0},
    "balanced": {ATTACKED_FOMM: 1.0, FACESWAP: 1.0, IDENTITY: 0.01},
    "max": {ATTACKED_FOMM: 1.0, FACESWAP: 1.0, IDENTITY: 0.01},
    "ruiz2020": {ATTACKED_FOMM: 1.0, FACESWAP: 1.0},
}

# JPEG and rescaling exactly as the real-network harness applies them (one definition).
from shield.adversarial.harness import Condition, jpeg_condition as _jpeg, resize_condition as _resize  # noqa: E402


def _blur(sigma: float) -> Condition:
    return lambda rgb: np.array(Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(sigma)))


def _median(size: int) -> Condition:
    return lambda rgb: np.array(Image.fromarray(rgb).filter(ImageFilter.MedianFilter(size)))


def _chain(*steps: Condition) -> Condition:
    def apply(rgb: np.ndarray) -> np.ndarray:
        for s in steps:
            rgb = s(rgb)
        return rgb

    return apply


#: Post-processing of the posted photo before it reaches a deepfake tool. The first five
#: are the robustness conditions of the JSON contract; the rest measure purification.
CONDITIONS: dict[str, Condition] = {
    "none": lambda rgb: rgb,
    "jpeg90": _jpeg(90),
    "jpeg75": _jpeg(75),
    "jpeg50": _jpeg(50),
    "resize50": _resize(0.5),
    "blur1": _blur(1.0),
    "blur2": _blur(2.0),
    "median3": _median(3),
    "jpeg75_blur1": _chain(_jpeg(75), _blur(1.0)),
}
_CONTRACT_KEYS = {"none": "disruption", "jpeg90": "disruption_jpeg90", "jpeg75": "disruption_jpeg75", "jpeg50": "disruption_jpeg50", "resize50": "disruption_resize50"}


@dataclass(frozen=True)
class Surrogates:
    """The surrogate plug-ins the harness attacks, and the networks it animates with.

    Attributes:
        targets: the loaded plug-ins handed to ``protect_pixels`` (a FOMM, optionally
            the face swap and the identity encoder).
        fomm: the attacked FOMM's network (``targets``' FOMM plug-in ``.fomm``).
        fomm_name: its plug-in name.
        faceswap: the face-swap network (``FaceSwapAe.model``), or None when not loaded.
    """

    targets: tuple[Target, ...]
    fomm: FOMM
    fomm_name: str
    faceswap: FaceSwapAE | None

    @classmethod
    def from_targets(cls, targets: Sequence[Target]) -> Surrogates:
        """Wrap loaded plug-ins; the first FOMM plug-in is the attacked one.

        Raises:
            ValueError: no FOMM plug-in among ``targets``.
        """
        fomms = [t for t in targets if isinstance(t, FommTarget)]
        if not fomms:
            raise ValueError("targets: the surrogate harness needs a FOMM plug-in (fomm-mini-a)")
        swaps = [t for t in targets if isinstance(t, FaceSwapAe)]
        return cls(tuple(targets), fomms[0].fomm, fomms[0].name, swaps[0].model if swaps else None)

    @classmethod
    def load(cls, device: torch.device | str = "cpu", *, identity: bool = True) -> Surrogates:
        """``fomm-mini-a`` and ``faceswap-ae`` (and ``dlib-resnet`` when ``identity``) on ``device``.

        Raises:
            ModelError: a network's weights are missing or corrupt.
        """
        names = [ATTACKED_FOMM, FACESWAP] + ([IDENTITY] if identity else [])
        return cls.from_targets(load_targets(names, device))

    def names(self) -> list[str]:
        return [t.name for t in self.targets]


def on_surrogates(preset: str | Preset, targets: Sequence[Target]) -> Preset:
    """``preset``'s effort (steps, budget, transformations) on the loaded surrogate ``targets``.

    The weights are those the presets gave the surrogates when the recorded results were
    measured (:data:`SURROGATE_WEIGHTS`; the runtime presets now attack real networks), or
    for another preset its own weights; either way restricted to ``targets``. Every term
    is evaluated each step.

    Raises:
        InputError: unknown preset name.
        ValueError: no weight is left for ``targets``.
    """
    p = get_preset(preset)
    table = SURROGATE_WEIGHTS.get(p.name, dict(p.weights))
    weights = {t.name: float(table[t.name]) for t in targets if table.get(t.name, 0.0)}
    if not weights:
        raise ValueError(f"preset {p.name!r} weighs none of {[t.name for t in targets]}")
    if not weights:
        raise ValueError(f"preset {p.name!r} weighs none of {[t.name for t in targets]}")
    return replace(p, weights=MappingProxyType(weights), terms_per_step=None)


@dataclass(frozen=True)
class BenchConfig:
    """What one harness run evaluates.

    Attributes:
        strength: our preset (name or Preset).
        frames_per_clip: driving frames per clip (frame 0 is the reference pose).
        identity_frames: FOMM frames per clip judged by dlib (detection and identity).
        seed: seed of every protection run (photo index is added).
        conditions: names from :data:`CONDITIONS`.
    """

    strength: str | Preset = "balanced"
    frames_per_clip: int = 6
    identity_frames: int = 2
    seed: int = 0
    conditions: tuple[str, ...] = tuple(CONDITIONS)
    baseline: Preset = RUIZ_BASELINE


@dataclass
class _Dlib:
    """dlib's own (non-differentiable) detector, landmarks and descriptor."""

    detector: Any
    predictor: Any
    encoder: Any

    @classmethod
    def load(cls) -> _Dlib:
        import dlib

        from shield.faces.dlib_models import RESNET_DESCRIPTOR, SHAPE_PREDICTOR_5, dlib_model_path

        return cls(
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(str(dlib_model_path(SHAPE_PREDICTOR_5))),
            dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_DESCRIPTOR))),
        )

    def descriptor(self, rgb: np.ndarray, upsample: int = 1) -> np.ndarray | None:
        rects = self.detector(rgb, upsample)
        if not rects:
            return None
        r = max(rects, key=lambda q: q.width() * q.height())
        shape = self.predictor(rgb, r)
        return np.asarray(self.encoder.compute_face_descriptor(rgb, shape))


@dataclass
class _Clips:
    """Driving keypoints per FOMM model: name -> list of (frames kp, first-frame kp)."""

    names: list[str]
    frames: list[torch.Tensor]
    kp: dict[str, list[Keypoints]] = field(default_factory=dict)


def load_driving(driving_dir: Path, home: Path, resolution: int, frames_per_clip: int) -> tuple[list[str], list[torch.Tensor]]:
    """Validation clips of ``driving_dir`` (all clips if none is a known validation clip)."""
    from shield.adversarial.clips import VALIDATION_CLIPS, load_clip

    paths = sorted(Path(driving_dir).glob("*.mp4"))
    val = [p for p in paths if p.stem in VALIDATION_CLIPS]
    chosen = val or paths
    if not chosen:
        from shield.errors import InputError

        raise InputError(f"{driving_dir}: no .mp4 driving clips")
    names, frames = [], []
    for p in chosen:
        clip = load_clip(p, resolution, home)
        idx = np.linspace(0, len(clip.frames) - 1, frames_per_clip).round().astype(int)
        names.append(p.stem)
        frames.append(to_tensor(clip.frames[idx]))
    return names, frames


@torch.no_grad()
def _animate(fomm: FOMM, source: torch.Tensor, clips: Sequence[Keypoints]) -> torch.Tensor:
    """(C,T,3,R,R): ``source`` (1,3,R,R) animated by every clip (relative, adapted scale)."""
    kp_s = fomm.keypoints(source)
    outs = []
    for kp_d in clips:
        first = Keypoints(kp_d.value[:1], kp_d.jacobian[:1])
        scale = movement_scale(kp_s, first)
        t = kp_d.value.shape[0]
        src_t = Keypoints(kp_s.value.expand(t, -1, -1), kp_s.jacobian.expand(t, -1, -1, -1))
        first_t = Keypoints(first.value.expand(t, -1, -1), first.jacobian.expand(t, -1, -1, -1))
        kp_new = relative_keypoints(src_t, kp_d, first_t, scale=scale)
        outs.append(fomm.generate(source.expand(t, -1, -1, -1), src_t, kp_new))
    return torch.stack(outs)


@torch.no_grad()
def _deepfakes(rgb: np.ndarray, face: FaceGeometry, fomms: dict[str, FOMM], clip_kp: dict[str, list[Keypoints]], swap: FaceSwapAE | None) -> dict[str, torch.Tensor]:
    x = to_tensor(rgb)
    out: dict[str, torch.Tensor] = {}
    for name, fomm in fomms.items():
        out[name] = _animate(fomm, affine_crop(x, face.fomm_view(fomm.resolution)), clip_kp[name])
    if swap is not None:
        chip = affine_crop(x, face.chip_view(swap.resolution))
        out[FACESWAP] = torch.stack([swap.swap(chip, i) for i in range(len(swap.identities))])
    return out


def _identity_stats(frames: torch.Tensor, reference: np.ndarray | None, dl: _Dlib, per_clip: int) -> dict[str, float]:
    """Face-found and same-person rates over ``per_clip`` frames (after frame 0) of each clip."""
    found = same = total = 0
    dists: list[float] = []
    c, t = frames.shape[:2]
    pick = np.linspace(1, t - 1, per_clip).round().astype(int) if t > 1 else np.array([0])
    for ci in range(c):
        for ti in pick:
            img = to_uint8(frames[ci, ti])
            big = np.asarray(Image.fromarray(img).resize((256, 256), Image.Resampling.BICUBIC))
            desc = dl.descriptor(big)
            total += 1
            if desc is None:
                continue
            found += 1
            if reference is not None:
                d = float(np.linalg.norm(desc - reference))
                dists.append(d)
                same += d < SAME_PERSON
    return {
        "face_found_rate": found / max(total, 1),
        "same_person_rate": same / max(total, 1),
        "mean_distance": float(np.mean(dists)) if dists else float("nan"),
        "frames": float(total),
    }


def _pair_mse(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Per pair (first axis) mean MSE on [-1,1] over the remaining frames."""
    return [float(disruption_mse(a[i], b[i]).mean()) for i in range(a.shape[0])]


def run_bench(
    photos: Sequence[Path],
    driving_dir: Path,
    *,
    models: Surrogates,
    transfer: dict[str, FOMM],
    home: Path,
    config: BenchConfig = BenchConfig(),
    progress: Callable[[str], None] | None = None,
    keep_images: Callable[[str, dict[str, Any]], None] | None = None,
    face_boxes: dict[str, tuple[float, float, float, float]] | None = None,
) -> dict[str, Any]:
    """Protect and evaluate every photo; returns the JSON-ready report (see module doc).

    Args:
        photos: photo files; the largest face of each is evaluated.
        driving_dir: folder of driving clips.
        models: the attacked surrogate plug-ins; ``transfer``: FOMM networks never attacked.
        home: shield home (frame cache of the driving clips).
        config: what to evaluate.
        progress: called with each photo name when it is done.
        keep_images: receives (photo stem, images and deepfakes) for sample grids.
        face_boxes: filled with photo stem -> evaluated face box.
    """
    ours = on_surrogates(config.strength, models.targets)
    baseline = on_surrogates(config.baseline, models.targets)
    methods = {"ours": ours, "baseline": baseline}
    fomms: dict[str, FOMM] = {models.fomm_name: models.fomm, **transfer}
    attacked = {models.fomm_name: True, **({FACESWAP: True} if models.faceswap is not None else {}), **{k: False for k in transfer}}
    res = next(iter(fomms.values())).resolution
    clip_names, clip_frames = load_driving(driving_dir, home, res, config.frames_per_clip)
    clip_kp = {name: [f.keypoints(fr) for fr in clip_frames] for name, f in fomms.items()}
    dl = _Dlib.load()
    report: dict[str, Any] = {
        "config": {
            "ours": _preset_doc(ours),
            "baseline": _preset_doc(baseline),
            "frames_per_clip": config.frames_per_clip,
            "identity_frames_per_clip": config.identity_frames,
            "driving_clips": clip_names,
            "conditions": list(config.conditions),
            "threshold_mse_pm1": DISRUPTION_THRESHOLD,
            "attacked": attacked,
        },
        "photos": [],
    }
    for pi, path in enumerate(photos):
        rgb = np.array(Image.open(path).convert("RGB"))
        faces = locate_faces(rgb)
        if not faces:
            report["photos"].append({"photo": path.name, "skipped": "no face found"})
            continue
        face = largest_face(faces)
        if face_boxes is not None:
            face_boxes[path.stem] = face.box
        reference = dl.descriptor(rgb)
        entry: dict[str, Any] = {"photo": path.name, "size": [rgb.shape[1], rgb.shape[0]], "face_box": list(face.box), "methods": {}}
        clean_fakes = {cond: _deepfakes(CONDITIONS[cond](rgb), face, fomms, clip_kp, models.faceswap) for cond in config.conditions}
        clean_id = {n: _identity_stats(clean_fakes["none"][n], reference, dl, config.identity_frames) for n in fomms}
        entry["clean_identity"] = clean_id
        images: dict[str, Any] = {"original": rgb}
        for mname, preset in methods.items():
            started = time.perf_counter()
            result = protect_pixels(rgb, strength=preset, seed=config.seed + pi, models=models.targets, faces=[face])
            seconds = time.perf_counter() - started
            images[mname] = result.rgb
            m: dict[str, Any] = {"psnr": result.psnr, "ssim": result.ssim, "face_psnr": result.faces[0].psnr, "seconds": seconds, "models": {}}
            fakes_none = None
            for cond in config.conditions:
                fakes = _deepfakes(CONDITIONS[cond](result.rgb), face, fomms, clip_kp, models.faceswap)
                if cond == "none":
                    fakes_none = fakes
                for name, out in fakes.items():
                    m["models"].setdefault(name, {})[cond] = _pair_mse(out, clean_fakes[cond][name])
            assert fakes_none is not None
            m["identity"] = {n: _identity_stats(fakes_none[n], reference, dl, config.identity_frames) for n in fomms}
            entry["methods"][mname] = m
            if keep_images is not None:
                images[f"{mname}_fakes"] = fakes_none
        if keep_images is not None:
            images["clean_fakes"] = clean_fakes["none"]
            keep_images(path.stem, images)
        report["photos"].append(entry)
        if progress is not None:
            progress(path.name)
    report["summary"], report["baseline_summary"], report["ratios"], report["extra"] = summarise(report, attacked)
    return report


def _preset_doc(p: Preset) -> dict[str, Any]:
    return {
        "name": p.name, "eps": p.eps, "rms": p.rms, "alpha": p.alpha, "steps": p.steps, "momentum": p.momentum,
        "random_start": p.random_start, "eot": p.eot is not None, "eot_samples": p.eot_samples,
        "perceptual": p.perceptual, "weights": dict(p.weights),
    }  # fmt: skip


def _method_summary(photos: list[dict[str, Any]], method: str, attacked: dict[str, bool]) -> tuple[dict[str, Any], dict[str, Any]]:
    rows = [p for p in photos if "methods" in p]
    if not rows:
        return {"psnr": float("nan"), "ssim": float("nan")}, {}
    out: dict[str, Any] = {
        "psnr": float(np.mean([p["methods"][method]["psnr"] for p in rows])),
        "ssim": float(np.mean([p["methods"][method]["ssim"] for p in rows])),
    }
    extra: dict[str, Any] = {
        "face_psnr": float(np.mean([p["methods"][method]["face_psnr"] for p in rows])),
        "seconds_per_face": float(np.mean([p["methods"][method]["seconds"] for p in rows])),
        "photos": len(rows),
    }
    for name, is_attacked in attacked.items():
        if name not in rows[0]["methods"][method]["models"]:
            continue
        per_cond: dict[str, list[float]] = {}
        for p in rows:
            for cond, mses in p["methods"][method]["models"][name].items():
                per_cond.setdefault(cond, []).extend(mses)
        model: dict[str, Any] = {}
        for cond, contract_key in _CONTRACT_KEYS.items():
            if cond in per_cond:
                model[contract_key] = float(np.mean(np.array(per_cond[cond]) >= DISRUPTION_THRESHOLD))
        model["mean_mse"] = float(np.mean(per_cond["none"]))
        model["attacked"] = is_attacked
        ident = [p["methods"][method]["identity"][name] for p in rows if name in p["methods"][method]["identity"]]
        if ident:
            model["same_person_rate"] = float(np.mean([i["same_person_rate"] for i in ident]))
        model_extra = {f"disruption_{c}": float(np.mean(np.array(v) >= DISRUPTION_THRESHOLD)) for c, v in per_cond.items() if c not in _CONTRACT_KEYS}
        model_extra["pairs"] = len(per_cond["none"])
        if ident:
            model_extra["face_found_rate"] = float(np.mean([i["face_found_rate"] for i in ident]))
            clean = [p["clean_identity"][name] for p in rows]
            model_extra["same_person_rate_clean"] = float(np.mean([c["same_person_rate"] for c in clean]))
            model_extra["face_found_rate_clean"] = float(np.mean([c["face_found_rate"] for c in clean]))
            model_extra["mean_distance"] = float(np.nanmean([i["mean_distance"] for i in ident]))
            model_extra["mean_distance_clean"] = float(np.nanmean([c["mean_distance"] for c in clean]))
        out[name] = model
        extra[name] = model_extra
    return out, extra


def summarise(report: dict[str, Any], attacked: dict[str, bool]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(summary of ours per the DESIGN.md contract, same for the baseline, ours/baseline ratios, extras)."""
    ours, ours_extra = _method_summary(report["photos"], "ours", attacked)
    base, base_extra = _method_summary(report["photos"], "baseline", attacked)
    ratios: dict[str, Any] = {}
    for key, value in ours.items():
        if isinstance(value, dict):
            ratios[key] = {k: _ratio(v, base.get(key, {}).get(k)) for k, v in value.items() if isinstance(v, float)}
        else:
            ratios[key] = _ratio(value, base.get(key))
    return ours, base, ratios, {"ours": ours_extra, "baseline": base_extra}


def _ratio(a: float, b: Any) -> float | None:
    if not isinstance(b, float) or b == 0 or not np.isfinite(b):
        return None
    return float(a / b)


def run_tradeoff(
    photos: Sequence[Path],
    driving_dir: Path,
    *,
    models: Surrogates,
    transfer: dict[str, FOMM],
    home: Path,
    base: Preset,
    eps_values: Sequence[float],
    steps_values: Sequence[int] = (),
    conditions: Sequence[str] = ("none", "jpeg75"),
    frames_per_clip: int = 4,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Disruption vs PSNR for two budget shapes, and disruption vs steps.

    For each value ``v`` of ``eps_values``: ``linf`` is a sign attack with L-inf budget
    ``v`` (no masking, as in the published attacks); ``l2`` is our attack with RMS budget
    ``v``, an L-inf cap of ``4 v`` and texture masking of the cap. Both use ``base``'s
    loss terms, steps and transformations, so the curves show what the budget shape buys
    at equal PSNR. ``steps_values`` vary ``base``'s steps.
    """
    from dataclasses import replace

    fomms: dict[str, FOMM] = {models.fomm_name: models.fomm, **transfer}
    base = on_surrogates(base, models.targets)
    res = next(iter(fomms.values())).resolution
    _, clip_frames = load_driving(driving_dir, home, res, frames_per_clip)
    clip_kp = {name: [f.keypoints(fr) for fr in clip_frames] for name, f in fomms.items()}
    variants: list[tuple[str, float, Preset]] = []
    for v in eps_values:
        variants.append(("linf", v, replace(base, eps=v, rms=None, alpha=v / 4, perceptual=False, shaping=None)))
        variants.append(("l2", v, replace(base, eps=min(1.0, 4 * v), rms=v, alpha=v / 4, perceptual=True)))
    for steps in steps_values:
        variants.append(("steps", float(steps), replace(base, steps=steps)))
    prepared = []
    for path in photos:
        rgb = np.array(Image.open(path).convert("RGB"))
        faces = locate_faces(rgb)
        if faces:
            face = largest_face(faces)
            clean = {c: _deepfakes(CONDITIONS[c](rgb), face, fomms, clip_kp, models.faceswap) for c in conditions}
            prepared.append((path.name, rgb, face, clean))
    points = []
    for kind, value, preset in variants:
        rows: dict[str, list[float]] = {}
        quality: dict[str, list[float]] = {"psnr": [], "ssim": [], "face_psnr": [], "seconds": []}
        for pi, (_name, rgb, face, clean) in enumerate(prepared):
            started = time.perf_counter()
            result = protect_pixels(rgb, strength=preset, seed=seed + pi, models=models.targets, faces=[face])
            quality["seconds"].append(time.perf_counter() - started)
            quality["psnr"].append(result.psnr)
            quality["ssim"].append(result.ssim)
            quality["face_psnr"].append(result.faces[0].psnr)
            for c in conditions:
                fakes = _deepfakes(CONDITIONS[c](result.rgb), face, fomms, clip_kp, models.faceswap)
                for model_name, out in fakes.items():
                    rows.setdefault(f"{model_name}/{c}", []).extend(_pair_mse(out, clean[c][model_name]))
        point: dict[str, Any] = {
            "kind": kind, "value_8bit": round(value * 255, 3) if kind != "steps" else None, "eps_8bit": round(preset.eps * 255, 3),
            "rms_8bit": round(preset.rms * 255, 3) if preset.rms else None, "perceptual": preset.perceptual, "steps": preset.steps,
        }  # fmt: skip
        point.update({k: float(np.mean(v)) for k, v in quality.items()})
        point["disruption"] = {k: float(np.mean(np.array(v) >= DISRUPTION_THRESHOLD)) for k, v in rows.items()}
        point["mean_mse"] = {k: float(np.mean(v)) for k, v in rows.items()}
        points.append(point)
        if progress is not None:
            progress(f"{kind} {value * 255:g}/255" if kind != "steps" else f"steps={preset.steps}")
    return {"base": _preset_doc(base), "photos": [p[0] for p in prepared], "conditions": list(conditions), "points": points}


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One report from runs over disjoint photo subsets (same configuration), re-summarised."""
    if not reports:
        raise ValueError("nothing to merge")
    first = reports[0]
    for other in reports[1:]:
        if other["config"] != first["config"]:
            raise ValueError("reports were made with different configurations")
    merged: dict[str, Any] = {
        "command": [r.get("command") for r in reports],
        "config": first["config"],
        "photos": [p for r in reports for p in r["photos"]],
    }
    merged["summary"], merged["baseline_summary"], merged["ratios"], merged["extra"] = summarise(merged, first["config"]["attacked"])
    return merged


def _numbers(text: str | None) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()] if text else []


def _photos(folder: Path, skip: int, limit: int | None) -> list[Path]:
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[skip:]
    return photos if limit is None else photos[:limit]


def _write(doc: dict[str, Any], out: Path) -> None:
    import json

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1))


def _run(args: Any, command: str) -> dict[str, Any]:
    """The ``run`` subcommand: the main report, or the trade-off curve with ``--tradeoff-eps``."""
    from lab.bench.surrogate_plots import plot_summary, plot_tradeoff, save_grid
    from shield.adversarial.models.fomm import load_fomm_mini
    from shield.config import load_settings

    torch.set_num_threads(1)  # small 64 px models: one thread per process is fastest on a shared CPU
    home = load_settings().home
    photos = _photos(args.photos, args.skip, args.limit)
    models = Surrogates.load("cpu")
    transfer = {TRANSFER_FOMM: load_fomm_mini(TRANSFER_FOMM, "cpu")}
    fig_dir = args.figures or (args.json.parent if args.json is not None else None)
    stem = args.json.stem if args.json is not None else "protection"
    if args.tradeoff_eps:
        doc = run_tradeoff(
            photos, args.driving, models=models, transfer=transfer, home=home, base=get_preset(args.strength),
            eps_values=[v / 255 for v in _numbers(args.tradeoff_eps)], steps_values=[int(v) for v in _numbers(args.tradeoff_steps)],
            seed=args.seed, progress=lambda name: log.info("trade-off point %s done", name),
        )  # fmt: skip
        doc = {"command": command, **doc}
        if fig_dir is not None:
            plot_tradeoff(doc, fig_dir / f"{stem}.png")
    else:
        boxes: dict[str, tuple[float, float, float, float]] = {}

        def keep(photo: str, images: dict[str, Any]) -> None:
            if fig_dir is not None:
                save_grid(images, boxes[photo], fig_dir / f"{stem}_grid_{photo}.png")

        doc = run_bench(
            photos, args.driving, models=models, transfer=transfer, home=home,
            config=BenchConfig(strength=args.strength, frames_per_clip=args.frames, seed=args.seed),
            progress=lambda name: log.info("evaluated %s", name), keep_images=keep if fig_dir is not None else None, face_boxes=boxes,
        )  # fmt: skip
        doc = {"command": command, **doc}
        if fig_dir is not None:
            plot_summary(doc, fig_dir / f"{stem}.png")
    if args.json is not None:
        _write(doc, args.json)
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.bench.surrogate_harness run|merge ...`` (see the module docstring)."""
    import argparse
    import json
    import shlex
    import sys

    parser = argparse.ArgumentParser(prog="python -m lab.bench.surrogate_harness", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="protect photos on the surrogates, make deepfakes, measure the disruption (vs Ruiz et al. 2020)")
    r.add_argument("--photos", type=Path, required=True, help="folder of face photos (*.jpg, *.png)")
    r.add_argument("--driving", type=Path, required=True, help="folder of driving clips (*.mp4); its validation clips are used when present")
    r.add_argument("--json", type=Path, default=None, help="write the full report here (else print the summary only)")
    r.add_argument("--limit", type=int, default=None, help="evaluate only the first N photos (sorted by name)")
    r.add_argument("--skip", type=int, default=0, help="skip the first N photos (to split a run)")
    r.add_argument("--strength", choices=["fast", "balanced", "max"], default="balanced")
    r.add_argument("--seed", type=int, default=0, help="seed of the protection runs")
    r.add_argument("--frames", type=int, default=6, help="driving frames per clip (>= 2)")
    r.add_argument("--figures", type=Path, default=None, help="folder for the plot and sample grids (default: beside --json)")
    r.add_argument("--tradeoff-eps", default=None, help="instead of the main run: comma-separated budgets in 1/255 units (disruption vs PSNR)")
    r.add_argument("--tradeoff-steps", default=None, help="with --tradeoff-eps: comma-separated step counts (disruption vs steps)")
    m = sub.add_parser("merge", help="merge reports of disjoint photo subsets")
    m.add_argument("out", type=Path)
    m.add_argument("inputs", type=Path, nargs="+")
    m.add_argument("--plot", type=Path, default=None, help="also draw the summary bar chart here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "run":
        if not args.photos.is_dir() or not args.driving.is_dir():
            parser.error("--photos and --driving must be folders")
        if args.frames < 2:
            parser.error("--frames must be at least 2")
        command = "python -m lab.bench.surrogate_harness " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
        doc = _run(args, command)
        shown = doc["points"] if "points" in doc else {k: doc[k] for k in ("summary", "baseline_summary", "ratios")}
        print(json.dumps(shown, indent=1))
        return 0
    merged = merge_reports([json.loads(p.read_text()) for p in args.inputs])
    _write(merged, args.out)
    if args.plot is not None:
        from lab.bench.surrogate_plots import plot_summary

        plot_summary(merged, args.plot)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
