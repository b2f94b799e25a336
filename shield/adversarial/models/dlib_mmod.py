"""PyTorch port of dlib's mmod CNN face detector (``cnn_face_detection_model_v1``).

The network is ``net_type`` of dlib's ``examples/dnn_mmod_face_detection_ex.cpp``::

    loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<
        input_rgb_image_pyramid<pyramid_down<6>>>>>>>>
    downsampler = relu<affine<con5d<32, relu<affine<con5d<32, relu<affine<con5d<16,x>>>>>>>>>
    rcon5       = relu<affine<con5<45,x>>>        (con5d: 5x5 stride 2, con5: 5x5 stride 1)

Reproduced exactly (dlib/dnn/input.h, image_transforms/image_pyramid.h, interpolation.h,
dnn/layers.h, dnn/loss.h, image_processing/box_overlap_testing.h):

- input: every pyramid_down<6> level (each 5/6 of the previous, floor, down to 5 rows) is
  tiled into one zero-filled canvas (outer padding 11, padding 10 between tiles; a first
  column of levels, then the small ones right-aligned bottom-up beside them); pixels are
  ``(value - mean) / 256`` per RGB channel, means from the file; every level is dlib's
  corner-aligned bilinear resize of the previous one, with its float32 column stepping
  (:mod:`shield.adversarial.models.dlib_mmod_pyramid`);
- convolutions pad 0 when strided, k//2 otherwise (read from the file); ``bn_con`` folded
  into ``affine`` as dlib does when it loads the file;
- output position (c, r) maps to the canvas point (8c+14, 8r+14), the centre of an 80x80
  window (``centered_drect``), then to the image through the tile nearest the centre
  (``tiled_pyramid_to_image``: point_up = p*6/5 + 0.3 per level);
- detections: raw score > 0 (``adjust_threshold``), sorted by score, greedy NMS with the
  file's ``overlaps_nms`` (IoU over the bounding box of both, 0.338; covered 1.0) on the
  rectangles rounded half away from zero (dlib 20's drectangle -> rectangle), as
  ``loss_mmod_::to_label``; the python binding at upsample 0.

Boxes here are ``(left, top, right + 1, bottom + 1)`` of dlib's inclusive rectangles, in
input pixels (the convention of :mod:`shield.faces.detect`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.detections import Candidates, Detection
from shield.adversarial.models.dlib_dat import AffineLayer, ConvLayer, DlibLayoutError, SimpleLayer
from shield.adversarial.models.dlib_mmod_dat import MmodNetwork, read_mmod_network
from shield.adversarial.models.dlib_mmod_pyramid import TiledPyramid, tiled_pyramid, window_boxes
from shield.errors import ModelError

__all__ = [
    "DlibMmodDetector",
    "load_dlib_mmod",
    "WeightsChecksumMismatch",
    "DEFAULT_THRESHOLD",
    "round_rect",
    "SCORE_SCALE",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
]

log = logging.getLogger(__name__)

#: dlib's ``adjust_threshold`` default: a window is a face when its raw score is above it.
DEFAULT_THRESHOLD = 0.0
#: :meth:`DlibMmodDetector.candidates` scores are ``sigmoid(raw / SCORE_SCALE)``. Raw mmod
#: scores are unbounded margins; on astronaut they span -5.3 (background) to 1.06 (the
#: face), so a scale of 1 keeps the sigmoid out of saturation; dlib's threshold 0 is 0.5.
SCORE_SCALE = 1.0
SOURCE = "face-recognition-models==0.3.0: face_recognition_models/models/mmod_human_face_detector.dat"
LICENSE = (
    "MIT (face-recognition-models 0.3.0); the model file itself released into the public domain by "
    "Davis King (davisking/dlib-models README), trained on his dlib face detection dataset 2016-09-30"
)
SHA256 = "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6"
SIZE_BYTES = 729940

#: (out channels, in channels, kernel, stride) of the seven convolutions, input side first.
_CONVS = ((16, 3, 5, 2), (32, 16, 5, 2), (32, 32, 5, 2), (45, 32, 5, 1), (45, 45, 5, 1), (45, 45, 5, 1), (1, 45, 9, 1))
_DEFAULT_MEAN = (122.782, 117.001, 104.298)
_PYRAMID_RATE = 6


class WeightsChecksumMismatch(ModelError):
    """The installed detector file is not the released one."""

    default_fix = "pip install --force-reinstall --no-deps face-recognition-models==0.3.0"


class _Affine(nn.Module):
    """dlib ``affine_`` in conv mode: ``y = gamma[c] * x + beta[c]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


