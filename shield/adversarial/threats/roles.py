"""Role templates: the loss terms and break test shared by every network of one role.

A plug-in for a ported network subclasses one of these, sets ``name`` and its view
(``size``: the network's input side; ``context``: the crop side over the face box side,
as the tool feeding the network frames the face) and writes ``load``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from shield.adversarial.attacks.front_end import DetectionSuppression, EmbeddingPushAway, GeneratorDistortion, LandmarkDisplacement
from shield.adversarial.attacks.losses import CropFn, LossTerm
from shield.adversarial.face_views import FaceGeometry, View, whole_frame_view
from shield.adversarial.metrics import DISRUPTION_THRESHOLD, disruption_mse
from shield.adversarial.models.detections import Detection, box_iou
from shield.adversarial.threats.base import DETECTOR_IOU, LANDMARK_NME, AttackOptions, Role, Target, Verdict
from shield.faces.align import square_matrix

__all__ = ["square_view", "DetectorTarget", "LandmarkTarget", "IdentityTarget", "GeneratorTarget"]

#: A clean detection is the face of the view when it overlaps the expected face box this much.
_SAME_FACE_IOU = 0.3


def square_view(face: FaceGeometry, context: float, size: int) -> View:
    """Axis-aligned square of ``context`` x the face box's longer side, centred on the box, resized to ``size``."""
    left, top, right, bottom = face.box
    side = context * max(right - left, bottom - top, 1.0)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    return View(square_matrix(cx - side / 2, cy - side / 2, side, size), size)


def _expected_box(size: int, context: float) -> tuple[float, float, float, float]:
    """Where a face framed by :func:`square_view` lies in the view (a centred square)."""
    half = size / (2 * context)
    c = size / 2
    return (c - half, c - half, c + half, c + half)


class _Single(Target):
    """A plug-in around one network."""

    size: int
    context: float

    def __init__(self, net: nn.Module) -> None:
        self.net = net

    def networks(self) -> Sequence[nn.Module]:
        return [self.net]


class DetectorTarget(_Single):
    """A face detector: ``net.candidates(image)`` and ``net.detect(image)`` (see ``models.detections``).

    The view is the face with ``context`` x its size around it (the whole frame squeezed
    to ``size`` without a face). Broken: no detection at the default threshold
    overlaps the clean detection of the face with IoU >= 0.5; not applicable when the
    clean view has no detection overlapping the expected face box.
    """

    role = Role.DETECTOR
    context = 2.0
    #: The detector's default threshold on its candidates' face probability.
    score_threshold: float = 0.5

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View:
        return square_view(face, self.context, self.size) if face is not None else whole_frame_view(width, height, self.size)

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        return [DetectionSuppression(self.net, crop, threshold=self.score_threshold, expected=_expected_box(self.size, self.context), weight=weight)]  # type: ignore[arg-type]

    def detect(self, view: torch.Tensor) -> list[Detection]:
        return list(self.net.detect(view))  # type: ignore[operator]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        what = "best IoU with the clean face"
        expected = _expected_box(self.size, self.context)
        before = self.detect(crop(clean))
        matches = [d for d in before if box_iou(d.box, expected) >= _SAME_FACE_IOU]
        if not matches:
            return Verdict(None, 0.0, DETECTOR_IOU, what + " (the clean face is not detected)")
        face = max(matches, key=lambda d: d.score).box
        after = self.detect(crop(protected))
        best = max((box_iou(d.box, face) for d in after), default=0.0)
        return Verdict(best < DETECTOR_IOU, best, DETECTOR_IOU, what)


class LandmarkTarget(_Single):
    """A landmark network: ``net(view) -> (N,K,2)`` view pixels; ``eyes`` gives the eye centres.

    Broken: mean landmark error > 0.10 of the clean inter-ocular distance.
    """

    role = Role.LANDMARKS
    context = 1.5

    def eyes(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        return square_view(face, self.context, self.size) if face is not None else None

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        return [LandmarkDisplacement(self.net, crop, self.eyes, weight=weight)]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        a, b = self.net(crop(clean))[0].float(), self.net(crop(protected))[0].float()
        left, right = self.eyes(a)
        iod = max(float((left - right).norm()), 1e-6)
        nme = float((a - b).norm(dim=-1).mean()) / iod
        return Verdict(nme > LANDMARK_NME, nme, LANDMARK_NME, "mean landmark error / inter-ocular distance")


class IdentityTarget(_Single):
    """An identity encoder: ``net(chip) -> (N,D)``; broken above its same-person ``threshold``."""

    role = Role.IDENTITY
    context = 1.0
    threshold: float = 0.6

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View | None:
        return square_view(face, self.context, self.size) if face is not None else None

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        return [EmbeddingPushAway(self.net, crop, threshold=self.threshold, weight=weight)]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        distance = float((self.net(crop(clean)) - self.net(crop(protected))).norm(dim=-1)[0])
        return Verdict(distance > self.threshold, distance, self.threshold, "embedding distance to the clean photo")


class GeneratorTarget(_Single):
    """An image-to-image generator ``net(x in [0,1]) -> [0,1]``; broken at output MSE >= 0.05 on [-1,1]."""

    role = Role.GENERATOR
    context = 1.7

    def view(self, face: FaceGeometry | None, width: int, height: int) -> View:
        return square_view(face, self.context, self.size) if face is not None else whole_frame_view(width, height, self.size)

    def generate(self, view: torch.Tensor) -> torch.Tensor:
        return self.net(view)

    def terms(self, crop: CropFn, weight: float, gen: torch.Generator, options: AttackOptions) -> list[LossTerm]:
        return [GeneratorDistortion(self.generate, crop, weight=weight)]

    @torch.no_grad()
    def check(self, clean: torch.Tensor, protected: torch.Tensor, crop: CropFn) -> Verdict:
        mse = float(disruption_mse(self.generate(crop(protected)), self.generate(crop(clean)))[0])
        return Verdict(mse >= DISRUPTION_THRESHOLD, mse, DISRUPTION_THRESHOLD, "output MSE on [-1,1]")


def eye_centres(left: Sequence[int], right: Sequence[int]) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Eye centres as the means of two index sets of a landmark array (K,2)."""
    li, ri = list(left), list(right)
    return lambda p: (p[li].mean(0), p[ri].mean(0))


def as_numpy(points: torch.Tensor) -> np.ndarray:
    return points.detach().cpu().double().numpy()
