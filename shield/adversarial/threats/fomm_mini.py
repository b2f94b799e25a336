"""Plug-ins ``fomm-mini-a`` (attacked) and ``fomm-mini-b`` (held out): our 64 px FOMM surrogates.

A minor, documented target since real pretrained networks joined the zoo (surrogate
training has stopped). :class:`FommTarget` is shared with the official vox-256 plug-in.
Attack: MSE of the frames animated by a bank of random driving motions (Ruiz et al.
2020) plus keypoint displacement; break test: at least half of 16 held-out random
motions give frames with MSE >= 0.05 on [-1,1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, FommDistortion, KeypointDisplacement, LossTerm, random_motions
from shield.adversarial.face_views import FaceGeometry, View, whole_frame_view
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse
from shield.adversarial.models.fomm import FOMM
from shield.adversarial.threats.base import AttackOptions, Role, Target, Verdict

__all__ = ["FommTarget", "FommMiniA", "FommMiniB", "SELF_CHECK_MOTIONS"]

#: Seed of the held-out motions of the break test (never seen by the attack).
_SELF_CHECK_SEED = 7919
SELF_CHECK_MOTIONS = 16
#: Pixels animated at once by the break test (bounds memory at 256 px).
_CHECK_PIXELS = 4 * 256 * 256
#: A reenactment or swap model is broken when at least this share of held-out trials is.
BROKEN_SHARE = 0.5


class FommTarget(Target):
    """A First Order Motion Model attacked on its square face crop."""

    role = Role.REENACTMENT
    #: Most motions animated per attack step (None: as the preset says).
    max_per_step: int | None = None

    def __init__(self, fomm: FOMM, name: str | None = None) -> None:
        self.fomm = fomm
        if name is not None:
            self.name = name

    def networks(self) -> Sequence[nn.Module]:
        return [self.fomm]

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View:
        size = self.fomm.resolution
        return face.fomm_view(size) if face is not None else whole_frame_view(width, height, size)

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        bank = random_motions(options.motions, self.fomm.config.common.num_kp, gen)
        per_step = options.motions_per_step if self.max_per_step is None else min(options.motions_per_step, self.max_per_step)
        terms: list[LossTerm] = [FommDistortion(self.fomm, crop, bank, per_step=per_step, weight=weight)]
        if not options.output_only:
            terms.append(KeypointDisplacement(self.fomm, crop, weight=weight))
        return terms

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        gen = torch.Generator().manual_seed(_SELF_CHECK_SEED)
        bank = random_motions(SELF_CHECK_MOTIONS, self.fomm.config.common.num_kp, gen)
        term = FommDistortion(self.fomm, crop, bank, per_step=len(bank))
        p, c = crop(protected), crop(clean)
        chunk = max(1, _CHECK_PIXELS // (p.shape[-1] * p.shape[-2]))
        mses = []
        for start in range(0, len(bank), chunk):
            part = bank.subset(torch.arange(start, min(start + chunk, len(bank))))
            mses.append(disruption_mse(term._animate(p, part), term._animate(c, part)))
        mse = torch.cat(mses)
        share = float((mse >= DISRUPTION_THRESHOLD).float().mean())
        return Verdict(share >= BROKEN_SHARE, share, BROKEN_SHARE, f"share of held-out motions with frame MSE >= {DISRUPTION_THRESHOLD}", len(mse))


class FommMiniA(FommTarget):
    name = "fomm-mini-a"
    pretrained = False

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FommMiniA:
        from shield.adversarial.models.fomm import load_fomm_mini

        return cls(load_fomm_mini(cls.name, device))


class FommMiniB(FommTarget):
    name = "fomm-mini-b"
    pretrained = False

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> FommMiniB:
        from shield.adversarial.models.fomm import load_fomm_mini

        return cls(load_fomm_mini(cls.name, device))
