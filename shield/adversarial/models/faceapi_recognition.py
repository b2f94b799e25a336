"""PyTorch port of face-api.js' face recognition net (``FaceRecognitionNet``, 128-d descriptor).

Reproduces ``@vladmandic/face-api`` 1.7.15 ``src/faceRecognitionNet`` (a tfjs re-export of
dlib's ResNet-34-like descriptor, see :mod:`shield.adversarial.models.dlib_resnet`):

- input: the face tensor padded to a square with zeros, centred (``padToSquare(x, true)``),
  resized to 150x150 by tfjs ``resizeBilinear`` (no align-corners, no half-pixel centres),
  then ``(pixel_0_255 - (122.782, 117.001, 104.298)) / 255`` per RGB channel;
- ``convDown``: 7x7 stride-2 VALID conv + bias, scale layer (``x * w + b``), relu; then
  3x3 stride-2 VALID max pool;
- ``residual``: conv 3x3 SAME + bias + scale + relu, conv 3x3 SAME + bias + scale, add the
  input, relu;
- ``residualDown``: the same with a 3x3 stride-2 VALID first conv; the shortcut is a 2x2
  stride-2 average pool, zero-padded in channels when the block widens, and the block
  output gains one zero row and column (bottom/right) when its side is one short;
- global average, then ``matMul`` with ``fc`` (256x128, no bias): the raw descriptor.

``chip(image, box)`` cuts the face as ``extractFaceTensors`` does (box clipped at the
image borders and floored, integer slice). face-api's full pipeline
(``withFaceDescriptors``) describes the box :func:`dlib_aligned_box` derives from the 68
landmarks; ``chip(image, landmarks)`` does that too. Two faces are the same person when the Euclidean distance is below
:data:`SAME_PERSON_THRESHOLD` (face-api's ``FaceMatcher`` default).
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
    pad_to_square,
    resize_bilinear,
)

__all__ = [
    "FaceApiRecognitionNet",
    "load_faceapi_recognition",
    "dlib_aligned_box",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
    "MANIFEST_SHA256",
    "MANIFEST_BYTES",
    "CHIP_SIZE",
    "DESCRIPTOR_DIM",
    "SAME_PERSON_THRESHOLD",
]

log = logging.getLogger(__name__)

MODEL = "face_recognition_model"
#: Package and file the weights come from (the manifest beside it lists the tensors).
SOURCE = f"{PACKAGE}=={VERSION}: model/{MODEL}.bin (+ model/{MODEL}-weights_manifest.json)"
#: SHA-256 and size of ``model/face_recognition_model.bin``.
SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
SIZE_BYTES = 6_444_032
#: SHA-256 and size of the manifest ``model/face_recognition_model-weights_manifest.json``.
MANIFEST_SHA256 = "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b"
MANIFEST_BYTES = 19615
#: Side of the square network input, pixels.
CHIP_SIZE = 150
DESCRIPTOR_DIM = 128
#: face-api's ``FaceMatcher`` distance threshold (Euclidean, on raw descriptors).
SAME_PERSON_THRESHOLD = 0.6
_MEAN_RGB = (122.782, 117.001, 104.298)

Box = Sequence[float]


class _ConvLayer(nn.Module):
    """``convLayer``: conv (no padding here) + bias, then the scale layer ``x * w + b``."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, relu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=(k // 2 if stride == 1 else 0))
        self.scale_w = nn.Parameter(torch.ones(c_out))
        self.scale_b = nn.Parameter(torch.zeros(c_out))
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x) * self.scale_w[:, None, None] + self.scale_b[:, None, None]
        return F.relu(out) if self.relu else out

    def load(self, weights: WeightMap, prefix: str) -> None:
        c_out, c_in, k, _ = self.conv.weight.shape
        with torch.no_grad():
            self.conv.weight.copy_(conv_weight(weights.take(f"{prefix}/conv/filters", (k, k, c_in, c_out))))
            assert self.conv.bias is not None
            self.conv.bias.copy_(weights.take(f"{prefix}/conv/bias", (c_out,)))
            self.scale_w.copy_(weights.take(f"{prefix}/scale/weights", (c_out,)))
            self.scale_b.copy_(weights.take(f"{prefix}/scale/biases", (c_out,)))


