"""The library run on a local Ray instance started by the test: both transfers (input and
output bytes through the object store; a path every actor sees), two actors, one ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shield.config import Settings
from shield.pipeline import ProtectOptions
from shield.pipeline.library import RUN_DIR, LibraryOptions, protect_library
from tests.library.conftest import needs_anvil, write_photos

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install 'shield[ray]'); not installed here")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


@needs_anvil
@pytest.mark.parametrize("transfer", ["bytes", "path"])
def test_folder_run_on_local_ray(transfer: str, tmp_path: Path, lib_settings: Settings, local_ray: Any) -> None:
    write_photos(tmp_path / "lib", 3, corrupt_at=0)
    out = tmp_path / "out"
    options = LibraryOptions(out, workers=2, batch_size=2, ray_address="auto", ray_transfer=transfer)
    report = protect_library([tmp_path / "lib"], lib_settings, ProtectOptions(adversarial=False), options)
    assert [f.input.name for f in report.failures] == ["p00x-broken.jpg"]
    assert sorted(o.output.name for o in report.protected) == ["p00.shield.png", "p01.shield.png", "p02.shield.png"]
    assert report.anchored == 3
    assert all((out / f"p{i:02d}.shield.png").is_file() for i in range(3))
    assert not any((out / RUN_DIR / "staged").iterdir())
    assert local_ray.is_initialized(), "a run on the caller's Ray instance leaves it running"
