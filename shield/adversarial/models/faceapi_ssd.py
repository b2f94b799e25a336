"""PyTorch port of face-api.js' SSD MobileNet v1 face detector (``SsdMobilenetv1``).

Reproduces ``@vladmandic/face-api`` 1.7.15 ``src/ssdMobilenetv1``:

- input: the image zero-padded to a square at the bottom/right (``padToSquare(x, false)``),
  resized to 512x512 by tfjs ``resizeBilinear`` (legacy rule), then ``pixel / 127.5 - 1``;
- MobileNet v1: ``conv_0`` 3x3 stride-2 conv + folded batch-norm offset, relu6; 13 pairs
  of 3x3 depthwise conv + batch norm (epsilon 0.001) + relu6 and 1x1 conv + offset +
  relu6, strides 2 at pairs 2, 4, 6 and 12; all convolutions TF ``SAME`` (odd padding at
  the bottom/right);
- prediction layer: 8 extra 1x1/3x3 convs (+ offset, relu6); six box predictors (1x1 conv +
  bias) on pair 11 (32x32, 3 anchors), the backbone output (16x16, 6), and the extra
  layers 1, 3, 5, 7 (8x8, 4x4, 2x2, 1x1; 6 each): 5118 anchors;
- decoding against the file's anchors (``Output/extra_dim``, ``ymin, xmin, ymax, xmax`` in
  [0, 1] of the padded square) with scale factors (10, 10, 5, 5); face score =
  sigmoid of class logit 1;
- ``locateFaces``: candidates with score > ``minConfidence`` (0.5), face-api's own greedy
  NMS (IoU > 0.5 suppresses, at most ``maxResults`` = 100), box clamped to [0, 1] of the
  padded square and scaled back to image pixels through ``computeReshapedDimensions``.

Role: detector (:meth:`FaceApiSsd.candidates`, :meth:`FaceApiSsd.detect`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shield.adversarial.models.detections import Candidates, Detection
from shield.adversarial.models.faceapi_weights import (
    load_released,
    LICENSE,
    PACKAGE,
    VERSION,
    WeightMap,
    conv_weight,
    depthwise_weight,
    pad_to_square,
    resize_bilinear,
    same_pad,
)

__all__ = [
    "FaceApiSsd",
    "load_faceapi_ssd",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
    "MANIFEST_SHA256",
    "MANIFEST_BYTES",
    "INPUT_SIZE",
    "NUM_ANCHORS",
    "DEFAULT_THRESHOLD",
    "NMS_IOU",
    "MAX_RESULTS",
]

log = logging.getLogger(__name__)

MODEL = "ssd_mobilenetv1_model"
#: Package and file the weights come from (the manifest beside it lists the tensors).
SOURCE = f"{PACKAGE}=={VERSION}: model/{MODEL}.bin (+ model/{MODEL}-weights_manifest.json)"
#: SHA-256 and size of ``model/ssd_mobilenetv1_model.bin``.
SHA256 = "2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8"
SIZE_BYTES = 5_616_957
#: SHA-256 and size of the manifest ``model/ssd_mobilenetv1_model-weights_manifest.json``.
MANIFEST_SHA256 = "888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955"
MANIFEST_BYTES = 28233
INPUT_SIZE = 512
NUM_ANCHORS = 5118
#: ``SsdMobilenetv1Options`` defaults: minConfidence, NMS IoU (fixed in locateFaces), maxResults.
DEFAULT_THRESHOLD = 0.5
NMS_IOU = 0.5
MAX_RESULTS = 100
_BN_EPS = 0.0010000000474974513
_BACKBONE = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
_BACKBONE += [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
# prediction layer extra convs: (c_in, c_out, kernel, stride)
_EXTRA = [(1024, 256, 1, 1), (256, 512, 3, 2), (512, 128, 1, 1), (128, 256, 3, 2)]
_EXTRA += [(256, 128, 1, 1), (128, 256, 3, 2), (256, 64, 1, 1), (64, 128, 3, 2)]
# box predictors: (c_in, anchors per cell); inputs pair 11, backbone out, extra 1, 3, 5, 7
_PREDICTORS = [(512, 3), (1024, 6), (512, 6), (256, 6), (256, 6), (128, 6)]
# graph constants of the exported model that face-api hard-codes instead of reading
_CONSTANTS: dict[str, float | list[float]] = {
    "Preprocessor/mul/x": 1 / 127.5,
    "Preprocessor/sub/y": 1.0,
    "Preprocessor/ResizeImage/size": [INPUT_SIZE, INPUT_SIZE],
    "Postprocessor/Slice/begin": [0, 0, 1],
    "Postprocessor/Slice/size": [-1, -1, -1],
    "Postprocessor/stack/1": NUM_ANCHORS,
    "concat_1/axis": 1,
    "Prediction/BoxPredictor_0/stack/3": 4,
    "Prediction/BoxPredictor_0/stack_1/2": 3,
    "Prediction/BoxPredictor_0/strided_slice/stack": [0],
    "Prediction/BoxPredictor_0/strided_slice/stack_1": [1],
    **{f"Prediction/BoxPredictor_{i}/stack_1/1": n for i, n in enumerate((3072, 1536, 384, 96, 24, 6))},
}


class _PointwiseConv(nn.Module):
    """``pointwiseConvLayer``: conv SAME (any kernel) + batch-norm offset, relu6."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(same_pad(x, self.kernel, self.stride)).clamp(0.0, 6.0)

    def load(self, weights: WeightMap, prefix: str) -> None:
        c_out, c_in, k, _ = self.conv.weight.shape
        self.conv.weight.copy_(conv_weight(weights.take(f"{prefix}/weights", (k, k, c_in, c_out))))
        assert self.conv.bias is not None
        self.conv.bias.copy_(weights.take(f"{prefix}/convolution_bn_offset", (c_out,)))


