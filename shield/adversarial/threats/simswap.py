"""Plug-in ``simswap-224``: the official SimSwap 224 generator with its ArcFace, once both are imported.

Attack: SimSwap's swaps with the photo as target (its own and random identities) and as
identity source (:class:`~shield.adversarial.attacks.losses.SimSwapDistortion`). Break
test: at least half of the held-out trials (own latent, two held-out random identities;
the photo as source into its clean face and mirror image) have MSE >= 0.05 on [-1,1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, LossTerm, SimSwapDistortion, random_identities, simswap_swaps
from shield.adversarial.face_views import FaceGeometry, View
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse
from shield.adversarial.models.arcface import ArcFace, simswap_identity
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.adversarial.threats.base import AttackOptions, Role, Target, Verdict
from shield.adversarial.threats.fomm_mini import BROKEN_SHARE

__all__ = ["SimSwap", "NAME"]

NAME = "simswap-224"
#: Random stand-in identities the attack renders the face with (besides its own).
_IDENTITIES = 3
#: Held-out random identities of the break test.
_CHECK_IDENTITIES = 2
_CHECK_SEED = 7919


class SimSwap(Target):
    name = NAME
    role = Role.SWAP

    def __init__(self, generator: SimSwapGenerator, arcface: ArcFace) -> None:
        self.generator, self.arcface = generator, arcface

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> SimSwap:
        """Raises ModelNotImportedError unless both simswap-224 and arcface-r100 are imported."""
        from shield.adversarial import zoo
        from shield.adversarial.models.arcface import load_arcface
        from shield.adversarial.models.simswap import load_simswap_generator
        from shield.adversarial.threats.arcface import NAME as ARCFACE

        record = zoo.imported(ARCFACE)
        depth = int(record.config.get("depth", 101)) if record is not None else 101
        arcface = load_arcface(zoo.resolve(ARCFACE), depth, device)
        return cls(load_simswap_generator(zoo.resolve(NAME), device), arcface)

    def networks(self) -> Sequence[nn.Module]:
        return [self.generator, self.arcface]

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        return face.arcface_view(224) if face is not None else None

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        latents = random_identities(_IDENTITIES, self.generator.latent, gen)
        return [SimSwapDistortion(self.generator, self.arcface, crop, latents, per_step=1, weight=weight)]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        gen = torch.Generator().manual_seed(_CHECK_SEED)
        held_out = random_identities(_CHECK_IDENTITIES, self.generator.latent, gen)
        c, p = crop(clean), crop(protected)
        zc, zp = simswap_identity(self.arcface, c), simswap_identity(self.arcface, p)
        latents = torch.cat([zc, held_out.to(zc)])
        targets = torch.cat([c, c.flip(-1)])
        mse = disruption_mse(
            simswap_swaps(self.generator, p, latents, targets, zp), simswap_swaps(self.generator, c, latents, targets, zc)
        )
        share = float((mse >= DISRUPTION_THRESHOLD).float().mean())
        return Verdict(share >= BROKEN_SHARE, share, BROKEN_SHARE, f"share of swaps with output MSE >= {DISRUPTION_THRESHOLD}", len(mse))
