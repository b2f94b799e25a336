"""Plug-in ``faceswap-ae``: our 64 px shared-encoder autoencoder face swap (a minor surrogate target).

Attack: MSE between the swaps of the attacked and the clean face into every identity the
decoder knows; break test: at least half of those swaps have MSE >= 0.05 on [-1,1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, LossTerm, SwapDistortion
from shield.adversarial.face_views import FaceGeometry, View, whole_frame_view
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse
from shield.adversarial.models.autoencoder import FaceSwapAE
from shield.adversarial.threats.base import AttackOptions, Role, Target, Verdict
from shield.adversarial.threats.fomm_mini import BROKEN_SHARE

__all__ = ["FaceSwapAe"]


class FaceSwapAe(Target):
    name = "faceswap-ae"
    role = Role.SWAP
    pretrained = False

    def __init__(self, model: FaceSwapAE) -> None:
        self.model = model

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FaceSwapAe:
        from shield.adversarial.models.autoencoder import load_faceswap_ae

        return cls(load_faceswap_ae(device).eval())

    def networks(self) -> Sequence[nn.Module]:
        return [self.model]

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View:
        size = self.model.resolution
        return face.chip_view(size) if face is not None else whole_frame_view(width, height, size)

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        ids = list(range(len(self.model.identities)))
        return [SwapDistortion(self.model, self.model.swap, ids, crop, weight=weight)]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        p, c = crop(protected), crop(clean)
        mse = torch.cat([disruption_mse(self.model.swap(p, i), self.model.swap(c, i)) for i in range(len(self.model.identities))])
        share = float((mse >= DISRUPTION_THRESHOLD).float().mean())
        return Verdict(share >= BROKEN_SHARE, share, BROKEN_SHARE, f"share of swaps with output MSE >= {DISRUPTION_THRESHOLD}", len(mse))
