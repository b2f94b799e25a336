"""Differentiable image transformations for expectation over transformation (EOT).

A photo posted online is re-encoded, resized, cropped and sometimes smoothed
before anyone can feed it to a deepfake generator. Optimising the perturbation
through random draws of these operations (Athalye et al. 2018, "Synthesizing
Robust Adversarial Examples", EOT) keeps it effective after them.

Everything maps NCHW float in [0,1] to the same shape and range and is
differentiable with respect to its input.

The JPEG model follows the baseline codec (ITU-T T.81): full-range YCbCr
(JFIF), 4:2:0 chroma subsampling (the Pillow/libjpeg default), 8x8 DCT-II,
quantisation by the Annex K tables scaled by quality with the IJG formula, and
the inverse path. Rounding is either straight-through (exact forward, identity
gradient) or the cubic smooth approximation of Shin & Song 2017 ("JPEG-resistant
Adversarial Images").
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shield.tensors import gaussian_blur

__all__ = [
    "Rounding",
    "Transform",
    "Identity",
    "Jpeg",
    "Resize",
    "Shift",
    "GaussianBlur",
    "Compose",
    "EotConfig",
    "EotSampler",
    "jpeg_quant_tables",
]

_LUMA_TABLE = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
_CHROMA_TABLE = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
]  # fmt: skip


class Rounding(enum.Enum):
    """How the quantiser's rounding passes gradients."""

    STRAIGHT_THROUGH = "straight-through"
    SMOOTH = "smooth"


def _round(x: torch.Tensor, mode: Rounding) -> torch.Tensor:
    r = torch.round(x)
    if mode is Rounding.SMOOTH:
        # Shin & Song 2017: round(x) + (x - round(x))^3, gradient 3(x - round(x))^2.
        return r.detach() + (x - r.detach()) ** 3
    return x + (r - x).detach()


def jpeg_quant_tables(quality: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Luma and chroma quantisation tables (8x8, float) for an IJG quality in [1,100]."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in [1,100], got {quality}")
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality

    def scaled(table: list[int]) -> torch.Tensor:
        t = torch.tensor(table, dtype=torch.float32).view(8, 8)
        return torch.clamp(torch.floor((t * scale + 50) / 100), 1, 255)

    return scaled(_LUMA_TABLE), scaled(_CHROMA_TABLE)


def _dct_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    k = n.view(-1, 1)
    m = torch.cos(math.pi * (2 * n + 1) * k / 16) * math.sqrt(2 / 8)
    m[0] = m[0] / math.sqrt(2)
    return m.to(dtype=dtype, device=device)


def _rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """[0,255] RGB -> JFIF full-range YCbCr with chroma centred on 0 and luma on 0."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b - 128.0
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    return torch.stack([y, cb, cr], 1)


def _ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x[:, 0] + 128.0, x[:, 1], x[:, 2]
    r = y + 1.402 * cr
    g = y - 0.344136 * cb - 0.714136 * cr
    b = y + 1.772 * cb
    return torch.stack([r, g, b], 1)


def _blockwise_quantise(plane: torch.Tensor, table: torch.Tensor, rounding: Rounding) -> torch.Tensor:
    """(N,H,W) plane with H, W multiples of 8 -> quantised and reconstructed plane."""
    n, h, w = plane.shape
    d = _dct_matrix(plane.dtype, plane.device)
    blocks = plane.view(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeffs = d @ blocks @ d.T
    q = table.to(plane.dtype).to(plane.device)
    coeffs = _round(coeffs / q, rounding) * q
    out = d.T @ coeffs @ d
    return out.permute(0, 1, 3, 2, 4).reshape(n, h, w)


class Transform:
    """A differentiable NCHW [0,1] -> NCHW [0,1] map with a readable ``repr``."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class Identity(Transform):
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Jpeg(Transform):
    """Differentiable baseline JPEG round trip at an IJG ``quality`` in [1,100].

    The image is padded (edge replication) to a multiple of 16 so that 4:2:0 chroma
    blocks line up as in a real encoder, then cropped back.
    """

    def __init__(self, quality: int, rounding: Rounding = Rounding.STRAIGHT_THROUGH) -> None:
        jpeg_quant_tables(quality)  # validates
        self.quality = quality
        self.rounding = rounding

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 16, (-w) % 16
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        luma_q, chroma_q = jpeg_quant_tables(self.quality)
        ycc = _rgb_to_ycbcr(xp * 255.0)
        y = _blockwise_quantise(ycc[:, 0], luma_q, self.rounding)
        chroma = F.avg_pool2d(ycc[:, 1:], 2)
        n, _, ch, cw = chroma.shape
        chroma = _blockwise_quantise(chroma.reshape(n * 2, ch, cw), chroma_q, self.rounding).view(n, 2, ch, cw)
        chroma = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False)
        rgb = _ycbcr_to_rgb(torch.cat([y[:, None], chroma], 1)) / 255.0
        return rgb[..., :h, :w].clamp(0, 1)


