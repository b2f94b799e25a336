"""PyTorch port of face-api.js' 68-point landmark net (``FaceLandmark68Net``).

Reproduces ``@vladmandic/face-api`` 1.7.15 ``src/faceLandmarkNet`` and
``src/faceFeatureExtractor``:

- input: the face box of the image (``extractFaceTensors``: clipped at the borders,
  floored, integer slice) zero-padded to a centred square (``padToSquare(x, true)``),
  resized to 112x112 by tfjs ``resizeBilinear`` (legacy rule), then
  ``(pixel_0_255 - (122.782, 117.001, 104.298)) / 255``;
- four dense blocks (``denseBlock4``) of 32, 64, 128, 256 channels, each halving the side:
  ``out1 = relu(conv0(x))`` (a 3x3 stride-2 SAME conv + bias in ``dense0``, a separable
  conv elsewhere), ``out2 = sep(out1)``, ``out3 = sep(relu(out1 + out2))``,
  ``out4 = sep(relu(out1 + out2 + out3))``, result ``relu(out1 + out2 + out3 + out4)``;
  ``sep`` is tfjs ``separableConv2d`` (3x3 depthwise SAME, 1x1 pointwise) + bias;
- 7x7 stride-2 VALID average pool (7x7 -> 1x1), fully connected 256 -> 136;
- output: 68 (x, y) pairs in [0, 1] of the 112 px padded square.

face-api's ``postProcess`` maps them back to the face box assuming the padding is split
evenly (``|w - h| / 2`` on each side, although ``padToSquare`` puts ``round(diff / 2)``
after the image), and ``withFaceLandmarks`` shifts them by the *unclipped* detection box
corner; :meth:`FaceApiLandmarks68.crop` returns exactly that map as its affine.

Eye centres for inter-ocular normalisation: mean of points 36-41 (subject's right eye,
image left) and 42-47, 0-based (:data:`LEFT_EYE`, :data:`RIGHT_EYE`, :func:`eye_centres`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.faceapi_weights import (
    load_released,
    LICENSE,
    PACKAGE,
    VERSION,
    WeightMap,
    clip_box,
    conv_weight,
    depthwise_weight,
    pad_to_square,
    resize_bilinear,
    same_pad,
)

__all__ = [
    "FaceApiLandmarks68",
    "load_faceapi_landmarks68",
    "eye_centres",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
    "MANIFEST_SHA256",
    "MANIFEST_BYTES",
    "CROP_SIZE",
    "NUM_POINTS",
    "LEFT_EYE",
    "RIGHT_EYE",
]

log = logging.getLogger(__name__)

MODEL = "face_landmark_68_model"
#: Package and file the weights come from (the manifest beside it lists the tensors).
SOURCE = f"{PACKAGE}=={VERSION}: model/{MODEL}.bin (+ model/{MODEL}-weights_manifest.json)"
#: SHA-256 and size of ``model/face_landmark_68_model.bin``.
SHA256 = "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b"
SIZE_BYTES = 356_840
#: SHA-256 and size of the manifest ``model/face_landmark_68_model-weights_manifest.json``.
MANIFEST_SHA256 = "ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9"
MANIFEST_BYTES = 8485
#: Side of the square network input, pixels.
CROP_SIZE = 112
NUM_POINTS = 68
#: 0-based indices of the two eyes' contour points (iBUG 68 layout).
LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))
_MEAN_RGB = (122.782, 117.001, 104.298)


class _SeparableConv(nn.Module):
    """tfjs ``separableConv2d(x, depthwise, pointwise, stride, 'same')`` + bias."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(c_in, c_in, 3, stride=stride, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(same_pad(x, 3, self.stride)))

    def load(self, weights: WeightMap, prefix: str) -> None:
        c_in, c_out = self.depthwise.weight.shape[0], self.pointwise.weight.shape[0]
        self.depthwise.weight.copy_(depthwise_weight(weights.take(f"{prefix}/depthwise_filter", (3, 3, c_in, 1))))
        self.pointwise.weight.copy_(conv_weight(weights.take(f"{prefix}/pointwise_filter", (1, 1, c_in, c_out))))
        assert self.pointwise.bias is not None
        self.pointwise.bias.copy_(weights.take(f"{prefix}/bias", (c_out,)))


