"""dlib's mmod CNN face detector in torch against dlib 20 itself; the .dat reader; the tiling."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from shield.adversarial.models.detections import Detection
from shield.adversarial.models.dlib_dat import (
    DlibEncodingError,
    DlibFormatError,
    DlibLayoutError,
    DlibTruncatedError,
    DlibUnsupportedError,
)
from shield.adversarial.models.dlib_mmod import (
    DEFAULT_THRESHOLD,
    SHA256,
    SIZE_BYTES,
    SOURCE,
    DlibMmodDetector,
    WeightsChecksumMismatch,
    load_dlib_mmod,
    round_rect,
)
from shield.adversarial.models.dlib_mmod_dat import parse_mmod_network, read_mmod_network
from shield.adversarial.models.dlib_mmod_pyramid import dlib_resize, pyramid_layout
from shield.errors import ModelError
from shield.faces.dlib_models import MMOD_DETECTOR, RESNET_DESCRIPTOR, dlib_model_path
from shield.tensors import to_tensor

torch.set_num_threads(1)

# Measured on astronaut, the 85 shared photos and the 12 no-face images at a longer side of
# 800 px (bench/ports/dlib_mmod.py): every dlib rectangle is reproduced to the pixel and
# the confidences differ by <= 3e-6 (float32 summation order in the convolutions).
SCORE_TOL = 1e-4
#: Shared photos compared in the quick test, with the longer side they are cut to (dlib's
#: CPU detector is slow); the selfie has a face over the left edge (negative coordinates).
QUICK_PHOTOS = (("deepface_couple.jpg", 400), ("deepface_img1.jpg", 400), ("deepface_selfie-many-people.jpg", 800))


@pytest.fixture(scope="module")
def port() -> DlibMmodDetector:
    return load_dlib_mmod()


@pytest.fixture(scope="module")
def reference() -> Any:
    dlib = pytest.importorskip("dlib")
    return dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_DETECTOR)))


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return dlib_model_path(MMOD_DETECTOR).read_bytes()


def _dlib_detections(reference: Any, rgb: np.ndarray) -> list[tuple[tuple[float, ...], float]]:
    rects = reference(rgb, 0)
    return [((r.rect.left(), r.rect.top(), r.rect.right() + 1, r.rect.bottom() + 1), r.confidence) for r in rects]


def _assert_same(ours: list[Detection], ref: list[tuple[tuple[float, ...], float]], name: str) -> None:
    assert [d.box for d in ours] == [box for box, _ in ref], name
    for d, (_, score) in zip(ours, ref):
        assert abs(d.score - score) <= SCORE_TOL, f"{name}: {d.score} vs {score}"


def _photo(path: Path, max_side: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    scale = max_side / max(img.size)
    if scale < 1:
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BILINEAR)
    return np.asarray(img)


# --- agreement with dlib ----------------------------------------------------------------


def test_astronaut_matches_dlib(port: DlibMmodDetector, reference: Any) -> None:
    rgb = skimage.data.astronaut()
    ref = _dlib_detections(reference, rgb)
    assert len(ref) == 1
    _assert_same(port.detect(to_tensor(rgb)), ref, "astronaut")


def test_shared_photos_match_dlib(shared_data: Path, port: DlibMmodDetector, reference: Any) -> None:
    for name, side in QUICK_PHOTOS:
        rgb = _photo(shared_data / "photos" / name, side)
        ref = _dlib_detections(reference, rgb)
        assert ref, f"{name}: dlib finds no face at this size"
        _assert_same(port.detect(to_tensor(rgb)), ref, name)


def test_other_weights_still_match_dlib(dat_bytes: bytes, tmp_path: Path) -> None:
    """Rescale every params tensor of the file (same layout); dlib and the port must agree."""
    dlib = pytest.importorskip("dlib")
    net = parse_mmod_network(dat_bytes)
    assert len(net.param_spans) == 7 + 6  # con, bn_con
    data = bytearray(dat_bytes)
    rng = np.random.default_rng(4)
    for offset, count in net.param_spans:
        values = np.frombuffer(dat_bytes, "<f4", count, offset)
        data[offset : offset + 4 * count] = (values * rng.uniform(0.95, 1.05, count).astype(np.float32)).tobytes()
    path = tmp_path / "reweighted.dat"
    path.write_bytes(bytes(data))
    rgb = np.ascontiguousarray(skimage.data.astronaut()[:300, 60:360])  # the face, 96 px
    ref = _dlib_detections(dlib.cnn_face_detection_model_v1(str(path)), rgb)
    ours = load_dlib_mmod(path=path).detect(to_tensor(rgb))
    original = load_dlib_mmod().detect(to_tensor(rgb))
    assert ref, "the rescaled network should still find the astronaut"
    _assert_same(ours, ref, "reweighted")
    assert abs(ours[0].score - original[0].score) > 100 * SCORE_TOL  # the weights really changed


# --- the detector role ------------------------------------------------------------------


def _check_gradient(port: DlibMmodDetector, rgb: np.ndarray) -> None:
    image = to_tensor(rgb).requires_grad_(True)
    cand = port.candidates(image)
    assert cand.boxes.shape == (cand.scores.shape[0], 4) and cand.landmarks is None
    assert bool(((cand.scores > 0) & (cand.scores < 1)).all())
    cand.scores.max().backward()
    assert image.grad is not None
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_candidates_backward_on_astronaut(port: DlibMmodDetector) -> None:
    _check_gradient(port, skimage.data.astronaut())
    assert not any(p.requires_grad for p in port.parameters()) and not port.training


def test_candidates_backward_on_a_photo(shared_data: Path, port: DlibMmodDetector) -> None:
    _check_gradient(port, _photo(shared_data / "photos" / QUICK_PHOTOS[1][0], 320))


def test_candidates_agree_with_detect(port: DlibMmodDetector) -> None:
    image = to_tensor(skimage.data.astronaut())
    with torch.no_grad():
        cand = port.candidates(image)
    (det,) = port.detect(image)
    best = int(cand.scores.argmax())
    raw = float(torch.logit(cand.scores[best].double()))
    assert raw == pytest.approx(det.score, abs=1e-4)
    assert np.abs(cand.boxes[best].numpy() - np.array(det.box)).max() <= 0.5 + 1e-4
    # every window above dlib's threshold is a sigmoid score above one half
    assert int((cand.scores > 0.5).sum()) >= 1 and DEFAULT_THRESHOLD == 0.0


def test_detect_threshold_and_empty_image(port: DlibMmodDetector) -> None:
    grey = torch.full((1, 3, 120, 160), 0.5)
    assert port.detect(grey) == []
    image = to_tensor(skimage.data.astronaut())
    assert len(port.detect(image, threshold=-0.5)) >= len(port.detect(image))
    with pytest.raises(ValueError, match="batch of one"):
        port.detect(torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="H, W >= 5"):
        port.candidates(torch.rand(1, 3, 4, 64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda() -> None:
    model = load_dlib_mmod("cuda")
    image = to_tensor(skimage.data.astronaut(), device="cuda")
    cpu = load_dlib_mmod().detect(to_tensor(skimage.data.astronaut()))
    gpu = model.detect(image)
    assert [d.box for d in gpu] == [d.box for d in cpu]
    assert abs(gpu[0].score - cpu[0].score) < 1e-3
    cand = model.candidates(image.requires_grad_(True))
    cand.scores.max().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_rect_rounding_is_dlibs() -> None:
    """Windows over the left/top edge have negative half coordinates; dlib rounds them away from 0."""
    dlib = pytest.importorskip("dlib")
    values = np.array([[-4.5, -1.5, 74.5, -0.5], [-0.49, 2.5, 3.5000001, -7.2], [10.5, -10.5, 0.5, -0.0]])
    for row, ours in zip(values, round_rect(values)):
        rect = dlib.rectangle(dlib.drectangle(*row))
        assert tuple(ours) == (rect.left(), rect.top(), rect.right(), rect.bottom())


# --- the tiled pyramid ------------------------------------------------------------------


def test_pyramid_layout_of_astronaut() -> None:
    rects, rows, cols = pyramid_layout(512, 512, 6, 10, 11)
    assert rects[0] == (11, 11, 522, 522) and cols == 512 + 22
    sizes = [(r[2] - r[0] + 1, r[3] - r[1] + 1) for r in rects]
    assert sizes[:4] == [(512, 512), (426, 426), (355, 355), (295, 295)]
    assert min(h for _, h in sizes) >= 5
    for i, a in enumerate(rects):  # tiles never overlap and stay inside the canvas
        assert 0 <= a[0] and a[2] < cols and 0 <= a[1] and a[3] < rows
        for b in rects[i + 1 :]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1]


@pytest.mark.parametrize("size", [(37, 53, 30, 44), (6, 5, 5, 4), (512, 512, 426, 426), (9, 400, 7, 333)])
def test_dlib_resize_is_corner_aligned_bilinear(size: tuple[int, int, int, int]) -> None:
    h, w, out_h, out_w = size
    x = torch.rand(1, 3, h, w, dtype=torch.float32)
    ours = dlib_resize(x, out_h, out_w)
    theirs = F.interpolate(x, size=(out_h, out_w), mode="bilinear", align_corners=True)
    # dlib steps the column coordinate in float32, 4 columns at a time: up to ~5e-4 px of
    # drift on 400-column levels, reproduced here (measured 4.4e-4 for 512 -> 426)
    assert ours.shape == theirs.shape and (ours - theirs).abs().max() < 1e-3


# --- the .dat reader and strict loading --------------------------------------------------


def test_catalogue_constants_describe_the_installed_file(dat_bytes: bytes) -> None:
    assert hashlib.sha256(dat_bytes).hexdigest() == SHA256
    assert len(dat_bytes) == SIZE_BYTES
    assert SOURCE.startswith("face-recognition-models==0.3.0")


def test_real_file_parses_completely() -> None:
    net = read_mmod_network(dlib_model_path(MMOD_DETECTOR))
    assert net.options.window == (80, 80)
    assert net.options.nms_iou == pytest.approx(0.33828, abs=1e-5) and net.options.nms_covered == 1.0
    assert (net.input.padding, net.input.outer_padding) == (10, 11)
    assert net.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    assert len(net.layers) == 19 and len(net.wrappers) == 18


@pytest.mark.parametrize("cut", [0, 1, 8, 30, 120, 200, 5000, 400_000, -1])
def test_truncated_file(dat_bytes: bytes, cut: int) -> None:
    with pytest.raises(DlibTruncatedError):
        parse_mmod_network(dat_bytes[:cut])


def test_trailing_bytes(dat_bytes: bytes) -> None:
    with pytest.raises(DlibLayoutError, match="unexpected bytes"):
        parse_mmod_network(dat_bytes + b"\x00")


def test_other_networks_are_refused() -> None:
    descriptor = dlib_model_path(RESNET_DESCRIPTOR).read_bytes()[:4096]
    with pytest.raises(DlibUnsupportedError, match="loss_mmod_"):
        parse_mmod_network(descriptor)


def test_unknown_layer_and_bad_values(dat_bytes: bytes) -> None:
    at = dat_bytes.index(b"bn_con2")
    with pytest.raises(DlibUnsupportedError, match="bn_con9"):
        parse_mmod_network(dat_bytes[:at] + b"bn_con9" + dat_bytes[at + 7 :])
    with pytest.raises(DlibEncodingError):
        parse_mmod_network(b"\x31" + dat_bytes[1:])
    at = dat_bytes.index(b"loss_mmod_") + 10
    assert dat_bytes[at : at + 2] == b"\x01\x01"  # mmod_options version 1
    with pytest.raises(DlibUnsupportedError, match="version 4"):
        parse_mmod_network(dat_bytes[:at] + b"\x01\x04" + dat_bytes[at + 2 :])


def test_random_corruption_never_escapes_as_other_errors(dat_bytes: bytes) -> None:
    rng = np.random.default_rng(6)
    header = 6000  # loss, options, wrappers, input layer, first con and bn_con
    for _ in range(300):
        data = bytearray(dat_bytes[:header])
        for pos in rng.integers(0, header, size=3):
            data[pos] = int(rng.integers(0, 256))
        with pytest.raises(DlibFormatError):
            parse_mmod_network(bytes(data))


def test_other_architecture_is_rejected(dat_bytes: bytes, tmp_path: Path) -> None:
    net = parse_mmod_network(dat_bytes)
    with pytest.raises(DlibLayoutError, match="layers"):
        DlibMmodDetector().load_mmod_network(replace(net, layers=net.layers[:-4] + net.layers[-1:]))
    swapped = replace(net, layers=(net.layers[1], net.layers[0]) + net.layers[2:])
    with pytest.raises(DlibLayoutError, match="layer 0"):
        DlibMmodDetector().load_mmod_network(swapped)
    bad = tmp_path / "bad.dat"
    bad.write_bytes(dat_bytes[:1000])
    with pytest.raises(ModelError):
        load_dlib_mmod(path=bad)
    with pytest.raises(ModelError, match="cannot read"):
        load_dlib_mmod(path=tmp_path / "missing.dat")


def test_packaged_file_with_other_bytes_is_refused(dat_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shield.faces.dlib_models as dlib_models

    other = tmp_path / "mmod_human_face_detector.dat"
    other.write_bytes(dat_bytes[:-4] + b"\x00\x00\x80\x3f")  # last weight changed
    monkeypatch.setattr(dlib_models, "dlib_model_path", lambda name: other)
    with pytest.raises(WeightsChecksumMismatch, match="SHA-256") as info:
        load_dlib_mmod()
    assert isinstance(info.value, ModelError) and "face-recognition-models==0.3.0" in info.value.fix
