"""Face-aware adversarial protection of a photo: the recipe behind `shield protect`.

For each face found in the photo (dlib HOG + 5-point landmarks), the attack works on
the region of the photo around it, at full resolution: every threat model sees that
region through its own differentiable aligned view (FOMM square crop, face-swap
chip, dlib 150 chip, SimSwap's 224 ArcFace-template crop when the official SimSwap
or ArcFace is loaded, a second FOMM square crop at 256 px when the official vox-256
FOMM is loaded; ``shield.adversarial.face_views``), so the perturbation is
optimised where it lives -- in the photo's pixels -- and survives the crop-and-resize
any deepfake tool performs. The per-pixel L-inf cap is feathered to zero at the region
border and optionally scaled by local texture; an optional RMS (L2) budget bounds the
energy over the region, i.e. sets a PSNR floor, and lets the attack spend it where
the models are sensitive. The L-inf cap is enforced again on the final 8-bit image,
after rounding.

With no face, :func:`protect_pixels` raises :class:`~shield.errors.NoFaceError`
unless ``whole_frame=True``, which attacks the whole photo squeezed into each
model's input square (no identity, ArcFace or SimSwap term: they need an aligned face).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from shield.adversarial.attacks import (
    PGD,
    FommDistortion,
    IdentityPushAway,
    KeypointDisplacement,
    LossTerm,
    SwapDistortion,
    WeightedObjective,
    random_motions,
)
from shield.adversarial.attacks.losses import ArcFacePushAway, SimSwapDistortion, random_identities, simswap_swaps
from shield.adversarial.face_views import FaceGeometry, View, affine_crop, locate_faces, view_bbox, whole_frame_view
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse, psnr, ssim
from shield.adversarial.models.arcface import ArcFace, simswap_identity
from shield.adversarial.models.autoencoder import FaceSwapAE
from shield.adversarial.models.fomm import FOMM
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.adversarial.presets import Preset, get_preset
from shield.adversarial.threat_models import ThreatModels, load_threat_models
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

#: Progress protocol shared with the CLI: called once with the number of faces, returns
#: a function that is called with 1 after each face is done.
Progress = Callable[[int], Callable[[int], None]]

#: Seed offset of the held-out motions used by the self-check (never seen by the attack).
_SELF_CHECK_SEED = 7919
_SELF_CHECK_MOTIONS = 16
_DLIB_CHIP = 150
#: SimSwap 224: the generator's input side and the ArcFace template scale (2x the 112 template).
_SIMSWAP_SIZE = 224
#: Random stand-in identities SimSwap renders the photo's face with (besides its own),
#: and latents/targets evaluated per step (each SimSwap pass costs about 50 GMAC).
_SIMSWAP_IDENTITIES = 3
_SIMSWAP_PER_STEP = 1
#: Held-out random identities of the SimSwap self-check.
_SELF_CHECK_IDENTITIES = 2
#: Motions the official FOMM animates per step: one 256 px generator pass costs about
#: 16x a 64 px one (presets.py gives the measured step time).
_FOMM_OFFICIAL_PER_STEP = 1
#: Pixels the self-check animates at once: every motion of a 64 px FOMM in one batch,
#: four at a time at 256 px (bounds the memory of the official model's check).
_SELF_CHECK_PIXELS = 4 * 256 * 256
#: Longest side of the region the attack optimises; larger face regions are attacked on
#: a downscaled copy and the perturbation is upsampled (bilinear) to full resolution.
#: Model inputs are at most 256 px (the official FOMM) and the region spans about 1.9x
#: the face box, so 384 px keeps each view near or above its size.
MAX_WORK_SIDE = 384


@dataclass(frozen=True)
class FaceReport:
    """One protected face (or the whole frame).

    Attributes:
        box: (left, top, right, bottom) face box in photo pixels (whole image when whole-frame).
        region: (x0, y0, x1, y1) pixels the perturbation may touch.
        psnr: dB over ``region``, protected vs original.
        seconds: wall time of the attack on this face.
    """

    box: tuple[float, float, float, float]
    region: tuple[int, int, int, int]
    psnr: float
    seconds: float


@dataclass(frozen=True)
class SelfCheck:
    """Disruption of one attacked model, measured on the final 8-bit photo.

    ``disruption`` is the fraction of held-out trials (FOMM: random driving motions not
    used by the attack; swap: target identities; SimSwap: the photo as target with its
    own and held-out random identities, and as identity source) whose output from the protected photo
    differs from the output from the original by MSE >= 0.05 on [-1,1]; ``mean_mse`` the
    mean of those MSEs. Averaged over faces.
    """

    disruption: float
    mean_mse: float
    trials: int


@dataclass(frozen=True)
class ProtectionResult:
    """Output of :func:`protect_pixels`.

    Attributes:
        rgb: HxWx3 uint8 protected photo.
        delta: HxWx3 int16, protected minus original (for the watermark's hint).
        faces: one report per protected face.
        psnr: dB, whole photo, protected vs original.
        ssim: whole photo (Wang et al. 2004, Gaussian window).
        self_check: attacked model name -> measured disruption.
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
            "faces": len(self.faces),
            "self_check": {k: asdict(v) for k, v in self.self_check.items()},
        }


