"""The face-api.js ports (recognition, 68 landmarks, SSD) against face-api.js itself.

The reference runtime is bench/ports/faceapi_reference.js (face-api 1.7.15 on tfjs 4.22
CPU, in node); tests that need it skip when node is absent. Tolerances are about 20x the
worst difference bench/ports/faceapi.py measured on the shared photos (float32 rounding
between the tfjs CPU kernels and torch).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models import faceapi_landmarks68, faceapi_recognition, faceapi_ssd
from shield.adversarial.models.detections import box_iou
from shield.adversarial.models.faceapi_landmarks68 import FaceApiLandmarks68, eye_centres, load_faceapi_landmarks68
from shield.adversarial.models.faceapi_recognition import (
    SAME_PERSON_THRESHOLD,
    FaceApiRecognitionNet,
    dlib_aligned_box,
    load_faceapi_recognition,
)
from shield.adversarial.models.faceapi_ssd import FaceApiSsd, load_faceapi_ssd
from shield.adversarial.models.faceapi_weights import (
    FaceApiLayoutError,
    FaceApiWeightsError,
    clip_box,
    model_files,
    read_weights,
    resize_bilinear,
    same_pad,
    sha256_file,
)
from shield.adversarial.models.package_files import PackageMissingError

torch.set_num_threads(1)

REFERENCE = Path(__file__).resolve().parents[3] / "bench" / "ports" / "faceapi_reference.js"
DESCRIPTOR_TOL = 1e-5  # measured worst over 90 faces: 2.8e-7
LANDMARK_TOL_PX = 2e-3  # measured worst over 90 faces: 2.0e-4 px (NME 2e-7)
SSD_BOX_TOL = 5e-5  # measured worst over 85 photos: 3.3e-6 (fractions of the 512 square)
SSD_SCORE_TOL = 2e-5  # measured worst over 85 photos: 1.5e-6
# faceapi_reference.js `detect` on skimage's astronaut (recorded with tfjs 4.22 CPU)
ASTRONAUT_DETECTION = ((181.11810302734375, 72.86064147949219, 264.39544677734375, 174.58285522460938), 0.9648423194885254)


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0


def _reference(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("the reference runtime needs node on PATH")
    done = subprocess.run([node, str(REFERENCE)], input=json.dumps(jobs), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    results: list[dict[str, Any]] = json.loads(done.stdout)["results"]
    return results


@pytest.fixture(scope="module")
def rec() -> FaceApiRecognitionNet:
    return load_faceapi_recognition()


@pytest.fixture(scope="module")
def marks() -> FaceApiLandmarks68:
    return load_faceapi_landmarks68()


@pytest.fixture(scope="module")
def ssd() -> FaceApiSsd:
    return load_faceapi_ssd()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def photo(shared_data: Path) -> np.ndarray:
    return np.array(Image.open(shared_data / "photos" / "deepface_img10.jpg").convert("RGB"))


# --- loading ------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [faceapi_recognition, faceapi_landmarks68, faceapi_ssd])
def test_constants_describe_the_installed_file(module: Any) -> None:
    files = model_files(module.MODEL)
    assert sha256_file(files.shard) == module.SHA256
    assert files.shard.stat().st_size == module.SIZE_BYTES
    assert sha256_file(files.manifest) == module.MANIFEST_SHA256
    assert files.manifest.stat().st_size == module.MANIFEST_BYTES
    assert module.LICENSE == "MIT" and "@vladmandic/face-api==1.7.15" in module.SOURCE


def test_loaded_modules_are_frozen(rec: FaceApiRecognitionNet, marks: FaceApiLandmarks68, ssd: FaceApiSsd) -> None:
    for net in (rec, marks, ssd):
        assert not net.training
        assert not any(p.requires_grad for p in net.parameters())


def _copy_model(tmp_path: Path, model: str) -> tuple[Path, Path]:
    files = model_files(model)
    manifest, shard = tmp_path / files.manifest.name, tmp_path / files.shard.name
    shutil.copy(files.manifest, manifest)
    shutil.copy(files.shard, shard)
    return manifest, shard


def _edit_manifest(manifest: Path, edit: Any) -> None:
    doc = json.loads(manifest.read_text())
    edit(doc[0]["weights"])
    manifest.write_text(json.dumps(doc))


def test_truncated_and_padded_shards(tmp_path: Path) -> None:
    manifest, shard = _copy_model(tmp_path, faceapi_recognition.MODEL)
    data = shard.read_bytes()
    shard.write_bytes(data[:-1])
    with pytest.raises(FaceApiWeightsError, match="truncated"):
        load_faceapi_recognition(manifest=manifest)
    shard.write_bytes(data + b"\0")
    with pytest.raises(FaceApiWeightsError, match="unexpected bytes"):
        load_faceapi_recognition(manifest=manifest)
    shard.unlink()
    with pytest.raises(FaceApiWeightsError, match="missing"):
        load_faceapi_recognition(manifest=manifest)


def test_malformed_manifest(tmp_path: Path) -> None:
    manifest, _ = _copy_model(tmp_path, faceapi_landmarks68.MODEL)
    manifest.write_text("{not json")
    with pytest.raises(FaceApiWeightsError, match="manifest"):
        load_faceapi_landmarks68(manifest=manifest)
    manifest.write_text(json.dumps([{"paths": [], "weights": [{"name": "x", "shape": [-1], "dtype": "float32"}]}]))
    with pytest.raises(FaceApiWeightsError, match="malformed"):
        load_faceapi_landmarks68(manifest=manifest)


def test_renamed_tensor_is_named(tmp_path: Path) -> None:
    manifest, _ = _copy_model(tmp_path, faceapi_landmarks68.MODEL)
    _edit_manifest(manifest, lambda w: w[-1].update(name="fc/bias_renamed"))
    with pytest.raises(FaceApiLayoutError, match="fc/bias is missing"):
        load_faceapi_landmarks68(manifest=manifest)


def test_reshaped_tensor_is_named(tmp_path: Path) -> None:
    manifest, _ = _copy_model(tmp_path, faceapi_recognition.MODEL)
    _edit_manifest(manifest, lambda w: w[-1].update(shape=[128, 256]))  # fc, same byte count
    with pytest.raises(FaceApiLayoutError, match="fc has shape"):
        load_faceapi_recognition(manifest=manifest)


def test_unused_tensor_is_rejected(tmp_path: Path) -> None:
    manifest, shard = _copy_model(tmp_path, faceapi_landmarks68.MODEL)
    _edit_manifest(manifest, lambda w: w.append({"name": "extra", "shape": [2], "dtype": "float32"}))
    shard.write_bytes(shard.read_bytes() + bytes(8))
    with pytest.raises(FaceApiLayoutError, match="not used.*extra"):
        load_faceapi_landmarks68(manifest=manifest)


def test_other_network_is_rejected() -> None:
    with pytest.raises(FaceApiLayoutError):
        load_faceapi_recognition(manifest=model_files(faceapi_landmarks68.MODEL).manifest)


def test_changed_graph_constant_is_rejected(tmp_path: Path) -> None:
    manifest, _ = _copy_model(tmp_path, faceapi_ssd.MODEL)
    _edit_manifest(manifest, lambda w: next(s for s in w if s["name"] == "Preprocessor/sub/y")["quantization"].update(min=2.0))
    with pytest.raises(FaceApiLayoutError, match="Preprocessor/sub/y"):
        load_faceapi_ssd(manifest=manifest)


def test_missing_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIELD_NODE_MODULES", str(tmp_path))
    with pytest.raises(PackageMissingError, match="face-api"):
        load_faceapi_ssd()


def test_dequantisation_follows_tfjs() -> None:
    manifest = model_files(faceapi_recognition.MODEL).manifest
    spec = json.loads(manifest.read_text())[0]["weights"][0]  # conv32_down/conv/filters, uint8
    first = model_files(faceapi_recognition.MODEL).shard.read_bytes()[0]
    value = read_weights(manifest)[spec["name"]].ravel()[0]
    q = spec["quantization"]
    assert value == np.float32(first * q["scale"] + q["min"])


# --- TF conventions --------------------------------------------------------------------------


def test_resize_bilinear_is_tfjs_legacy_rule() -> None:
    x = torch.arange(4.0).view(1, 1, 1, 4)
    out = resize_bilinear(x, 1, 3)  # sources 0, 4/3, 8/3
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 4 / 3, 8 / 3]))
    up = resize_bilinear(torch.tensor([[[[0.0, 2.0]]]]), 1, 4)  # sources 0, .5, 1, 1.5 (clamped)
    assert torch.allclose(up.flatten(), torch.tensor([0.0, 1.0, 2.0, 2.0]))


def test_same_pad_puts_the_odd_pixel_last() -> None:
    x = torch.ones(1, 1, 4, 4)
    padded = same_pad(x, 3, 2)  # TF: total 1 -> 0 before, 1 after
    assert padded.shape == (1, 1, 5, 5) and padded[0, 0, 0, 0] == 1 and padded[0, 0, 4, 4] == 0


# --- recognition ---------------------------------------------------------------------------


def test_recognition_gradient_on_astronaut(rec: FaceApiRecognitionNet, astronaut: np.ndarray) -> None:
    image = _tensor(astronaut).requires_grad_(True)
    desc = rec(rec.chip(image, (170.0, 60.0, 280.0, 190.0)))
    assert desc.shape == (1, 128)
    desc.pow(2).sum().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_recognition_separates_identities(rec: FaceApiRecognitionNet, astronaut: np.ndarray) -> None:
    with torch.no_grad():
        chip = rec.chip(_tensor(astronaut), (170.0, 60.0, 280.0, 190.0))
        a, b, c = rec(chip), rec(torch.flip(chip, dims=[3])), rec(torch.rand_like(chip))
    assert torch.dist(a, b) < SAME_PERSON_THRESHOLD < torch.dist(a, c)


def test_recognition_chip_from_landmarks(rec: FaceApiRecognitionNet, marks: FaceApiLandmarks68, astronaut: np.ndarray) -> None:
    image = _tensor(astronaut)
    pts = marks.landmarks(image, ASTRONAUT_DETECTION[0])
    box = dlib_aligned_box(pts, (1e9, 1e9))
    assert box[0] < pts[:, 0].mean() < box[2] and box[1] < pts[:, 1].mean() < box[3]
    assert torch.equal(rec.chip(image, pts), rec.chip(image, box))


def test_recognition_rejects_wrong_chip(rec: FaceApiRecognitionNet) -> None:
    with pytest.raises(ValueError, match="150"):
        rec(torch.rand(1, 3, 112, 112))


# --- landmarks -----------------------------------------------------------------------------


def test_landmarks_gradient_on_astronaut(marks: FaceApiLandmarks68, astronaut: np.ndarray) -> None:
    image = _tensor(astronaut).requires_grad_(True)
    crop, affine = marks.crop(image, ASTRONAUT_DETECTION[0])
    pts = marks(crop)
    assert pts.shape == (1, 68, 2) and affine.shape == (2, 3)
    pts.sum().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    left, right = eye_centres(marks.landmarks(_tensor(astronaut), ASTRONAUT_DETECTION[0]))
    assert left[0] < right[0]  # point 36-41 is the eye on the image's left


# --- SSD -------------------------------------------------------------------------------------


def test_ssd_known_answer_on_astronaut(ssd: FaceApiSsd, astronaut: np.ndarray) -> None:
    (found,) = ssd.detect(_tensor(astronaut))
    assert np.allclose(found.box, ASTRONAUT_DETECTION[0], atol=1e-2)
    assert abs(found.score - ASTRONAUT_DETECTION[1]) < SSD_SCORE_TOL


def test_ssd_candidates_gradient_and_consistency(ssd: FaceApiSsd, astronaut: np.ndarray) -> None:
    image = _tensor(astronaut).requires_grad_(True)
    cand = ssd.candidates(image)
    assert cand.boxes.shape == (faceapi_ssd.NUM_ANCHORS, 4) and cand.scores.shape == (faceapi_ssd.NUM_ANCHORS,)
    best = int(cand.scores.argmax())
    assert box_iou(tuple(cand.boxes[best].tolist()), ASTRONAUT_DETECTION[0]) > 0.99
    cand.scores.max().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_ssd_accepts_any_size(ssd: FaceApiSsd) -> None:
    for h, w in ((100, 257), (300, 120)):
        cand = ssd.candidates(torch.rand(1, 3, h, w))
        assert cand.boxes.shape == (faceapi_ssd.NUM_ANCHORS, 4)


# --- shared photo: forward and backward through all three ----------------------------------


def test_pipeline_gradients_on_shared_photo(
    photo: np.ndarray, ssd: FaceApiSsd, marks: FaceApiLandmarks68, rec: FaceApiRecognitionNet
) -> None:
    image = _tensor(photo)
    (face, *_) = ssd.detect(image)
    pts = marks.landmarks(image, face.box)
    box = dlib_aligned_box(pts, (face.box[2] - face.box[0], face.box[3] - face.box[1]))
    image.requires_grad_(True)
    loss = ssd.candidates(image).scores.max() + marks(marks.crop(image, face.box)[0]).sum() + rec(rec.chip(image, box)).sum()
    loss.backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


# --- agreement with face-api.js ---------------------------------------------------------------


def _compare_with_reference(tmp_path: Path, rgb: np.ndarray, box: tuple[float, ...], marks: FaceApiLandmarks68, rec: FaceApiRecognitionNet) -> None:
    """Landmarks on ``box`` and the descriptor of the box face-api aligns from them."""
    image = _tensor(rgb)
    npy = tmp_path / "image.npy"
    np.save(npy, rgb)
    ours_pts = marks.landmarks(image, box)
    x, y, w, h = box[0], box[1], box[2] - box[0], box[3] - box[1]
    _, _, crop_w, crop_h = clip_box((x, y, w, h), rgb.shape[1], rgb.shape[0])
    aligned = dlib_aligned_box(ours_pts, (crop_w, crop_h))
    jobs = [
        {"image": str(npy), "op": "landmarks", "box": [x, y, w, h]},
        {"image": str(npy), "op": "descriptor", "box": [aligned[0], aligned[1], aligned[2] - aligned[0], aligned[3] - aligned[1]]},
    ]
    ref_marks, ref_desc = _reference(jobs)
    ref_pts = np.asarray(ref_marks["positions"])
    assert np.abs(ours_pts - ref_pts).max() < LANDMARK_TOL_PX
    with torch.no_grad():
        raw = marks.raw(marks.crop(image, box)[0])[0].numpy()
        desc = rec(rec.chip(image, aligned))[0].numpy()
    assert np.abs(raw - np.asarray(ref_marks["raw"])).max() < LANDMARK_TOL_PX / 112
    assert np.abs(desc - np.asarray(ref_desc["descriptor"])).max() < DESCRIPTOR_TOL


def test_astronaut_matches_faceapi(tmp_path: Path, astronaut: np.ndarray, marks: FaceApiLandmarks68, rec: FaceApiRecognitionNet) -> None:
    _compare_with_reference(tmp_path, astronaut, ASTRONAUT_DETECTION[0], marks, rec)


def test_shared_photo_matches_faceapi(
    tmp_path: Path, photo: np.ndarray, ssd: FaceApiSsd, marks: FaceApiLandmarks68, rec: FaceApiRecognitionNet
) -> None:
    (face, *_) = ssd.detect(_tensor(photo))
    _compare_with_reference(tmp_path, photo, face.box, marks, rec)


@pytest.mark.slow
def test_ssd_matches_faceapi_on_astronaut(tmp_path: Path, ssd: FaceApiSsd, astronaut: np.ndarray) -> None:
    """The live reference SSD (about a minute on the tfjs CPU backend)."""
    npy = tmp_path / "astronaut.npy"
    np.save(npy, astronaut)
    (ref,) = _reference([{"image": str(npy), "op": "detect"}])
    with torch.no_grad():
        boxes, scores = ssd(ssd.preprocess(_tensor(astronaut)))
    assert np.abs(boxes[0].numpy() - np.asarray(ref["boxes"])).max() < SSD_BOX_TOL
    assert np.abs(scores[0].numpy() - np.asarray(ref["scores"])).max() < SSD_SCORE_TOL
    ours = ssd.detect(_tensor(astronaut))
    assert len(ours) == len(ref["detections"])
    for o, r in zip(ours, ref["detections"]):
        assert box_iou(o.box, tuple(r["box"])) > 0.999 and abs(o.score - r["score"]) < SSD_SCORE_TOL