class _Residual(nn.Module):
    """``residual`` (``down=False``) or ``residualDown`` (``down=True``)."""

    def __init__(self, c_in: int, c_out: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.conv1 = _ConvLayer(c_in, c_out, 3, 2 if down else 1, relu=True)
        self.conv2 = _ConvLayer(c_out, c_out, 3, 1, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        if not self.down:
            return F.relu(out + x)
        pooled = F.avg_pool2d(x, 2, 2)
        if pooled.shape[1] != out.shape[1]:
            pooled = F.pad(pooled, (0, 0, 0, 0, 0, out.shape[1] - pooled.shape[1]))
        if pooled.shape[2:] != out.shape[2:]:
            out = F.pad(out, (0, 1, 0, 1))  # face-api concatenates one zero row and column
        return F.relu(pooled + out)

    def load(self, weights: WeightMap, prefix: str) -> None:
        self.conv1.load(weights, f"{prefix}/conv1")
        self.conv2.load(weights, f"{prefix}/conv2")


# (name, c_in, c_out, down) in forward order, as FaceRecognitionNet.forwardInput
_UNITS = (
    [("conv32_1", 32, 32, False), ("conv32_2", 32, 32, False), ("conv32_3", 32, 32, False)]
    + [("conv64_down", 32, 64, True)] + [(f"conv64_{i}", 64, 64, False) for i in (1, 2, 3)]
    + [("conv128_down", 64, 128, True)] + [(f"conv128_{i}", 128, 128, False) for i in (1, 2)]
    + [("conv256_down", 128, 256, True)] + [(f"conv256_{i}", 256, 256, False) for i in (1, 2)]
    + [("conv256_down_out", 256, 256, True)]
)


class FaceApiRecognitionNet(nn.Module):
    """face-api.js ``FaceRecognitionNet``: 150x150 RGB face -> 128-d descriptor.

    ``forward(chip)``: (B, 3, 150, 150) float RGB in [0, 1] -> (B, 128) raw descriptors
    (norm about 1). Built with random weights; :func:`load_faceapi_recognition` fills in
    the released ones.
    """

    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN_RGB).view(1, 3, 1, 1))
        self.conv32_down = _ConvLayer(3, 32, 7, 2, relu=True)
        self.units = nn.ModuleDict({name: _Residual(c_in, c_out, down) for name, c_in, c_out, down in _UNITS})
        self.fc = nn.Linear(256, DESCRIPTOR_DIM, bias=False)

    def forward(self, chip: torch.Tensor) -> torch.Tensor:
        if chip.ndim != 4 or tuple(chip.shape[1:]) != (3, CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"chip: expected (B, 3, {CHIP_SIZE}, {CHIP_SIZE}), got {tuple(chip.shape)}")
        x = (chip * 255.0 - self.mean) / 255.0
        x = F.max_pool2d(self.conv32_down(x), 3, 2)
        for unit in self.units.values():
            x = unit(x)
        return self.fc(x.mean(dim=(2, 3)))

    def chip(self, image: torch.Tensor, box: Box | np.ndarray | None = None) -> torch.Tensor:
        """The network input face-api builds for a face of ``image``, differentiably.

        Args:
            image: (1, 3, H, W) RGB in [0, 1].
            box: x0, y0, x1, y1 in image pixels, clipped at the borders and floored to
                whole pixels as ``extractFaceTensors`` does; or (68, 2) landmarks in
                image pixels, described through :func:`dlib_aligned_box` as face-api's
                ``withFaceDescriptors`` does (without its cap by the detection crop: pass
                the aligned box yourself to reproduce that); None: the whole image.

        Returns:
            (1, 3, 150, 150) in [0, 1]: the slice zero-padded to a centred square and
            resized with tfjs' legacy bilinear rule.

        Raises:
            ValueError: ``image`` is not (1, 3, H, W), or the box is empty inside it.
        """
        if box is not None and np.shape(box) == (68, 2):
            box = dlib_aligned_box(np.asarray(box), (float("inf"), float("inf")))
        face = _slice(image, None if box is None else tuple(float(v) for v in np.ravel(box)))
        square, _, _ = pad_to_square(face, centre=True)
        return resize_bilinear(square, CHIP_SIZE, CHIP_SIZE)

    @torch.no_grad()
    def load_weights(self, weights: WeightMap) -> None:
        """Copy every tensor of the file into the module (shapes checked, all used).

        Raises:
            FaceApiLayoutError: a tensor is missing, of another shape, or left unused.
        """
        self.conv32_down.load(weights, "conv32_down")
        for name, unit in self.units.items():
            assert isinstance(unit, _Residual)
            unit.load(weights, name)
        self.fc.weight.copy_(weights.take("fc", (256, DESCRIPTOR_DIM)).t())
        weights.finish()


