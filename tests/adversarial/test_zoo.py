"""The model zoo: catalogue, checksums of shipped weights, import of official checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from shield_tiny_models import randomise

from shield.adversarial import zoo
from shield.adversarial.models import SimSwapGenerator
from shield.adversarial.models._strict import LayoutError, WeightsChecksumError, WeightsMissingError
from shield.adversarial.models.arcface import ArcFace
from shield.adversarial.models.fomm import (
    FOMM,
    VOX_256,
    CheckpointFormatError,
    CheckpointKeyError,
    official_checkpoint,
    save_official_checkpoint,
)
from shield.adversarial.models.fomm.config import TINY
from shield.errors import ModelError
from shield.imaging.hashing import file_sha256

torch.set_num_threads(1)

SMALL_SIMSWAP = {"latent": 16, "blocks": 2, "width": 8}


def _tiny_fomm_spec() -> zoo.ModelSpec:
    return dataclasses.replace(zoo.get_spec("fomm-vox-256"), config=TINY.to_dict())


def _small_simswap_spec() -> zoo.ModelSpec:
    return dataclasses.replace(zoo.get_spec("simswap-224"), config=SMALL_SIMSWAP)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def tiny_fomm(tmp_path: Path) -> tuple[FOMM, Path]:
    torch.manual_seed(0)
    model = randomise(FOMM(TINY), seed=1)
    path = tmp_path / "downloads" / "vox-cpk.pth.tar"
    path.parent.mkdir()
    save_official_checkpoint(model, path, epoch=99)
    return model, path


def _registered(home: Path, name: str) -> bool:
    return (home / "models" / name).exists()


def test_catalogue_names_sources_and_urls() -> None:
    specs = {s.name: s for s in zoo.catalogue()}
    assert set(specs) == {
        "fomm-mini-a", "fomm-mini-b", "faceswap-ae", "dlib-resnet", "fomm-vox-256", "simswap-224", "arcface-r100",
        "dlib-mmod", "mtcnn", "blazeface-short", "blazeface-full", "facemesh", "faceapi-ssd", "faceapi-landmarks68",
        "faceapi-recognition", "cyclegan-vintage", "multistyle26", "iris",
    }  # fmt: skip
    package = [s for s in specs.values() if s.source is zoo.Source.PACKAGE]
    assert len(package) >= 7
    for spec in package:  # every pretrained network: role, source, licence, a hash per file
        assert spec.pretrained and spec.role and spec.origin and spec.licence and (spec.plugin or spec.name == "iris")
        assert spec.files and all(len(f.sha256) == 64 and f.bytes > 0 for f in spec.files)
    assert {n for n, s in specs.items() if s.source is zoo.Source.OFFICIAL} == {"fomm-vox-256", "simswap-224", "arcface-r100"}
    for name in ("fomm-mini-a", "fomm-mini-b", "faceswap-ae", "dlib-resnet"):
        sha = specs[name].sha256
        assert sha is not None and len(sha) == 64
    assert any("yadi.sk" in u for u in specs["fomm-vox-256"].urls)
    assert specs["simswap-224"].urls[0].startswith("https://github.com/neuralchen/SimSwap/releases/")
    assert VOX_256.to_dict() == dict(specs["fomm-vox-256"].config)
    with pytest.raises(zoo.UnknownModelError):
        zoo.get_spec("fomm-vox-512")


def test_shipped_weights_verify_and_resolve(home: Path) -> None:
    report = zoo.verify_all(home=home)
    by_name = {r.name: r for r in report.results}
    assert report.ok
    for name in ("fomm-mini-a", "fomm-mini-b", "faceswap-ae", "dlib-resnet"):
        assert by_name[name].status is zoo.Check.OK, by_name[name]
        assert by_name[name].actual_sha256 == zoo.get_spec(name).sha256
    assert by_name["fomm-vox-256"].status is zoo.Check.NOT_IMPORTED
    assert zoo.resolve("fomm-mini-a", home=home).name == "fomm-mini-a.pt"
    statuses = {e.name: e.status for e in zoo.list_models(home=home)}
    assert statuses["faceswap-ae"] is zoo.Status.SHIPPED and statuses["dlib-resnet"] is zoo.Status.INSTALLED
    assert statuses["simswap-224"] is zoo.Status.NOT_IMPORTED


def test_shipped_model_loads_through_the_zoo(home: Path) -> None:
    model = zoo.load_model("fomm-mini-b", home=home)
    assert isinstance(model, FOMM) and model.resolution == 64 and not model.training


def test_official_fomm_import_round_trip(home: Path, tiny_fomm: tuple[FOMM, Path]) -> None:
    model, src = tiny_fomm
    before = (src.read_bytes(), src.stat().st_mtime_ns)
    record = zoo.import_checkpoint(_tiny_fomm_spec(), src, home=home)
    assert (src.read_bytes(), src.stat().st_mtime_ns) == before  # the user's file is only read
    assert record.file == home / "models" / "fomm-vox-256" / "vox-cpk.pth.tar"
    assert record.file.read_bytes() == before[0]
    assert record.sha256 == record.source_sha256 == file_sha256(src)
    assert record.bytes == src.stat().st_size and record.source_path == src.resolve()
    assert record.config == TINY.to_dict()
    doc = json.loads((record.file.parent / "model.json").read_text())
    assert doc["sha256"] == record.sha256 and doc["kind"] == "fomm"
    assert zoo.imported("fomm-vox-256", home=home) == record
    assert zoo.resolve("fomm-vox-256", home=home) == record.file
    assert zoo.fetch("fomm-vox-256", home=home) == record.file
    loaded = zoo.load_model("fomm-vox-256", home=home)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, x.flip(-1)), loaded(x, x.flip(-1)))
    status = {e.name: e for e in zoo.list_models(home=home)}["fomm-vox-256"]
    assert status.status is zoo.Status.IMPORTED and status.sha256 == record.sha256


def test_simswap_state_dict_round_trip(home: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = randomise(SimSwapGenerator(**SMALL_SIMSWAP), seed=2)
    src = tmp_path / "latest_net_G.pth"
    torch.save(model.state_dict(), src)
    record = zoo.import_checkpoint(_small_simswap_spec(), src, home=home)
    assert record.kind == "simswap" and record.config == SMALL_SIMSWAP
    loaded = zoo.load_model("simswap-224", home=home)
    target = torch.rand(1, 3, 32, 32)
    latent = torch.nn.functional.normalize(torch.randn(1, 16), dim=1)
    with torch.no_grad():
        assert torch.equal(model(target, latent), loaded(target, latent))


def test_wrong_layout_is_rejected_and_nothing_registered(home: Path, tmp_path: Path) -> None:
    doc = official_checkpoint(randomise(FOMM(TINY), seed=3))
    doc["generator"] = {k: v for k, v in doc["generator"].items() if k != "final.bias"}
    src = tmp_path / "vox-cpk.pth.tar"
    torch.save(doc, src)
    with pytest.raises(zoo.ImportRejectedError, match="missing") as info:
        zoo.import_checkpoint(_tiny_fomm_spec(), src, home=home)
    assert isinstance(info.value.__cause__, CheckpointKeyError) and isinstance(info.value, ModelError)
    assert str(src) in info.value.message and ".incoming" not in info.value.message
    assert not _registered(home, "fomm-vox-256") and zoo.imported("fomm-vox-256", home=home) is None
    # a SimSwap file offered as FOMM, and the other way round
    small = tmp_path / "latest_net_G.pth"
    torch.save(SimSwapGenerator(**SMALL_SIMSWAP).state_dict(), small)
    with pytest.raises(zoo.ImportRejectedError):
        zoo.import_checkpoint(_tiny_fomm_spec(), small, home=home)
    with pytest.raises(zoo.ImportRejectedError) as info:
        zoo.import_checkpoint(_small_simswap_spec(), src, home=home)
    assert isinstance(info.value.__cause__, ModelError)
    assert not _registered(home, "fomm-vox-256") and not _registered(home, "simswap-224")


def test_truncated_garbage_and_empty_files_are_rejected(home: Path, tmp_path: Path, tiny_fomm: tuple[FOMM, Path]) -> None:
    _, src = tiny_fomm
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(bytes(range(256)) * 64)
    empty = tmp_path / "empty.pth.tar"
    empty.write_bytes(b"")
    for bad in (truncated, garbage):
        with pytest.raises(zoo.ImportRejectedError) as info:
            zoo.import_checkpoint(_tiny_fomm_spec(), bad, home=home)
        assert isinstance(info.value.__cause__, CheckpointFormatError)
    for bad in (empty, tmp_path / "absent.pth.tar", tmp_path):
        with pytest.raises(zoo.ImportRejectedError):
            zoo.import_checkpoint(_tiny_fomm_spec(), bad, home=home)
    assert not _registered(home, "fomm-vox-256")


def test_non_finite_weights_are_rejected(home: Path, tmp_path: Path) -> None:
    model = randomise(SimSwapGenerator(**SMALL_SIMSWAP), seed=4)
    state = model.state_dict()
    state["up1.1.weight"][0, 0, 0, 0] = float("nan")
    src = tmp_path / "latest_net_G.pth"
    torch.save(state, src)
    with pytest.raises(zoo.ImportRejectedError, match="NaN"):
        zoo.import_checkpoint(_small_simswap_spec(), src, home=home)
    assert not _registered(home, "simswap-224")


def test_tampering_is_found_by_verify_and_resolve(home: Path, tiny_fomm: tuple[FOMM, Path]) -> None:
    record = zoo.import_checkpoint(_tiny_fomm_spec(), tiny_fomm[1], home=home)
    data = bytearray(record.file.read_bytes())
    data[len(data) // 2] ^= 0x01
    record.file.write_bytes(bytes(data))
    report = zoo.verify_all(home=home)
    result = {r.name: r for r in report.results}["fomm-vox-256"]
    assert not report.ok and result.status is zoo.Check.MISMATCH
    assert result.expected_sha256 == record.sha256 != result.actual_sha256
    with pytest.raises(WeightsChecksumError):
        zoo.resolve("fomm-vox-256", home=home)
    record.file.unlink()
    assert {r.name: r for r in zoo.verify_all(home=home).results}["fomm-vox-256"].status is zoo.Check.MISSING
    with pytest.raises(WeightsMissingError):
        zoo.resolve("fomm-vox-256", home=home)
    (record.file.parent / "model.json").write_text("{not json")
    report = zoo.verify_all(home=home)
    assert not report.ok and {r.name: r for r in report.results}["fomm-vox-256"].status is zoo.Check.INVALID
    with pytest.raises(zoo.RecordError):
        zoo.resolve("fomm-vox-256", home=home)


def test_reimport_needs_replace_and_a_failed_replace_keeps_the_old(home: Path, tmp_path: Path, tiny_fomm: tuple[FOMM, Path]) -> None:
    spec = _tiny_fomm_spec()
    first = zoo.import_checkpoint(spec, tiny_fomm[1], home=home)
    assert zoo.import_checkpoint(spec, tiny_fomm[1], home=home) == first  # same file: nothing to do
    other = tmp_path / "other.pth.tar"
    save_official_checkpoint(randomise(FOMM(TINY), seed=9), other)
    with pytest.raises(zoo.ModelExistsError):
        zoo.import_checkpoint(spec, other, home=home)
    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(zoo.ImportRejectedError):
        zoo.import_checkpoint(spec, bad, home=home, replace=True)
    assert zoo.imported("fomm-vox-256", home=home) == first and zoo.verify_all(home=home).ok
    assert sorted(p.name for p in first.file.parent.iterdir()) == ["model.json", "vox-cpk.pth.tar"]
    second = zoo.import_checkpoint(spec, other, home=home, replace=True)
    assert second.sha256 != first.sha256 and second.file.read_bytes() == other.read_bytes()
    assert zoo.verify_all(home=home).ok


def test_fetch_never_downloads_and_names_the_url(home: Path) -> None:
    with pytest.raises(zoo.DownloadRefusedError) as info:
        zoo.fetch("fomm-vox-256", home=home)
    assert "never downloads" in info.value.message and "https://drive.google.com/" in info.value.message
    assert "shield models import fomm-vox-256" in info.value.fix
    with pytest.raises(zoo.ModelNotImportedError) as missing:
        zoo.resolve("arcface-r100", home=home)
    assert "arcface_checkpoint.tar" in missing.value.message
    info_shipped = zoo.fetch_info("faceswap-ae", home=home)
    assert info_shipped.available and info_shipped.import_command is None
    assert zoo.fetch("faceswap-ae", home=home) == info_shipped.path


def test_shipped_models_are_not_importable(home: Path, tiny_fomm: tuple[FOMM, Path]) -> None:
    with pytest.raises(zoo.NotImportableError):
        zoo.import_checkpoint("fomm-mini-a", tiny_fomm[1], home=home)
    with pytest.raises(zoo.UnknownModelError):
        zoo.import_checkpoint("fomm-mini-z", tiny_fomm[1], home=home)
    assert not (home / "models").exists()


@pytest.mark.slow
def test_full_size_official_fomm_and_simswap_import(home: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    fomm = randomise(FOMM(VOX_256), seed=5)
    src = tmp_path / "vox-cpk.pth.tar"
    save_official_checkpoint(fomm, src, epoch=99)
    record = zoo.import_checkpoint("fomm-vox-256", src, home=home)
    assert record.config == VOX_256.to_dict() and record.sha256 == file_sha256(src)
    del fomm
    simswap = randomise(SimSwapGenerator(), seed=6)
    gen = tmp_path / "latest_net_G.pth"
    torch.save(simswap.state_dict(), gen)
    assert zoo.import_checkpoint("simswap-224", gen, home=home).config == {"latent": 512, "blocks": 9, "width": 64}
    assert zoo.verify_all(home=home).ok


@pytest.mark.slow
def test_arcface_import_converts_and_finds_the_depth(home: Path, tmp_path: Path) -> None:
    net = randomise(ArcFace(50), seed=7)
    src = tmp_path / "arcface_checkpoint.tar"
    torch.save(net.state_dict(), src)
    record = zoo.import_checkpoint("arcface-r100", src, home=home)
    assert record.config == {"depth": 50} and record.file.name == "arcface-r100.pth"
    loaded = zoo.load_model("arcface-r100", home=home)
    x = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    wrong = tmp_path / "wrong.tar"
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3)}, wrong)
    with pytest.raises(zoo.ImportRejectedError) as info:
        zoo.import_checkpoint("arcface-r100", wrong, home=home, replace=True)
    assert isinstance(info.value.__cause__, LayoutError)
    assert zoo.imported("arcface-r100", home=home) == record
