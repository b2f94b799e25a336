"""Strength presets of the adversarial protection (`shield protect --strength`).

Each preset is one frozen row of :data:`PRESETS`: a budget, an effort, and the ensemble
of real networks it attacks (model name -> weight, checked against the plug-in
registry). Measured times and break rates are in bench/README.md ("Protection against
real networks"); the targets are below.

``fast`` and ``balanced`` share the visibility budget: an RMS (L2) budget of 4/255 over the
face region (face-region PSNR at least about 36 dB, the whole photo higher) under an
L-inf cap of 16/255 enforced again on the final 8-bit image; ``max`` spends 6/255 under a
cap of 24/255 (the trade-off point where both swap front-ends broke on every photo of a
five-photo sweep, at 35.6 dB; bench/README.md). All three use the perceptual shaping
:data:`PERCEPTUAL` (``shield.adversarial.perceptual``): luma carries the perturbation,
chroma is capped at a quarter of it, no area's mean changes (no tint, no darker brow),
and the cap falls to 0.3 of it on smooth skin, scaled by local contrast. The
front-end loss terms are break-normalised (``shield.adversarial.attacks.front_end``), so
every attacked network weighs 1.

- ``fast`` (target <= 5 s per face on 2 cores): 12 steps, no transformation
  robustness, three of the six loss terms per step (MTCNN, BlazeFace short range,
  dlib mmod, FaceMesh, dlib ResNet on dlib's chip and on the ArcFace template fitted to
  MTCNN's own five points).
- ``balanced`` (target <= 20 s per face; the default): 40 steps with expectation over
  JPEG 50-95 / rescale / shift / blur, momentum, four of the seven loss terms per
  step (adds BlazeFace full range), plus the official checkpoints a user imported.
- ``max`` (target 60 s per face, missed: 8-13 minutes measured on one thread of a shared
  machine): the larger budget above (visible as fine grain on smooth skin at full size),
  80 steps, two transformations per step, every term of every network each step, adds the
  CycleGAN generator and our surrogates.

Held out of every preset (:data:`HELD_OUT`), one network per role: face-api.js's SSD
detector, 68-point landmarks and recognition net (a complete second tool), the 26-style
network, and the second FOMM surrogate. The benchmarks measure transfer on them; no
preset may attack them (:func:`check_weights` refuses).

Imported official checkpoints add their own, much larger, cost to every step they are
drawn in: one vox-256 FOMM step (256 px distortion on one motion plus its keypoints,
forward and backward) takes about 3.2 s on one CPU thread, a SimSwap step about 5 s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shield.adversarial.perceptual import Shaping
from shield.adversarial.threats.base import AttackOptions
from shield.adversarial.transforms import EotConfig

__all__ = ["Preset", "PRESETS", "PERCEPTUAL", "RUIZ_BASELINE", "HELD_OUT", "get_preset", "check_weights"]


#: Networks never attacked by any preset: one per role, the transfer test of the
#: benchmarks (the face-api.js pipeline end to end, the style network, the second FOMM
#: surrogate). Never add them to a preset, and never tune against them.
HELD_OUT: tuple[str, ...] = ("faceapi-ssd", "faceapi-landmarks68", "faceapi-recognition", "multistyle26", "fomm-mini-b")

#: Weight of each attacked network in the ensemble objective (0 or absent: not attacked).
#: Official checkpoints (fomm-vox-256, simswap-224, arcface-r100) count only once a user
#: imported them.
_SURROGATES = {"fomm-mini-a": 1.0, "faceswap-ae": 1.0}
#: The real front-end networks attacked white-box (their loss terms are break-normalised,
#: ``shield.adversarial.attacks.front_end``, so one weight each balances them).
_FRONT_END_FAST = {"mtcnn": 1.0, "blazeface-short": 1.0, "dlib-mmod": 1.0, "facemesh": 1.0, "dlib-resnet": 1.0}
_FRONT_END = {"mtcnn": 1.0, "blazeface-short": 1.0, "blazeface-full": 1.0, "dlib-mmod": 1.0, "facemesh": 1.0, "dlib-resnet": 1.0}
_OFFICIAL = {"fomm-vox-256": 1.0, "simswap-224": 1.0, "arcface-r100": 1.0}


@dataclass(frozen=True)
class Preset:
    """Hyperparameters of one protection strength.

    Attributes:
        name: preset name.
        eps: L-inf budget in [0,1] units (enforced on the final 8-bit image).
        rms: L2 budget as RMS per value in [0,1] units over the attacked region, or None
            for a pure L-inf (sign) attack. The region's PSNR is then at least about
            20 log10(1/rms) dB, and the attack puts the energy where the models are
            sensitive (measured: about 2x the disruption of a sign attack at equal PSNR).
        alpha: PGD step in [0,1] units.
        steps: PGD iterations per face.
        momentum: MI-FGSM decay (0 = plain PGD).
        random_start: uniform start inside the budget.
        eot: transformation distribution, or None for none.
        eot_samples: transformations averaged per step.
        motions: random FOMM driving motions in the attack's bank (identity included).
        motions_per_step: motions evaluated per step.
        perceptual: scale the per-pixel budget by local texture (luminance masking).
        shaping: perceptual shaping of the perturbation (luma-dominant, no low
            frequencies, JND-scaled budget; ``shield.adversarial.perceptual``), or None
            for the plain texture-scaled RGB budget. With it, its JND scale replaces
            the texture mask.
        weights: model name -> weight in the ensemble objective; a model absent or at 0
            is not attacked (nor self-checked). Names are checked against the plug-in
            registry by :func:`check_weights`.
        output_only: loss on the generators' outputs only, no auxiliary term (keypoints):
            the published baseline.
        terms_per_step: loss terms evaluated per attack step, drawn at random (None:
            every term every step); see ``WeightedObjective``.
        seconds_per_face: documented time target on the reference machine.
    """

    name: str
    eps: float
    alpha: float
    steps: int
    rms: float | None = None
    momentum: float = 0.0
    random_start: bool = True
    eot: EotConfig | None = None
    eot_samples: int = 1
    motions: int = 8
    motions_per_step: int = 3
    perceptual: bool = True
    shaping: Shaping | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType(dict(_SURROGATES)))
    output_only: bool = False
    terms_per_step: int | None = None
    seconds_per_face: float = 0.0

    def attacked(self) -> list[str]:
        """Names of the models this preset attacks, in its order."""
        return [name for name, w in self.weights.items() if w]

    def options(self) -> AttackOptions:
        return AttackOptions(motions=self.motions, motions_per_step=self.motions_per_step, output_only=self.output_only)


#: The perceptual shaping of every preset (``shield.adversarial.perceptual``): luma
#: carries the perturbation (chroma capped at a quarter of luma), the perturbation's
#: local mean (Gaussian, 8 px) is removed, and the cap is scaled by local contrast down
#: to 0.3 on smooth skin, where energy also costs more under the RMS budget (measured on
#: the JND-scaled perturbation: up to 11x). Chosen on two tuning photos (deepface_img13 and img20 are in the
#: held-out ten; measured: a floor of 0.1 or a 4 px high-pass lost the face-api.js
#: pipeline on one of them).
PERCEPTUAL = Shaping(chroma=0.25, highpass_sigma=8.0, floor=0.3, tau=0.04, window=7, weighted_rms=True)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {
        "fast": Preset(
            name="fast", eps=16 / 255, rms=4 / 255, alpha=2 / 255, steps=12, momentum=0.5, eot=None,
            motions=6, motions_per_step=2, weights=MappingProxyType(dict(_FRONT_END_FAST)), terms_per_step=3,
            seconds_per_face=5.0, shaping=PERCEPTUAL,
        ),
        "balanced": Preset(
            name="balanced", eps=16 / 255, rms=4 / 255, alpha=1 / 255, steps=40, momentum=0.5, eot=EotConfig(),
            motions=12, motions_per_step=2, terms_per_step=4, seconds_per_face=20.0, shaping=PERCEPTUAL,
            weights=MappingProxyType({**_FRONT_END, **_OFFICIAL}),
        ),
        "max": Preset(
            name="max", eps=24 / 255, rms=6 / 255, alpha=1.1 / 255, steps=80, momentum=0.5, eot=EotConfig(),
            eot_samples=2, motions=24, motions_per_step=3, seconds_per_face=60.0, shaping=PERCEPTUAL,
            weights=MappingProxyType({**_FRONT_END, "cyclegan-vintage": 1.0, **_SURROGATES, **_OFFICIAL}),
        ),
    }
)  # fmt: skip

#: The published baseline (Ruiz et al. 2020, "Disrupting Deepfakes", section 4): plain
#: PGD with eps 0.05 and step 0.01 on the [-1,1] scale (0.025 / 0.005 here), 10 steps,
#: random start, MSE loss on the generator output only, no transformations, no masking.
RUIZ_BASELINE = Preset(
    name="ruiz2020", eps=0.025, alpha=0.005, steps=10, momentum=0.0, eot=None, motions=6, motions_per_step=2,
    perceptual=False, output_only=True,
    weights=MappingProxyType({**_SURROGATES, "fomm-vox-256": 1.0, "simswap-224": 1.0}),
)  # fmt: skip


def check_weights(weights: Mapping[str, float]) -> None:
    """Check a preset's weights against the plug-in registry.

    Raises:
        UnknownThreatModelError: a name no plug-in has.
        ConfigError: a negative or non-finite weight, or a held-out network.
    """
    import math

    from shield.adversarial.threats import role_of
    from shield.errors import ConfigError

    for name, weight in weights.items():
        role_of(name)
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"the weight of {name!r} must be a finite number >= 0, not {weight!r}")
        if weight and name in HELD_OUT:
            raise ConfigError(f"{name!r} is a held-out transfer network: no preset may attack it")


def get_preset(strength: str | Preset) -> Preset:
    """The preset named ``strength`` (fast, balanced, max) or ``strength`` itself.

    Raises:
        InputError: unknown name.
    """
    if isinstance(strength, Preset):
        return strength
    try:
        return PRESETS[strength]
    except KeyError:
        from shield.errors import InputError

        raise InputError(
            f"unknown protection strength {strength!r}", fix=f"use one of: {', '.join(PRESETS)}"
        ) from None
