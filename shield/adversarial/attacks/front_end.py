"""Loss terms against the front-end of a deepfake pipeline and against image generators.

Every swap and reenactment tool first finds the face, places its landmarks, aligns the
face and reads its identity (Li et al. 2019, "Hiding Faces in Plain Sight"); a
generator then renders the result. These terms push each stage away from what it makes
of the clean photo (larger = more broken), each on its own view of the photo:

- :class:`DetectionSuppression`: lowers the face score of every candidate box near the
  clean face and moves those boxes off it;
- :class:`LandmarkDisplacement`: moves the landmarks from their clean positions,
  normalised by the clean inter-ocular distance;
- :class:`GeneratorDistortion`: Ruiz et al. 2020 eq. 2, MSE on [-1,1] between the
  generator's outputs from the attacked and the clean input.

- :class:`EmbeddingPushAway`: moves the identity embedding from the clean one.

Each score is *break-normalised*: 1 means the stage's own break test is just met (the
face score at the detector's threshold, the landmark error at 0.10 of the eye
distance, the embedding distance at the encoder's threshold, the output MSE at 0.05),
and it is capped at ``cap`` (default 2): a stage already broken with margin stops
pulling, and the step goes to the stages that still hold. So one weight of 1 per
network is a balanced ensemble whatever the networks' scales.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, LossTerm
from shield.adversarial.models.detections import Candidates

__all__ = ["CandidateDetector", "DetectionSuppression", "LandmarkDisplacement", "GeneratorDistortion", "EmbeddingPushAway", "boxes_iou"]

#: Candidates whose box overlaps the clean face by at least this much are suppressed.
_NEAR_IOU = 0.3
#: Logits below this are far under every default threshold; pushing them lower gains nothing.
_LOGIT_FLOOR = -8.0


class CandidateDetector(Protocol):
    """A detector port: every anchor decoded, differentiable w.r.t. the image."""

    def candidates(self, image: torch.Tensor) -> Candidates: ...


def boxes_iou(boxes: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """IoU of each (N,4) x0,y0,x1,y1 box with one (4,) box; differentiable."""
    ix = (torch.minimum(boxes[:, 2], box[2]) - torch.maximum(boxes[:, 0], box[0])).clamp_min(0)
    iy = (torch.minimum(boxes[:, 3], box[3]) - torch.maximum(boxes[:, 1], box[1])).clamp_min(0)
    inter = ix * iy
    area = (boxes[:, 2] - boxes[:, 0]).clamp_min(0) * (boxes[:, 3] - boxes[:, 1]).clamp_min(0)
    other = (box[2] - box[0]).clamp_min(0) * (box[3] - box[1]).clamp_min(0)
    return inter / (area + other - inter).clamp_min(1e-6)


def _logits(found: Candidates) -> torch.Tensor:
    """Each candidate's face logit: the port's own when it has them (they keep the gradient
    of a confident face, whose probability rounds to 1), else from the probabilities."""
    if found.logits is not None:
        return found.logits.float()
    p = found.scores.float().clamp(1e-6, 1 - 1e-6)
    return torch.log(p) - torch.log1p(-p)


class DetectionSuppression(LossTerm):
    """Suppress the face score of every candidate near the clean face, and shift its box.

    ``prepare`` takes the clean face as the best-scoring candidate overlapping
    ``expected`` (the face box in the view, when known). At each step the candidates
    whose box overlaps it by IoU >= 0.3 are selected (without gradient); ``w`` is the
    softmax of their logits (detached), so the strongest candidates, the ones a
    threshold would keep, get the push. The score is

        (L0 - sum(w * logit)) / (L0 - (t - margin))  +  shift * (1 - sum(w * IoU))

    with ``L0`` the clean face's logit and ``t`` the logit of the detector's threshold:
    1 when the weighted logit reaches ``margin`` below the threshold; capped at ``cap``.

    Args:
        detector: a port with ``candidates(image) -> Candidates``.
        crop: ``x`` -> the detector's view.
        threshold: the detector's default face-score threshold, in (0, 1).
        expected: (x0, y0, x1, y1) of the face in the view, or None (the best candidate).
        shift: weight of the box-shift part.
        margin: logits below the threshold the score aims for.
        cap: the largest score.
        weight: term weight.
    """

    name = "detection"

    def __init__(
        self,
        detector: CandidateDetector,
        crop: CropFn,
        *,
        threshold: float = 0.5,
        expected: tuple[float, float, float, float] | None = None,
        shift: float = 0.5,
        margin: float = 2.0,
        cap: float = 2.0,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        if not 0 < threshold < 1:
            raise ValueError(f"threshold: expected a face score in (0, 1), got {threshold}")
        self.detector, self.crop, self.expected, self.shift, self.cap = detector, crop, expected, shift, cap
        self._target = math.log(threshold / (1 - threshold)) - margin
        self._face: torch.Tensor | None = None
        self._start = 0.0

    def networks(self) -> Sequence[nn.Module]:
        return [self.detector] if isinstance(self.detector, nn.Module) else []

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        found = self.detector.candidates(self.crop(clean))
        scores = found.scores.float()
        if self.expected is not None:
            near = boxes_iou(found.boxes.float(), torch.tensor(self.expected, device=scores.device)) >= _NEAR_IOU
            if bool(near.any()):
                scores = torch.where(near, scores, torch.full_like(scores, -1.0))
        best = int(scores.argmax())
        self._face = found.boxes[best].detach().float()
        self._start = max(float(_logits(found)[best]), self._target + 1.0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._face is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        found = self.detector.candidates(self.crop(x))
        iou = boxes_iou(found.boxes.float(), self._face.to(found.boxes.device))
        near = iou.detach() >= _NEAR_IOU
        if not bool(near.any()):
            return found.scores.sum() * 0.0
        logits = _logits(found)[near]
        w = torch.softmax(logits.detach(), 0)
        suppressed = (self._start - (w * logits.clamp_min(_LOGIT_FLOOR)).sum()) / (self._start - self._target)
        moved = 1 - (w * iou[near]).sum()
        return (suppressed + self.shift * moved).clamp(max=self.cap)


class LandmarkDisplacement(LossTerm):
    """Root-mean-square landmark displacement over the clean inter-ocular distance, over ``nme``.

    1 when the displacement reaches the break test's 0.10 of the eye distance; capped at ``cap``.

    Args:
        landmarks: view (N,3,S,S) -> (N,K,2) landmark pixels of the view.
        crop: ``x`` -> the landmark network's view.
        eyes: ``(K,2) -> ((2,), (2,))`` the two eye centres of a landmark set.
        nme: the break level (fraction of the eye distance).
        cap: the largest score.
        weight: term weight.
    """

    name = "landmarks"

    def __init__(
        self,
        landmarks: Callable[[torch.Tensor], torch.Tensor],
        crop: CropFn,
        eyes: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        *,
        nme: float = 0.10,
        cap: float = 2.0,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.landmarks, self.crop, self.eyes, self.nme, self.cap = landmarks, crop, eyes, nme, cap
        self._clean: torch.Tensor | None = None
        self._iod = 1.0

    def networks(self) -> Sequence[nn.Module]:
        return [self.landmarks] if isinstance(self.landmarks, nn.Module) else []

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.landmarks(self.crop(clean)).detach().float()
        left, right = self.eyes(self._clean[0])
        self._iod = max(float((left - right).norm()), 1.0)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        moved = self.landmarks(self.crop(x)).float()
        rms = ((moved - self._clean).pow(2).sum(-1).mean() + 1e-12).sqrt()
        return (rms / (self._iod * self.nme)).clamp(max=self.cap)


class GeneratorDistortion(LossTerm):
    """MSE on [-1,1] between ``generator(crop(x))`` and ``generator(crop(clean))`` (Ruiz et al. 2020 eq. 2), over ``level``.

    1 at the break test's MSE of 0.05; capped at ``cap``.

    Args:
        generator: view in [0,1] -> output in [0,1].
        crop: ``x`` -> the generator's view.
        level: the break level of the MSE.
        cap: the largest score.
        weight: term weight.
    """

    name = "generator"

    def __init__(
        self, generator: Callable[[torch.Tensor], torch.Tensor], crop: CropFn, *, level: float = 0.05, cap: float = 2.0, weight: float = 1.0
    ) -> None:
        super().__init__(weight)
        self.generator, self.crop, self.level, self.cap = generator, crop, level, cap
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.generator] if isinstance(self.generator, nn.Module) else []

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.generator(self.crop(clean)).detach()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        return ((2 * (self.generator(self.crop(x)) - self._clean)).pow(2).mean() / self.level).clamp(max=self.cap)


class EmbeddingPushAway(LossTerm):
    """Distance of the identity embedding from the clean one, over the encoder's same-person ``threshold``.

    1 when the distance reaches the threshold (the break test); capped at ``cap``.

    Args:
        embedder: view (N,3,S,S) -> (N,D).
        crop: ``x`` -> the encoder's view.
        threshold: the encoder's same-person distance.
        cap: the largest score.
        weight: term weight.
    """

    name = "identity"

    def __init__(self, embedder: Callable[[torch.Tensor], torch.Tensor], crop: CropFn, *, threshold: float, cap: float = 2.0, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.embedder, self.crop, self.threshold, self.cap = embedder, crop, threshold, cap
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.embedder] if isinstance(self.embedder, nn.Module) else []

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.embedder(self.crop(clean)).detach()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        distance = ((self.embedder(self.crop(x)) - self._clean).pow(2).sum(-1) + 1e-12).sqrt().mean()
        return (distance / self.threshold).clamp(max=self.cap)
