"""ArcFace IR-SE ResNet, the identity network of SimSwap, and SimSwap's identity preprocessing.

Implements specs/deepfake-models.md section 3 ("ArcFace identity network used by
SimSwap"): a 3x3 stem conv (stride 1, no padding, no bias) + BN + PReLU + 2x2
max-pool; four stages (64/128/256/512 channels) of improved-residual blocks
(BN, conv3x3, BN, PReLU, conv3x3 with the stage stride, BN, squeeze-excitation,
residual with a 1x1 conv + BN downsample where the shape changes, PReLU); then
BN, dropout, flatten 512x7x7, Linear 25088 -> 512 and BatchNorm1d. Input is a
112x112 face normalised with ImageNet mean/std.

Parameter names equal the official module's (``conv1``, ``bn1``, ``prelu``,
``layer{1..4}.i.{bn0,conv1,bn1,prelu,conv2,bn2,se.fc.0,se.fc.1,se.fc.2,downsample.0,downsample.1}``,
``bn2``, ``fc``, ``bn3``). The released file is a pickled whole module; convert
it once with :mod:`shield.adversarial.models.convert`, then load the resulting
state dict with :func:`load_arcface`.

Depths (blocks per stage): 101 = (3, 4, 23, 3) is the spec's SimSwap network
(52,193,215 parameters, the spec's 52.2M); 50 = (3, 4, 14, 3) and 100 = (3, 13, 30, 3)
are the usual IR-50 / IR-100 counts.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models._strict import load_strict, read_state_dict

__all__ = ["ArcFace", "ARCFACE_DEPTHS", "load_arcface", "simswap_identity", "IMAGENET_MEAN", "IMAGENET_STD"]

ARCFACE_DEPTHS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    101: (3, 4, 23, 3),
}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _SE(nn.Module):
    """Squeeze-excitation: global average, Linear C->C/16, PReLU, Linear C/16->C, sigmoid gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.PReLU(),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.fc(x.mean(dim=(2, 3)))
        return x * gate[:, :, None, None]


class _IRBlock(nn.Module):
    """Improved residual block with squeeze-excitation (IR-SE)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.bn0 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se = _SE(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(self.bn1(self.conv1(self.bn0(x))))
        out = self.se(self.bn2(self.conv2(out)))
        residual = x if self.downsample is None else self.downsample(x)
        return self.prelu(out + residual)


class ArcFace(nn.Module):
    """IR-SE ResNet ArcFace: (B,3,112,112) ImageNet-normalised face -> (B,512) embedding (not normalised).

    Args:
        depth: a key of :data:`ARCFACE_DEPTHS` (101 for SimSwap's network).
    """

    def __init__(self, depth: int = 101) -> None:
        super().__init__()
        if depth not in ARCFACE_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(ARCFACE_DEPTHS)}, got {depth}")
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.prelu = nn.PReLU()
        self.maxpool = nn.MaxPool2d(2, 2)
        counts = ARCFACE_DEPTHS[depth]
        self.layer1 = self._stage(64, 64, counts[0], 1)
        self.layer2 = self._stage(64, 128, counts[1], 2)
        self.layer3 = self._stage(128, 256, counts[2], 2)
        self.layer4 = self._stage(256, 512, counts[3], 2)
        self.bn2 = nn.BatchNorm2d(512)
        self.dropout = nn.Dropout()
        self.fc = nn.Linear(512 * 7 * 7, 512)
        self.bn3 = nn.BatchNorm1d(512)

    @staticmethod
    def _stage(cin: int, cout: int, blocks: int, stride: int) -> nn.Sequential:
        return nn.Sequential(_IRBlock(cin, cout, stride), *(_IRBlock(cout, cout) for _ in range(blocks - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B,3,112,112) ImageNet-normalised faces -> (B,512)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, 112, 112):
            raise ValueError(f"x: expected (B,3,112,112), got {tuple(x.shape)}")
        x = self.maxpool(self.prelu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(self.bn2(x)).flatten(1)
        return self.bn3(self.fc(x))


def simswap_identity(arcface: ArcFace, face224: torch.Tensor) -> torch.Tensor:
    """SimSwap's identity latent of aligned 224 crops (spec section 3, "Inputs").

    ImageNet mean/std normalisation, *nearest* resize 224 -> 112, ArcFace (the
    caller keeps it in eval mode), L2 normalisation. Differentiable in ``face224``.

    Args:
        arcface: the identity network.
        face224: (B,3,224,224) RGB in [0,1], aligned to SimSwap's ArcFace template.

    Returns:
        (B,512) unit-norm identity latents.
    """
    if face224.ndim != 4 or face224.shape[1] != 3:
        raise ValueError(f"face224: expected (B,3,224,224), got {tuple(face224.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=face224.dtype, device=face224.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=face224.dtype, device=face224.device).view(1, 3, 1, 1)
    x = F.interpolate((face224 - mean) / std, size=(112, 112), mode="nearest")
    return F.normalize(arcface(x), p=2, dim=1)


def load_arcface(path: Path | str, depth: int = 101, device: torch.device | str = "cpu") -> ArcFace:
    """Load a converted ArcFace state dict strictly; eval mode, frozen.

    Raises:
        CheckpointReadError: missing/unreadable file, or a pickled module not yet converted.
        LayoutError: names or shapes differ from the IR-SE network of ``depth``.
    """
    model = ArcFace(depth)
    load_strict(model, read_state_dict(path), f"ArcFace IR-SE-{depth}")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