class _DepthwiseConv(nn.Module):
    """``depthwiseConvLayer``: depthwise 3x3 SAME + batch norm (eps 0.001), relu6."""

    mean: torch.Tensor
    var: torch.Tensor

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, groups=channels, bias=False)
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(same_pad(x, 3, self.stride))
        # tfjs batchNorm: (x - mean) * rsqrt(var + eps) * scale + offset
        inv = torch.rsqrt(self.var + _BN_EPS) * self.gamma
        return ((out - self.mean[:, None, None]) * inv[:, None, None] + self.beta[:, None, None]).clamp(0.0, 6.0)

    def load(self, weights: WeightMap, prefix: str) -> None:
        c = self.conv.weight.shape[0]
        self.conv.weight.copy_(depthwise_weight(weights.take(f"{prefix}/depthwise_weights", (3, 3, c, 1))))
        self.gamma.copy_(weights.take(f"{prefix}/BatchNorm/gamma", (c,)))
        self.beta.copy_(weights.take(f"{prefix}/BatchNorm/beta", (c,)))
        self.mean.copy_(weights.take(f"{prefix}/BatchNorm/moving_mean", (c,)))
        self.var.copy_(weights.take(f"{prefix}/BatchNorm/moving_variance", (c,)))


class _BoxPredictor(nn.Module):
    """``boxPredictionLayer``: 1x1 conv + bias for box encodings and for class logits."""

    def __init__(self, c_in: int, anchors: int) -> None:
        super().__init__()
        self.box = nn.Conv2d(c_in, anchors * 4, 1)
        self.cls = nn.Conv2d(c_in, anchors * 3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        # NHWC flattening order (row, column, anchor) as tf.reshape of the NHWC output
        return self.box(x).permute(0, 2, 3, 1).reshape(b, -1, 4), self.cls(x).permute(0, 2, 3, 1).reshape(b, -1, 3)

    def load(self, weights: WeightMap, prefix: str) -> None:
        for conv, name in ((self.box, "BoxEncodingPredictor"), (self.cls, "ClassPredictor")):
            c_out, c_in = conv.weight.shape[:2]
            conv.weight.copy_(conv_weight(weights.take(f"{prefix}/{name}/weights", (1, 1, c_in, c_out))))
            assert conv.bias is not None
            conv.bias.copy_(weights.take(f"{prefix}/{name}/biases", (c_out,)))


class FaceApiSsd(nn.Module):
    """face-api.js ``SsdMobilenetv1`` face detector (any image size, 512x512 network view).

    Built with random weights; :func:`load_faceapi_ssd` fills in the released ones.
    """

    anchors: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.conv_0 = _PointwiseConv(3, 32, 3, 2)
        self.depthwise = nn.ModuleList(_DepthwiseConv(c_in, s) for c_in, _, s in _BACKBONE)
        self.pointwise = nn.ModuleList(_PointwiseConv(c_in, c_out, 1, 1) for c_in, c_out, _ in _BACKBONE)
        self.extra = nn.ModuleList(_PointwiseConv(*spec) for spec in _EXTRA)
        self.predictors = nn.ModuleList(_BoxPredictor(c, a) for c, a in _PREDICTORS)
        self.register_buffer("anchors", torch.zeros(NUM_ANCHORS, 4))

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) RGB [0, 1] -> the (1, 3, 512, 512) network input in [-1, 1]."""
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")
        square, _, _ = pad_to_square(image * 255.0, centre=False)
        return resize_bilinear(square, INPUT_SIZE, INPUT_SIZE) / 127.5 - 1.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw outputs for (B, 3, 512, 512) network input in [-1, 1].

        Returns:
            boxes (B, 5118, 4) ymin, xmin, ymax, xmax in [0, 1] of the padded square
            (unclamped), scores (B, 5118) face probabilities.
        """
        out = self.conv_0(x)
        conv11 = out
        for i, (dw, pw) in enumerate(zip(self.depthwise, self.pointwise)):
            out = pw(dw(out))
            if i + 1 == 11:
                conv11 = out
        feats, y = [conv11, out], out
        for i, layer in enumerate(self.extra):
            y = layer(y)
            if i % 2 == 1:
                feats.append(y)
        preds = [p(f) for p, f in zip(self.predictors, feats)]
        enc = torch.cat([p[0] for p in preds], 1)
        logits = torch.cat([p[1] for p in preds], 1)
        return self._decode(enc), torch.sigmoid(logits[..., 1])

    def _decode(self, enc: torch.Tensor) -> torch.Tensor:
        a = self.anchors
        sizes = a[:, 2:] - a[:, :2]
        centres = a[:, :2] + sizes / 2
        half = torch.exp(enc[..., 2:] / 5) * sizes / 2
        mid = enc[..., :2] / 10 * sizes + centres
        return torch.cat([mid - half, mid + half], -1)

    def _to_pixels(self, boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """locateFaces' mapping of [0, 1] square boxes to x0, y0, x1, y1 image pixels."""
        scale = INPUT_SIZE / max(height, width)
        pad_x = INPUT_SIZE / int(np.floor(width * scale + 0.5))  # computeReshapedDimensions
        pad_y = INPUT_SIZE / int(np.floor(height * scale + 0.5))
        top = boxes[..., 0].clamp(min=0.0) * pad_y
        left = boxes[..., 1].clamp(min=0.0) * pad_x
        bottom = boxes[..., 2].clamp(max=1.0) * pad_y
        right = boxes[..., 3].clamp(max=1.0) * pad_x
        x0, y0 = left * width, top * height
        return torch.stack([x0, y0, x0 + (right - left) * width, y0 + (bottom - top) * height], -1)

    def candidates(self, image: torch.Tensor) -> Candidates:
        """All 5118 decoded anchors of ``image`` (1, 3, H, W) RGB [0, 1], differentiable.

        Boxes are in image pixels, mapped as ``locateFaces`` maps its results (clamped
        to the padded square); scores are face probabilities before any threshold.
        """
        boxes, scores = self(self.preprocess(image))
        return Candidates(boxes=self._to_pixels(boxes[0], image.shape[2], image.shape[3]), scores=scores[0])

    @torch.no_grad()
    def detect(self, image: torch.Tensor) -> list[Detection]:
        """face-api ``locateFaces`` with its default options (score > 0.5, NMS 0.5, 100 results)."""
        boxes, scores = self(self.preprocess(image))
        keep = _face_api_nms(boxes[0].double().cpu().numpy(), scores[0].double().cpu().numpy())
        pixels = self._to_pixels(boxes[0, keep].cpu().double(), image.shape[2], image.shape[3]).numpy()
        return [
            Detection(box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])), score=float(scores[0, i]))
            for i, b in zip(keep, pixels)
        ]

    @torch.no_grad()
    def load_weights(self, weights: WeightMap) -> None:
        """Copy every tensor of the file into the module (shapes checked, all used).

        Raises:
            FaceApiLayoutError: a tensor is missing, of another shape, left unused, or a
                graph constant differs from what face-api hard-codes.
        """
        self.conv_0.load(weights, "MobilenetV1/Conv2d_0_pointwise")
        for i, (dw, pw) in enumerate(zip(self.depthwise, self.pointwise), start=1):
            assert isinstance(dw, _DepthwiseConv) and isinstance(pw, _PointwiseConv)
            dw.load(weights, f"MobilenetV1/Conv2d_{i}_depthwise")
            pw.load(weights, f"MobilenetV1/Conv2d_{i}_pointwise")
        for i, layer in enumerate(self.extra):
            assert isinstance(layer, _PointwiseConv)
            layer.load(weights, f"Prediction/Conv2d_{i}_pointwise")
        for i, pred in enumerate(self.predictors):
            assert isinstance(pred, _BoxPredictor)
            pred.load(weights, f"Prediction/BoxPredictor_{i}")
        self.anchors.copy_(weights.take("Output/extra_dim", (1, NUM_ANCHORS, 4))[0])
        for name, value in _CONSTANTS.items():
            weights.constant(name, value)
        weights.finish()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """face-api's ``IOU`` of two ymin, xmin, ymax, xmax boxes (corners re-ordered)."""
    ya0, xa0, ya1, xa1 = min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]), max(a[1], a[3])
    yb0, xb0, yb1, xb1 = min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])
    area_a, area_b = (ya1 - ya0) * (xa1 - xa0), (yb1 - yb0) * (xb1 - xb0)
    if area_a <= 0 or area_b <= 0:
        return 0.0
    inter = max(min(ya1, yb1) - max(ya0, yb0), 0.0) * max(min(xa1, xb1) - max(xa0, xb0), 0.0)
    return float(inter / (area_a + area_b - inter))


