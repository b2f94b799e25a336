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

The identity stage uses :class:`~shield.adversarial.attacks.losses.IdentityPushAway`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from torch import nn

from shield.adversarial.attacks.losses import CropFn, LossTerm
from shield.adversarial.models.detections import Candidates

__all__ = ["CandidateDetector", "DetectionSuppression", "LandmarkDisplacement", "GeneratorDistortion", "boxes_iou"]

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


class DetectionSuppression(LossTerm):
    """Suppress the face score of every candidate near the clean face, and shift its box.

    ``prepare`` takes the clean face as the best-scoring candidate overlapping
    ``expected`` (the face box in the view, when known). At each step the candidates
    whose box overlaps it by IoU >= 0.3 are selected (without gradient) and the score is
    ``-sum(w * logit) - shift * sum(w * IoU)`` with ``w`` the softmax of their logits
    (detached): the strongest candidates, the ones a threshold would keep, get the
    push. Logits are floored at -8, far below any default threshold.

    Args:
        detector: a port with ``candidates(image) -> Candidates``.
        crop: ``x`` -> the detector's view.
        expected: (x0, y0, x1, y1) of the face in the view, or None (the best candidate).
        shift: weight of the box-shift part.
        weight: term weight.
    """

    name = "detection"

    def __init__(
        self,
        detector: CandidateDetector,
        crop: CropFn,
        *,
        expected: tuple[float, float, float, float] | None = None,
        shift: float = 1.0,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.detector, self.crop, self.expected, self.shift = detector, crop, expected, shift
        self._face: torch.Tensor | None = None

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
        self._face = found.boxes[int(scores.argmax())].detach().float()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._face is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        found = self.detector.candidates(self.crop(x))
        iou = boxes_iou(found.boxes.float(), self._face.to(found.boxes.device))
        near = iou.detach() >= _NEAR_IOU
        if not bool(near.any()):
            return found.scores.sum() * 0.0
        p = found.scores[near].float().clamp(1e-6, 1 - 1e-6)
        logits = torch.log(p) - torch.log1p(-p)
        w = torch.softmax(logits.detach(), 0)
        return -(w * logits.clamp_min(_LOGIT_FLOOR)).sum() - self.shift * (w * iou[near]).sum()


class LandmarkDisplacement(LossTerm):
    """Mean squared landmark displacement from the clean landmarks, over the clean inter-ocular distance squared.

    Args:
        landmarks: view (N,3,S,S) -> (N,K,2) landmark pixels of the view.
        crop: ``x`` -> the landmark network's view.
        eyes: ``(K,2) -> ((2,), (2,))`` the two eye centres of a landmark set.
        weight: term weight.
    """

    name = "landmarks"

    def __init__(
        self,
        landmarks: Callable[[torch.Tensor], torch.Tensor],
        crop: CropFn,
        eyes: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        *,
        weight: float = 1.0,
    ) -> None:
        super().__init__(weight)
        self.landmarks, self.crop, self.eyes = landmarks, crop, eyes
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
        return (moved - self._clean).pow(2).sum(-1).mean() / self._iod**2


class GeneratorDistortion(LossTerm):
    """MSE on [-1,1] between ``generator(crop(x))`` and ``generator(crop(clean))`` (Ruiz et al. 2020 eq. 2).

    Args:
        generator: view in [0,1] -> output in [0,1].
        crop: ``x`` -> the generator's view.
        weight: term weight.
    """

    name = "generator"

    def __init__(self, generator: Callable[[torch.Tensor], torch.Tensor], crop: CropFn, *, weight: float = 1.0) -> None:
        super().__init__(weight)
        self.generator, self.crop = generator, crop
        self._clean: torch.Tensor | None = None

    def networks(self) -> Sequence[nn.Module]:
        return [self.generator] if isinstance(self.generator, nn.Module) else []

    @torch.no_grad()
    def prepare(self, clean: torch.Tensor) -> None:
        self._clean = self.generator(self.crop(clean)).detach()

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self._clean is None:
            raise RuntimeError("prepare() must run before the term is evaluated")
        return (2 * (self.generator(self.crop(x)) - self._clean)).pow(2).mean()
