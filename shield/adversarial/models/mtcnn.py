"""PyTorch port of facenet-pytorch 2.6.0's MTCNN face detector (boxes + five landmarks).

Reproduces ``facenet_pytorch.MTCNN().detect(img, landmarks=True)`` with its defaults
(``facenet_pytorch/models/utils/detect_face.py`` ``detect_face``; Zhang et al., IEEE SPL
2016, section II-A) on one image, without importing facenet-pytorch or torchvision:

1. pyramid: scales ``(12 / min_face_size) * factor**k`` while the scaled short side is
   >= 12 px; each level is ``interpolate(mode="area")`` to ``int(side * scale + 1)``;
2. P-Net on every level; every cell with face probability >= 0.6 becomes a 12 px window
   ``floor((2 * cell + 1) / scale)`` .. ``floor((2 * cell + 12) / scale)``; NMS (IoU 0.5)
   per level, then NMS (IoU 0.7) over all levels, both torchvision's ``batched_nms``
   (areas without +1, greedy in descending score order, suppress when IoU > threshold);
   then regression ``x + reg * (x1 - x0)`` and squaring (``rerec``);
3. R-Net on 24 px crops: a crop is the integer window ``[y0 - 1, y1) x [x0 - 1, x1)`` of the
   truncated box, clipped to the image (no zero padding), ``interpolate(mode="area")``
   to 24x24 (not bilinear); keep probability > 0.7, NMS (IoU 0.7), regression
   ``x + reg * (x1 - x0 + 1)`` (``bbreg``), squaring;
4. O-Net on 48 px crops cut the same way; keep probability > 0.7; landmarks
   ``(x1 - x0 + 1) * p + x0 - 1``; ``bbreg``; NMS with the "Min" overlap
   (intersection over the smaller area, areas with +1, kept when overlap <= 0.7);
5. detections sorted by box area, largest first (``select_largest=True``).

Pixels enter as 0-255 floats normalised ``(v - 127.5) * 0.0078125``; the image is held
channels-last as facenet's uint8 HWC input is, so every resampling and convolution runs
the same kernels and :meth:`MTCNN.detect` matches the reference bit for bit on 8-bit images.

Differentiable view (:meth:`MTCNN.stages`, :meth:`MTCNN.candidates`): every P-Net anchor
of every pyramid level (regressed box, face probability), and the R-Net and O-Net outputs
for the crops the clean cascade takes. The pyramid resampling and the crops are
differentiable w.r.t. the pixels; the crop *windows* (integers) and every keep/NMS
decision are taken from detached values of the same pass, so the gradient says how the
scores move with the pixels for fixed windows, not how the windows would move.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models._strict import load_strict, read_state_dict
from shield.adversarial.models.detections import Candidates, Detection
from shield.adversarial.models.mtcnn_nets import ONet, PNet, RNet
from shield.adversarial.models.package_files import pypi_file

__all__ = [
    "MTCNN",
    "MtcnnStages",
    "load_mtcnn",
    "pyramid_scales",
    "SOURCE",
    "LICENSE",
    "REQUIREMENT",
    "WEIGHT_FILES",
    "SHA256",
    "BYTES",
    "DEFAULT_THRESHOLD",
    "STAGE_THRESHOLDS",
    "MIN_FACE_SIZE",
    "SCALE_FACTOR",
    "LANDMARK_NAMES",
    "EYE_INDICES",
]

log = logging.getLogger(__name__)

#: The pip requirement that ships the weights.
REQUIREMENT = "facenet-pytorch==2.6.0"
#: Weight files inside the ``facenet_pytorch`` package folder, per network.
WEIGHT_FILES = {"pnet": "data/pnet.pt", "rnet": "data/rnet.pt", "onet": "data/onet.pt"}
SOURCE = (
    "facenet-pytorch==2.6.0: facenet_pytorch/data/pnet.pt, facenet_pytorch/data/rnet.pt, "
    "facenet_pytorch/data/onet.pt"
)
LICENSE = (
    "MIT (facenet-pytorch 2.6.0, (c) 2019 Timothy Esler); weights ported from davidsandberg/facenet's "
    "MTCNN (MIT), itself converted from Zhang et al.'s released Caffe models"
)
#: SHA-256 (hex) of each installed weight file, keyed like :data:`WEIGHT_FILES`.
SHA256 = {
    "pnet": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
#: Size in bytes of each weight file.
BYTES = {"pnet": 28_570, "rnet": 403_147, "onet": 1_559_269}

#: facenet-pytorch's defaults: face probability thresholds of P-Net, R-Net, O-Net.
STAGE_THRESHOLDS = (0.6, 0.7, 0.7)
#: The final (O-Net) threshold: a :class:`Detection` has a score above it.
DEFAULT_THRESHOLD = STAGE_THRESHOLDS[2]
#: Smallest face side searched, in input pixels, and the pyramid's scale step.
MIN_FACE_SIZE = 20
SCALE_FACTOR = 0.709
#: O-Net's five points; "left" is the image's left (the subject's right eye).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
#: Indices of the two eye centres in the landmarks (for inter-ocular normalisation).
EYE_INDICES = (0, 1)

_NORM_MEAN = 127.5
_NORM_SCALE = 0.0078125
#: facenet runs R-Net and O-Net in chunks of 512 crops (``fixed_batch_process``).
_CHUNK = 512
_NMS_LEVEL, _NMS_PYRAMID, _NMS_RNET, _NMS_ONET = 0.5, 0.7, 0.7, 0.7


@dataclass(frozen=True)
class MtcnnStages:
    """One cascade pass: the differentiable rows of each stage and the final answer.

    Attributes:
        pnet: every anchor of every pyramid level: regressed box, face probability.
        rnet: one row per 24 px crop of the clean cascade: R-Net-regressed box, probability.
        onet: one row per 48 px crop: O-Net-regressed box, probability, landmarks (M, 5, 2).
        detections: the reference pipeline's output (what :meth:`MTCNN.detect` returns).
    """

    pnet: Candidates
    rnet: Candidates
    onet: Candidates
    detections: list[Detection]


def pyramid_scales(
    height: int, width: int, min_face_size: int = MIN_FACE_SIZE, factor: float = SCALE_FACTOR
) -> list[float]:
    """facenet's pyramid: scale factors (network pixels per input pixel), largest first."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _anchors(rows: int, cols: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    """(rows*cols, 4) P-Net windows x0, y0, x1, y1 in input pixels, row-major (``generateBoundingBox``)."""
    gy, gx = torch.meshgrid(
        torch.arange(rows, device=like.device), torch.arange(cols, device=like.device), indexing="ij"
    )
    cell = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(like.dtype)
    return torch.cat([((2 * cell + 1) / scale).floor(), ((2 * cell + 12) / scale).floor()], dim=1)