def _face_api_nms(boxes: np.ndarray, scores: np.ndarray) -> list[int]:
    """face-api ``ssdMobilenetv1/nonMaxSuppression`` with the default options."""
    order = [int(i) for i in np.flatnonzero(scores > DEFAULT_THRESHOLD)]
    order.sort(key=lambda i: -scores[i])  # stable, as JS Array.sort
    selected: list[int] = []
    for i in order:
        if len(selected) >= min(MAX_RESULTS, len(scores)):
            break
        if all(_iou(boxes[i], boxes[j]) <= NMS_IOU for j in selected):
            selected.append(i)
    return selected


def load_faceapi_ssd(device: torch.device | str = "cpu", *, manifest: Path | None = None) -> FaceApiSsd:
    """The released face-api SSD MobileNet v1 detector, frozen, in eval mode, on ``device``.

    Args:
        device: torch device of the returned module.
        manifest: a ``ssd_mobilenetv1_model-weights_manifest.json`` (its shard beside it);
            default the one in the installed npm package.

    Raises:
        PackageMissingError: the npm package is not installed.
        FaceApiWeightsError: the files are malformed; FaceApiLayoutError (a subclass) if
            their tensors are not this architecture's.
    """
    return load_released(FaceApiSsd(), MODEL, manifest, device)
