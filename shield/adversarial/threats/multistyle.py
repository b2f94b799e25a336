"""Plug-in ``multistyle26``: the Dumoulin et al. 26-style transfer network (held out: never attacked).

View: the face with 1.7x its size around it at 256 px. The network renders every one of
its 26 styles; the break test uses four of them, spread over the table (0, 8, 16, 24), and
counts the photo broken when their mean output MSE is >= 0.05 on [-1,1].
"""

from __future__ import annotations

import torch

from shield.adversarial.threats.roles import GeneratorTarget

__all__ = ["MultiStyle26"]

#: Styles the break test renders.
STYLES = (0, 8, 16, 24)


class MultiStyle26(GeneratorTarget):
    name = "multistyle26"
    size = 256
    context = 1.7

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> MultiStyle26:
        from shield.adversarial.models.multistyle import load_multistyle

        return cls(load_multistyle(device))

    def generate(self, view: torch.Tensor) -> torch.Tensor:
        from shield.adversarial.models.multistyle import NUM_STYLES

        n = view.shape[0]
        index = torch.tensor(STYLES, device=view.device).repeat_interleave(n)
        weights = torch.nn.functional.one_hot(index, NUM_STYLES).to(view.dtype)
        out: torch.Tensor = self.net(view.repeat(len(STYLES), 1, 1, 1), weights)
        return out
