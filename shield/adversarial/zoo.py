"""The model zoo: every named model shield knows, its weights file and SHA-256.

Three sources of weights:

- ``shipped``: the project's surrogates inside the package (``shield/adversarial/weights``),
  each with its SHA-256 and configuration recorded in a JSON description beside it;
- ``package``: dlib's face descriptor from the ``face-recognition-models`` PyPI package;
- ``official``: released checkpoints of the reference models (FOMM vox-256, SimSwap 224
  and its ArcFace). Users download them themselves and register them with
  :func:`import_checkpoint`; shield never downloads anything, at run time or otherwise.

Importing validates the file before anything is registered: strict layout and shapes
through the model's own loader, finite weights, and one forward pass on a small input.
The accepted file is copied (the ArcFace module is converted to a plain state dict)
atomically into ``<home>/models/<name>/`` with a ``model.json`` record holding its
SHA-256, size, source and configuration. :func:`verify_all` re-hashes every shipped and
imported file against its record. Spec: ../shared/specs/deepfake-models.md.
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shield.errors import ModelError
from shield.imaging.hashing import file_sha256

if TYPE_CHECKING:
    from torch import nn

__all__ = [
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
    "catalogue",
    "get_spec",
    "models_dir",
    "list_models",
    "verify_all",
    "import_checkpoint",
    "imported",
    "resolve",
    "fetch_info",
    "fetch",
    "load_model",
]

log = logging.getLogger(__name__)

#: torch.load reads a whole checkpoint into memory; the largest official file (FOMM
#: vox-cpk.pth.tar with discriminator and optimizer states) is about 0.7 GB.
MAX_IMPORT_BYTES = 2 * 1024**3
#: SHA-256 of dlib_face_recognition_resnet_model_v1.dat as installed by face-recognition-models 0.3.0.
DLIB_RESNET_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
RECORD_NAME = "model.json"
RECORD_FORMAT = "shield-model-record/1"
_WEIGHTS = Path(__file__).resolve().parent / "weights"
_CHUNK = 1 << 20


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
    """Every check; ``ok`` is false when any is MISMATCH, MISSING or INVALID."""

    ok: bool
    results: tuple[CheckResult, ...]


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
    ),
    ModelSpec(
        "simswap-224", "simswap", Source.OFFICIAL,
        "official SimSwap 224 face-swap generator; white-box target once imported (needs arcface-r100)",
        "latest_net_G.pth", {"latent": 512, "blocks": 9, "width": 64},
        urls=(f"{_SIMSWAP_RELEASE}/checkpoints.zip", _SIMSWAP_DRIVE),
        note="unzip checkpoints.zip; the 224 generator is latest_net_G.pth in its people folder",
        licence="CC BY-NC 4.0 (non-commercial)",
    ),
    ModelSpec(
        "arcface-r100", "arcface", Source.OFFICIAL,
        "SimSwap's ArcFace IR-SE identity network (SE-LResNet101E-IR); gives SimSwap its identity latent",
        "arcface_checkpoint.tar", {"depth": 101},
        urls=(f"{_SIMSWAP_RELEASE}/arcface_checkpoint.tar", _SIMSWAP_DRIVE),
        note="a pickled whole module: import converts it to a plain state dict without running code from it",
        licence="CC BY-NC 4.0 (non-commercial)",
    ),
)  # fmt: skip


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _shipped() -> list[ModelSpec]:
    fomm_doc = (_read_json(_WEIGHTS / "fomm-mini.json") or {}).get("models", {})
    ae_doc = _read_json(_WEIGHTS / "faceswap-ae.json") or {}
    purposes = {
        "fomm-mini-a": "reenactment surrogate (64 px FOMM) attacked by `shield protect`",
        "fomm-mini-b": "held-out reenactment surrogate: measures transfer in benchmarks",
    }
    specs = []
    for name, purpose in purposes.items():
        entry = fomm_doc.get(name, {}) if isinstance(fomm_doc, dict) else {}
        specs.append(
            ModelSpec(name, "fomm", Source.SHIPPED, purpose, f"{name}.pt", entry.get("config", {}), entry.get("sha256"))
        )
    specs.append(
        ModelSpec(
            "faceswap-ae", "faceswap-ae", Source.SHIPPED,
            "face-swap surrogate (64 px shared-encoder autoencoder) attacked by `shield protect`",
            "faceswap-ae.pt", ae_doc.get("config", {}), ae_doc.get("sha256"),
        )
    )  # fmt: skip
    specs.append(
        ModelSpec(
            "dlib-resnet", "dlib-resnet", Source.PACKAGE,
            "dlib face descriptor (torch port): identity loss of `shield protect`, same-person rate in benchmarks",
            "dlib_face_recognition_resnet_model_v1.dat", {"chip": 150, "descriptor": 128}, DLIB_RESNET_SHA256,
            note="from the face-recognition-models PyPI package: pip install face-recognition-models==0.3.0",
            licence="CC0 (dlib model release)",
        )
    )  # fmt: skip
    return specs


def catalogue() -> tuple[ModelSpec, ...]:
    """Every model shield knows: shipped, package and official ones."""
    return (*_shipped(), *_OFFICIAL)


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


def _dlib_path() -> Path | None:
    from shield.faces.dlib_models import RESNET_DESCRIPTOR, dlib_model_path

    try:
        return dlib_model_path(RESNET_DESCRIPTOR)
    except ModelError:
        return None


def _local_path(spec: ModelSpec) -> Path | None:
    """The shipped or package file, or None when it is not installed."""
    if spec.source is Source.PACKAGE:
        return _dlib_path()
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
        rows.append(ModelEntry(spec.name, spec.kind, spec.source, status, spec.purpose, path, size, digest))
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
        return _check_file(spec.name, _dlib_path(), spec.sha256, spec.note)
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
    results = tuple(_check(spec, home) for spec in catalogue())
    ok = all(r.status in (Check.OK, Check.NOT_IMPORTED) for r in results)
    return VerifyReport(ok, results)


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


def load_model(name: str, device: str = "cpu", *, home: Path | None = None) -> nn.Module:
    """Load ``name`` (checksum-checked, frozen, eval mode) on ``device``.

    Raises:
        ModelError: see :func:`resolve`, and the loaders' layout errors.
    """
    spec = get_spec(name)
    path = resolve(name, home=home)
    record = imported(name, home=home) if spec.source is Source.OFFICIAL else None
    config = record.config if record is not None else dict(spec.config)
    if spec.source is Source.SHIPPED and spec.kind == "fomm":
        from shield.adversarial.models.fomm import load_fomm_file

        return load_fomm_file(path, device)  # the shipped fp16 format carries its own config
    return _LOADERS[spec.kind](path, config, device)


# --- loading and validating checkpoints (torch is imported only from here on) ---


def _frozen(model: nn.Module, device: str) -> nn.Module:
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _load_fomm(path: Path, config: Mapping[str, Any], device: str) -> nn.Module:
    from shield.adversarial.models.fomm import FommConfig, load_official_checkpoint

    return load_official_checkpoint(path, FommConfig.from_dict(dict(config)), device)


def _load_faceswap(path: Path, config: Mapping[str, Any], device: str) -> nn.Module:
    from shield.adversarial.models.autoencoder import load_faceswap_ae

    return load_faceswap_ae(device, weights=path)


def _load_dlib(path: Path, config: Mapping[str, Any], device: str) -> nn.Module:
    from shield.adversarial.models.dlib_resnet import load_dlib_descriptor

    return load_dlib_descriptor(device, path=path)


def _load_simswap(path: Path, config: Mapping[str, Any], device: str) -> nn.Module:
    from shield.adversarial.models._strict import load_strict, read_state_dict
    from shield.adversarial.models.simswap import SimSwapGenerator

    model = SimSwapGenerator(**{k: int(v) for k, v in config.items()})
    load_strict(model, read_state_dict(path), "SimSwap generator")
    return _frozen(model, device)


def _load_arcface(path: Path, config: Mapping[str, Any], device: str) -> nn.Module:
    from shield.adversarial.models.arcface import load_arcface

    return load_arcface(path, depth=int(config["depth"]), device=device)


_LOADERS: dict[str, Callable[[Path, Mapping[str, Any], str], nn.Module]] = {
    "fomm": _load_fomm,
    "faceswap-ae": _load_faceswap,
    "dlib-resnet": _load_dlib,
    "simswap": _load_simswap,
    "arcface": _load_arcface,
}


def _require_finite(model: nn.Module, what: str) -> None:
    import torch

    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ImportRejectedError(f"{what}: {key} holds NaN or infinite values")


def _probe_output(out: Any, what: str, *, unit_range: bool) -> None:
    import torch

    if not bool(torch.isfinite(out).all()):
        raise ImportRejectedError(f"{what}: a forward pass on a test input gives NaN or infinite values")
    if unit_range and (float(out.min()) < 0.0 or float(out.max()) > 1.0):
        raise ImportRejectedError(f"{what}: a forward pass gives values outside [0, 1]")


def _copy_hashed(src: Path, dst: Path) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` (fsynced) and return the SHA-256 and size of what was written."""
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as fin, dst.open("xb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest(), size


def _fomm_probe_size(config: Any) -> int:
    """The smallest input side the architecture accepts (the forward check stays cheap)."""
    import dataclasses

    from shield.errors import ConfigError

    for side in range(16, config.resolution, 16):
        try:
            dataclasses.replace(config, resolution=side)
        except ConfigError:
            continue
        return side
    return int(config.resolution)


def _prepare_fomm(spec: ModelSpec, src: Path, tmp: Path) -> dict[str, Any]:
    import torch

    from shield.adversarial.models.fomm import FommConfig, load_official_checkpoint

    _copy_hashed(src, tmp)
    config = FommConfig.from_dict(dict(spec.config))
    model = load_official_checkpoint(tmp, config)
    _require_finite(model, spec.name)
    side = _fomm_probe_size(config)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _probe_output(model(x, x.flip(-1)), spec.name, unit_range=True)
    return config.to_dict()


def _prepare_simswap(spec: ModelSpec, src: Path, tmp: Path) -> dict[str, Any]:
    import torch

    _copy_hashed(src, tmp)
    config = {k: int(v) for k, v in spec.config.items()}
    model = _load_simswap(tmp, config, "cpu")
    _require_finite(model, spec.name)
    g = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 64, 64, generator=g)
    latent = torch.nn.functional.normalize(torch.randn(1, config["latent"], generator=g), dim=1)
    with torch.no_grad():
        _probe_output(model(target, latent), spec.name, unit_range=True)
    return config


