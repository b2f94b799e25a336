"""Face-aware adversarial protection of a photo: the recipe behind `shield protect`.

For each face found in the photo (dlib HOG + 5-point landmarks), the attack works on
the region of the photo around it, at full resolution up to a face of
:data:`MAX_SHAPED_FACE_SIDE` px (larger ones on a downscaled copy): every threat model of the
ensemble (a plug-in of ``shield.adversarial.threats``: detectors, landmark networks,
identity encoders, generators, reenactment and swap models) sees that region through
its own differentiable view (``Target.view``; ``shield.adversarial.face_views``), so
the perturbation is optimised where it lives -- in the photo's pixels -- and survives
the crop-and-resize any deepfake tool performs. After the attack every attacked
network runs its own break test on the final 8-bit photo (the self-check), per face. The per-pixel L-inf cap is feathered to zero at the region
border and scaled by local texture, or shaped (luma-dominant, no low frequencies,
JND-scaled: ``shield.adversarial.perceptual``); an optional RMS (L2) budget bounds the
energy over the region, i.e. sets a PSNR floor, and lets the attack spend it where
the models are sensitive. The L-inf cap is enforced again on the final 8-bit image,
after rounding.

With no face, :func:`protect_pixels` raises :class:`~shield.errors.NoFaceError`
unless ``whole_frame=True``, which attacks the whole photo squeezed into each
model's input square (models that need an aligned face, such as identity encoders and
landmark networks, sit that out).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shield.adversarial.attacks import PGD, LossTerm, StepCallback, WeightedObjective
from shield.adversarial.face_views import FaceGeometry, View, affine_crop, locate_faces, view_bbox
from shield.adversarial.metrics import psnr, ssim
from shield.adversarial.perceptual import jnd_scale, shaper
from shield.adversarial.presets import Preset, check_weights, get_preset
from shield.adversarial.threats import Target, Verdict, load_ensemble
from shield.adversarial.transforms import EotSampler
from shield.errors import NoFaceError, ProtectionError
from shield.tensors import to_tensor, to_uint8

__all__ = [
    "FaceReport",
    "SelfCheck",
    "ProtectionResult",
    "protect_pixels",
    "protect_tensor_region",
    "texture_mask",
    "MAX_WORK_SIDE",
]

log = logging.getLogger(__name__)

#: Progress protocol shared with the CLI, in attack steps: called once with the total
#: number of PGD steps over all faces, returns a function that is called with 1 after
#: each step.
Progress = Callable[[int], Callable[[int], None]]

#: Longest side of the region the attack optimises; larger face regions are attacked on
#: a downscaled copy and the perturbation is upsampled (bilinear) to full resolution.
#: Model inputs are at most 256 px (the official FOMM) and the region spans about 1.9x
#: the face box, so 384 px keeps each view near or above its size.
MAX_WORK_SIDE = 384
#: The same with perceptual shaping (a face region is further held to
#: :data:`MAX_SHAPED_FACE_SIDE`, so this bounds the whole-frame attack).
MAX_SHAPED_WORK_SIDE = 640
#: With perceptual shaping, the longest side of the face box in the work copy. Every
#: attacked network sees the face at about 150 px or less (dlib's and face-api.js's
#: chips; the detectors and FaceMesh at less), so a larger face is attacked on a copy
#: where it is this size, and the perturbation, with its budget, is upsampled: the attack
#: then works at the networks' own scale whatever the photo's resolution. Computed on
#: the full-size face instead, the budget follows the smoother skin of the many more
#: pixels and the networks' downscaling averages the finest scales away (measured on
#: three photos of 1275-1500 px with faces of 200-260 px: 1-4 dB less energy, and the
#: MTCNN + dlib pipeline broken on one of the three, against all three at 640 px).
MAX_SHAPED_FACE_SIDE = 160


@dataclass(frozen=True)
class FaceReport:
    """One protected face (or the whole frame).

    Attributes:
        box: (left, top, right, bottom) face box in photo pixels (whole image when whole-frame).
        region: (x0, y0, x1, y1) pixels the perturbation may touch.
        psnr: dB over ``region``, protected vs original.
        seconds: wall time of the attack on this face.
        stages: attacked model name -> its break test on this face (the self-check on
            the final 8-bit photo).
    """

    box: tuple[float, float, float, float]
    region: tuple[int, int, int, int]
    psnr: float
    seconds: float
    stages: dict[str, Verdict] = field(default_factory=dict)

    @property
    def broken(self) -> list[str]:
        """Names of the attacked networks that broke on this face."""
        return [name for name, v in self.stages.items() if v.broken]


@dataclass(frozen=True)
class SelfCheck:
    """One attacked network's break test on the final 8-bit photo, over the faces it applies to.

    Attributes:
        role: the network's role.
        broken: faces on which it broke.
        tested: faces on which the test applied (a detector that misses the clean face,
            for instance, is not tested there).
        measure: mean of the measured quantity over the tested faces (see ``what``).
        threshold: the break threshold of that quantity.
        what: what the measure is.
        trials: held-out trials per face (motions, identities; 1 for front-end stages).
    """

    role: str
    broken: int
    tested: int
    measure: float
    threshold: float
    what: str
    trials: int

    @property
    def disruption(self) -> float:
        """Share of the tested faces on which the network broke (0 when none was tested)."""
        return self.broken / self.tested if self.tested else 0.0


@dataclass(frozen=True)
class ProtectionResult:
    """Output of :func:`protect_pixels`.

    Attributes:
        rgb: HxWx3 uint8 protected photo.
        delta: HxWx3 int16, protected minus original (for the watermark's hint).
        faces: one report per protected face.
        psnr: dB, whole photo, protected vs original.
        ssim: whole photo (Wang et al. 2004, Gaussian window).
        self_check: attacked model name -> its break test over the faces.
        params: preset, seed, models and budget actually used.
    """

    rgb: np.ndarray
    delta: np.ndarray
    faces: list[FaceReport]
    psnr: float
    ssim: float
    self_check: dict[str, SelfCheck]
    params: dict[str, Any] = field(default_factory=dict)

    def manifest_record(self) -> dict[str, Any]:
        """Plain-JSON record for the C2PA assertion (parameters, quality, self-check)."""
        return {
            "applied": True,
            "params": self.params,
            "psnr": round(self.psnr, 3),
            "ssim": round(self.ssim, 5),
            # a whole-frame run protected no face: it says so rather than counting the frame as one
            "faces": 0 if self.params.get("whole_frame") else len(self.faces),
            "whole_frame": bool(self.params.get("whole_frame")),
            "self_check": {k: {**asdict(v), "disruption": round(v.disruption, 4)} for k, v in self.self_check.items()},
            "stages": [
                {name: {"broken": v.broken, "measure": round(v.measure, 5), "what": v.what} for name, v in face.stages.items()}
                for face in self.faces
            ],
        }


@dataclass(frozen=True)
class _Region:
    """The slice of the photo one attack works on, and each model's view into it (region pixels)."""

    box: tuple[float, float, float, float]
    x0: int
    y0: int
    x1: int
    y1: int
    views: dict[str, View]
    mask: torch.Tensor  # (1,1,h,w) feathered 0..1
    alignments: dict[str, list[View]] = field(default_factory=dict)  # other crops each model is attacked on
    whole_frame: bool = False  # the photo without a face, squeezed into each view


def _snap_region(bbox: tuple[float, float, float, float], margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Expand by ``margin`` and snap outwards to the 16 px grid (JPEG MCUs), inside the photo."""
    x0 = max(0, int(math.floor((bbox[0] - margin) / 16)) * 16)
    y0 = max(0, int(math.floor((bbox[1] - margin) / 16)) * 16)
    x1 = min(width, int(math.ceil((bbox[2] + margin + 1) / 16)) * 16)
    y1 = min(height, int(math.ceil((bbox[3] + margin + 1) / 16)) * 16)
    return x0, y0, x1, y1


def _feather(h: int, w: int, inner: tuple[float, float, float, float], ramp: float) -> torch.Tensor:
    """1 inside ``inner`` (region coordinates), linear fall to 0 over ``ramp`` pixels outside."""
    ys = torch.arange(h, dtype=torch.float32).view(-1, 1)
    xs = torch.arange(w, dtype=torch.float32).view(1, -1)
    dx = torch.clamp(torch.maximum(inner[0] - xs, xs - inner[2]), min=0)
    dy = torch.clamp(torch.maximum(inner[1] - ys, ys - inner[3]), min=0)
    dist = torch.sqrt(dx**2 + dy**2)
    return torch.clamp(1 - dist / max(ramp, 1.0), 0, 1).view(1, 1, h, w)


def texture_mask(x: torch.Tensor, *, floor: float = 0.5, tau: float = 0.05, window: int = 7) -> torch.Tensor:
    """Per-pixel budget scale in [floor, 1] from local luminance contrast (texture masking).

    Flat areas (sky, skin in shadow) show noise most; textured ones hide it (the
    contrast-masking effect used by JND models, e.g. Chou & Li 1995). The scale is
    ``clamp(local_std / tau, floor, 1)`` with the standard deviation of luma (BT.601) over
    a ``window`` square.
    """
    return jnd_scale(x, floor=floor, tau=tau, window=window)


def _face_region(face: FaceGeometry, targets: Sequence[Target], width: int, height: int) -> _Region:
    views = {t.name: v for t in targets if (v := t.view(face, width, height)) is not None}
    if not views:
        raise ProtectionError("no threat model to protect against", fix="run `shield models verify`")
    extra = {t.name: t.alignments(face, width, height) for t in targets if t.name in views}
    boxes = np.array([view_bbox(v) for v in [*views.values(), *(a for al in extra.values() for a in al)]])
    inner = (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))
    ramp = max(4.0, 0.06 * (inner[2] - inner[0]))
    x0, y0, x1, y1 = _snap_region(inner, ramp, width, height)
    mask = _feather(y1 - y0, x1 - x0, (inner[0] - x0, inner[1] - y0, inner[2] - x0, inner[3] - y0), ramp)
    shifted = {k: [a.shifted(x0, y0) for a in al] for k, al in extra.items() if al}
    return _Region(face.box, x0, y0, x1, y1, {k: v.shifted(x0, y0) for k, v in views.items()}, mask, shifted)


def _whole_region(targets: Sequence[Target], width: int, height: int) -> _Region:
    views = {t.name: v for t in targets if (v := t.view(None, width, height)) is not None}
    if not views:
        raise ProtectionError("no threat model of the ensemble takes a whole frame", fix="protect a photo with a face")
    mask = torch.ones(1, 1, height, width)
    return _Region((0.0, 0.0, float(width), float(height)), 0, 0, width, height, views, mask, whole_frame=True)


def _crop_fn(view: View) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: affine_crop(t, view)


def _terms(targets: Sequence[Target], region: _Region, preset: Preset, gen: torch.Generator) -> list[LossTerm]:
    options = preset.options()
    terms: list[LossTerm] = []
    for target in targets:
        weight = preset.weights.get(target.name, 0.0)
        view = region.views.get(target.name)
        if weight and view is not None:
            for v in [view, *region.alignments.get(target.name, [])]:
                terms += target.terms(_crop_fn(v), weight, gen, options)
    if not terms:
        raise ProtectionError("the preset enables no loss term for the available models")
    return terms


def _scaled(view: View, sx: float, sy: float) -> View:
    """``view`` for a copy of its image resized by (sx, sy) (pixel-centre convention)."""
    to_full = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    return View((np.vstack([view.matrix, [0, 0, 1]]) @ to_full)[:2], view.size)


def _work_scale(region: _Region, h: int, w: int, preset: Preset) -> float:
    """The scale of the copy the attack works on (1: the region itself)."""
    if preset.shaping is None:
        return min(1.0, MAX_WORK_SIDE / max(h, w))
    scale = min(1.0, MAX_SHAPED_WORK_SIDE / max(h, w))
    if not region.whole_frame:
        x0, y0, x1, y1 = region.box
        scale = min(scale, MAX_SHAPED_FACE_SIDE / max(x1 - x0, y1 - y0, 1.0))
    return scale


def _work_copy(x: torch.Tensor, region: _Region, s: float) -> tuple[torch.Tensor, _Region]:
    h, w = x.shape[-2:]
    if s >= 1.0:
        return x, region
    hw, ww = max(16, round(h * s)), max(16, round(w * s))
    xw = F.interpolate(x, size=(hw, ww), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    sx, sy = ww / w, hw / h
    mask = F.interpolate(region.mask, size=(hw, ww), mode="bilinear", align_corners=False, antialias=True)
    views = {name: _scaled(v, sx, sy) for name, v in region.views.items()}
    extra = {name: [_scaled(v, sx, sy) for v in al] for name, al in region.alignments.items()}
    return xw, _Region(region.box, 0, 0, ww, hw, views, mask, extra, region.whole_frame)


def _budget(x: torch.Tensor, mask: torch.Tensor, preset: Preset) -> torch.Tensor:
    budget = mask.to(x) * preset.eps
    if preset.shaping is not None:
        s = preset.shaping
        return budget * jnd_scale(x, floor=s.floor, tau=s.tau, window=s.window)
    return budget * texture_mask(x) if preset.perceptual else budget


def _rms_weight(x: torch.Tensor, preset: Preset) -> torch.Tensor | None:
    s = preset.shaping
    if s is None or not s.weighted_rms:
        return None
    return jnd_scale(x, floor=s.floor, tau=s.tau, window=s.window)


def protect_tensor_region(
    x: torch.Tensor,
    region: _Region,
    models: Sequence[Target],
    preset: Preset,
    gen: torch.Generator,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """Attack one region (1,3,h,w) in [0,1] and return its adversarial version (continuous).

    Regions larger than :data:`MAX_WORK_SIDE` (with shaping: :data:`MAX_SHAPED_WORK_SIDE`,
    or faces larger than :data:`MAX_SHAPED_FACE_SIDE`) are attacked on a downscaled copy;
    the perturbation is upsampled and clipped to the budget: the full-resolution one, or
    with shaping the work copy's budget upsampled (the perturbation was shaped there).
    ``on_step`` is called after each attack step.
    """
    xw, work = _work_copy(x, region, _work_scale(region, x.shape[-2], x.shape[-1], preset))
    adv = _attack(xw, work, models, preset, gen, on_step)
    if xw is x:
        return adv
    size = x.shape[-2:]
    if preset.shaping is None:
        budget = _budget(x, region.mask, preset)
        delta = F.interpolate(adv - xw, size=size, mode="bilinear", align_corners=False)
    else:
        # Bicubic interpolation alone: a 1 px Gaussian before it (once used against a grid at
        # the resampling period) kept 1% of a 2 px period and 29% of a 4 px one, the scales
        # the shaped perturbation lives in (measured on two 1275-1500 px photos: 2.5 dB less
        # energy on the face, neither swap front-end broken on one of them); without it the
        # grid measure is that of the same photos attacked at 640 px (grid_modulation 0.09
        # and 0.19 against 0.13 and 0.19).
        budget = F.interpolate(_budget(xw, work.mask, preset), size=size, mode="bilinear", align_corners=False)
        delta = F.interpolate(adv - xw, size=size, mode="bicubic", align_corners=False)
    delta = torch.maximum(torch.minimum(delta, budget), -budget)
    return (x + delta).clamp(0, 1)


def _attack(
    x: torch.Tensor,
    region: _Region,
    models: Sequence[Target],
    preset: Preset,
    gen: torch.Generator,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    objective = WeightedObjective(_terms(models, region, preset, gen), sample=preset.terms_per_step)
    objective.prepare(x)
    budget = _budget(x, region.mask, preset)
    attack = PGD(
        objective,
        eps=preset.eps,
        alpha=preset.alpha,
        steps=preset.steps,
        random_start=preset.random_start,
        momentum=preset.momentum,
        eot=EotSampler(preset.eot) if preset.eot is not None else None,
        eot_samples=preset.eot_samples,
        rms=preset.rms,
        shape=shaper(preset.shaping, budget.to(x.device)) if preset.shaping is not None else None,
        rms_weight=_rms_weight(x, preset),
        device=x.device,
    )
    log.debug("attack %r with %r", attack, objective)
    return attack(x, gen=gen, budget=budget.to(x.device), on_step=on_step)


@torch.no_grad()
def _self_check(clean: torch.Tensor, protected: torch.Tensor, region: _Region, targets: Sequence[Target]) -> dict[str, Verdict]:
    """Each attacked network's break test on this region (the final 8-bit photo)."""
    return {t.name: t.check(clean, protected, _crop_fn(region.views[t.name])) for t in targets if t.name in region.views}


def _summarise(targets: Sequence[Target], faces: Sequence[FaceReport]) -> dict[str, SelfCheck]:
    out: dict[str, SelfCheck] = {}
    for target in targets:
        verdicts = [f.stages[target.name] for f in faces if target.name in f.stages]
        if not verdicts:
            continue
        tested = [v for v in verdicts if v.broken is not None]
        measure = sum(v.measure for v in tested) / len(tested) if tested else 0.0
        out[target.name] = SelfCheck(
            target.role.value, sum(1 for v in tested if v.broken), len(tested), measure,
            verdicts[0].threshold, verdicts[0].what, verdicts[0].trials,
        )  # fmt: skip
    return out


def _quantise_within_budget(original: np.ndarray, adversarial: torch.Tensor, eps: float) -> np.ndarray:
    """Round to 8 bits and clip the integer change to floor(255 eps); check it holds."""
    limit = int(math.floor(eps * 255 + 1e-6))
    adv = to_uint8(adversarial).astype(np.int16)
    delta = np.clip(adv - original.astype(np.int16), -limit, limit)
    out = (original.astype(np.int16) + delta).clip(0, 255).astype(np.uint8)
    worst = int(np.abs(out.astype(np.int16) - original.astype(np.int16)).max(initial=0))
    if worst > limit:  # an explicit check, not an assert: it must survive python -O
        raise ProtectionError(f"perturbation of {worst}/255 exceeds the budget of {limit}/255")
    return out


def _ssim_changed(original: torch.Tensor, protected: torch.Tensor, changed: np.ndarray) -> float:
    """Whole-image SSIM computed only where it can differ from 1.

    The SSIM map is exactly 1 wherever the 11x11 window sees identical pixels, so the
    map is evaluated on the bounding box of the changed pixels grown by the window,
    and the untouched positions count as 1 in the mean (same value as the full map).
    """
    h, w = original.shape[-2:]
    if min(h, w) < 11:
        return 1.0
    ys, xs = np.nonzero(changed)
    if ys.size == 0:
        return 1.0
    y0, y1 = max(0, ys.min() - 10), min(h, ys.max() + 11)
    x0, x1 = max(0, xs.min() - 10), min(w, xs.max() + 11)
    if y1 - y0 < 11 or x1 - x0 < 11:
        y0, y1 = max(0, min(y0, h - 11)), max(y1, min(h, y0 + 11))
        x0, x1 = max(0, min(x0, w - 11)), max(x1, min(w, x0 + 11))
    sl = (slice(None), slice(None), slice(y0, y1), slice(x0, x1))
    inner = float(ssim(protected[sl], original[sl])[0])
    n_box = (y1 - y0 - 10) * (x1 - x0 - 10)
    n_all = (h - 10) * (w - 10)
    return (inner * n_box + (n_all - n_box)) / n_all


def _step_ticker(advance: Callable[[int], None]) -> StepCallback:
    """The attack's per-step callback that advances the progress by one step."""

    def on_step(step: int, total: int, loss: float) -> None:
        advance(1)

    return on_step


def protect_pixels(
    rgb: np.ndarray,
    *,
    strength: str | Preset = "balanced",
    whole_frame: bool = False,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    progress: Progress | None = None,
    models: Sequence[Target] | None = None,
    faces: Sequence[FaceGeometry] | None = None,
) -> ProtectionResult:
    """Add an adversarial perturbation that breaks deepfakes made from ``rgb``.

    Args:
        rgb: HxWx3 uint8 RGB photo.
        strength: ``fast`` | ``balanced`` | ``max`` (see ``shield.adversarial.presets``)
            or a :class:`Preset`.
        whole_frame: when no face is found, attack the whole frame instead of raising.
        device: torch device for the computation.
        seed: seeds every random choice (random start, motions, transformations); a
            fresh random seed is drawn and recorded in ``params`` when None.
        progress: called once with the total number of attack steps (PGD steps summed
            over the faces); its return value is called with 1 after each step.
        models: the loaded threat models (default: the preset's ensemble,
            :func:`~shield.adversarial.threats.load_ensemble`); only those the preset
            weighs are attacked and self-checked.
        faces: faces to protect (default: detected with dlib HOG + 5 landmarks).

    Returns:
        :class:`ProtectionResult`; ``|rgb_out - rgb| <= floor(255 eps)`` on every channel.

    Raises:
        NoFaceError: no face and ``whole_frame`` is False.
        ProtectionError: the budget could not be met after quantisation, or no model to attack.
        ModelError: a network's weights are missing or corrupt.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError("rgb: expected an HxWx3 uint8 array")
    preset = get_preset(strength)
    check_weights(preset.weights)
    seed = secrets.randbits(63) if seed is None else int(seed)
    gen = torch.Generator().manual_seed(seed)
    loaded = tuple(models) if models is not None else load_ensemble(dict(preset.weights), device)
    targets = [t for t in loaded if preset.weights.get(t.name, 0.0)]
    if not targets:
        raise ProtectionError("the preset attacks none of the loaded models", fix="run `shield models verify`")
    height, width = rgb.shape[:2]
    found = list(faces) if faces is not None else locate_faces(rgb)
    if found:
        regions = [_face_region(f, targets, width, height) for f in found]
    elif whole_frame:
        regions = [_whole_region(targets, width, height)]
    else:
        raise NoFaceError("no face found in the photo, so there is nothing to protect against face deepfakes")
    advance = progress(len(regions) * preset.steps) if progress is not None else None
    on_step = _step_ticker(advance) if advance is not None else None
    original = to_tensor(rgb, device)
    current = original.clone()
    timings: list[float] = []
    for region in regions:
        started = time.perf_counter()
        sl = (slice(None), slice(None), slice(region.y0, region.y1), slice(region.x0, region.x1))
        current[sl] = protect_tensor_region(current[sl].clone(), region, targets, preset, gen, on_step)
        timings.append(time.perf_counter() - started)
    out = _quantise_within_budget(rgb, current, preset.eps)
    protected = to_tensor(out, device)
    faces_out: list[FaceReport] = []
    for region, seconds in zip(regions, timings):
        sl = (slice(None), slice(None), slice(region.y0, region.y1), slice(region.x0, region.x1))
        stages = _self_check(original[sl], protected[sl], region, targets)
        box = (float(region.box[0]), float(region.box[1]), float(region.box[2]), float(region.box[3]))
        region_psnr = float(psnr(protected[sl], original[sl])[0])
        faces_out.append(FaceReport(box, (region.x0, region.y0, region.x1, region.y1), region_psnr, seconds, stages))
    params = {
        "strength": preset.name,
        "eps": preset.eps,
        "eps_8bit": int(math.floor(preset.eps * 255 + 1e-6)),
        "rms": preset.rms,
        "alpha": preset.alpha,
        "steps": preset.steps,
        "momentum": preset.momentum,
        "eot": preset.eot is not None,
        "perceptual": preset.perceptual,
        "shaping": asdict(preset.shaping) if preset.shaping is not None else None,
        "seed": seed,
        "whole_frame": not found,
        "models": [t.name for t in targets],
        "weights": {t.name: preset.weights[t.name] for t in targets},
    }
    return ProtectionResult(
        rgb=out,
        delta=out.astype(np.int16) - rgb.astype(np.int16),
        faces=faces_out,
        psnr=float(psnr(protected, original)[0]),
        ssim=_ssim_changed(original, protected, np.any(out != rgb, axis=2)),
        self_check=_summarise(targets, faces_out),
        params=params,
    )