@dataclass(frozen=True)
class _Region:
    """The slice of the photo one attack works on, and the views into it."""

    box: tuple[float, float, float, float]
    x0: int
    y0: int
    x1: int
    y1: int
    fomm: View | None
    swap: View | None
    chip: View | None
    arcface: View | None  # SimSwap's 224 ArcFace-template crop
    mask: torch.Tensor  # (1,1,h,w) feathered 0..1
    fomm_official: View | None = None  # the official FOMM's square crop at its resolution


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
    luma = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).float()
    pad = window // 2
    lp = F.pad(luma, (pad, pad, pad, pad), mode="replicate")
    mean = F.avg_pool2d(lp, window, stride=1)
    sq = F.avg_pool2d(lp * lp, window, stride=1)
    std = (sq - mean**2).clamp_min(0).sqrt()
    return torch.clamp(std / tau, floor, 1.0)


def _face_region(face: FaceGeometry, models: ThreatModels, width: int, height: int) -> _Region:
    views: dict[str, View] = {}
    if models.fomm is not None:
        views["fomm"] = face.fomm_view(models.fomm.resolution)
    if models.fomm_official is not None:
        views["fomm_official"] = face.fomm_view(models.fomm_official.resolution)
    if models.faceswap is not None:
        views["swap"] = face.chip_view(models.faceswap.resolution)
    if models.identity is not None:
        views["chip"] = face.chip_view(_DLIB_CHIP)
    if models.simswap is not None or models.arcface is not None:
        views["arcface"] = face.arcface_view(_SIMSWAP_SIZE)
    if not views:
        raise ProtectionError("no threat model to protect against", fix="run `shield models verify`")
    boxes = np.array([view_bbox(v) for v in views.values()])
    inner = (float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max()))
    ramp = max(4.0, 0.06 * (inner[2] - inner[0]))
    x0, y0, x1, y1 = _snap_region(inner, ramp, width, height)
    mask = _feather(y1 - y0, x1 - x0, (inner[0] - x0, inner[1] - y0, inner[2] - x0, inner[3] - y0), ramp)
    shifted = {k: v.shifted(x0, y0) for k, v in views.items()}
    return _Region(
        face.box, x0, y0, x1, y1, shifted.get("fomm"), shifted.get("swap"), shifted.get("chip"), shifted.get("arcface"), mask,
        shifted.get("fomm_official"),
    )  # fmt: skip


def _whole_region(models: ThreatModels, width: int, height: int) -> _Region:
    def square(model: FOMM | FaceSwapAE | None) -> View | None:
        return whole_frame_view(width, height, model.resolution) if model is not None else None

    mask = torch.ones(1, 1, height, width)
    box = (0.0, 0.0, float(width), float(height))
    return _Region(box, 0, 0, width, height, square(models.fomm), square(models.faceswap), None, None, mask, square(models.fomm_official))


def _crop_fn(view: View) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda t: affine_crop(t, view)