def _prepare_arcface(spec: ModelSpec, src: Path, tmp: Path) -> dict[str, Any]:
    """Convert the pickled module (read with the restricted unpickler) and find its depth."""
    import torch

    from shield.adversarial.models._strict import LayoutError, load_strict
    from shield.adversarial.models.arcface import ARCFACE_DEPTHS, ArcFace, load_arcface
    from shield.adversarial.models.convert import extract_state_dict

    state = extract_state_dict(src)
    preferred = int(spec.config.get("depth", 101))
    first_error: LayoutError | None = None
    for depth in (preferred, *(d for d in ARCFACE_DEPTHS if d != preferred)):
        try:
            load_strict(ArcFace(depth), state, f"ArcFace IR-SE-{depth}")
        except LayoutError as exc:
            first_error = first_error or exc
            continue
        with tmp.open("xb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        model = load_arcface(tmp, depth=depth)
        _require_finite(model, spec.name)
        x = torch.rand(2, 3, 112, 112, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            _probe_output(model(x), spec.name, unit_range=False)
        return {"depth": depth}
    assert first_error is not None
    raise first_error


_PREPARERS: dict[str, Callable[[ModelSpec, Path, Path], dict[str, Any]]] = {
    "fomm": _prepare_fomm,
    "simswap": _prepare_simswap,
    "arcface": _prepare_arcface,
}
_STORED_NAMES = {"arcface": "{name}.pth"}


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
    tmp = directory / f".{RECORD_NAME}.{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, directory / RECORD_NAME)


def _existing(directory: Path, replace: bool) -> ImportedModel | None:
    if not (directory / RECORD_NAME).exists():
        return None
    try:
        return _read_record(directory)
    except RecordError:
        if replace:
            return None
        raise


def import_checkpoint(
    name: str | ModelSpec,
    path: Path | str,
    *,
    home: Path | None = None,
    replace: bool = False,
    now: datetime | None = None,
) -> ImportedModel:
    """Validate an official checkpoint and register it under ``<home>/models/<name>/``.

    The file is copied (ArcFace: converted) into a temporary file beside its final
    place, the copy is loaded strictly and run once on a small random input, and only
    then moved into place and recorded. On any failure nothing is registered and an
    earlier import of the same model is left as it was. The user's file is only read.

    Args:
        name: an official catalogue name, or a :class:`ModelSpec` (a different config).
        path: the downloaded file.
        home: settings home (default: from the settings).
        replace: replace an earlier import of a different file.
        now: the import time to record (default: the current UTC time).

    Raises:
        UnknownModelError: no such model.
        NotImportableError: a shipped or package model.
        ImportRejectedError: missing, empty, oversized, unreadable or wrong-layout file.
        ModelExistsError: a different file is imported already and ``replace`` is false.
        OutputError: the models folder cannot be written.
    """
    from shield.errors import OutputError

    spec = name if isinstance(name, ModelSpec) else get_spec(name)
    if spec.source is not Source.OFFICIAL:
        raise NotImportableError(f"{spec.name} comes with shield ({spec.source.value}); there is nothing to import")
    src = Path(path)
    fix = f"pass {spec.file_name} as downloaded from {spec.urls[0] if spec.urls else 'its official release'}"
    if not src.is_file():
        raise ImportRejectedError(f"{src}: no such file", fix=fix)
    size = src.stat().st_size
    if size == 0 or size > MAX_IMPORT_BYTES:
        raise ImportRejectedError(f"{src}: {size} bytes is not a plausible {spec.file_name} (limit {MAX_IMPORT_BYTES})", fix=fix)
    directory = models_dir(home) / spec.name
    previous = _existing(directory, replace)
    try:
        source_sha256 = file_sha256(src)
    except OSError as exc:
        raise ImportRejectedError(f"{src}: cannot read it: {exc.strerror}", fix=fix) from exc
    if previous is not None and previous.source_sha256 == source_sha256 and previous.file.is_file():
        if file_sha256(previous.file) == previous.sha256:
            return previous
    if previous is not None and not replace:
        raise ModelExistsError(
            f"{spec.name} is already imported from a different file ({previous.source_path})",
            fix=f"pass --replace to register {src} instead",
        )
    created = not directory.exists()
    tmp = directory / f".incoming-{uuid.uuid4().hex}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        try:
            config = _PREPARERS[spec.kind](spec, src, tmp)
        except (ImportRejectedError, OSError):
            raise
        except ModelError as exc:
            reason = exc.message.replace(f"{tmp}: ", "").replace(str(tmp), str(src))
            raise ImportRejectedError(f"{src} is not a valid {spec.name} checkpoint: {reason}", fix=fix) from exc
        digest, nbytes = file_sha256(tmp), tmp.stat().st_size
        final = directory / _STORED_NAMES.get(spec.kind, "{file}").format(name=spec.name, file=spec.file_name)
        os.replace(tmp, final)
        record = ImportedModel(
            spec.name, spec.kind, final, digest, nbytes, src.resolve(),
            digest if spec.kind != "arcface" else source_sha256,
            (now or datetime.now(UTC)).astimezone(UTC), config,
        )  # fmt: skip
        _write_record(directory, record)
    except OSError as exc:
        raise OutputError(f"cannot write the imported model into {directory}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        if created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    log.info("imported %s from %s (sha256 %s)", spec.name, src, digest)
    return record
