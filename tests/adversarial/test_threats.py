"""The threat-model protocol: plug-ins from the catalogue, one registered from one file, official imports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from shield_tiny_models import randomise, tiny_threat_models
from skimage import data
from toy_threat import ToyBlur

from shield.adversarial import zoo
from shield.adversarial.face_views import largest_face, locate_faces
from shield.adversarial.models.detections import Detection
from shield.adversarial.models.fomm import FOMM, save_official_checkpoint
from shield.adversarial.models.fomm.config import TINY
from shield.adversarial.presets import HELD_OUT, PRESETS, RUIZ_BASELINE, check_weights
from shield.adversarial.protect import protect_pixels
from shield.adversarial.threats import Role, Target, UnknownThreatModelError, load_ensemble, names, plugin, register, role_of, unregister
from shield.adversarial.threats.fomm_vox import FommVox
from shield.errors import ConfigError, ModelError

torch.set_num_threads(1)


@pytest.fixture()
def toy() -> Iterator[type[Target]]:
    register(ToyBlur)
    yield ToyBlur
    unregister(ToyBlur.name)


def test_every_catalogue_plug_in_imports_and_has_its_catalogue_role() -> None:
    listed = names()
    assert {"mtcnn", "blazeface-short", "facemesh", "dlib-resnet", "cyclegan-vintage", "fomm-mini-a"} <= set(listed)
    for name in listed:
        cls = plugin(name)
        assert cls.name == name and cls.role is role_of(name)
    pretrained = [s for s in zoo.catalogue() if s.pretrained and s.source is zoo.Source.PACKAGE]
    assert len(pretrained) >= 7 and all(s.files and s.licence and s.sha256 for s in pretrained)


def test_unknown_names_are_typed_errors() -> None:
    with pytest.raises(UnknownThreatModelError):
        plugin("no-such-network")
    with pytest.raises(UnknownThreatModelError):
        check_weights({"no-such-network": 1.0})


def test_presets_attack_only_registered_networks_and_never_a_held_out_one() -> None:
    for preset in (*PRESETS.values(), RUIZ_BASELINE):
        check_weights(preset.weights)
        assert not set(preset.attacked()) & set(HELD_OUT)
    with pytest.raises(ConfigError, match="held-out"):
        check_weights({"faceapi-recognition": 1.0})
    with pytest.raises(ConfigError):
        check_weights({"mtcnn": -1.0})
    roles = {role_of(name) for name in HELD_OUT}
    assert {Role.DETECTOR, Role.LANDMARKS, Role.IDENTITY, Role.GENERATOR} <= roles


def test_a_toy_plug_in_registered_from_one_file_is_attacked_and_self_checked(toy: type[Target]) -> None:
    assert "toy-blur" in names(Role.GENERATOR) and role_of("toy-blur") is Role.GENERATOR
    with pytest.raises(ValueError, match="already exists"):
        register(ToyBlur)
    portrait = np.array(data.astronaut())
    face = largest_face(locate_faces(portrait))
    preset = replace(PRESETS["fast"], steps=2, weights={"toy-blur": 1.0})
    models = load_ensemble({"toy-blur": 1.0})
    result = protect_pixels(portrait, strength=preset, seed=0, models=models, faces=[face])
    assert result.params["models"] == ["toy-blur"]
    check = result.self_check["toy-blur"]
    assert check.role == "generator" and check.tested == 1 and check.measure > 0
    assert result.faces[0].stages["toy-blur"].what == "output MSE on [-1,1]"


def test_the_clean_photo_breaks_no_stage() -> None:
    portrait = np.array(data.astronaut())
    face = largest_face(locate_faces(portrait))
    x = torch.from_numpy(portrait).permute(2, 0, 1)[None].float() / 255
    for target in tiny_threat_models(identity=True):
        view = target.view(face, portrait.shape[1], portrait.shape[0])
        assert view is not None
        verdict = target.check(x, x.clone(), lambda t, v=view: __import__("shield.adversarial.face_views", fromlist=["affine_crop"]).affine_crop(t, v))
        assert verdict.broken is False, target.name


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SHIELD_HOME", str(home))
    monkeypatch.setenv("SHIELD_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture()
def vox(tmp_path: Path) -> tuple[FOMM, Path]:
    model = randomise(FOMM(TINY), 5)
    assert isinstance(model, FOMM)
    path = tmp_path / "vox-cpk.pth.tar"
    save_official_checkpoint(model, path)
    return model, path


def test_official_networks_join_the_ensemble_only_once_imported(home: Path, vox: tuple[FOMM, Path]) -> None:
    model, path = vox
    weights = {"fomm-mini-a": 1.0, "fomm-vox-256": 1.0, "simswap-224": 1.0}
    assert [t.name for t in load_ensemble(weights)] == ["fomm-mini-a"]
    spec = dataclasses.replace(zoo.get_spec("fomm-vox-256"), config=TINY.to_dict())
    record = zoo.import_checkpoint(spec, path, home=home)
    loaded = load_ensemble(weights)
    assert [t.name for t in loaded] == ["fomm-mini-a", "fomm-vox-256"]  # SimSwap needs its own import
    vox_target = loaded[1]
    assert isinstance(vox_target, FommVox)
    sa, sb = vox_target.fomm.state_dict(), model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    doc_path = record.file.parent / "model.json"
    doc = json.loads(doc_path.read_text())
    doc["config"] = {**doc["config"], "resolution": 33}
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="invalid configuration"):
        load_ensemble(weights)


def test_the_five_point_view_fits_the_arcface_template_to_a_detectors_points() -> None:
    from shield.adversarial.face_views import five_point_view
    from shield.faces.align import ARCFACE_TEMPLATE_112

    angle, scale, shift = 0.2, 2.5, np.array([300.0, 120.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = ARCFACE_TEMPLATE_112 @ rot.T + shift  # the template placed in a photo
    view = five_point_view(points, 150)
    mapped = points @ view.matrix[:, :2].T + view.matrix[:, 2]
    np.testing.assert_allclose(mapped, ARCFACE_TEMPLATE_112 * 150 / 112, atol=1e-6)
    assert view.size == 150 and view.scale() == pytest.approx(150 / 112 / scale)
    for bad in (points[:4], np.full((5, 2), np.nan)):
        with pytest.raises(ValueError, match="points"):
            five_point_view(bad, 150)


class _PointDetector(torch.nn.Module):
    """A detector stub that reports one face with fixed five points (or none)."""

    def __init__(self, *faces: np.ndarray) -> None:
        super().__init__()
        self.faces = faces

    def detect(self, image: torch.Tensor) -> list[Detection]:
        out = []
        for points in self.faces:
            x0, y0 = points.min(0) - 10
            x1, y1 = points.max(0) + 10
            out.append(Detection((float(x0), float(y0), float(x1), float(y1)), 0.99, points))
        return out


def test_the_identity_term_on_the_detectors_alignment_reads_the_face_where_the_points_are() -> None:
    from shield.adversarial.face_views import affine_crop, five_point_view
    from shield.adversarial.threats.dlib_resnet import MtcnnAlignedPushAway
    from shield.faces.align import ARCFACE_TEMPLATE_112

    points = ARCFACE_TEMPLATE_112 * 0.8 + np.array([20.0, 10.0])
    embedder = torch.nn.Sequential(torch.nn.AvgPool2d(8), torch.nn.Flatten()).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 128, 128, generator=gen)
    term = MtcnnAlignedPushAway(embedder, _PointDetector(points), size=32, threshold=0.6, jitter=0.0)
    with pytest.raises(RuntimeError, match="prepare"):
        term(x, gen)
    term.prepare(x)
    assert float(term(x, gen)) == pytest.approx(0.0, abs=1e-5)
    view = five_point_view(points, 32)
    # A change inside the aligned crop moves the term; the same change far outside it does not.
    inside, outside = x.clone(), x.clone()
    x0, y0, x1, y1 = (int(v) for v in (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max()))
    inside[..., y0:y1, x0:x1] = 1 - inside[..., y0:y1, x0:x1]
    outside[..., 120:, 120:] = 0
    assert float(term(inside, gen)) > 0.05
    assert float(term(outside, gen)) == pytest.approx(0.0, abs=1e-5)
    assert torch.allclose(affine_crop(x, view), affine_crop(outside, view))
    # Jitter draws a different alignment each evaluation; without a clean face the term is 0.
    jittered = MtcnnAlignedPushAway(embedder, _PointDetector(points), size=32, threshold=0.6, jitter=0.05)
    jittered.prepare(x)
    a, b = jittered.view(gen), jittered.view(gen)
    assert a is not None and b is not None and not np.allclose(a.matrix, b.matrix)
    empty = MtcnnAlignedPushAway(embedder, _PointDetector(), size=32, threshold=0.6)
    empty.prepare(x)
    y = x.clone().requires_grad_(True)
    loss = empty(y, gen)
    loss.backward()
    assert float(loss.detach()) == 0.0 and y.grad is not None and float(y.grad.abs().sum()) == 0.0


def test_with_several_detections_the_aligned_term_keeps_the_face_of_the_encoders_own_view() -> None:
    from shield.adversarial.face_views import affine_crop, five_point_view
    from shield.adversarial.threats.dlib_resnet import MtcnnAlignedPushAway
    from shield.faces.align import ARCFACE_TEMPLATE_112

    big = ARCFACE_TEMPLATE_112 * 0.8 + np.array([2.0, 2.0])
    small = ARCFACE_TEMPLATE_112 * 0.5 + np.array([150.0, 100.0])
    embedder = torch.nn.Sequential(torch.nn.AvgPool2d(8), torch.nn.Flatten()).eval()
    x = torch.rand(1, 3, 200, 220, generator=torch.Generator().manual_seed(1))
    x[..., 100:, 150:] *= 0.2  # the two faces read differently
    for reference, expected in ((None, big), (five_point_view(small, 32), small), (five_point_view(big, 32), big)):
        crop = None if reference is None else (lambda t, v=reference: affine_crop(t, v))
        term = MtcnnAlignedPushAway(embedder, _PointDetector(big, small), size=32, threshold=0.6, reference=crop, jitter=0.0)
        term.prepare(x)
        view = term.view(torch.Generator())
        assert view is not None and np.allclose(view.matrix, five_point_view(expected, 32).matrix)