def _regress(box: torch.Tensor, reg: torch.Tensor, extra: float) -> torch.Tensor:
    """``corner + reg * (side + extra)``: P-Net's regression (extra 0), ``bbreg`` (extra 1)."""
    w, h = box[:, 2] - box[:, 0] + extra, box[:, 3] - box[:, 1] + extra
    return box + reg * torch.stack([w, h, w, h], 1)


def _square(box: torch.Tensor) -> torch.Tensor:
    """``rerec``: the square of side max(w, h) with the same centre."""
    h, w = box[:, 3] - box[:, 1], box[:, 2] - box[:, 0]
    side = torch.max(w, h)
    x0 = box[:, 0] + w * 0.5 - side * 0.5
    y0 = box[:, 1] + h * 0.5 - side * 0.5
    return torch.stack([x0, y0, x0 + side, y0 + side], 1)


def _nms_iou(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """torchvision ``nms`` (CPU kernel): kept indices in descending score order."""
    b, s = boxes.detach().cpu().numpy(), scores.detach().cpu().numpy()
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0) * (y1 - y0)
    order = np.argsort(-s, kind="stable")
    keep = []
    zero = np.float32(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        while order.size:
            i, rest = order[0], order[1:]
            keep.append(i)
            w = np.maximum(zero, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]))
            h = np.maximum(zero, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]))
            inter = w * h
            order = rest[~(inter / (area[i] + area[rest] - inter) > threshold)]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def _nms_min(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """facenet's ``nms_numpy(..., 'Min')``: overlap over the smaller (+1) area, keep if <= threshold."""
    b, s = boxes.detach().cpu().numpy(), scores.detach().cpu().numpy()
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(s)  # ascending, numpy's default sort, as facenet; the best is last
    keep = []
    zero = np.float32(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        while order.size:
            i, rest = order[-1], order[:-1]
            keep.append(i)
            w = np.maximum(zero, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
            h = np.maximum(zero, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
            order = rest[w * h / np.minimum(area[i], area[rest]) <= threshold]
    return torch.as_tensor(np.asarray(keep, dtype=np.int64), device=boxes.device)


def _windows(boxes: torch.Tensor, width: int, height: int) -> tuple[list[tuple[int, int, int, int]], torch.Tensor]:
    """facenet's ``pad``: integer crop windows (y0, y1, x0, x1) as slices, and which boxes have one.

    Boxes are truncated toward zero, then clipped to [1, width] x [1, height]; the crop is
    ``[y0 - 1, y1) x [x0 - 1, x1)``. A box with an empty window has none (facenet would
    misalign its crops there).
    """
    b = boxes.detach().trunc().int().cpu().numpy()
    out, ok = [], []
    for x0, y0, x1, y1 in b:
        x0, y0, x1, y1 = max(int(x0), 1), max(int(y0), 1), min(int(x1), width), min(int(y1), height)
        good = y1 > y0 - 1 and x1 > x0 - 1
        ok.append(good)
        if good:
            out.append((y0 - 1, y1, x0 - 1, x1))
    return out, torch.as_tensor(ok, dtype=torch.bool, device=boxes.device)


def _crops(pixels: torch.Tensor, windows: list[tuple[int, int, int, int]], size: int) -> torch.Tensor:
    """Area-resampled ``size`` px crops of the 0-255 image, normalised; differentiable in the pixels."""
    parts = [
        F.interpolate(pixels[0, :, y0:y1, x0:x1].unsqueeze(0), size=(size, size), mode="area")
        for y0, y1, x0, x1 in windows
    ]
    return (torch.cat(parts, dim=0) - _NORM_MEAN) * _NORM_SCALE


def _chunked(net: nn.Module, data: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``fixed_batch_process``: the network on chunks of 512 (class scores before the softmax), outputs concatenated."""
    outs = [net(data[i : i + _CHUNK], logits=True) for i in range(0, len(data), _CHUNK)]
    return tuple(torch.cat(v, dim=0) for v in zip(*outs))


def _face(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Face probability (the nets' own softmax, channel 1) and its logit from (B, 2, ...) class scores."""
    return torch.softmax(raw, dim=1)[:, 1], raw[:, 1] - raw[:, 0]


def _empty(like: torch.Tensor, landmarks: bool = False) -> Candidates:
    z = like.new_zeros((0, 4))
    return Candidates(z, like.new_zeros((0,)), like.new_zeros((0, 5, 2)) if landmarks else None, like.new_zeros((0,)))


class MTCNN(nn.Module):
    """facenet-pytorch's MTCNN cascade (P-Net, R-Net, O-Net) with its default settings.

    Inputs are (1, 3, H, W) float RGB in [0, 1], any H, W (no face is searched below
    ``min_face_size`` px or in images smaller than that). Coordinates are input pixels.
    Built with random weights; :func:`load_mtcnn` loads the released ones.
    """

    def __init__(
        self,
        min_face_size: int = MIN_FACE_SIZE,
        factor: float = SCALE_FACTOR,
        thresholds: tuple[float, float, float] = STAGE_THRESHOLDS,
    ) -> None:
        super().__init__()
        self.min_face_size, self.factor, self.thresholds = min_face_size, factor, thresholds
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()

    def forward(self, image: torch.Tensor) -> Candidates:
        """Same as :meth:`candidates`."""
        return self.candidates(image)

    def candidates(self, image: torch.Tensor) -> Candidates:
        """All P-Net anchors, then the R-Net rows, then the O-Net rows, concatenated.

        Differentiable w.r.t. ``image`` (see the module docstring for what is held fixed).
        ``landmarks`` is None: only the O-Net rows have them (see :meth:`stages`).
        """
        s = self.stages(image)
        return Candidates.cat([s.pnet, s.rnet, s.onet])

    def detect(self, image: torch.Tensor) -> list[Detection]:
        """facenet's ``MTCNN().detect(img, landmarks=True)``: faces above 0.7, largest first."""
        with torch.no_grad():
            return self.stages(image).detections

    def stages(self, image: torch.Tensor) -> MtcnnStages:
        """Run the cascade once, keeping the graph from ``image`` to every stage's rows.

        Raises:
            ValueError: ``image`` is not (1, 3, H, W).
        """
        if image.ndim != 4 or image.shape[0] != 1 or image.shape[1] != 3:
            raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")
        # channels-last like facenet's permuted uint8 HWC tensor, so the same kernels run
        pixels = (image.to(self.pnet.conv1.weight.dtype) * 255.0).contiguous(memory_format=torch.channels_last)
        height, width = int(image.shape[2]), int(image.shape[3])
        pnet, boxes = self._proposals(pixels)
        rnet, boxes = self._refine(pixels, boxes, width, height)
        onet, keep = self._output(pixels, boxes, width, height)
        return MtcnnStages(pnet, rnet, onet, _detections(onet, keep))

    def _proposals(self, pixels: torch.Tensor) -> tuple[Candidates, torch.Tensor]:
        """Stage 1: every anchor's regressed box and score; the squared boxes the cascade keeps."""
        height, width = int(pixels.shape[2]), int(pixels.shape[3])
        boxes, scores, logits, kept_win, kept_score, kept_box = [], [], [], [], [], []
        for scale in pyramid_scales(height, width, self.min_face_size, self.factor):
            level = F.interpolate(pixels, size=(int(height * scale + 1), int(width * scale + 1)), mode="area")
            reg, raw = self.pnet((level - _NORM_MEAN) * _NORM_SCALE, logits=True)
            win = _anchors(raw.shape[2], raw.shape[3], scale, pixels)
            box = _regress(win, reg[0].flatten(1).T, 0.0)
            prob, logit = _face(raw)
            score = prob[0].flatten()
            boxes.append(box)
            scores.append(score)
            logits.append(logit[0].flatten())
            hit = torch.nonzero(score.detach() >= self.thresholds[0]).squeeze(1)
            pick = hit[_nms_iou(win[hit], score[hit], _NMS_LEVEL)]
            kept_win.append(win[pick])
            kept_score.append(score.detach()[pick])
            kept_box.append(box.detach()[pick])
        if not boxes:
            return _empty(pixels), pixels.new_zeros((0, 4))
        win_all, score_all = torch.cat(kept_win), torch.cat(kept_score)
        pick = _nms_iou(win_all, score_all, _NMS_PYRAMID)
        return Candidates(torch.cat(boxes), torch.cat(scores), logits=torch.cat(logits)), _square(torch.cat(kept_box)[pick])

    def _refine(
        self, pixels: torch.Tensor, boxes: torch.Tensor, width: int, height: int
    ) -> tuple[Candidates, torch.Tensor]:
        """Stage 2: R-Net on 24 px crops of the stage-1 boxes; the squared boxes it keeps."""
        windows, ok = _windows(boxes, width, height)
        if not windows:
            return _empty(pixels), pixels.new_zeros((0, 4))
        boxes = boxes[ok]
        reg, raw = _chunked(self.rnet, _crops(pixels, windows, 24))
        score, logit = _face(raw)
        rows = Candidates(_regress(boxes, reg, 1.0), score, logits=logit)
        passed = score.detach() > self.thresholds[1]
        boxes, reg_d = boxes[passed], reg.detach()[passed]
        pick = _nms_iou(boxes, score.detach()[passed], _NMS_RNET)
        return rows, _square(_regress(boxes[pick], reg_d[pick], 1.0))

    def _output(
        self, pixels: torch.Tensor, boxes: torch.Tensor, width: int, height: int
    ) -> tuple[Candidates, torch.Tensor]:
        """Stage 3: O-Net rows (box, score, landmarks) and the indices of the final faces."""
        windows, ok = _windows(boxes, width, height)
        if not windows:
            return _empty(pixels, landmarks=True), torch.zeros(0, dtype=torch.long, device=pixels.device)
        boxes = boxes[ok]
        reg, points, raw = _chunked(self.onet, _crops(pixels, windows, 48))
        score, logit = _face(raw)
        w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        px = w[:, None] * points[:, :5] + boxes[:, 0:1] - 1
        py = h[:, None] * points[:, 5:] + boxes[:, 1:2] - 1
        rows = Candidates(_regress(boxes, reg, 1.0), score, torch.stack([px, py], dim=2), logit)
        passed = torch.nonzero(score.detach() > self.thresholds[2]).squeeze(1)
        pick = _nms_min(rows.boxes.detach()[passed], score.detach()[passed], _NMS_ONET)
        return rows, passed[pick]


def _detections(onet: Candidates, keep: torch.Tensor) -> list[Detection]:
    """The kept O-Net rows as plain numbers, largest box first (facenet's ``select_largest``)."""
    assert onet.landmarks is not None
    boxes = onet.boxes.detach()[keep].cpu().numpy()
    scores = onet.scores.detach()[keep].cpu().numpy()
    points = onet.landmarks.detach()[keep].cpu().numpy()
    order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]
    out = []
    for i in order:
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        out.append(Detection((x0, y0, x1, y1), float(scores[i]), points[i].copy()))
    return out


def load_mtcnn(device: torch.device | str = "cpu", *, weights_dir: Path | None = None) -> MTCNN:
    """The released MTCNN, in eval mode with frozen weights, on ``device``.

    Args:
        device: torch device for the returned module.
        weights_dir: a folder holding ``pnet.pt``, ``rnet.pt``, ``onet.pt`` (plain state
            dicts); default the ``data`` folder of the installed facenet-pytorch 2.6.0.

    Raises:
        PackageMissingError: facenet-pytorch is not installed (the fix names the install).
        CheckpointReadError: a file is missing or is not a plain state dict of tensors.
        LayoutError: a tensor is missing, unexpected, or has another shape (named).
    """
    model = MTCNN()
    for name, net in (("pnet", model.pnet), ("rnet", model.rnet), ("onet", model.onet)):
        rel = WEIGHT_FILES[name]
        if weights_dir is None:
            path = pypi_file("facenet_pytorch", rel, REQUIREMENT)
        else:
            path = weights_dir / Path(rel).name
        load_strict(net, read_state_dict(path), f"MTCNN {name} ({path})")
    model.eval().requires_grad_(False)
    log.debug("loaded MTCNN from %s", weights_dir or REQUIREMENT)
    return model.to(device)
