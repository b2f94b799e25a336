"""Loading the threat models: shipped surrogates plus the official checkpoints a user imported."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
from shield_tiny_models import randomise

from shield.adversarial import zoo
from shield.adversarial.models.fomm import FOMM, CheckpointShapeError, save_official_checkpoint
from shield.adversarial.threat_models import (
    ARCFACE,
    FOMM_VOX,
    SIMSWAP,
    ThreatModels,
    _imported_official,
    load_official_models,
    load_threat_models,
)
from shield.adversarial.models.fomm.config import TINY
from shield.errors import ModelError

torch.set_num_threads(1)


def _randomised_fomm(seed: int) -> FOMM:
    """An official-architecture FOMM at the TINY configuration, random weights and BatchNorm statistics."""
    model = randomise(FOMM(TINY), seed)
    assert isinstance(model, FOMM)
    return model


@pytest.fixture()
def vox(tmp_path: Path) -> tuple[FOMM, Path]:
    model = _randomised_fomm(seed=5)
    path = tmp_path / "vox-cpk.pth.tar"
    save_official_checkpoint(model, path)
    return model, path


def _same_weights(a: FOMM, b: FOMM) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_the_official_fomm_loads_alone_and_frozen(vox: tuple[FOMM, Path]) -> None:
    model, path = vox
    loaded = load_official_models({FOMM_VOX: path}, fomm_config=TINY)
    assert loaded.simswap is None and loaded.arcface is None
    assert loaded.fomm is not None and _same_weights(loaded.fomm, model)
    assert not loaded.fomm.training and not any(p.requires_grad for p in loaded.fomm.parameters())
    assert load_official_models({}) == (None, None, None)


def test_an_official_fomm_of_another_configuration_is_refused(vox: tuple[FOMM, Path]) -> None:
    _, path = vox
    wider = dataclasses.replace(TINY, generator=dataclasses.replace(TINY.generator, block_expansion=8))
    with pytest.raises(CheckpointShapeError):
        load_official_models({FOMM_VOX: path}, fomm_config=wider)
    with pytest.raises(ModelError, match="no official threat model"):
        load_official_models({"fomm-vox-512": path})


def test_threat_models_gain_the_official_fomm_when_handed_its_file(vox: tuple[FOMM, Path]) -> None:
    model, path = vox
    models = load_threat_models(official={FOMM_VOX: path}, fomm_config=TINY)
    assert models.fomm_official is not None and _same_weights(models.fomm_official, model)
    assert models.fomm is not None and models.fomm.resolution == 64  # the shipped surrogate stays
    assert models.names() == ["fomm-mini-a", FOMM_VOX, "faceswap-ae", "dlib-resnet"]
    plain = load_threat_models(official={})
    assert plain.fomm_official is None and FOMM_VOX not in plain.names()


def test_names_list_the_official_fomm_after_the_surrogate() -> None:
    tiny = _randomised_fomm(seed=1)
    models = ThreatModels(fomm=tiny, faceswap=None, identity=None, fomm_official=tiny)
    assert models.names() == ["fomm-mini-a", FOMM_VOX]
    assert ThreatModels(fomm=None, faceswap=None, identity=None, fomm_official=tiny).names() == [FOMM_VOX]


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("SHIELD_HOME", str(home))
    monkeypatch.setenv("SHIELD_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.chdir(tmp_path)
    return home


def test_an_imported_vox_256_is_picked_alone(
    home: Path, vox: tuple[FOMM, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, path = vox
    assert _imported_official().paths == {}
    spec = dataclasses.replace(zoo.get_spec(FOMM_VOX), config=TINY.to_dict())
    record = zoo.import_checkpoint(spec, path, home=home)
    found = _imported_official()
    assert found.paths == {FOMM_VOX: record.file} and found.fomm_config == TINY
    loaded = load_official_models(found.paths, fomm_config=found.fomm_config)
    assert loaded.fomm is not None and loaded.simswap is None

    real = zoo.imported

    def arcface_only(name: str, *, home: Path | None = None) -> zoo.ImportedModel | None:
        return record if name == ARCFACE else None if name == SIMSWAP else real(name, home=home)

    monkeypatch.setattr(zoo, "imported", arcface_only)
    with caplog.at_level(logging.WARNING):
        half = _imported_official()
    assert half.paths == {FOMM_VOX: record.file}  # SimSwap needs both; the FOMM does not
    assert "SimSwap needs both" in caplog.text


def test_an_invalid_recorded_configuration_is_a_model_error(home: Path, vox: tuple[FOMM, Path]) -> None:
    _, path = vox
    spec = dataclasses.replace(zoo.get_spec(FOMM_VOX), config=TINY.to_dict())
    record = zoo.import_checkpoint(spec, path, home=home)
    doc_path = record.file.parent / "model.json"
    doc = json.loads(doc_path.read_text())
    doc["config"] = {**doc["config"], "resolution": 33}
    doc_path.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="invalid configuration"):
        _imported_official()
