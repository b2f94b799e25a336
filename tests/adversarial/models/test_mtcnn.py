"""The MTCNN port against facenet-pytorch 2.6.0's own cascade (bench/ports/mtcnn.py harness).

The reference is facenet-pytorch's ``MTCNN().detect(img, landmarks=True)``, run with a
pure-torch stand-in for ``torchvision.ops.boxes.batched_nms`` injected into
``sys.modules`` (torchvision does not import beside this torch); see
``bench.ports.mtcnn.facenet_reference``. Measured over the shared photos: detections,
probabilities and landmarks identical to the bit (bench/results/ports/mtcnn.json); the
tolerances below leave room for other CPUs' kernels only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models._strict import CheckpointReadError, LayoutError
from shield.adversarial.models.detections import Detection
from shield.adversarial.models.mtcnn import (
    BYTES,
    DEFAULT_THRESHOLD,
    EYE_INDICES,
    MTCNN,
    SHA256,
    WEIGHT_FILES,
    _nms_iou,
    _nms_min,
    load_mtcnn,
)
from shield.adversarial.models.package_files import pypi_file
from shield.errors import ModelError
from shield.tensors import to_tensor

BOX_TOL = 1e-3  # pixels
SCORE_TOL = 1e-5
#: Small shared photos (< 0.4 MP): two portraits and a group of many faces.
PHOTOS = ("deepface_img10.jpg", "deepface_img12.jpg", "deepface_selfie-many-people.jpg")


@pytest.fixture(scope="module")
def port() -> MTCNN:
    torch.set_num_threads(1)
    return load_mtcnn()


@pytest.fixture(scope="module")
def reference() -> Any:
    from bench.ports.mtcnn import facenet_reference

    try:
        return facenet_reference()
    except ImportError as exc:  # the reference runtime only; the port needs nothing of it
        pytest.skip(f"facenet-pytorch (the reference runtime) does not import: {exc}")


def _weights_dir(tmp_path: Path) -> Path:
    for rel in WEIGHT_FILES.values():
        source = pypi_file("facenet_pytorch", rel, "facenet-pytorch==2.6.0")
        (tmp_path / source.name).write_bytes(source.read_bytes())
    return tmp_path


def _assert_same(ours: list[Detection], ref: list[Detection]) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert np.abs(np.subtract(a.box, b.box)).max() <= BOX_TOL
        assert abs(a.score - b.score) <= SCORE_TOL
        assert a.landmarks is not None and b.landmarks is not None
        assert np.abs(a.landmarks - b.landmarks).max() <= BOX_TOL


def _check_gradient(port: MTCNN, rgb: np.ndarray) -> None:
    x = to_tensor(rgb).requires_grad_(True)
    stages = port.stages(x)
    assert stages.onet.landmarks is not None and stages.onet.landmarks.shape[1:] == (5, 2)
    assert len(stages.rnet.scores) > 0 and len(stages.onet.scores) > 0
    for rows in (stages.pnet, stages.rnet, stages.onet):  # each stage keeps its graph to the pixels
        assert rows.scores.requires_grad and rows.boxes.requires_grad
    assert stages.onet.landmarks.requires_grad
    loss = stages.pnet.scores.clamp(min=0.6).sum() + stages.rnet.scores.sum() + stages.onet.scores.sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --- loading ----------------------------------------------------------------------------


def test_loads_frozen_and_constants_match_files(port: MTCNN) -> None:
    assert not port.training and not any(p.requires_grad for p in port.parameters())
    for name, rel in WEIGHT_FILES.items():
        data = pypi_file("facenet_pytorch", rel, "facenet-pytorch==2.6.0").read_bytes()
        assert hashlib.sha256(data).hexdigest() == SHA256[name]
        assert len(data) == BYTES[name]


def test_corrupt_file_is_a_read_error(tmp_path: Path) -> None:
    d = _weights_dir(tmp_path)
    (d / "rnet.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointReadError):
        load_mtcnn(weights_dir=d)
    (d / "rnet.pt").unlink()
    with pytest.raises(CheckpointReadError, match="no such"):
        load_mtcnn(weights_dir=d)


@pytest.mark.parametrize("change", ["shape", "missing", "extra"])
def test_wrong_layout_names_the_tensor(tmp_path: Path, change: str) -> None:
    d = _weights_dir(tmp_path)
    state = torch.load(d / "onet.pt", weights_only=True)
    if change == "shape":
        state["dense6_3.weight"] = torch.zeros(8, 256)
    elif change == "missing":
        del state["prelu4.weight"]
    else:
        state["dense7.weight"] = torch.zeros(1)
    torch.save(state, d / "onet.pt")
    named = {"shape": "dense6_3.weight", "missing": "prelu4.weight", "extra": "dense7.weight"}[change]
    with pytest.raises(LayoutError, match=named):
        load_mtcnn(weights_dir=d)
    assert issubclass(LayoutError, ModelError)


# --- agreement with facenet-pytorch ---------------------------------------------------


def test_astronaut_matches_facenet(port: MTCNN, reference: Any) -> None:
    from bench.ports.mtcnn import reference_detections

    rgb = skimage.data.astronaut()
    ours = port.detect(to_tensor(rgb))
    _assert_same(ours, reference_detections(reference, rgb))
    assert len(ours) == 1 and ours[0].score > DEFAULT_THRESHOLD
    lm = ours[0].landmarks
    assert lm is not None and lm[EYE_INDICES[0], 0] < lm[EYE_INDICES[1], 0]  # index 0 is the image-left eye
    x0, y0, x1, y1 = ours[0].box
    assert x0 < lm[:, 0].min() and lm[:, 0].max() < x1 and y0 < lm[:, 1].min() and lm[:, 1].max() < y1


def test_shared_photos_match_facenet(shared_data: Path, port: MTCNN, reference: Any) -> None:
    from bench.ports.mtcnn import reference_detections

    for name in PHOTOS:
        rgb = np.asarray(Image.open(shared_data / "photos" / name).convert("RGB"))
        ours = port.detect(to_tensor(rgb))
        assert ours, name
        _assert_same(ours, reference_detections(reference, rgb))


def test_nonface_image_matches_facenet(shared_data: Path, port: MTCNN, reference: Any) -> None:
    from bench.ports.mtcnn import reference_detections

    path = sorted((shared_data / "nonfaces").glob("*"))[0]
    img = Image.open(path).convert("RGB")
    img.thumbnail((640, 640))
    rgb = np.asarray(img)
    _assert_same(port.detect(to_tensor(rgb)), reference_detections(reference, rgb))


def test_nms_matches_references(reference: Any) -> None:
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy

    from bench.ports.mtcnn import _batched_nms

    gen = torch.Generator().manual_seed(0)
    corner = torch.randint(0, 60, (300, 2), generator=gen).float()
    boxes = torch.cat([corner, corner + torch.randint(5, 40, (300, 2), generator=gen).float()], 1)
    scores = torch.randint(0, 50, (300,), generator=gen).float() / 50  # many ties
    zeros = torch.zeros(300, dtype=torch.long)
    for thr in (0.5, 0.7):
        assert _nms_iou(boxes, scores, thr).tolist() == _batched_nms(boxes, scores, zeros, thr).tolist()
        scores_u = torch.rand(300, generator=gen)  # facenet's numpy quicksort orders ties its own way
        assert _nms_min(boxes, scores_u, thr).tolist() == batched_nms_numpy(boxes, scores_u, zeros, thr, "Min").tolist()


# --- the differentiable view ------------------------------------------------------------


def test_astronaut_candidates_are_differentiable(port: MTCNN) -> None:
    rgb = skimage.data.astronaut()
    _check_gradient(port, rgb)
    x = to_tensor(rgb)
    cand = port.candidates(x)
    face = port.detect(x)[0]
    assert cand.boxes.shape == (cand.scores.shape[0], 4) and cand.landmarks is None
    assert cand.scores.min() >= 0 and cand.scores.max() <= 1
    # the final face is one of the O-Net rows, with the same box and score
    stages = port.stages(x)
    i = int(torch.argmin((stages.onet.boxes - torch.tensor(face.box)).abs().sum(1)))
    assert torch.allclose(stages.onet.boxes[i], torch.tensor(face.box)) and float(stages.onet.scores[i]) == face.score


def test_every_stage_carries_the_logits_of_its_scores(port: MTCNN) -> None:
    stages = port.stages(to_tensor(skimage.data.astronaut()))
    for rows in (stages.pnet, stages.rnet, stages.onet):
        assert rows.logits is not None and rows.logits.shape == rows.scores.shape
        unsaturated = (rows.scores > 1e-4) & (rows.scores < 1 - 1e-4)
        assert bool(unsaturated.any())
        assert torch.allclose(torch.sigmoid(rows.logits[unsaturated]), rows.scores[unsaturated], atol=1e-5)


def test_shared_photo_candidates_are_differentiable(shared_data: Path, port: MTCNN) -> None:
    _check_gradient(port, np.asarray(Image.open(shared_data / "photos" / PHOTOS[0]).convert("RGB")))


def test_small_and_wrong_inputs(port: MTCNN) -> None:
    assert port.detect(torch.rand(1, 3, 16, 300)) == []  # below min_face_size: no pyramid level
    cand = port.candidates(torch.rand(1, 3, 16, 300))
    assert cand.boxes.shape == (0, 4) and cand.scores.shape == (0,)
    with pytest.raises(ValueError, match="1, 3, H, W"):
        port.detect(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError):
        port.candidates(torch.rand(3, 64, 64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(port: MTCNN) -> None:
    cuda = load_mtcnn("cuda")
    x = to_tensor(skimage.data.astronaut())
    ours, ref = cuda.detect(x.cuda()), port.detect(x)
    assert len(ours) == len(ref) == 1
    assert np.abs(np.subtract(ours[0].box, ref[0].box)).max() < 0.5
    xg = x.cuda().requires_grad_(True)
    cuda.candidates(xg).scores.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all()
