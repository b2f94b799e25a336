"""Typed outputs shared by the ported face detectors and landmark networks.

A detector port exposes two views of one forward pass:

- :class:`Candidates`: every anchor's decoded box and face score *before* thresholding
  and non-maximum suppression, as tensors that keep their graph to the input image
  (what an attack pushes on);
- :class:`Detection`: the detector's final answer at its default threshold, after its
  own NMS, as plain numbers (what a break test reads).

Coordinates are pixels of the image handed to the detector, ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Candidates", "Detection", "box_iou"]


@dataclass(frozen=True)
class Candidates:
    """Decoded anchors of one image, differentiable w.r.t. the input.

    Attributes:
        boxes: (N, 4) float, x0, y0, x1, y1 in input pixels.
        scores: (N,) face probability in [0, 1].
        landmarks: (N, K, 2) x, y in input pixels, or None when the detector has none.
        logits: (N,) ``log(p / (1 - p))`` of each score taken before the squashing, or None
            when the port has only the probabilities. A confident face's probability
            rounds to 1 in float32 and loses its gradient; its logit does not.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    landmarks: torch.Tensor | None = None
    logits: torch.Tensor | None = None

    @staticmethod
    def cat(parts: Sequence[Candidates]) -> Candidates:
        """The rows of ``parts`` in order; landmarks and logits only when every part has them."""

        def joined(values: list[torch.Tensor | None]) -> torch.Tensor | None:
            present = [v for v in values if v is not None]
            return torch.cat(present) if len(present) == len(values) else None

        return Candidates(
            torch.cat([p.boxes for p in parts]),
            torch.cat([p.scores for p in parts]),
            joined([p.landmarks for p in parts]),
            joined([p.logits for p in parts]),
        )


@dataclass(frozen=True)
class Detection:
    """One face the detector reports at its default threshold.

    Attributes:
        box: x0, y0, x1, y1 in input pixels.
        score: face probability in [0, 1].
        landmarks: (K, 2) x, y in input pixels, or None.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes (0 when either is empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0
