"""face-api.js weights (npm ``@vladmandic/face-api``) read into numpy, and the TF ops they need.

The package ships each network as a tfjs *weights manifest* (JSON) plus one or more
``.bin`` shards. The manifest lists tensors in file order, each with a name, shape,
dtype and optional ``quantization`` ``{dtype: uint8|uint16|float16, scale, min}``; the
shards concatenated hold the tensors back to back. Decoding follows tfjs-core 4.22
``io_utils.decodeWeight`` exactly: ``value = q * scale + min`` computed in double and
stored as float32 (``Math.round`` of it for int32 tensors), float16 by IEEE half decode.

:class:`WeightMap` hands tensors out by name with their shape checked and records which
were taken, so a loader can prove that every tensor of the file was used exactly once.

The second half holds the TensorFlow conventions that face-api's JS graph relies on and
torch does not share, as differentiable torch functions: ``SAME`` padding (asymmetric,
the extra row/column at the bottom/right), tfjs' ``resizeBilinear`` without
``alignCorners`` or ``halfPixelCenters``, ``padToSquare`` and ``extractFaceTensors``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from shield.adversarial.models.package_files import npm_file
from shield.errors import ModelError

__all__ = [
    "PACKAGE",
    "VERSION",
    "LICENSE",
    "FaceApiWeightsError",
    "FaceApiLayoutError",
    "WeightMap",
    "ModelFiles",
    "model_files",
    "read_weights",
    "sha256_file",
    "conv_weight",
    "depthwise_weight",
    "same_pad",
    "resize_bilinear",
    "pad_to_square",
    "clip_box",
    "load_released",
]

#: The npm package and version whose files the ports read.
PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
#: The package's license (weights included, per its README and LICENSE file).
LICENSE = "MIT"

#: Largest manifest we accept, in bytes (the real ones are under 30 kB).
MAX_MANIFEST_BYTES = 1 << 20
#: Largest total of weight shards we accept, in bytes (the real ones are under 7 MB).
MAX_WEIGHT_BYTES = 64 << 20

_VALUE_BYTES = {"float32": 4, "int32": 4, "uint8": 1, "uint16": 2, "float16": 2}


class FaceApiWeightsError(ModelError):
    """A face-api weights manifest or shard is missing, malformed or inconsistent."""

    default_fix = f"reinstall the npm package: npm install {PACKAGE}@{VERSION}   (or run `make setup`)"


class FaceApiLayoutError(FaceApiWeightsError):
    """The weights do not have the tensors (names, shapes, values) the architecture needs."""


@dataclass(frozen=True)
class ModelFiles:
    """The two files of one face-api network inside the installed package."""

    manifest: Path
    shard: Path


def model_files(model: str) -> ModelFiles:
    """Locate ``model/<model>-weights_manifest.json`` and ``model/<model>.bin``.

    Raises:
        PackageMissingError: the npm package or a file is not installed.
    """
    return ModelFiles(
        manifest=npm_file(PACKAGE, f"model/{model}-weights_manifest.json", VERSION),
        shard=npm_file(PACKAGE, f"model/{model}.bin", VERSION),
    )


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decode(name: str, spec: dict[str, Any], raw: bytes) -> np.ndarray:
    dtype = spec["dtype"]
    shape = tuple(int(d) for d in spec["shape"])
    quant = spec.get("quantization")
    if quant is None:
        return np.frombuffer(raw, dtype="<f4" if dtype == "float32" else "<i4").reshape(shape).copy()
    qdtype = quant.get("dtype")
    if qdtype == "float16":
        if dtype != "float32":
            raise FaceApiWeightsError(f"{name}: float16 quantization of a {dtype} tensor")
        return np.frombuffer(raw, dtype="<f2").astype(np.float32).reshape(shape)
    try:
        scale, minimum = float(quant["scale"]), float(quant["min"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FaceApiWeightsError(f"{name}: {qdtype} quantization without numeric scale and min") from exc
    q = np.frombuffer(raw, dtype=np.uint8 if qdtype == "uint8" else "<u2").astype(np.float64)
    values = q * scale + minimum  # tfjs: double arithmetic, then stored in a typed array
    if dtype == "int32":
        return np.floor(values + 0.5).astype(np.int32).reshape(shape)  # Math.round
    return values.astype(np.float32).reshape(shape)


def _specs(manifest: object, path: Path) -> list[dict[str, Any]]:
    if not isinstance(manifest, list) or not manifest:
        raise FaceApiWeightsError(f"{path}: expected a non-empty list of weight groups")
    specs: list[dict[str, Any]] = []
    for group in manifest:
        if not isinstance(group, dict) or not isinstance(group.get("weights"), list):
            raise FaceApiWeightsError(f"{path}: a weight group lacks its 'weights' list")
        specs.extend(group["weights"])
    for spec in specs:
        ok = (
            isinstance(spec, dict)
            and isinstance(spec.get("name"), str)
            and spec.get("dtype") in ("float32", "int32")
            and isinstance(spec.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in spec["shape"])
        )
        quant = spec.get("quantization") if isinstance(spec, dict) else None
        if ok and quant is not None:
            ok = isinstance(quant, dict) and quant.get("dtype") in ("uint8", "uint16", "float16")
        if not ok:
            raise FaceApiWeightsError(f"{path}: malformed weight entry {str(spec)[:120]}")
    return specs


def read_weights(manifest_path: Path, shard_dir: Path | None = None) -> dict[str, np.ndarray]:
    """Decode every tensor of a tfjs weights manifest, in file order.

    Args:
        manifest_path: the ``*-weights_manifest.json``.
        shard_dir: folder of the ``paths`` it names (default: the manifest's folder).

    Raises:
        FaceApiWeightsError: unreadable or malformed manifest, missing shard, shard bytes
            that do not add up to the listed tensors (short or trailing), duplicate names.
    """
    shard_dir = manifest_path.parent if shard_dir is None else shard_dir
    try:
        text = manifest_path.read_bytes()
        if len(text) > MAX_MANIFEST_BYTES:
            raise FaceApiWeightsError(f"{manifest_path}: manifest larger than {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(text)
    except (OSError, ValueError) as exc:
        raise FaceApiWeightsError(f"{manifest_path}: cannot read the weights manifest ({exc})") from exc
    specs = _specs(manifest, manifest_path)
    blobs: list[bytes] = []
    for group in manifest:
        for name in group.get("paths", []):
            shard = shard_dir / str(name)
            if not shard.is_file():
                raise FaceApiWeightsError(f"{manifest_path}: shard {name} is missing")
            if shard.stat().st_size > MAX_WEIGHT_BYTES:
                raise FaceApiWeightsError(f"{shard}: larger than {MAX_WEIGHT_BYTES} bytes")
            blobs.append(shard.read_bytes())
    data = b"".join(blobs)
    out: dict[str, np.ndarray] = {}
    offset = 0
    for spec in specs:
        name = str(spec["name"])
        if name in out:
            raise FaceApiWeightsError(f"{manifest_path}: tensor {name} listed twice")
        quant = spec.get("quantization")
        value_dtype = quant["dtype"] if isinstance(quant, dict) else spec["dtype"]
        count = math.prod(int(d) for d in spec["shape"])
        size = count * _VALUE_BYTES[str(value_dtype)]
        if offset + size > len(data):
            raise FaceApiWeightsError(f"{manifest_path}: shards end inside tensor {name} (truncated file)")
        out[name] = _decode(name, spec, data[offset : offset + size])
        if not np.all(np.isfinite(out[name])):
            raise FaceApiWeightsError(f"{manifest_path}: tensor {name} holds non-finite values")
        offset += size
    if offset != len(data):
        raise FaceApiWeightsError(f"{manifest_path}: {len(data) - offset} unexpected bytes after the last tensor")
    return out


class WeightMap:
    """Decoded tensors of one file, handed out once each with their shapes checked."""

    def __init__(self, tensors: dict[str, np.ndarray], what: str) -> None:
        self._tensors = tensors
        self._what = what
        self._taken: set[str] = set()

    def take(self, name: str, shape: Sequence[int]) -> torch.Tensor:
        """The tensor ``name`` as float32 torch, which must have ``shape``.

        Raises:
            FaceApiLayoutError: absent, taken before, or of another shape.
        """
        if name not in self._tensors:
            raise FaceApiLayoutError(f"{self._what}: tensor {name} is missing")
        if name in self._taken:
            raise FaceApiLayoutError(f"{self._what}: tensor {name} is used twice")
        value = self._tensors[name]
        if tuple(value.shape) != tuple(shape):
            raise FaceApiLayoutError(f"{self._what}: tensor {name} has shape {value.shape}, expected {tuple(shape)}")
        self._taken.add(name)
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

    def constant(self, name: str, expected: Sequence[float] | float) -> None:
        """Consume a graph constant that face-api hard-codes, checking it holds ``expected``.

        Raises:
            FaceApiLayoutError: absent, taken before, or another value.
        """
        want = np.asarray(expected, dtype=np.float64)
        got = self.take(name, want.shape).double().numpy()
        if not np.allclose(got, want, rtol=1e-2, atol=1e-6):
            raise FaceApiLayoutError(f"{self._what}: constant {name} is {got.tolist()}, face-api assumes {want.tolist()}")

    def finish(self) -> None:
        """Check that every tensor of the file was taken.

        Raises:
            FaceApiLayoutError: some tensors were never used (another architecture).
        """
        unused = sorted(set(self._tensors) - self._taken)
        if unused:
            raise FaceApiLayoutError(f"{self._what}: {len(unused)} tensors not used by the architecture (first: {unused[0]})")

    def names(self) -> Iterable[str]:
        return iter(self._tensors)


def conv_weight(hwio: torch.Tensor) -> torch.Tensor:
    """TF conv filter (kh, kw, in, out) as torch (out, in, kh, kw)."""
    return hwio.permute(3, 2, 0, 1).contiguous()


def depthwise_weight(hwc1: torch.Tensor) -> torch.Tensor:
    """TF depthwise filter (kh, kw, C, 1) as a torch grouped conv weight (C, 1, kh, kw)."""
    return hwc1.permute(2, 3, 0, 1).contiguous()


# --- TensorFlow conventions as differentiable torch ops ---------------------------------


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Zero-pad NCHW ``x`` as TF ``padding='SAME'`` does before a ``kernel``/``stride`` op.

    TF pads ``max((ceil(n / s) - 1) * s + k - n, 0)`` in total, the odd pixel at the
    bottom/right; torch's symmetric ``padding=`` cannot express that for strided ops.
    """
    pads: list[int] = []
    for n in (x.shape[3], x.shape[2]):
        total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads) if any(pads) else x


