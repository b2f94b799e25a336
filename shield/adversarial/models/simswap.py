"""SimSwap 224 generator (Chen et al., ACM MM 2020), official state-dict layout.

Implements specs/deepfake-models.md section 3: an encoder (reflection-padded 7x7
conv + three stride-2 convs, 224 -> 28), nine AdaIN-style residual blocks at 512
channels modulated by the 512-d identity latent, and a decoder of three bilinear
x2 upsample + conv stages and a reflection-padded 7x7 conv with tanh. Parameter
names equal the official ``latest_net_G.pth`` (123 tensors, 55.05M parameters),
so a user's official file loads strictly with :func:`load_simswap_generator`.

The 512 px "beta" variant (an extra down/up stage) is not implemented.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from shield.adversarial.models._strict import load_strict, read_state_dict

__all__ = ["SimSwapGenerator", "load_simswap_generator", "SIMSWAP_TENSORS", "SIMSWAP_PARAMS"]

#: Entries of the official 224 generator state dict (BatchNorm counters included).
SIMSWAP_TENSORS = 123
#: Trainable parameters of the official 224 generator.
SIMSWAP_PARAMS = 55_051_779


class _InstanceNorm(nn.Module):
    """Parameter-free instance normalisation, eps 1e-8, as SimSwap's own layer."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=(2, 3), keepdim=True)
        return x * torch.rsqrt((x * x).mean(dim=(2, 3), keepdim=True) + self.eps)


class _ApplyStyle(nn.Module):
    """Identity modulation: Linear(latent -> 2C) gives (scale, shift); x*(1+scale)+shift."""

    def __init__(self, latent: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(latent, channels * 2)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        style = self.linear(latent).view(-1, 2, x.shape[1], 1, 1)
        return x * (style[:, 0] + 1.0) + style[:, 1]


class _AdainResBlock(nn.Module):
    """Two (reflection pad, conv3x3, InstanceNorm, style) halves, ReLU after the first, residual add."""

    def __init__(self, channels: int, latent: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _InstanceNorm())
        self.style1 = _ApplyStyle(latent, channels)
        self.act1 = nn.ReLU(True)
        self.conv2 = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), _InstanceNorm())
        self.style2 = _ApplyStyle(latent, channels)

    def forward(self, x: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.style1(self.conv1(x), latent))
        return x + self.style2(self.conv2(y), latent)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(True))


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout),
        nn.ReLU(True),
    )


class SimSwapGenerator(nn.Module):
    """The SimSwap 224 generator.

    Args:
        latent: identity latent size (512 in the official model).
        blocks: number of AdaIN residual blocks (9 in the official model).
        width: channels after the first layer (64 officially; 64 -> 128 -> 256 -> 512).
    """

    def __init__(self, latent: int = 512, blocks: int = 9, width: int = 64) -> None:
        super().__init__()
        self.latent = latent
        self.first_layer = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, width, 7), nn.BatchNorm2d(width), nn.ReLU(True)
        )
        self.down1 = _down(width, width * 2)
        self.down2 = _down(width * 2, width * 4)
        self.down3 = _down(width * 4, width * 8)
        self.BottleNeck = nn.Sequential(*(_AdainResBlock(width * 8, latent) for _ in range(blocks)))
        self.up3 = _up(width * 8, width * 4)
        self.up2 = _up(width * 4, width * 2)
        self.up1 = _up(width * 2, width)
        self.last_layer = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(width, 3, 7), nn.Tanh())

    def forward(self, target: torch.Tensor, id_latent: torch.Tensor) -> torch.Tensor:
        """Swap the identity ``id_latent`` onto ``target``.

        Args:
            target: (B,3,H,W) aligned attribute crop, RGB in [0,1] (224 officially; H, W multiples of 8).
            id_latent: (B, latent) L2-normalised identity, see :func:`simswap_identity`.

        Returns:
            (B,3,H,W) swapped face in [0,1].
        """
        if target.ndim != 4 or target.shape[1] != 3 or target.shape[2] % 8 or target.shape[3] % 8:
            raise ValueError(f"target: expected (B,3,H,W) with H, W multiples of 8, got {tuple(target.shape)}")
        if id_latent.ndim != 2 or id_latent.shape != (target.shape[0], self.latent):
            raise ValueError(f"id_latent: expected ({target.shape[0]}, {self.latent}), got {tuple(id_latent.shape)}")
        x = self.down3(self.down2(self.down1(self.first_layer(target))))
        for block in self.BottleNeck:
            x = block(x, id_latent)
        x = self.last_layer(self.up1(self.up2(self.up3(x))))
        return (x + 1.0) / 2.0


def load_simswap_generator(path: Path | str, device: torch.device | str = "cpu") -> SimSwapGenerator:
    """Load an official ``latest_net_G.pth`` (plain state dict) strictly; eval mode, frozen.

    Raises:
        CheckpointReadError: missing or unreadable file.
        LayoutError: names or shapes differ from the 224 generator.
    """
    model = SimSwapGenerator()
    load_strict(model, read_state_dict(path), "SimSwap generator")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model

