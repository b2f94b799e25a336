"""Plug-in ``cyclegan-vintage``: vintagify's CycleGAN ResNet-9 generator (photo to vintage).

View: the face with 1.7x its size around it at 256 px. vintagify itself runs at 512 px
(shorter side to 542, centre crop); the attack and the break test run at 256 to keep a
CPU step affordable (the network is fully convolutional; 512 costs 4x). Break test:
output MSE >= 0.05 on [-1,1] (Ruiz et al. 2020).
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import GeneratorTarget

__all__ = ["CycleGanVintage"]


class CycleGanVintage(GeneratorTarget):
    name = "cyclegan-vintage"
    size = 256
    context = 1.7

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> CycleGanVintage:
        from shield.adversarial.models.cyclegan import load_vintage_cyclegan

        return cls(load_vintage_cyclegan(device))
