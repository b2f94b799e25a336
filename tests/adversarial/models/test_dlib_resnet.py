"""The PyTorch port of dlib's face descriptor against dlib itself, and the .dat reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models import SAME_PERSON_THRESHOLD, DlibFaceDescriptor, load_dlib_descriptor
from shield.adversarial.models.dlib_dat import (
    DlibEncodingError,
    DlibFormatError,
    DlibLayoutError,
    DlibTruncatedError,
    DlibUnsupportedError,
    parse_dlib_network,
    read_dlib_network,
)
from shield.errors import ModelError, NoFaceError
from shield.faces import AlignTarget, align, detect_faces
from shield.faces.dlib_models import RESNET_DESCRIPTOR, dlib_model_path
from shield.tensors import to_tensor

TOLERANCE = 1e-3  # issue 5: max absolute difference per descriptor component

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def port() -> DlibFaceDescriptor:
    return load_dlib_descriptor()


@pytest.fixture(scope="module")
def reference():
    import dlib

    return dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_DESCRIPTOR)))


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return dlib_model_path(RESNET_DESCRIPTOR).read_bytes()


def _describe_both(port: DlibFaceDescriptor, reference, chip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(reference.compute_face_descriptor(chip), dtype=np.float64)
    with torch.no_grad():
        ours = port(to_tensor(chip))[0].double().numpy()
    return ref, ours


def test_astronaut_matches_dlib(port: DlibFaceDescriptor, reference) -> None:
    import dlib

    rgb = skimage.data.astronaut()
    rect = dlib.get_frontal_face_detector()(rgb, 1)[0]
    shape = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))(rgb, rect)
    chip = np.asarray(dlib.get_face_chip(rgb, shape, size=150, padding=0.25))
    ref, ours = _describe_both(port, reference, chip)
    assert np.abs(ref - ours).max() <= TOLERANCE
    # dlib's whole-image entry point (jitter 0, padding 0.25) describes the same chip
    whole = np.asarray(reference.compute_face_descriptor(rgb, shape, 0, 0.25))
    assert np.abs(whole - ours).max() <= TOLERANCE
    assert 0.5 < np.linalg.norm(ours) < 2.0


def test_descriptor_is_differentiable_and_frozen(port: DlibFaceDescriptor) -> None:
    chip = torch.rand(2, 3, 150, 150, requires_grad=True)
    out = port(chip)
    assert out.shape == (2, 128)
    out.pow(2).sum().backward()
    assert chip.grad is not None and chip.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in port.parameters())
    assert not port.training


def test_other_weights_still_match_dlib(dat_bytes: bytes, tmp_path: Path, reference) -> None:
    """Rewrite every weight of the file (same layout), load it in dlib and in the port."""
    import dlib

    net = parse_dlib_network(dat_bytes)
    assert len(net.param_spans) == 29 + 29 + 1  # conv, affine, fc
    data = bytearray(dat_bytes)
    rng = np.random.default_rng(3)
    for offset, count in net.param_spans:
        values = np.frombuffer(dat_bytes, "<f4", count, offset)
        scaled = values * rng.uniform(0.5, 1.5, count).astype(np.float32)
        data[offset : offset + 4 * count] = scaled.astype("<f4").tobytes()
    path = tmp_path / "reweighted.dat"
    path.write_bytes(bytes(data))
    chip = np.asarray(Image.fromarray(skimage.data.astronaut()[60:260, 140:340]).resize((150, 150)))
    ref = np.asarray(dlib.face_recognition_model_v1(str(path)).compute_face_descriptor(chip))
    with torch.no_grad():
        ours = load_dlib_descriptor(path=path)(to_tensor(chip))[0].double().numpy()
        original = load_dlib_descriptor()(to_tensor(chip))[0].double().numpy()
    assert np.abs(ref - ours).max() <= TOLERANCE * max(1.0, float(np.abs(ref).max()))
    assert np.abs(ours - original).max() > 10 * TOLERANCE  # the weights really changed


def test_rejects_wrong_chip_size(port: DlibFaceDescriptor) -> None:
    with pytest.raises(ValueError, match="150"):
        port(torch.rand(1, 3, 112, 112))


@pytest.mark.slow
def test_shared_photos_match_dlib(shared_data: Path, port: DlibFaceDescriptor, reference) -> None:
    worst, described = 0.0, 0
    for path in sorted((shared_data / "photos").glob("*.jpg")):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        try:
            faces = detect_faces(rgb, upsample=0, max_side=1000)
        except NoFaceError:
            continue
        for face in faces:
            ref, ours = _describe_both(port, reference, align(rgb, face, AlignTarget.DLIB_150).image)
            diff = float(np.abs(ref - ours).max())
            assert diff <= TOLERANCE, f"{path.name}: max abs diff {diff}"
            worst, described = max(worst, diff), described + 1
    assert described >= 60  # the shared set has 85 photos, nearly all with a detectable face


def test_same_person_threshold_separates_identities(port: DlibFaceDescriptor) -> None:
    rgb = skimage.data.astronaut()
    chip = to_tensor(align(rgb, detect_faces(rgb)[0], AlignTarget.DLIB_150).image)
    with torch.no_grad():
        a = port(chip)
        b = port(torch.flip(chip, dims=[3]))  # mirrored face: same person
        c = port(torch.rand_like(chip))  # noise: nobody
    assert torch.dist(a, b) < SAME_PERSON_THRESHOLD < torch.dist(a, c)


# --- the .dat reader on malformed input -------------------------------------------------


def test_real_file_parses_completely() -> None:
    net = read_dlib_network(dlib_model_path(RESNET_DESCRIPTOR))
    assert net.loss == "loss_metric_2"
    assert (net.input.rows, net.input.cols) == (150, 150)
    assert net.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-3)
    assert sum(type(layer).__name__ == "ConvLayer" for layer in net.layers) == 29


@pytest.mark.parametrize("cut", [0, 1, 5, 300, 340, 20_000, 1_000_000, -1])
def test_truncated_file(dat_bytes: bytes, cut: int) -> None:
    with pytest.raises(DlibTruncatedError):
        parse_dlib_network(dat_bytes[:cut])


def test_trailing_bytes(dat_bytes: bytes) -> None:
    with pytest.raises(DlibLayoutError, match="unexpected bytes"):
        parse_dlib_network(dat_bytes + b"\x00")


def test_bad_integer_control_byte(dat_bytes: bytes) -> None:
    with pytest.raises(DlibEncodingError):
        parse_dlib_network(b"\x31" + dat_bytes[1:])


def test_unknown_layer_name(dat_bytes: bytes) -> None:
    at = dat_bytes.index(b"con_4")
    with pytest.raises(DlibUnsupportedError, match="con_9"):
        parse_dlib_network(dat_bytes[:at] + b"con_9" + dat_bytes[at + 5 :])


def test_forged_tensor_size(dat_bytes: bytes) -> None:
    # first con params header: version 2, then num_samples 4736 as "\x02\x80\x12"
    at = dat_bytes.index(b"con_4") + 5
    assert dat_bytes[at : at + 5] == b"\x01\x02\x02\x80\x12"
    forged = dat_bytes[: at + 2] + b"\x04\xff\xff\xff\x7f" + dat_bytes[at + 5 :]
    with pytest.raises(DlibLayoutError, match="limit|elements"):
        parse_dlib_network(forged)


def test_bad_bool(dat_bytes: bytes) -> None:
    at = dat_bytes.index(b"relu_") + 5
    assert dat_bytes[at : at + 3] == b"110"
    with pytest.raises(DlibEncodingError, match="bool"):
        parse_dlib_network(dat_bytes[:at] + b"7" + dat_bytes[at + 1 :])


def test_random_corruption_never_escapes_as_other_errors(dat_bytes: bytes) -> None:
    # The header region (loss, wrapper versions, input layer, first conv) holds every
    # primitive type; cutting the stream after it makes each case end in an error fast.
    rng = np.random.default_rng(5)
    header = 20_000
    for _ in range(300):
        data = bytearray(dat_bytes[:header])
        for pos in rng.integers(0, header, size=3):
            data[pos] = int(rng.integers(0, 256))
        with pytest.raises(DlibFormatError):
            parse_dlib_network(bytes(data))


def test_other_architecture_is_rejected(dat_bytes: bytes, tmp_path: Path) -> None:
    net = parse_dlib_network(dat_bytes)
    from dataclasses import replace

    shorter = replace(net, layers=net.layers[:-3] + net.layers[-2:])
    with pytest.raises(DlibLayoutError):
        DlibFaceDescriptor().load_dlib_network(shorter)
    bad = tmp_path / "bad.dat"
    bad.write_bytes(dat_bytes[:1000])
    with pytest.raises(ModelError):
        load_dlib_descriptor(path=bad)
    with pytest.raises(ModelError, match="cannot read"):
        load_dlib_descriptor(path=tmp_path / "missing.dat")