class _FirstConv(nn.Module):
    """``dense0/conv0``: plain 3x3 stride-2 SAME conv + bias."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, stride=2, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(same_pad(x, 3, 2))

    def load(self, weights: WeightMap, prefix: str) -> None:
        c_out, c_in = self.conv.weight.shape[:2]
        self.conv.weight.copy_(conv_weight(weights.take(f"{prefix}/filters", (3, 3, c_in, c_out))))
        assert self.conv.bias is not None
        self.conv.bias.copy_(weights.take(f"{prefix}/bias", (c_out,)))


class _DenseBlock4(nn.Module):
    """``denseBlock4(x, params, isFirstLayer, isScaleDown=true)``."""

    def __init__(self, c_in: int, c_out: int, first: bool) -> None:
        super().__init__()
        self.conv0: nn.Module = _FirstConv(c_in, c_out) if first else _SeparableConv(c_in, c_out, 2)
        self.conv1 = _SeparableConv(c_out, c_out, 1)
        self.conv2 = _SeparableConv(c_out, c_out, 1)
        self.conv3 = _SeparableConv(c_out, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + (out2 + out3)))
        return F.relu(out1 + (out2 + (out3 + out4)))

    def load(self, weights: WeightMap, prefix: str) -> None:
        for i, conv in enumerate((self.conv0, self.conv1, self.conv2, self.conv3)):
            assert isinstance(conv, (_FirstConv, _SeparableConv))
            conv.load(weights, f"{prefix}/conv{i}")


class FaceApiLandmarks68(nn.Module):
    """face-api.js ``FaceLandmark68Net``: 112x112 face crop -> 68 landmarks.

    ``forward(crop)``: (B, 3, 112, 112) RGB in [0, 1] -> (B, 68, 2) x, y in crop pixels
    (the network's [0, 1] output times 112). Built with random weights;
    :func:`load_faceapi_landmarks68` fills in the released ones.
    """

    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN_RGB).view(1, 3, 1, 1))
        widths = (3, 32, 64, 128, 256)
        self.dense = nn.ModuleList(_DenseBlock4(widths[i], widths[i + 1], i == 0) for i in range(4))
        self.fc = nn.Linear(256, 2 * NUM_POINTS)

    def raw(self, crop: torch.Tensor) -> torch.Tensor:
        """The network's own output: (B, 136) interleaved x, y in [0, 1] of the crop."""
        if crop.ndim != 4 or tuple(crop.shape[1:]) != (3, CROP_SIZE, CROP_SIZE):
            raise ValueError(f"crop: expected (B, 3, {CROP_SIZE}, {CROP_SIZE}), got {tuple(crop.shape)}")
        x = (crop * 255.0 - self.mean) / 255.0
        for block in self.dense:
            x = block(x)
        x = F.avg_pool2d(x, 7, 2)
        return self.fc(x.flatten(1))

    def forward(self, crop: torch.Tensor) -> torch.Tensor:
        return self.raw(crop).view(-1, NUM_POINTS, 2) * CROP_SIZE

    def crop(self, image: torch.Tensor, box: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cut the network input for ``box`` as face-api does, differentiably.

        Args:
            image: (1, 3, H, W) RGB in [0, 1].
            box: x0, y0, x1, y1 in image pixels (a detection box).

        Returns:
            (crop (1, 3, 112, 112), affine (2, 3) on the image's device and dtype mapping
            crop pixels to image pixels the way face-api's ``postProcess`` + ``shiftBy`` do).

        Raises:
            ValueError: bad image shape, or the box is empty inside the image.
        """
        if image.ndim != 4 or image.shape[:2] != (1, 3):
            raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")
        x0, y0, x1, y1 = (float(v) for v in box)
        x, y, w, h = clip_box((x0, y0, x1 - x0, y1 - y0), image.shape[3], image.shape[2])
        if w <= 0 or h <= 0:
            raise ValueError(f"box {tuple(box)} is empty inside the {image.shape[3]}x{image.shape[2]} image")
        square, _, _ = pad_to_square(image[:, :, y : y + h, x : x + w], centre=True)
        side = max(w, h)
        s = side / CROP_SIZE
        affine = [[s, 0.0, x0 - (side - w) / 2], [0.0, s, y0 - (side - h) / 2]]
        return resize_bilinear(square, CROP_SIZE, CROP_SIZE), torch.tensor(affine, dtype=image.dtype, device=image.device)

    def landmarks(self, image: torch.Tensor, box: Sequence[float]) -> np.ndarray:
        """face-api's ``withFaceLandmarks`` result for one detection box: (68, 2) image pixels."""
        with torch.no_grad():
            crop, affine = self.crop(image, box)
            pts, m = self(crop)[0].double().cpu(), affine.double().cpu()
        return (pts @ m[:, :2].T + m[:, 2]).numpy()

    @torch.no_grad()
    def load_weights(self, weights: WeightMap) -> None:
        """Copy every tensor of the file into the module (shapes checked, all used).

        Raises:
            FaceApiLayoutError: a tensor is missing, of another shape, or left unused.
        """
        for i, block in enumerate(self.dense):
            assert isinstance(block, _DenseBlock4)
            block.load(weights, f"dense{i}")
        self.fc.weight.copy_(weights.take("fc/weights", (256, 2 * NUM_POINTS)).t())
        self.fc.bias.copy_(weights.take("fc/bias", (2 * NUM_POINTS,)))
        weights.finish()


def eye_centres(points: np.ndarray) -> np.ndarray:
    """(2, 2) centres of the two eyes: means of points 36-41 and of 42-47 of (68, 2) landmarks."""
    pts = np.asarray(points, dtype=np.float64)
    return np.stack([pts[list(LEFT_EYE)].mean(0), pts[list(RIGHT_EYE)].mean(0)])


def load_faceapi_landmarks68(device: torch.device | str = "cpu", *, manifest: Path | None = None) -> FaceApiLandmarks68:
    """The released face-api 68-point landmark net, frozen, in eval mode, on ``device``.

    Args:
        device: torch device of the returned module.
        manifest: a ``face_landmark_68_model-weights_manifest.json`` (its shard beside
            it); default the one in the installed npm package.

    Raises:
        PackageMissingError: the npm package is not installed.
        FaceApiWeightsError: the files are malformed; FaceApiLayoutError (a subclass) if
            their tensors are not this architecture's.
    """
    return load_released(FaceApiLandmarks68(), MODEL, manifest, device)
