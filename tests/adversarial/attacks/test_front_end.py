"""Front-end loss terms: break-normalised (1 at the break level), capped, and the sampled ensemble objective."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from torch import nn

from shield.adversarial.attacks.front_end import DetectionSuppression, EmbeddingPushAway, GeneratorDistortion, LandmarkDisplacement, boxes_iou
from shield.adversarial.attacks.losses import LossTerm, WeightedObjective
from shield.adversarial.models.detections import Candidates


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _Shift(nn.Module):
    """A 'network' whose landmarks / embedding is the image mean times a fixed vector (a fake for unit tests)."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(1, 2, 3)).view(-1, *([1] * len(self.shape))) * torch.ones(self.shape)


def test_boxes_iou_is_exact_on_simple_boxes() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    iou = boxes_iou(boxes, torch.tensor([0.0, 0.0, 10.0, 10.0]))
    assert iou.tolist() == pytest.approx([1.0, 1 / 3, 0.0])


def test_landmark_identity_and_generator_terms_read_1_at_their_break_level_and_stop_at_the_cap() -> None:
    clean = torch.zeros(1, 3, 4, 4)
    points = _Shift((1, 3, 2))  # three landmarks, all at (m, m) where m is the image mean
    eyes = lambda p: (torch.tensor([0.0, 0.0]), torch.tensor([10.0, 0.0]))  # noqa: E731 - inter-ocular distance 10
    term = LandmarkDisplacement(points, _identity, eyes)
    term._iod = 10.0
    term._clean = points(clean)
    moved = torch.full((1, 3, 4, 4), 1.0 / 2**0.5)  # every point moves by 1 px = 0.10 of the eye distance
    assert float(term(moved, torch.Generator())) == pytest.approx(1.0, rel=1e-4)
    assert float(term(moved * 10, torch.Generator())) == pytest.approx(2.0)
    embed = EmbeddingPushAway(_Shift((1, 4)), _identity, threshold=0.6)
    embed.prepare(clean)
    assert float(embed(torch.full((1, 3, 4, 4), 0.3), torch.Generator())) == pytest.approx(1.0, rel=1e-4)  # |(.3,.3,.3,.3)| = 0.6
    gen = GeneratorDistortion(_identity, _identity)
    gen.prepare(clean)
    level = (0.05 / 4) ** 0.5  # MSE on [-1,1] of 0.05
    assert float(gen(torch.full((1, 3, 4, 4), level), torch.Generator())) == pytest.approx(1.0, rel=1e-4)


class _Detector(nn.Module):
    """Two fixed candidate boxes whose face scores fall as the image gets brighter (a fake for unit tests)."""

    def candidates(self, image: torch.Tensor) -> Candidates:
        boxes = torch.tensor([[10.0, 10.0, 50.0, 50.0], [100.0, 100.0, 120.0, 120.0]])
        logit = 4.0 - 20 * image.mean()
        return Candidates(boxes, torch.sigmoid(torch.stack([logit, logit - 1])))


def test_detection_suppression_grows_as_the_face_score_falls_below_the_threshold() -> None:
    term = DetectionSuppression(_Detector(), _identity, threshold=0.5, expected=(10.0, 10.0, 50.0, 50.0), margin=2.0)
    clean = torch.zeros(1, 3, 8, 8)
    term.prepare(clean)
    values = [float(term(torch.full_like(clean, v), torch.Generator())) for v in (0.0, 0.1, 0.2, 0.3)]
    assert values[0] == pytest.approx(0.0, abs=1e-5)
    assert values == sorted(values) and values[-1] <= 2.0
    assert float(term(torch.full_like(clean, 0.3), torch.Generator())) == pytest.approx(1.0, abs=1e-3)  # logit -2: 2 below the threshold


class _Confident(nn.Module):
    """One box whose face logit is 30 (probability 1.0 in float32), with or without its logit."""

    def __init__(self, with_logits: bool) -> None:
        super().__init__()
        self.with_logits = with_logits

    def candidates(self, image: torch.Tensor) -> Candidates:
        logit = (30.0 - image.mean()).reshape(1)
        return Candidates(torch.tensor([[10.0, 10.0, 50.0, 50.0]]), torch.sigmoid(logit), logits=logit if self.with_logits else None)


@pytest.mark.parametrize("with_logits", [True, False])
def test_a_saturated_face_keeps_its_gradient_only_through_the_ports_logits(with_logits: bool) -> None:
    term = DetectionSuppression(_Confident(with_logits), _identity, threshold=0.7, expected=(10.0, 10.0, 50.0, 50.0))
    x = torch.zeros(1, 3, 8, 8, requires_grad=True)
    term.prepare(x.detach())
    term(x, torch.Generator()).backward()
    assert x.grad is not None
    assert (float(x.grad.abs().sum()) > 0) is with_logits


class _Constant(LossTerm):
    def __init__(self, value: float) -> None:
        super().__init__(1.0)
        self.value = value

    def networks(self) -> Sequence[nn.Module]:
        return []

    def prepare(self, clean: torch.Tensor) -> None:
        pass

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return x.new_tensor(self.value)


def test_a_sampled_objective_is_reproducible_and_unbiased() -> None:
    terms = [_Constant(v) for v in (1.0, 2.0, 3.0, 4.0)]
    x = torch.zeros(1, 3, 2, 2)
    assert float(WeightedObjective(terms)(x, torch.Generator())) == 10.0
    sampled = WeightedObjective(terms, sample=2)
    a = [float(sampled(x, torch.Generator().manual_seed(s))) for s in range(400)]
    b = [float(sampled(x, torch.Generator().manual_seed(s))) for s in range(400)]
    assert a == b and len(set(a)) > 1
    assert sum(a) / len(a) == pytest.approx(10.0, rel=0.05)
    with pytest.raises(ValueError):
        WeightedObjective(terms, sample=0)
