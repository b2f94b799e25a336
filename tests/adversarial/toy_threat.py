"""A whole threat-model plug-in in one file: a toy 'generator' (a 3x3 blur) for the protocol test."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.threats import Role
from shield.adversarial.threats.roles import GeneratorTarget


class Blur(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)


class ToyBlur(GeneratorTarget):
    name = "toy-blur"
    role = Role.GENERATOR
    pretrained = False
    size = 32

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> ToyBlur:
        return cls(Blur().to(device).eval())
