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
from shield.adversarial.face_views import FaceGeometry, locate_faces
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
    face = max(locate_faces(portrait), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    preset = replace(PRESETS["fast"], steps=2, weights={"toy-blur": 1.0})
    models = load_ensemble({"toy-blur": 1.0})
    result = protect_pixels(portrait, strength=preset, seed=0, models=models, faces=[face])
    assert result.params["models"] == ["toy-blur"]
    check = result.self_check["toy-blur"]
    assert check.role == "generator" and check.tested == 1 and check.measure > 0
    assert result.faces[0].stages["toy-blur"].what == "output MSE on [-1,1]"


def test_the_clean_photo_breaks_no_stage() -> None:
    portrait = np.array(data.astronaut())
    face = max(locate_faces(portrait), key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
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