def _axis_weights(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # the tfjs CPU kernel computes source coordinates in JS doubles
    src = torch.arange(n_out, dtype=torch.float64, device=device) * (n_in / n_out)
    lo = src.floor().clamp(min=0)
    frac = (src - lo).to(torch.float32)
    hi = src.ceil().clamp(max=n_in - 1)
    return lo.long(), hi.long(), frac


def resize_bilinear(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """tfjs ``image.resizeBilinear(x, [height, width], alignCorners=false, halfPixelCenters=false)``.

    The legacy TF 1 rule: output pixel ``i`` samples input coordinate ``i * in / out``
    (no half-pixel shift), linear between its floor and ceil, clamped at the last pixel.
    ``x`` is NCHW of any range; the result is differentiable w.r.t. ``x``.
    """
    if x.shape[2] == height and x.shape[3] == width:
        return x
    y0, y1, fy = _axis_weights(x.shape[2], height, x.device)
    x0, x1, fx = _axis_weights(x.shape[3], width, x.device)
    top, bottom = x[:, :, y0, :], x[:, :, y1, :]
    fx_ = fx.to(x.dtype)
    top = top[..., x0] + (top[..., x1] - top[..., x0]) * fx_
    bottom = bottom[..., x0] + (bottom[..., x1] - bottom[..., x0]) * fx_
    return top + (bottom - top) * fy.to(x.dtype)[:, None]


def pad_to_square(x: torch.Tensor, centre: bool) -> tuple[torch.Tensor, int, int]:
    """face-api ``padToSquare``: zero-pad the shorter side of NCHW ``x`` to a square.

    With ``centre`` the ``round(diff / 2)`` zeros go after the image and the rest
    before it (face-api's order); without, all ``diff`` zeros go after (bottom/right).

    Returns:
        (padded, pad_left, pad_top): the pixels added before the image on each axis.
    """
    h, w = x.shape[2], x.shape[3]
    if h == w:
        return x, 0, 0
    diff = abs(h - w)
    after = int(math.floor(diff * 0.5 + 0.5)) if centre else diff  # JS Math.round
    before = diff - after
    if h > w:
        return F.pad(x, (before, after, 0, 0)), before, 0
    return F.pad(x, (0, 0, before, after)), 0, before


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """face-api ``Box.clipAtImageBorders(width, height)`` followed by its ``floor()``.

    Args:
        box: x, y, box width, box height in image pixels (face-api's ``Rect``).

    Returns:
        (x, y, w, h) integers, the region ``extractFaceTensors`` slices.
    """
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(x, 0.0), max(y, 0.0)
    cw, ch = min(x + w - x0, width - x0), min(y + h - y0, height - y0)
    return math.floor(x0), math.floor(y0), math.floor(cw), math.floor(ch)


class _Loadable(Protocol):
    def load_weights(self, weights: WeightMap) -> None: ...

    def eval(self) -> Any: ...

    def requires_grad_(self, requires_grad: bool = ...) -> Any: ...

    def to(self, device: torch.device | str) -> Any: ...


_Net = TypeVar("_Net", bound=_Loadable)


@functools.lru_cache(maxsize=8)
def _cached_tensors(manifest: Path) -> dict[str, np.ndarray]:
    return read_weights(manifest)


def load_released(model: _Net, name: str, manifest: Path | None, device: torch.device | str) -> _Net:
    """``model`` with the released weights of face-api model ``name``, frozen, in eval mode, on ``device``.

    The one loading recipe of the three face-api ports.

    Args:
        model: a freshly built port (its ``load_weights`` maps every tensor strictly).
        name: the manifest stem (``face_recognition_model``).
        manifest: another ``*-weights_manifest.json`` (its shard beside it), or None for
            the installed npm package's.

    Raises:
        PackageMissingError: the npm package is not installed.
        FaceApiWeightsError: the files are malformed; FaceApiLayoutError (a subclass) if
            their tensors are not this architecture's.
    """
    path = model_files(name).manifest if manifest is None else Path(manifest)
    model.load_weights(WeightMap(dict(_cached_tensors(path)), path.name))
    model.eval().requires_grad_(False)
    return model.to(device)

