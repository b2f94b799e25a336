"""Building blocks shared by the First Order Motion Model networks.

Implements the blocks listed in specs/deepfake-models.md section 1 ("Building
blocks"): every convolution is followed by an affine BatchNorm; the hourglass keeps
every encoder output as a skip; resampling passes ``align_corners=True`` explicitly
because the official checkpoints were trained with that behaviour.

Coordinates everywhere are normalised to [-1, 1] (both ends included), last axis
ordered (x, y), which is the convention of :func:`torch.nn.functional.grid_sample`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "make_coordinate_grid",
    "kp2gaussian",
    "SameBlock2d",
    "DownBlock2d",
    "UpBlock2d",
    "ResBlock2d",
    "Encoder",
    "Decoder",
    "Hourglass",
    "AntiAliasInterpolation2d",
    "warp",
]


def make_coordinate_grid(
    height: int, width: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """Pixel-centre coordinates of an ``height`` x ``width`` map.

    Returns:
        (H, W, 2) tensor; ``[..., 0]`` is x (column) and ``[..., 1]`` is y (row), both
        spanning [-1, 1] including the ends.
    """
    if height < 2 or width < 2:
        raise ValueError(f"grid needs at least 2x2 cells, got {height}x{width}")
    x = torch.arange(width, dtype=dtype, device=device)
    y = torch.arange(height, dtype=dtype, device=device)
    x = 2.0 * (x / (width - 1)) - 1.0
    y = 2.0 * (y / (height - 1)) - 1.0
    xx = x.view(1, -1).expand(height, width)
    yy = y.view(-1, 1).expand(height, width)
    return torch.stack([xx, yy], dim=2)


def kp2gaussian(kp_value: torch.Tensor, height: int, width: int, kp_variance: float) -> torch.Tensor:
    """Unnormalised isotropic Gaussians centred on keypoints.

    Args:
        kp_value: (B, K, 2) keypoints in [-1, 1], (x, y).
        height, width: size of the map.
        kp_variance: variance in normalised coordinates (0.01 in vox-256).

    Returns:
        (B, K, H, W) with peak value 1 at each keypoint.
    """
    grid = make_coordinate_grid(height, width, dtype=kp_value.dtype, device=kp_value.device)
    diff = grid.view(1, 1, height, width, 2) - kp_value.view(*kp_value.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * (diff**2).sum(-1) / kp_variance)


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B,C,H,W) by sampling it at ``grid`` (B,h,w,2) in [-1,1]."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


class SameBlock2d(nn.Module):
    """conv -> BN -> ReLU, spatial size preserved."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(nn.Module):
    """conv3x3 -> BN -> ReLU -> 2x2 average pool (halves H and W)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.norm(self.conv(x))))


class UpBlock2d(nn.Module):
    """nearest x2 upsample -> conv3x3 -> BN -> ReLU (doubles H and W)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: BN -> ReLU -> conv -> BN -> ReLU -> conv, plus input."""

    def __init__(self, in_features: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(in_features, in_features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(in_features, affine=True)
        self.norm2 = nn.BatchNorm2d(in_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _hourglass_width(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2**level))


class Encoder(nn.Module):
    """Hourglass encoder: ``num_blocks`` DownBlocks; returns the input and every output."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else _hourglass_width(block_expansion, max_features, i)
            blocks.append(DownBlock2d(cin, _hourglass_width(block_expansion, max_features, i + 1)))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    """Hourglass decoder: UpBlocks, each followed by concatenation of the matching skip."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            factor = 1 if i == num_blocks - 1 else 2
            cin = factor * _hourglass_width(block_expansion, max_features, i + 1)
            blocks.append(UpBlock2d(cin, _hourglass_width(block_expansion, max_features, i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        rest = list(skips)
        out = rest.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), rest.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net-like hourglass; output has ``block_expansion + in_features`` channels.

    The input's H and W must be divisible by ``2**num_blocks``.
    """

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3, max_features: int = 256) -> None:
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then strided slicing, downsampling by ``scale`` (1/integer).

    sigma = (1/scale - 1) / 2 and kernel = 2*round(4*sigma) + 1; for scale 0.25 that is
    sigma 1.5, a 13x13 kernel, padding 6 each side. The kernel is the buffer
    ``weight`` of shape (channels, 1, k, k), so it appears in the state_dict.
    """

    weight: torch.Tensor

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        inv = 1.0 / scale
        if scale <= 0 or scale > 1 or abs(inv - round(inv)) > 1e-6:
            raise ValueError(f"scale must be 1/n for a positive integer n, got {scale}")
        sigma = (inv - 1.0) / 2.0
        kernel_size = 2 * round(sigma * 4) + 1
        self.ka = kernel_size // 2
        self.kb = self.ka - 1 if kernel_size % 2 == 0 else self.ka
        coords = torch.arange(kernel_size, dtype=torch.float32)
        mean = (kernel_size - 1) / 2.0
        if sigma > 0:
            g = torch.exp(-((coords - mean) ** 2) / (2.0 * sigma**2))
        else:
            g = (coords == mean).float()
        kernel = g.view(-1, 1) * g.view(1, -1)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, kernel_size, kernel_size).repeat(channels, 1, 1, 1))
        self.groups = channels
        self.scale = scale
        self.int_inv_scale = int(round(inv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        out = F.pad(x, (self.ka, self.kb, self.ka, self.kb))
        out = F.conv2d(out, self.weight.to(x.dtype), groups=self.groups)
        return out[:, :, :: self.int_inv_scale, :: self.int_inv_scale]