def _fomm_terms(fomm: FOMM, view: View, preset: Preset, gen: torch.Generator, *, weight: float, per_step: int) -> list[LossTerm]:
    """Distortion of the animated frames (weight ``weight``) and keypoint displacement (preset weight)."""
    crop = _crop_fn(view)
    terms: list[LossTerm] = []
    if weight:
        bank = random_motions(preset.motions, fomm.config.common.num_kp, gen)
        terms.append(FommDistortion(fomm, crop, bank, per_step=per_step, weight=weight))
    if preset.weights.keypoints:
        terms.append(KeypointDisplacement(fomm, crop, weight=preset.weights.keypoints))
    return terms


def _terms(models: ThreatModels, region: _Region, preset: Preset, gen: torch.Generator) -> list[LossTerm]:
    w = preset.weights
    terms: list[LossTerm] = []
    if models.fomm is not None and region.fomm is not None:
        terms += _fomm_terms(models.fomm, region.fomm, preset, gen, weight=w.fomm, per_step=preset.motions_per_step)
    if models.fomm_official is not None and region.fomm_official is not None and w.fomm_official:
        per_step = min(preset.motions_per_step, _FOMM_OFFICIAL_PER_STEP)
        terms += _fomm_terms(models.fomm_official, region.fomm_official, preset, gen, weight=w.fomm_official, per_step=per_step)
    if models.faceswap is not None and region.swap is not None and w.swap:
        ids = list(range(len(models.faceswap.identities)))
        terms.append(SwapDistortion(models.faceswap, models.faceswap.swap, ids, _crop_fn(region.swap), weight=w.swap))
    if models.identity is not None and region.chip is not None and w.identity:
        terms.append(IdentityPushAway(models.identity, _crop_fn(region.chip), weight=w.identity))
    if models.arcface is not None and region.arcface is not None:
        crop = _crop_fn(region.arcface)
        if models.simswap is not None and w.simswap:
            latents = random_identities(_SIMSWAP_IDENTITIES, models.simswap.latent, gen)
            terms.append(SimSwapDistortion(models.simswap, models.arcface, crop, latents, per_step=_SIMSWAP_PER_STEP, weight=w.simswap))
        if w.arcface:
            terms.append(ArcFacePushAway(models.arcface, crop, weight=w.arcface))
    if not terms:
        raise ProtectionError("the preset enables no loss term for the available models")
    return terms


def _scaled(view: View | None, sx: float, sy: float) -> View | None:
    """``view`` for a copy of its image resized by (sx, sy) (pixel-centre convention)."""
    if view is None:
        return None
    to_full = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    return View((np.vstack([view.matrix, [0, 0, 1]]) @ to_full)[:2], view.size)


def _work_copy(x: torch.Tensor, region: _Region) -> tuple[torch.Tensor, _Region]:
    h, w = x.shape[-2:]
    s = min(1.0, MAX_WORK_SIDE / max(h, w))
    if s >= 1.0:
        return x, region
    hw, ww = max(16, round(h * s)), max(16, round(w * s))
    xw = F.interpolate(x, size=(hw, ww), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    sx, sy = ww / w, hw / h
    mask = F.interpolate(region.mask, size=(hw, ww), mode="bilinear", align_corners=False, antialias=True)
    views = (_scaled(region.fomm, sx, sy), _scaled(region.swap, sx, sy), _scaled(region.chip, sx, sy), _scaled(region.arcface, sx, sy))
    return xw, _Region(region.box, 0, 0, ww, hw, *views, mask, _scaled(region.fomm_official, sx, sy))


def _budget(x: torch.Tensor, mask: torch.Tensor, preset: Preset) -> torch.Tensor:
    budget = mask.to(x) * preset.eps
    return budget * texture_mask(x) if preset.perceptual else budget


def protect_tensor_region(
    x: torch.Tensor, region: _Region, models: ThreatModels, preset: Preset, gen: torch.Generator
) -> torch.Tensor:
    """Attack one region (1,3,h,w) in [0,1] and return its adversarial version (continuous).

    Regions larger than :data:`MAX_WORK_SIDE` are attacked on a downscaled copy; the
    perturbation is upsampled and clipped to the full-resolution budget.
    """
    xw, work = _work_copy(x, region)
    adv = _attack(xw, work, models, preset, gen)
    if xw is x:
        return adv
    delta = F.interpolate(adv - xw, size=x.shape[-2:], mode="bilinear", align_corners=False)
    budget = _budget(x, region.mask, preset)
    delta = torch.maximum(torch.minimum(delta, budget), -budget)
    return (x + delta).clamp(0, 1)


def _attack(x: torch.Tensor, region: _Region, models: ThreatModels, preset: Preset, gen: torch.Generator) -> torch.Tensor:
    objective = WeightedObjective(_terms(models, region, preset, gen))
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
        device=x.device,
    )
    log.debug("attack %r with %r", attack, objective)
    return attack(x, gen=gen, budget=budget.to(x.device))


