"""Frozen configurations of the First Order Motion Model.

Each dataclass maps one-to-one onto a section of the official ``vox-256.yaml``
(``model_params.common_params``, ``kp_detector_params``, ``generator_params``,
``generator_params.dense_motion_params``); see specs/deepfake-models.md section 1.
:data:`VOX_256` is the official configuration; :data:`FOMM_MINI` is the reduced one
the project trains its surrogates with (64x64 input; same module code); :data:`TINY`
is a 32 px configuration small enough for fast tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shield.errors import ConfigError

__all__ = [
    "CommonParams",
    "KeypointDetectorParams",
    "DenseMotionParams",
    "GeneratorParams",
    "FommConfig",
    "VOX_256",
    "FOMM_MINI",
    "TINY",
]


@dataclass(frozen=True)
class CommonParams:
    """``common_params``: shared by the detector and the generator."""

    num_kp: int = 10
    num_channels: int = 3
    estimate_jacobian: bool = True


@dataclass(frozen=True)
class KeypointDetectorParams:
    """``kp_detector_params``."""

    temperature: float = 0.1
    block_expansion: int = 32
    max_features: int = 1024
    scale_factor: float = 0.25
    num_blocks: int = 5


@dataclass(frozen=True)
class DenseMotionParams:
    """``generator_params.dense_motion_params``; kp_variance is fixed at 0.01 upstream."""

    block_expansion: int = 64
    max_features: int = 1024
    num_blocks: int = 5
    scale_factor: float = 0.25
    kp_variance: float = 0.01


@dataclass(frozen=True)
class GeneratorParams:
    """``generator_params`` (without the nested dense-motion section)."""

    block_expansion: int = 64
    max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True


@dataclass(frozen=True)
class FommConfig:
    """A full model configuration plus the input resolution (pixels, square)."""

    resolution: int = 256
    common: CommonParams = field(default_factory=CommonParams)
    kp_detector: KeypointDetectorParams = field(default_factory=KeypointDetectorParams)
    generator: GeneratorParams = field(default_factory=GeneratorParams)
    dense_motion: DenseMotionParams = field(default_factory=DenseMotionParams)

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        r = self.resolution
        kp_res = r * self.kp_detector.scale_factor
        dm_res = r * self.dense_motion.scale_factor
        if r < 16 or kp_res != int(kp_res) or dm_res != int(dm_res):
            raise ConfigError(f"resolution {r} does not fit the scale factors")
        if int(kp_res) % (2**self.kp_detector.num_blocks):
            raise ConfigError(f"keypoint detector input {int(kp_res)} px is not divisible by 2^{self.kp_detector.num_blocks}")
        if int(dm_res) % (2**self.dense_motion.num_blocks):
            raise ConfigError(f"dense motion input {int(dm_res)} px is not divisible by 2^{self.dense_motion.num_blocks}")
        if self.common.num_kp < 3:
            raise ConfigError("num_kp must be at least 3 (the movement scale needs a convex hull)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> FommConfig:
        """Build from :meth:`to_dict` output; unknown or missing keys raise ConfigError."""
        try:
            return cls(
                resolution=int(doc["resolution"]),
                common=CommonParams(**doc["common"]),
                kp_detector=KeypointDetectorParams(**doc["kp_detector"]),
                generator=GeneratorParams(**doc["generator"]),
                dense_motion=DenseMotionParams(**doc["dense_motion"]),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"invalid FOMM config: {exc}") from exc


#: The official "vox-256" configuration.
VOX_256 = FommConfig()

#: Reduced width for the shipped surrogates: 64x64 faces; detector and dense motion
#: work at 32x32 (scale 0.5), generator features at 16x16 as in the official 4x ratio.
FOMM_MINI = FommConfig(
    resolution=64,
    common=CommonParams(num_kp=10, num_channels=3, estimate_jacobian=True),
    kp_detector=KeypointDetectorParams(temperature=0.1, block_expansion=16, max_features=256, scale_factor=0.5, num_blocks=4),
    generator=GeneratorParams(block_expansion=32, max_features=256, num_down_blocks=2, num_bottleneck_blocks=3, estimate_occlusion_map=True),
    dense_motion=DenseMotionParams(block_expansion=32, max_features=256, num_blocks=4, scale_factor=0.5, kp_variance=0.01),
)

#: A very small configuration (32x32 input, 4 keypoints, a few channels per layer):
#: the same module code as :data:`VOX_256` at a size that runs in milliseconds on a CPU,
#: for tests of the architecture, the checkpoint layout and the attack plumbing.
TINY = FommConfig(
    resolution=32,
    common=CommonParams(num_kp=4),
    kp_detector=KeypointDetectorParams(block_expansion=4, max_features=16, scale_factor=0.5, num_blocks=2),
    generator=GeneratorParams(block_expansion=4, max_features=16, num_down_blocks=1, num_bottleneck_blocks=1),
    dense_motion=DenseMotionParams(block_expansion=4, max_features=16, num_blocks=2, scale_factor=0.5),
)
