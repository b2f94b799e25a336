"""The pipeline break test: a stand-in swap front-end built from real networks.

SimSwap, inswapper/roop and FaceFusion prepare a face the same way: detect it, place
five landmarks (eyes, nose, mouth corners), warp it onto the ArcFace template, read its
identity. :func:`pipeline_verdict` runs such a front-end on the clean and on the
protected photo and says at which stage, if any, the protected photo breaks it:

1. detect: no detection on the protected photo overlaps the clean one with IoU >= 0.5;
2. landmarks: the landmarks of the matched detection move by more than 0.10 of the clean
   inter-ocular distance;
3. identity: the embedding of the aligned face moves beyond the encoder's same-person
   threshold.

Two front-ends ship: :class:`MtcnnDlib` (MTCNN's boxes and five points, the ArcFace
112 template, dlib's descriptor) and :class:`FaceApi` (face-api.js end to end: SSD
MobileNet, 68 landmarks, its own aligned crop, its descriptor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from shield.adversarial.face_views import View, affine_crop
from shield.adversarial.models.detections import Detection, box_iou
from shield.adversarial.threats.base import DETECTOR_IOU, LANDMARK_NME
from shield.faces.align import similarity_fit
from shield.tensors import to_tensor

__all__ = ["FrontEnd", "PipelineVerdict", "pipeline_verdict", "MtcnnDlib", "FaceApi", "ARCFACE_112"]

#: insightface's five-point ArcFace template for a 112 px chip (eyes, nose tip, mouth corners).
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


class FrontEnd(Protocol):
    """One swap tool's front-end (all in image pixels of a (1,3,H,W) tensor in [0,1])."""

    name: str
    threshold: float

    def detect(self, image: torch.Tensor) -> list[Detection]: ...

    def landmarks(self, image: torch.Tensor, detection: Detection) -> np.ndarray: ...

    def eyes(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def embed(self, image: torch.Tensor, landmarks: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class PipelineVerdict:
    """Where the front-end broke.

    Attributes:
        broken: True when a stage broke; None when the front-end already fails on the
            clean photo (no face detected there).
        stage: ``detect``, ``landmarks``, ``identity``, or None when nothing broke.
        detail: the measured values, in words.
    """

    broken: bool | None
    stage: str | None
    detail: str


@torch.no_grad()
def pipeline_verdict(front_end: FrontEnd, clean: np.ndarray, protected: np.ndarray) -> PipelineVerdict:
    """Run ``front_end`` on both HxWx3 uint8 photos and report the first stage that breaks."""
    c, p = to_tensor(clean), to_tensor(protected)
    before = front_end.detect(c)
    if not before:
        return PipelineVerdict(None, None, "no face detected on the clean photo")
    face = max(before, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) * d.score)
    after = front_end.detect(p)
    scored = [(box_iou(d.box, face.box), d) for d in after]
    iou, match = max(scored, key=lambda t: t[0], default=(0.0, None))
    if match is None or iou < DETECTOR_IOU:
        return PipelineVerdict(True, "detect", f"best IoU {iou:.2f} < {DETECTOR_IOU}")
    lm_c, lm_p = front_end.landmarks(c, face), front_end.landmarks(p, match)
    left, right = front_end.eyes(lm_c)
    iod = max(float(np.linalg.norm(left - right)), 1e-6)
    nme = float(np.linalg.norm(lm_c - lm_p, axis=1).mean()) / iod
    if nme > LANDMARK_NME:
        return PipelineVerdict(True, "landmarks", f"IoU {iou:.2f}; landmark error {nme:.3f} > {LANDMARK_NME} of the eye distance")
    distance = float(np.linalg.norm(front_end.embed(c, lm_c) - front_end.embed(p, lm_p)))
    detail = f"IoU {iou:.2f}; landmark error {nme:.3f}; identity distance {distance:.3f} (threshold {front_end.threshold})"
    if distance > front_end.threshold:
        return PipelineVerdict(True, "identity", detail)
    return PipelineVerdict(False, None, detail)


def _aligned(image: torch.Tensor, five: np.ndarray, size: int) -> torch.Tensor:
    """The face warped onto the ArcFace template scaled to ``size`` (as insightface's norm_crop)."""
    matrix = similarity_fit(five, ARCFACE_112 * size / 112.0)
    return affine_crop(image, View(matrix, size))


class MtcnnDlib:
    """MTCNN (boxes and five points), the ArcFace template, dlib's 128-d descriptor on a 150 px chip."""

    name = "mtcnn+dlib"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        from shield.adversarial.models.dlib_resnet import SAME_PERSON_THRESHOLD, load_dlib_descriptor
        from shield.adversarial.models.mtcnn import load_mtcnn

        self.mtcnn, self.descriptor = load_mtcnn(device), load_dlib_descriptor(device)
        self.threshold = SAME_PERSON_THRESHOLD

    def detect(self, image: torch.Tensor) -> list[Detection]:
        return [d for d in self.mtcnn.detect(image) if d.landmarks is not None]

    def landmarks(self, image: torch.Tensor, detection: Detection) -> np.ndarray:
        assert detection.landmarks is not None  # detect() keeps only detections with points
        return np.asarray(detection.landmarks, dtype=np.float64)

    def eyes(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return landmarks[0], landmarks[1]

    def embed(self, image: torch.Tensor, landmarks: np.ndarray) -> np.ndarray:
        return self.descriptor(_aligned(image, landmarks, 150))[0].double().cpu().numpy()


class FaceApi:
    """face-api.js end to end: SSD MobileNet v1, the 68-point net, its aligned crop, its descriptor."""

    name = "face-api.js"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        from shield.adversarial.models.faceapi_landmarks68 import LEFT_EYE, RIGHT_EYE, load_faceapi_landmarks68
        from shield.adversarial.models.faceapi_recognition import SAME_PERSON_THRESHOLD, load_faceapi_recognition
        from shield.adversarial.models.faceapi_ssd import load_faceapi_ssd

        self.ssd, self.marks, self.recognition = load_faceapi_ssd(device), load_faceapi_landmarks68(device), load_faceapi_recognition(device)
        self.threshold = SAME_PERSON_THRESHOLD
        self._left, self._right = list(LEFT_EYE), list(RIGHT_EYE)

    def detect(self, image: torch.Tensor) -> list[Detection]:
        return list(self.ssd.detect(image))

    def landmarks(self, image: torch.Tensor, detection: Detection) -> np.ndarray:
        return np.asarray(self.marks.landmarks(image, detection.box), dtype=np.float64)

    def eyes(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return landmarks[self._left].mean(0), landmarks[self._right].mean(0)

    def embed(self, image: torch.Tensor, landmarks: np.ndarray) -> np.ndarray:
        return self.recognition(self.recognition.chip(image, landmarks))[0].double().cpu().numpy()