@torch.no_grad()
def _measured(models: ThreatModels, preset: Preset) -> ThreatModels:
    """The models a run attacks and self-checks: the official ones only when the preset
    weights them (their checks cost tens of seconds per face on CPU, more than a whole
    ``fast`` run); the shipped surrogates always."""
    w = preset.weights
    fomm_official = models.fomm_official if w.fomm_official else None
    simswap = models.simswap if w.simswap else None
    arcface = models.arcface if (w.arcface or simswap is not None) else None
    return replace(models, fomm_official=fomm_official, simswap=simswap, arcface=arcface)


@torch.no_grad()
def _self_check(clean: torch.Tensor, protected: torch.Tensor, region: _Region, models: ThreatModels) -> dict[str, tuple[int, float, int]]:
    """model name -> (disrupted trials, sum of MSE, trials), on held-out motions."""
    out: dict[str, tuple[int, float, int]] = {}
    fomms = ((models.fomm, region.fomm, models.fomm_name), (models.fomm_official, region.fomm_official, models.fomm_official_name))
    for fomm, view, name in fomms:
        if fomm is not None and view is not None:
            mse = _fomm_check(clean, protected, view, fomm)
            out[name] = (int((mse >= DISRUPTION_THRESHOLD).sum()), float(mse.sum()), len(mse))
    if models.faceswap is not None and region.swap is not None:
        p, c = affine_crop(protected, region.swap), affine_crop(clean, region.swap)
        mses = [disruption_mse(models.faceswap.swap(p, i), models.faceswap.swap(c, i)) for i in range(len(models.faceswap.identities))]
        mse = torch.cat(mses)
        out[models.faceswap_name] = (int((mse >= DISRUPTION_THRESHOLD).sum()), float(mse.sum()), len(mse))
    if models.simswap is not None and models.arcface is not None and region.arcface is not None:
        mse = _simswap_check(clean, protected, region.arcface, models.simswap, models.arcface)
        out[models.simswap_name] = (int((mse >= DISRUPTION_THRESHOLD).sum()), float(mse.sum()), len(mse))
    return out