class Resize(Transform):
    """Downscale by ``scale`` (anti-aliased bilinear) and upscale back to the input size."""

    def __init__(self, scale: float) -> None:
        if not 0.1 <= scale <= 1.0:
            raise ValueError(f"scale must be in [0.1, 1], got {scale}")
        self.scale = scale

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        size = (max(1, round(h * self.scale)), max(1, round(w * self.scale)))
        small = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


class Shift(Transform):
    """Translate by whole pixels (``dx`` right, ``dy`` down), replicating the border."""

    def __init__(self, dx: int, dy: int) -> None:
        self.dx, self.dy = int(dx), int(dy)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        p = max(abs(self.dx), abs(self.dy))
        if p == 0:
            return x
        xp = F.pad(x, (p, p, p, p), mode="replicate")
        top, left = p - self.dy, p - self.dx
        return xp[..., top : top + h, left : left + w]


class GaussianBlur(Transform):
    """Separable Gaussian blur with standard deviation ``sigma`` pixels (kernel 2*ceil(3 sigma)+1)."""

    def __init__(self, sigma: float) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = sigma

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(x, self.sigma)


class Compose(Transform):
    def __init__(self, *steps: Transform) -> None:
        self.steps = steps

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(map(repr, self.steps)) + ")"


@dataclass(frozen=True)
class EotConfig:
    """Distribution of the random transformation drawn at each attack step.

    Each operation is applied independently with its probability, in the order
    shift -> blur -> resize -> JPEG (the order a photo meets them when it is
    cropped, edited, downsized by a platform and re-encoded).

    Attributes:
        p_jpeg: probability of a JPEG round trip; quality uniform in [jpeg_min, jpeg_max].
        p_resize: probability of a down/up resize; scale uniform in [resize_min, 1].
        p_shift: probability of a shift of up to ``max_shift`` pixels each way.
        p_blur: probability of a Gaussian blur, sigma uniform in (0, max_blur_sigma].
        rounding: JPEG rounding gradient.
    """

    p_jpeg: float = 0.5
    jpeg_min: int = 50
    jpeg_max: int = 95
    p_resize: float = 0.3
    resize_min: float = 0.5
    p_shift: float = 0.3
    max_shift: int = 2
    p_blur: float = 0.2
    max_blur_sigma: float = 0.8
    rounding: Rounding = Rounding.STRAIGHT_THROUGH


class EotSampler:
    """Draws random :class:`Transform` compositions from an :class:`EotConfig`.

    Randomness comes only from the ``torch.Generator`` handed to :meth:`sample`.
    """

    def __init__(self, config: EotConfig) -> None:
        self.config = config

    def sample(self, gen: torch.Generator) -> Transform:
        c = self.config

        def u() -> float:
            return float(torch.rand((), generator=gen))

        steps: list[Transform] = []
        if u() < c.p_shift and c.max_shift > 0:
            span = 2 * c.max_shift + 1
            dx, dy = (int(torch.randint(span, (), generator=gen)) - c.max_shift for _ in range(2))
            steps.append(Shift(dx, dy))
        if u() < c.p_blur:
            steps.append(GaussianBlur(max(0.1, u() * c.max_blur_sigma)))
        if u() < c.p_resize:
            steps.append(Resize(c.resize_min + u() * (1.0 - c.resize_min)))
        if u() < c.p_jpeg:
            q = c.jpeg_min + int(torch.randint(c.jpeg_max - c.jpeg_min + 1, (), generator=gen))
            steps.append(Jpeg(q, c.rounding))
        return Compose(*steps) if steps else Identity()

    def __repr__(self) -> str:
        return f"EotSampler({self.config!r})"