class DlibMmodDetector(nn.Module):
    """dlib's CNN face detector: tiled image pyramid, 7 convolutions, 80x80 mmod windows.

    Built with random weights; :func:`load_dlib_mmod` fills in the released ones.
    Role: detector (:meth:`candidates` differentiable, :meth:`detect` dlib's answer).
    """

    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_DEFAULT_MEAN).view(1, 3, 1, 1))
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, padding=0 if s != 1 else k // 2) for o, i, k, s in _CONVS)
        self.affines = nn.ModuleList(_Affine(o) for o, *_ in _CONVS[:-1])
        self.window = (80, 80)
        self.padding, self.outer_padding = 10, 11
        self.nms_iou, self.nms_covered = 0.3382761351109955, 1.0

    # --- the network ---------------------------------------------------------------------

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        """Raw mmod scores (B, 1, h, w) of a normalised tiled canvas (B, 3, NR, NC)."""
        x = canvas
        for conv, aff in zip(self.convs[:-1], self.affines):
            x = F.relu(aff(conv(x)))
        return self.convs[-1](x)

    def pyramid(self, image: torch.Tensor) -> TiledPyramid:
        """The normalised tiled pyramid canvas dlib's input layer builds from ``image``.

        ``image`` is (B, 3, H, W) RGB in [0, 1], H, W >= 5; differentiable.
        """
        _check_image(image)
        return self._pyramid_of_pixels(image * 255.0)

    def _pyramid_of_pixels(self, pixels: torch.Tensor) -> TiledPyramid:
        level0 = (pixels - self.mean) / 256.0
        return tiled_pyramid(level0, _PYRAMID_RATE, self.padding, self.outer_padding)

    def score_map(self, image: torch.Tensor) -> tuple[torch.Tensor, TiledPyramid]:
        """Raw mmod scores (B, 1, h, w) over the tiled pyramid of ``image``, and the tiling."""
        tiles = self.pyramid(image)
        return self.forward(tiles.canvas), tiles

    def output_to_canvas(self) -> tuple[float, float]:
        """(scale, offset): output position p maps to canvas point scale * p + offset.

        dlib's ``map_output_to_input`` through every con, output side first:
        p -> p * stride - padding + k // 2 (8p + 14 for the released network).
        """
        scale, offset = 1.0, 0.0
        for conv in self.convs:
            assert isinstance(conv, nn.Conv2d) and isinstance(conv.padding, tuple)
            k, s, pad = conv.kernel_size[0], conv.stride[0], conv.padding[0]
            offset += scale * (k // 2 - pad)
            scale *= s
        return scale, offset

    # --- the detector role --------------------------------------------------------------

    def candidates(self, image: torch.Tensor) -> Candidates:
        """Every window of the score map, decoded to image boxes, before threshold and NMS.

        Args:
            image: (1, 3, H, W) RGB in [0, 1], any size with H, W >= 5.
        Returns:
            boxes (N, 4) in input pixels (dlib's drectangle, right/bottom + 1, float64
            geometry as float32; constant w.r.t. the image) and scores (N,)
            ``sigmoid(raw / SCORE_SCALE)`` in (0, 1), differentiable; N = h * w, row-major
            over :meth:`score_map`. ``torch.logit(scores) * SCORE_SCALE`` is the raw score.
            Windows centred in the padding between tiles are mapped through the nearest
            tile, as dlib maps them (they score low on the released weights).
        Raises:
            ValueError: not a single (1, 3, H, W) image.
        """
        if image.shape[0] != 1:
            raise ValueError(f"image: expected a batch of one, got {image.shape[0]}")
        raw, tiles = self.score_map(image)
        boxes = self._boxes(tiles, raw.shape[2], raw.shape[3]) + np.array([0.0, 0.0, 1.0, 1.0])
        scores = torch.sigmoid(raw[0, 0].reshape(-1) / SCORE_SCALE)
        return Candidates(torch.from_numpy(boxes).float().to(image.device), scores)

    def _boxes(self, tiles: TiledPyramid, rows: int, cols: int) -> np.ndarray:
        """dlib's drectangles (l, t, r, b; inclusive convention) of every output window."""
        scale, offset = self.output_to_canvas()
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([c.reshape(-1) * scale + offset, r.reshape(-1) * scale + offset], axis=1)
        return window_boxes(tiles.rects, centres, self.window, _PYRAMID_RATE)

    @torch.no_grad()
    def detect(self, image: torch.Tensor, threshold: float = DEFAULT_THRESHOLD) -> list[Detection]:
        """dlib's detections: raw score > threshold, sorted by score, mmod NMS.

        The image is first quantised to 8 bits, as dlib receives it. ``Detection.score``
        is dlib's ``confidence``, the raw mmod score (> 0 = face; not a probability).
        ``Detection.box`` = (left, top, right + 1, bottom + 1) of dlib's rounded rectangle.
        """
        if image.shape[0] != 1:
            raise ValueError(f"image: expected a batch of one, got {image.shape[0]}")
        _check_image(image)
        tiles = self._pyramid_of_pixels(torch.round(image.clamp(0, 1) * 255.0))
        raw = self.forward(tiles.canvas)
        scores = raw[0, 0].reshape(-1).double().cpu().numpy()
        keep = np.flatnonzero(scores > threshold)
        if keep.size == 0:
            return []
        boxes = self._boxes(tiles, raw.shape[2], raw.shape[3])[keep]
        # dlib: sort descending by score, then convert each drectangle to rectangle.
        order = np.argsort(-scores[keep], kind="stable")
        rounded = round_rect(boxes[order])
        kept = _mmod_nms(rounded, self.nms_iou, self.nms_covered)
        return [
            Detection(
                (float(rounded[i, 0]), float(rounded[i, 1]), float(rounded[i, 2] + 1), float(rounded[i, 3] + 1)),
                float(scores[keep][order][i]),
            )
            for i in kept
        ]

    # --- loading --------------------------------------------------------------------------

    @torch.no_grad()
    def load_mmod_network(self, net: MmodNetwork) -> None:
        """Copy a parsed detector's weights, checking every layer's kind, shape and stride.

        Raises:
            DlibLayoutError: the network is not dlib's mmod face detector architecture.
        """
        if len(net.layers) != 3 * len(self.affines) + 1:
            raise DlibLayoutError(f"network has {len(net.layers)} layers, expected {3 * len(self.affines) + 1}")
        for i, layer in enumerate(net.layers):
            unit, part = divmod(i, 3)
            if part == 0:
                _load_conv(i, self.convs[unit], layer)
            elif part == 1:
                _load_affine(i, self.affines[unit], layer)
            elif not isinstance(layer, SimpleLayer) or layer.kind != "relu":
                raise DlibLayoutError(f"layer {i}: expected relu, found {type(layer).__name__}")
        self.mean.copy_(torch.tensor(net.input.mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))
        self.window = net.options.window
        self.padding, self.outer_padding = net.input.padding, net.input.outer_padding
        self.nms_iou, self.nms_covered = net.options.nms_iou, net.options.nms_covered


def _check_image(image: torch.Tensor) -> None:
    if image.ndim != 4 or image.shape[1] != 3 or min(image.shape[2], image.shape[3]) < 5:
        raise ValueError(f"image: expected (B, 3, H, W) with H, W >= 5, got {tuple(image.shape)}")


def _copy(dst: torch.Tensor, src: np.ndarray, i: int, what: str) -> None:
    if tuple(dst.shape) != src.shape:
        raise DlibLayoutError(f"layer {i} {what}: shape {src.shape}, expected {tuple(dst.shape)}")
    dst.copy_(torch.from_numpy(src))


def _load_conv(i: int, conv: nn.Module, layer: object) -> None:
    assert isinstance(conv, nn.Conv2d) and conv.bias is not None
    if not isinstance(layer, ConvLayer):
        raise DlibLayoutError(f"layer {i}: expected con, found {type(layer).__name__}")
    if layer.stride != conv.stride or layer.padding != conv.padding:
        raise DlibLayoutError(f"layer {i} con: stride/padding {layer.stride}/{layer.padding} differ")
    _copy(conv.weight, layer.weight, i, "con filters")
    _copy(conv.bias, layer.bias, i, "con biases")


def _load_affine(i: int, affine: nn.Module, layer: object) -> None:
    assert isinstance(affine, _Affine)
    if not isinstance(layer, AffineLayer) or not layer.conv_mode:
        raise DlibLayoutError(f"layer {i}: expected bn_con/affine_con, found {type(layer).__name__}")
    _copy(affine.gamma, layer.gamma.reshape(-1), i, "gamma")
    _copy(affine.beta, layer.beta.reshape(-1), i, "beta")


def round_rect(drects: np.ndarray) -> np.ndarray:
    """dlib 20's drectangle -> rectangle conversion: each side rounded half away from zero.

    (dlib's integer points round with floor(x + 0.5) instead; the two differ only at
    negative halves, i.e. windows hanging over the image's left or top edge.)
    """
    return (np.sign(drects) * np.floor(np.abs(drects) + 0.5)).astype(np.int64)


def _mmod_nms(rects: np.ndarray, iou: float, covered: float) -> list[int]:
    """Greedy NMS over inclusive integer rectangles sorted best first (``test_box_overlap``).

    Overlap when inter / area(bounding box of both) > iou or inter / area(either) > covered.
    """
    kept: list[int] = []
    area = (rects[:, 2] - rects[:, 0] + 1).clip(0) * (rects[:, 3] - rects[:, 1] + 1).clip(0)
    for i in range(len(rects)):
        a = rects[i]
        suppressed = False
        for j in kept:
            b = rects[j]
            inter_w = min(a[2], b[2]) - max(a[0], b[0]) + 1
            inter_h = min(a[3], b[3]) - max(a[1], b[1]) + 1
            inner = float(max(inter_w, 0) * max(inter_h, 0)) if inter_w > 0 and inter_h > 0 else 0.0
            if inner == 0:
                continue
            outer = float((max(a[2], b[2]) - min(a[0], b[0]) + 1) * (max(a[3], b[3]) - min(a[1], b[1]) + 1))
            if inner / outer > iou or inner / area[j] > covered or inner / area[i] > covered:
                suppressed = True
                break
        if not suppressed:
            kept.append(i)
    return kept


@functools.lru_cache(maxsize=4)
def _parsed(path: Path) -> MmodNetwork:
    return read_mmod_network(path)


def load_dlib_mmod(device: torch.device | str = "cpu", *, path: Path | None = None) -> DlibMmodDetector:
    """The released dlib mmod face detector, in eval mode with frozen weights, on ``device``.

    Args:
        device: torch device for the returned module.
        path: an ``mmod_human_face_detector.dat``; default the one shipped in the
            ``face-recognition-models`` package (checked against :data:`SHA256`).

    Raises:
        ModelError: the file is missing, or the packaged file's checksum differs;
            DlibFormatError / DlibLayoutError (ModelErrors) if it is malformed.
    """
    if path is None:
        from shield.faces.dlib_models import MMOD_DETECTOR, dlib_model_path

        path = dlib_model_path(MMOD_DETECTOR)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != SHA256:
            raise WeightsChecksumMismatch(f"{path} has SHA-256 {digest}, expected {SHA256}")
    model = DlibMmodDetector()
    model.load_mmod_network(_parsed(Path(path)))
    model.eval().requires_grad_(False)
    log.debug("loaded dlib mmod face detector from %s", path)
    return model.to(device)
