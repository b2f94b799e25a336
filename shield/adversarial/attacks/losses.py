"""Loss terms against deepfake generators, combinable with weights.

Every term scores an image ``x`` (1,3,H,W) in [0,1] -- the whole frame or the
region around a face -- and is larger when the deepfake made from ``x`` is more
broken. A term sees the model input through its own ``crop`` (a differentiable
map from ``x`` to the model's aligned input, see ``shield.adversarial.face_views``),
so one perturbation of the photo serves models with different alignments and
resolutions.

Terms first :meth:`LossTerm.prepare` on the clean image (the outputs the
disruption is measured against, Ruiz et al. 2020 eq. 2: maximise
``MSE(G(x + delta), G(x))``), then are called at every attack step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.arcface import ArcFace, simswap_identity
from shield.adversarial.models.fomm import FOMM, Keypoints
from shield.adversarial.models.simswap import SimSwapGenerator

__all__ = [
    "CropFn",
    "MotionBank",
    "random_motions",
    "motions_from_driving",
    "LossTerm",
    "FommDistortion",
    "KeypointDisplacement",
    "IdentityPushAway",
    "SwapDistortion",
    "random_identities",
    "simswap_swaps",
    "SimSwapLatent",
    "SimSwapDistortion",
    "ArcFacePushAway",
    "WeightedObjective",
]

#: Differentiable map from the attacked image (1,3,H,W) to a model input (1,3,R,R).
CropFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class MotionBank:
    """Driving motions expressed relative to the source, as FOMM's relative animation.

    For motion ``m``: ``kp_new = kp_source + offset[m]`` and
    ``J_new = jacobian[m] @ J_source`` (FOMM demo ``normalize_kp`` with movement
    scale 1; specs/deepfake-models.md section 1, "Relative animation").

    Attributes:
        offset: (M, K, 2) keypoint displacements in [-1,1] image coordinates.
        jacobian: (M, K, 2, 2) relative jacobians.
    """

    offset: torch.Tensor
    jacobian: torch.Tensor

    def __len__(self) -> int:
        return int(self.offset.shape[0])

    def subset(self, index: torch.Tensor) -> MotionBank:
        return MotionBank(self.offset[index], self.jacobian[index])

    def apply(self, kp: Keypoints) -> Keypoints:
        """Keypoints of one source (batch 1) moved by every motion -> batch M."""
        m = len(self)
        value = kp.value.expand(m, -1, -1) + self.offset.to(kp.value)
        jac = torch.matmul(self.jacobian.to(kp.jacobian), kp.jacobian.expand(m, -1, -1, -1))
        return Keypoints(value, jac)

    @staticmethod
    def cat(banks: Sequence[MotionBank]) -> MotionBank:
        return MotionBank(torch.cat([b.offset for b in banks]), torch.cat([b.jacobian for b in banks]))


def random_motions(count: int, num_kp: int, gen: torch.Generator, *, shift: float = 0.08, warp: float = 0.1) -> MotionBank:
    """The identity motion plus ``count - 1`` random ones.

    Each random motion moves the whole face by a common shift (std ``shift``) plus a
    per-keypoint jitter (std ``shift / 2``) and perturbs each jacobian by a random
    matrix (entries with std ``warp``): head movements and expressions of the size
    seen in talking-head clips, in [-1,1] coordinates.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    n = count - 1
    common = torch.randn(n, 1, 2, generator=gen) * shift
    jitter = torch.randn(n, num_kp, 2, generator=gen) * (shift / 2)
    jac = torch.eye(2).expand(n, num_kp, 2, 2) + torch.randn(n, num_kp, 2, 2, generator=gen) * warp
    ident = MotionBank(torch.zeros(1, num_kp, 2), torch.eye(2).expand(1, num_kp, 2, 2).clone())
    return MotionBank.cat([ident, MotionBank(common + jitter, jac)])


@torch.no_grad()
def motions_from_driving(fomm: FOMM, frames: torch.Tensor) -> MotionBank:
    """Relative motions of a driving clip (T,3,R,R) in [0,1] with respect to its frame 0."""
    kp = fomm.keypoints(frames)
    offset = kp.value - kp.value[:1]
    jac = torch.matmul(kp.jacobian, torch.inverse(kp.jacobian[:1]).expand_as(kp.jacobian))
    return MotionBank(offset, jac)


