"""The classic autoencoder face swap: one shared encoder, one decoder per identity.

This is the "original" model of the faceswap / DeepFaceLab family: strided 5x5
convolutions down to ``resolution/16``, a dense bottleneck, a dense expansion and
one pixel-shuffle upscale in the shared encoder; each identity's decoder upscales
three more times with pixel-shuffle blocks and ends in a 5x5 convolution with a
sigmoid. Each decoder is trained to reconstruct its own identity from warped
inputs; a swap encodes a face of one identity and decodes it with the other
identity's decoder (spec issue 5, "classic autoencoder face swap").

Inputs and outputs are RGB in [0,1], NCHW, square at ``config.resolution``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shield.adversarial.models._strict import (
    WeightsChecksumError,
    WeightsMissingError,
    load_strict,
    read_state_dict,
)
from shield.imaging.hashing import file_sha256

__all__ = ["FaceSwapAEConfig", "FaceSwapAE", "load_faceswap_ae", "FACESWAP_AE_WEIGHTS"]

#: The shipped weights (fp16 state dict) and their description (config, identities, SHA-256, training record).
FACESWAP_AE_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "faceswap-ae.pt"


@dataclass(frozen=True)
class FaceSwapAEConfig:
    """Shape of a :class:`FaceSwapAE`.

    Attributes:
        resolution: input/output side in pixels; a multiple of 16.
        width: channels of the first encoder convolution; doubled at each of the four downs.
        latent: size of the dense bottleneck vector.
        identities: one name per decoder (index = ``to_identity`` of :meth:`FaceSwapAE.swap`).
    """

    resolution: int = 64
    width: int = 32
    latent: int = 512
    identities: tuple[str, ...] = field(default=("a", "b"))

    def __post_init__(self) -> None:
        if self.resolution < 16 or self.resolution % 16:
            raise ValueError(f"resolution must be a positive multiple of 16, got {self.resolution}")
        if self.width < 4 or self.width % 2:
            raise ValueError(f"width must be an even number >= 4, got {self.width}")
        if self.latent < 1:
            raise ValueError(f"latent must be >= 1, got {self.latent}")
        if len(self.identities) < 2:
            raise ValueError("a face swap needs at least two identities")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        data = asdict(self)
        data["identities"] = list(self.identities)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaceSwapAEConfig:
        """Inverse of :meth:`to_json`."""
        return cls(
            resolution=int(data["resolution"]),
            width=int(data["width"]),
            latent=int(data["latent"]),
            identities=tuple(str(n) for n in data["identities"]),
        )


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=2, padding=2), nn.LeakyReLU(0.1))


class _Upscale(nn.Sequential):
    """conv3x3 to 4x channels, LeakyReLU, pixel-shuffle x2."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout * 4, 3, padding=1), nn.LeakyReLU(0.1), nn.PixelShuffle(2))


class _Encoder(nn.Module):
    def __init__(self, cfg: FaceSwapAEConfig) -> None:
        super().__init__()
        w = cfg.width
        self.convs = nn.Sequential(_down(3, w), _down(w, 2 * w), _down(2 * w, 4 * w), _down(4 * w, 8 * w))
        self.side = cfg.resolution // 16
        flat = 8 * w * self.side * self.side
        self.dense1 = nn.Linear(flat, cfg.latent)
        self.dense2 = nn.Linear(cfg.latent, flat)
        self.upscale = _Upscale(8 * w, 4 * w)
        self.channels = 8 * w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x * 2.0 - 1.0).flatten(1)
        h = self.dense2(self.dense1(h))
        return self.upscale(h.view(-1, self.channels, self.side, self.side))


class _Decoder(nn.Sequential):
    def __init__(self, cfg: FaceSwapAEConfig) -> None:
        w = cfg.width
        super().__init__(
            _Upscale(4 * w, 2 * w),
            _Upscale(2 * w, w),
            _Upscale(w, w // 2),
            nn.Conv2d(w // 2, 3, 5, padding=2),
            nn.Sigmoid(),
        )


class FaceSwapAE(nn.Module):
    """Shared-encoder, per-identity-decoder face swap autoencoder.

    ``encoder`` maps a (B,3,R,R) face in [0,1] to a (B,4w,R/8,R/8) code;
    ``decoders[i]`` maps a code to identity ``i``'s face in [0,1].
    """

    def __init__(self, config: FaceSwapAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or FaceSwapAEConfig()
        self.encoder = _Encoder(self.config)
        self.decoders = nn.ModuleList(_Decoder(self.config) for _ in self.config.identities)

    @property
    def resolution(self) -> int:
        """Input/output side in pixels."""
        return self.config.resolution

    @property
    def identities(self) -> tuple[str, ...]:
        """Identity names; the position is the ``to_identity`` index."""
        return self.config.identities

    def _check(self, x: torch.Tensor) -> None:
        r = self.config.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, r, r):
            raise ValueError(f"face: expected (B,3,{r},{r}), got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Shared code of faces ``x`` (B,3,R,R) in [0,1] -> (B, 4*width, R/8, R/8)."""
        self._check(x)
        return self.encoder(x)

    def decode(self, code: torch.Tensor, identity: int) -> torch.Tensor:
        """Decode a shared code as identity ``identity`` -> (B,3,R,R) in [0,1]."""
        if not 0 <= identity < len(self.decoders):
            raise IndexError(f"identity must be in [0, {len(self.decoders)}), got {identity}")
        out: torch.Tensor = self.decoders[identity](code)
        return out

    def swap(self, face: torch.Tensor, to_identity: int) -> torch.Tensor:
        """Render ``face`` (B,3,R,R, [0,1]) as identity ``to_identity``; same shape and range.

        With ``to_identity`` equal to the face's own identity this is a reconstruction.
        """
        return self.decode(self.encode(face), to_identity)

    def forward(self, face: torch.Tensor, to_identity: int) -> torch.Tensor:
        """Same as :meth:`swap`."""
        return self.swap(face, to_identity)


def load_faceswap_ae(device: torch.device | str = "cpu", *, weights: Path | None = None) -> FaceSwapAE:
    """The shipped ``faceswap-ae`` surrogate, in eval mode with frozen float32 weights.

    Args:
        device: where to put the model.
        weights: a ``.pt`` state dict with its ``.json`` description beside it
            (default: the weights shipped in the package).

    Raises:
        WeightsMissingError: the weights or their description are absent.
        WeightsChecksumError: the file's SHA-256 differs from the recorded one.
        LayoutError: the file does not match the recorded configuration.
    """
    pt = Path(weights) if weights is not None else FACESWAP_AE_WEIGHTS
    meta_path = pt.with_suffix(".json")
    if not pt.is_file() or not meta_path.is_file():
        raise WeightsMissingError(f"faceswap-ae weights not found at {pt}")
    meta = json.loads(meta_path.read_text())
    digest = file_sha256(pt)
    if digest != meta.get("sha256"):
        raise WeightsChecksumError(f"{pt.name}: SHA-256 {digest[:12]}... differs from the recorded one")
    model = FaceSwapAE(FaceSwapAEConfig.from_json(meta["config"]))
    state = {k: v.float() for k, v in read_state_dict(pt).items()}
    load_strict(model, state, "faceswap-ae")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
