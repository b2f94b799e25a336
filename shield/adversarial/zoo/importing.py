"""Loading, validating and importing checkpoints (torch is imported only here).

:func:`import_checkpoint` validates an official checkpoint (strict layout and shapes
through the model's own loader, finite weights, one forward pass on a small input)
before it copies it into the zoo and writes its record; :func:`load_model` loads any
catalogue model, checksum-checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shield.adversarial.zoo.registry import (
    MAX_IMPORT_BYTES,
    ImportedModel,
    ImportRejectedError,
    ModelExistsError,
    ModelSpec,
    NotImportableError,
    Source,
    _existing,
    _write_record,
    get_spec,
    imported,
    models_dir,
    resolve,
)
from shield.errors import ModelError
from shield.imaging.hashing import file_sha256

if TYPE_CHECKING:
    from torch import nn

__all__ = ["import_checkpoint", "load_model"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


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
