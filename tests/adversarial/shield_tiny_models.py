"""Tiny random-weight threat models for fast attack and protection tests."""

from __future__ import annotations

import torch
from torch import nn

from shield.adversarial.models.autoencoder import FaceSwapAE, FaceSwapAEConfig
from shield.adversarial.models.fomm import FOMM, CommonParams, DenseMotionParams, FommConfig, GeneratorParams, KeypointDetectorParams
from shield.adversarial.threats import Target
from shield.adversarial.threats.dlib_resnet import DlibResNet
from shield.adversarial.threats.faceswap_ae import FaceSwapAe
from shield.adversarial.threats.fomm_mini import FommMiniA

TINY_FOMM = FommConfig(
    resolution=32,
    common=CommonParams(num_kp=5, num_channels=3, estimate_jacobian=True),
    kp_detector=KeypointDetectorParams(temperature=0.1, block_expansion=8, max_features=32, scale_factor=0.5, num_blocks=2),
    generator=GeneratorParams(block_expansion=8, max_features=32, num_down_blocks=1, num_bottleneck_blocks=1, estimate_occlusion_map=True),
    dense_motion=DenseMotionParams(block_expansion=8, max_features=32, num_blocks=2, scale_factor=0.5, kp_variance=0.01),
)


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics (a loader that skipped buffers would show); eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.05 + (1.0 if "running_var" in name else 0.0))
    return model.eval()


class TinyEmbedder(nn.Module):
    """A random identity network on 150 px chips -> 16-d embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 16))

    def forward(self, chip: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(chip)
        return out


def tiny_threat_models(seed: int = 0, *, identity: bool = False) -> list[Target]:
    """The surrogate plug-ins (fomm-mini-a, faceswap-ae, and dlib-resnet when ``identity``) around tiny random networks."""
    torch.manual_seed(seed)
    fomm = FOMM(TINY_FOMM).eval()
    swap = FaceSwapAE(FaceSwapAEConfig(resolution=32, width=8, latent=32, identities=("a", "b"))).eval()
    models: list[Target] = [FommMiniA(fomm), FaceSwapAe(swap)]
    if identity:
        models.append(DlibResNet(TinyEmbedder().eval()))
    return models