def _mse_pm1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """MSE on the [-1,1] scale (4x the [0,1] MSE), the unit of the disruption criterion."""
    return 4.0 * F.mse_loss(a, b)


class LossTerm:
    """One weighted term of the attack objective.

    Attributes:
        name: short label (appears in parameter records).
        weight: multiplier in the weighted sum.
    """

    name = "term"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def networks(self) -> Sequence[nn.Module]:  # pragma: no cover - interface
        raise NotImplementedError

    def prepare(self, clean: torch.Tensor) -> None:  # pragma: no cover - interface
        """Record the clean references for ``clean`` (1,3,H,W) in [0,1]."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight})"


class FommDistortion(LossTerm):
    """MSE between FOMM frames animated from ``x`` and from the clean photo.

    Args:
        fomm: the (white-box) model.
        crop: ``x`` -> (1,3,R,R) FOMM input.
        motions: driving motions (random and/or from driving clips).
        per_step: motions drawn (without replacement) per call, to bound the cost.
        weight: term weight.
    """

    name = "fomm"

    def __init__(self, fomm: FOMM, crop: CropFn, motions: MotionBank, *, per_step: int = 4, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.fomm, self.crop, self.motions = fomm, crop, motions
        self.per_step = max(1, min(per_step, len(motions)))
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.fomm]

    def _animate(self, source: torch.Tensor, motions: MotionBank) -> torch.Tensor:
        kp = self.fomm.keypoints(source)
        driving = motions.apply(kp)
        m = len(motions)
        kp_src = Keypoints(kp.value.expand(m, -1, -1), kp.jacobian.expand(m, -1, -1, -1))
        return self.fomm.generate(source.expand(m, -1, -1, -1), kp_src, driving)

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self._animate(self.crop(clean), self.motions)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        index = torch.randperm(len(self.motions), generator=gen)[: self.per_step]
        out = self._animate(self.crop(x), self.motions.subset(index))
        return _mse_pm1(out, self._clean[index.to(self._clean.device)])

    def __repr__(self) -> str:
        return f"FommDistortion(weight={self.weight}, motions={len(self.motions)}, per_step={self.per_step})"


class KeypointDisplacement(LossTerm):
    """Squared displacement of FOMM's keypoints (and 0.1x of the jacobians) from the clean ones.

    Cheap: runs only the keypoint detector (a fraction of the generator's cost), and
    every motion transferred from a driving clip starts from these keypoints.
    """

    name = "keypoints"

    def __init__(self, fomm: FOMM, crop: CropFn, *, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.fomm, self.crop = fomm, crop
        self._clean: Keypoints | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.fomm]

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.fomm.keypoints(self.crop(clean)).detach()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        kp = self.fomm.keypoints(self.crop(x))
        return F.mse_loss(kp.value, self._clean.value) + 0.1 * F.mse_loss(kp.jacobian, self._clean.jacobian)


class IdentityPushAway(LossTerm):
    """Squared distance of the face's identity embedding from the clean one.

    With the dlib descriptor port (128-d, same person below 0.6) or any network
    mapping an aligned chip to an embedding (ArcFace when official weights are
    imported).
    """

    name = "identity"

    def __init__(self, embedder: nn.Module, crop: CropFn, *, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.embedder, self.crop = embedder, crop
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.embedder]

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.embedder(self.crop(clean)).detach()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        return (self.embedder(self.crop(x)) - self._clean).pow(2).sum(-1).mean()


class SwapDistortion(LossTerm):
    """MSE between face swaps made from ``x`` and from the clean photo (photo as target).

    ``swap(face, identity)`` renders a (B,3,R,R) face as another identity (the
    autoencoder swap's decoders, or a SimSwap generator bound to an identity latent).

    Args:
        swapper: the swap network (listed for freezing).
        swap: callable (face, identity index) -> swapped face.
        identities: identity indices to swap into.
        crop: ``x`` -> (1,3,R,R) model input.
    """

    name = "swap"

    def __init__(
        self,
        swapper: nn.Module,
        swap: Callable[[torch.Tensor, int], torch.Tensor],
        identities: Sequence[int],
        crop: CropFn,
        *,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        if not identities:
            raise ValueError("identities must not be empty")
        self.swapper, self.swap, self.identities, self.crop = swapper, swap, tuple(identities), crop
        self._clean: list[torch.Tensor] = []

    def networks(self) -> Sequence[nn.Module]:
        return [self.swapper]

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        face = self.crop(clean)
        self._clean = [self.swap(face, i) for i in self.identities]

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if not self._clean:
            raise RuntimeError("prepare() must run before the term is evaluated")
        face = self.crop(x)
        losses = [_mse_pm1(self.swap(face, i), ref) for i, ref in zip(self.identities, self._clean, strict=True)]
        return torch.stack(losses).mean()


def random_identities(count: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` random unit vectors (count, dim): stand-in identity latents for SimSwap.

    SimSwap's latents are L2-normalised ArcFace embeddings, and embeddings of different
    people are nearly orthogonal; so are independent random unit vectors in 512
    dimensions (|cos| below 0.15 with probability above 0.999). They are not drawn from
    the face manifold, so a swap into one of them approximates a swap into a real
    stranger; callers holding real latents (other faces of the photo) pass those instead.
    """
    if count < 0 or dim < 1:
        raise ValueError(f"count must be >= 0 and dim >= 1, got {count}, {dim}")
    return F.normalize(torch.randn(count, dim, generator=gen), p=2, dim=1)


def simswap_swaps(
    generator: SimSwapGenerator, face: torch.Tensor, latents: torch.Tensor, targets: torch.Tensor, source_latent: torch.Tensor
) -> torch.Tensor:
    """SimSwap outputs of one face in both roles, in one batch (specs/deepfake-models.md section 3).

    Args:
        generator: the SimSwap generator.
        face: (1,3,S,S) aligned face in [0,1] (the photo as *target*).
        latents: (K,D) identity latents swapped onto ``face``.
        targets: (T,3,S,S) target faces in [0,1] that receive ``source_latent``.
        source_latent: (1,D) the photo's identity latent (the photo as *identity source*).

    Returns:
        (K+T,3,S,S): ``G(face, latents[k])`` for each k, then ``G(targets[j], source_latent)``.
    """
    faces = torch.cat([face.expand(latents.shape[0], -1, -1, -1), targets.to(face)])
    ids = torch.cat([latents.to(source_latent), source_latent.expand(targets.shape[0], -1)])
    return generator(faces, ids)


class SimSwapLatent(nn.Module):
    """SimSwap's identity latent of aligned 224 faces as a module: ``simswap_identity(arcface, face)``."""

    def __init__(self, arcface: ArcFace) -> None:
        super().__init__()
        self.arcface = arcface

    def forward(self, face224: torch.Tensor) -> torch.Tensor:
        return simswap_identity(self.arcface, face224)


class SimSwapDistortion(LossTerm):
    """MSE between SimSwap swaps made from ``x`` and from the clean photo, the photo in both roles.

    - Photo as *target*: its aligned face rendered with other identities,
      ``G(face(x), z_k)``. The latents are the clean photo's own (SimSwap's self swap, a
      real latent) followed by ``identities`` (e.g. :func:`random_identities`).
    - Photo as *identity source*: its latent ``z(x) = simswap_identity(arcface, face(x))``
      injected into fixed target faces, ``G(t_j, z(x))``. The targets are ``targets``
      or, when None, the clean face and its mirror image (no other face is at hand;
      the attack on this role acts through the latent, which is the same whatever the
      target).

    The score is the mean of the two roles' MSE on the [-1,1] scale, as
    :class:`SwapDistortion` (Ruiz et al. 2020 eq. 2).

    Args:
        generator: the SimSwap 224 generator (white-box).
        arcface: the ArcFace network giving SimSwap its identity latents.
        crop: ``x`` -> (1,3,224,224) face aligned to SimSwap's ArcFace template.
        identities: (K,D) unit latents of other identities (K may be 0).
        targets: (T,3,224,224) target faces in [0,1], or None (clean face and mirror).
        per_step: latents and targets drawn (each, without replacement) per call, to bound the cost.
        weight: term weight.
    """

    name = "simswap"

    def __init__(
        self,
        generator: SimSwapGenerator,
        arcface: ArcFace,
        crop: CropFn,
        identities: torch.Tensor,
        *,
        targets: torch.Tensor | None = None,
        per_step: int = 1,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        if identities.ndim != 2 or identities.shape[1] != generator.latent:
            raise ValueError(f"identities: expected (K, {generator.latent}), got {tuple(identities.shape)}")
        if targets is not None and (targets.ndim != 4 or targets.shape[0] < 1 or targets.shape[1] != 3):
            raise ValueError(f"targets: expected (T,3,S,S) with T >= 1, got {tuple(targets.shape)}")
        self.generator, self.crop = generator, crop
        self.latent = SimSwapLatent(arcface)
        self.identities, self.targets = identities, targets
        self.per_step = max(1, per_step)
        self._latents: torch.Tensor | None = None
        self._targets: torch.Tensor | None = None
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.generator, self.latent]

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        face = self.crop(clean)
        own = self.latent(face)
        self._latents = torch.cat([own, self.identities.to(own)])
        self._targets = self.targets.to(face) if self.targets is not None else torch.cat([face, face.flip(-1)])
        self._clean = simswap_swaps(self.generator, face, self._latents, self._targets, own)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None or self._latents is None or self._targets is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        k, t = self._latents.shape[0], self._targets.shape[0]
        i = torch.randperm(k, generator=gen)[: self.per_step].to(self._clean.device)
        j = torch.randperm(t, generator=gen)[: self.per_step].to(self._clean.device)
        face = self.crop(x)
        out = simswap_swaps(self.generator, face, self._latents[i], self._targets[j], self.latent(face))
        n = i.numel()
        as_target = _mse_pm1(out[:n], self._clean[i])
        as_source = _mse_pm1(out[n:], self._clean[k + j])
        return (as_target + as_source) / 2

    def __repr__(self) -> str:
        k = self.identities.shape[0] + 1
        t = self.targets.shape[0] if self.targets is not None else 2
        return f"SimSwapDistortion(weight={self.weight}, latents={k}, targets={t}, per_step={self.per_step})"


class ArcFacePushAway(IdentityPushAway):
    """:class:`IdentityPushAway` on SimSwap's ArcFace latent (unit norm, so the score lies in [0,4]).

    ``crop`` maps ``x`` to the 224 face aligned to the ArcFace template; the latent is
    computed as SimSwap does (ImageNet normalisation, nearest resize to 112, ArcFace,
    L2 normalisation; :func:`~shield.adversarial.models.arcface.simswap_identity`), so
    pushing it away also moves the identity SimSwap copies from the photo.
    """

    name = "arcface"

    def __init__(self, arcface: ArcFace, crop: CropFn, *, weight: float = 1.0) -> None:
        super().__init__(SimSwapLatent(arcface), crop, weight=weight)


class WeightedObjective:
    """Weighted sum of loss terms: the :class:`~shield.adversarial.attacks.base.Objective` of an attack.

    Args:
        terms: the loss terms.
        sample: evaluate only this many terms per call, drawn at random with the call's
            generator (None: all). The sum is rescaled by ``len(terms) / sample``, so it is
            an unbiased estimate of the full objective; each step costs a fraction of an
            ensemble pass, and the drawn subsets act as an ensemble dropout.
    """

    def __init__(self, terms: Sequence[LossTerm], *, sample: int | None = None) -> None:
        if not terms:
            raise ValueError("an objective needs at least one term")
        if sample is not None and sample < 1:
            raise ValueError(f"sample: expected >= 1, got {sample}")
        self.terms = tuple(terms)
        self.sample = sample

    def networks(self) -> Sequence[nn.Module]:
        seen: dict[int, nn.Module] = {}
        for term in self.terms:
            for net in term.networks():
                seen[id(net)] = net
        return list(seen.values())

    def prepare(self, clean: torch.Tensor) -> None:
        for term in self.terms:
            term.prepare(clean)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        active = [t for t in self.terms if t.weight != 0]
        scale = 1.0
        if self.sample is not None and self.sample < len(active):
            pick = torch.randperm(len(active), generator=gen)[: self.sample].tolist()
            scale = len(active) / self.sample
            active = [active[i] for i in sorted(pick)]
        total = x.new_zeros(())
        for term in active:
            total = total + term.weight * term(x, gen)
        return total * scale

    def __repr__(self) -> str:
        sample = f", sample={self.sample}" if self.sample is not None else ""
        return "WeightedObjective(" + ", ".join(map(repr, self.terms)) + sample + ")"