def _slice(image: torch.Tensor, box: Box | None) -> torch.Tensor:
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image: expected (1, 3, H, W), got {tuple(image.shape)}")
    if box is None:
        return image
    x0, y0, x1, y1 = (float(v) for v in box)
    x, y, w, h = clip_box((x0, y0, x1 - x0, y1 - y0), image.shape[3], image.shape[2])
    if w <= 0 or h <= 0:
        raise ValueError(f"box {tuple(box)} is empty inside the {image.shape[3]}x{image.shape[2]} image")
    return image[:, :, y : y + h, x : x + w]


def dlib_aligned_box(landmarks: np.ndarray, crop_size: tuple[float, float]) -> tuple[float, float, float, float]:
    """The face box face-api describes after landmarks (``FaceLandmarks.alignDlib``).

    The centre is the mean of the left-eye, right-eye and mouth centres; the side is
    ``floor(mean distance of the mouth centre to the eye centres / 0.45)``; the corner is
    ``floor(max(0, centre - (0.5, 0.43) * side))``; width and height are capped at
    ``crop + corner`` as face-api does (``crop`` being the box the landmarks came from).

    Args:
        landmarks: (68, 2) x, y in image pixels (face-api's shifted landmarks).
        crop_size: width, height of the detection box the landmarks were predicted in.

    Returns:
        x0, y0, x1, y1 in image pixels.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    refs = [pts[36:42].mean(0), pts[42:48].mean(0), pts[48:68].mean(0)]
    dist = (np.linalg.norm(refs[2] - refs[0]) + np.linalg.norm(refs[2] - refs[1])) / 2
    size = float(np.floor(dist / 0.45))
    centre = np.mean(refs, axis=0)
    x = float(np.floor(max(0.0, centre[0] - 0.5 * size)))
    y = float(np.floor(max(0.0, centre[1] - 0.43 * size)))
    w, h = min(size, crop_size[0] + x), min(size, crop_size[1] + y)
    return x, y, x + w, y + h


def load_faceapi_recognition(device: torch.device | str = "cpu", *, manifest: Path | None = None) -> FaceApiRecognitionNet:
    """The released face-api recognition net, frozen, in eval mode, on ``device``.

    Args:
        device: torch device of the returned module.
        manifest: a ``face_recognition_model-weights_manifest.json`` (its shard beside
            it); default the one in the installed npm package.

    Raises:
        PackageMissingError: the npm package is not installed.
        FaceApiWeightsError: the files are malformed; FaceApiLayoutError (a subclass) if
            their tensors are not this architecture's.
    """
    return load_released(FaceApiRecognitionNet(), MODEL, manifest, device)