def _fomm_check(clean: torch.Tensor, protected: torch.Tensor, view: View, fomm: FOMM) -> torch.Tensor:
    """Per-motion MSE of FOMM frames, protected vs clean, on held-out random motions."""
    gen = torch.Generator().manual_seed(_SELF_CHECK_SEED)
    bank = random_motions(_SELF_CHECK_MOTIONS, fomm.config.common.num_kp, gen)
    term = FommDistortion(fomm, _crop_fn(view), bank, per_step=len(bank))
    p, c = term.crop(protected), term.crop(clean)
    chunk = max(1, _SELF_CHECK_PIXELS // view.size**2)
    mses = []
    for start in range(0, len(bank), chunk):
        part = bank.subset(torch.arange(start, min(start + chunk, len(bank))))
        mses.append(disruption_mse(term._animate(p, part), term._animate(c, part)))
    return torch.cat(mses)


def _simswap_check(clean: torch.Tensor, protected: torch.Tensor, view: View, simswap: SimSwapGenerator, arcface: ArcFace) -> torch.Tensor:
    """Per-trial MSE of SimSwap outputs, protected vs clean.

    Trials: the photo as target with its own latent and with held-out random identities
    (never seen by the attack), and the photo as identity source injected into its clean
    face and mirror image.
    """
    gen = torch.Generator().manual_seed(_SELF_CHECK_SEED)
    held_out = random_identities(_SELF_CHECK_IDENTITIES, simswap.latent, gen)
    c, p = affine_crop(clean, view), affine_crop(protected, view)
    zc, zp = simswap_identity(arcface, c), simswap_identity(arcface, p)
    latents = torch.cat([zc, held_out.to(zc)])
    targets = torch.cat([c, c.flip(-1)])
    return disruption_mse(simswap_swaps(simswap, p, latents, targets, zp), simswap_swaps(simswap, c, latents, targets, zc))


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


def protect_pixels(
    rgb: np.ndarray,
    *,
    strength: str | Preset = "balanced",
    whole_frame: bool = False,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    progress: Progress | None = None,
    models: ThreatModels | None = None,
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
        progress: called with the number of faces; its return value is called with 1
            after each face.
        models: threat models (default: ``load_threat_models``, the shipped surrogates
            plus the official models imported into the model zoo).
        faces: faces to protect (default: detected with dlib HOG + 5 landmarks).

    Returns:
        :class:`ProtectionResult`; ``|rgb_out - rgb| <= floor(255 eps)`` on every channel.

    Raises:
        NoFaceError: no face and ``whole_frame`` is False.
        ProtectionError: the budget could not be met after quantisation.
        ModelError: the surrogate weights are missing or corrupt.
    """
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise TypeError("rgb: expected an HxWx3 uint8 array")
    preset = get_preset(strength)
    seed = secrets.randbits(63) if seed is None else int(seed)
    gen = torch.Generator().manual_seed(seed)
    models = models if models is not None else load_threat_models(device)
    height, width = rgb.shape[:2]
    found = list(faces) if faces is not None else locate_faces(rgb)
    if found:
        regions = [_face_region(f, models, width, height) for f in found]
    elif whole_frame:
        regions = [_whole_region(models, width, height)]
    else:
        raise NoFaceError("no face found in the photo, so there is nothing to protect against face deepfakes")
    advance = progress(len(regions)) if progress is not None else None
    original = to_tensor(rgb, device)
    current = original.clone()
    reports_raw: list[tuple[_Region, float]] = []
    checks: dict[str, list[tuple[int, float, int]]] = {}
    for region in regions:
        started = time.perf_counter()
        sl = (slice(None), slice(None), slice(region.y0, region.y1), slice(region.x0, region.x1))
        adv = protect_tensor_region(current[sl].clone(), region, models, preset, gen)
        current[sl] = adv
        reports_raw.append((region, time.perf_counter() - started))
        if advance is not None:
            advance(1)
    out = _quantise_within_budget(rgb, current, preset.eps)
    protected = to_tensor(out, device)
    measured = _measured(models, preset)
    faces_out: list[FaceReport] = []
    for region, seconds in reports_raw:
        sl = (slice(None), slice(None), slice(region.y0, region.y1), slice(region.x0, region.x1))
        for name, value in _self_check(original[sl], protected[sl], region, measured).items():
            checks.setdefault(name, []).append(value)
        box = tuple(float(v) for v in region.box)
        faces_out.append(FaceReport(box, (region.x0, region.y0, region.x1, region.y1), float(psnr(protected[sl], original[sl])[0]), seconds))  # type: ignore[arg-type]
    self_check = {
        name: SelfCheck(sum(v[0] for v in vals) / max(1, sum(v[2] for v in vals)), sum(v[1] for v in vals) / max(1, sum(v[2] for v in vals)), sum(v[2] for v in vals))
        for name, vals in checks.items()
    }
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
        "seed": seed,
        "whole_frame": not found,
        "models": measured.names(),
    }
    return ProtectionResult(
        rgb=out,
        delta=out.astype(np.int16) - rgb.astype(np.int16),
        faces=faces_out,
        psnr=float(psnr(protected, original)[0]),
        ssim=_ssim_changed(original, protected, np.any(out != rgb, axis=2)),
        self_check=self_check,
        params=params,
    )
