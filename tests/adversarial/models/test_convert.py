"""Conversion of a pickled whole ArcFace module into a state dict, without running pickled code."""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from shield.adversarial.models import ArcFace, convert_arcface
from shield.adversarial.models._strict import CheckpointReadError, LayoutError
from shield.adversarial.models.arcface import _IRBlock, load_arcface
from shield.adversarial.models.convert import extract_state_dict, main

torch.set_num_threads(1)
ORIGINAL = "models.arcface_models"
NAMES = {"ArcFace": "ResNet", "_IRBlock": "IRBlock", "_SE": "SEBlock"}


@pytest.fixture()
def fake_original() -> Iterator[types.ModuleType]:
    """A stand-in for the original repository's module, present only while pickling."""
    pkg, mod = types.ModuleType("models"), types.ModuleType(ORIGINAL)
    sys.modules["models"], sys.modules[ORIGINAL] = pkg, mod
    try:
        yield mod
    finally:
        del sys.modules[ORIGINAL], sys.modules["models"]


def _as_original(model: torch.nn.Module, mod: types.ModuleType) -> torch.nn.Module:
    """Re-class our modules as ``models.arcface_models.{ResNet,IRBlock,SEBlock}``, as in the released file."""
    made: dict[type, type] = {}
    for sub in model.modules():
        cls = type(sub)
        if cls.__name__ in NAMES:
            if cls not in made:
                made[cls] = type(NAMES[cls.__name__], (cls,), {"__module__": ORIGINAL})
                setattr(mod, NAMES[cls.__name__], made[cls])
            sub.__class__ = made[cls]
    return model


def _as_original_file(model: torch.nn.Module, mod: types.ModuleType, path: Path, zipfile: bool = True) -> None:
    torch.save(_as_original(model, mod), path, _use_new_zipfile_serialization=zipfile)
    del sys.modules[ORIGINAL]  # the original code is not importable when converting


@pytest.mark.parametrize("zipfile", [True, False])
@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code for container")  # the stand-in classes live in a made-up module, as pickled originals do
def test_pickled_blocks_extract_exactly(tmp_path: Path, fake_original: types.ModuleType, zipfile: bool) -> None:
    torch.manual_seed(0)
    block = _IRBlock(16, 32, stride=2)
    reference = {k: v.clone() for k, v in block.state_dict().items()}
    src = tmp_path / "block.tar"
    try:
        _as_original_file(block, fake_original, src, zipfile)
        state = extract_state_dict(src)
    finally:
        sys.modules[ORIGINAL] = fake_original
    assert state.keys() == reference.keys()
    assert "se.fc.1.weight" in state and "downsample.1.running_var" in state
    assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_wrapped_module_is_unwrapped(tmp_path: Path) -> None:
    block = _IRBlock(16, 16)  # SE hidden width channels // 16: at least one
    src = tmp_path / "wrapped.tar"
    torch.save({"model": torch.nn.DataParallel(block), "epoch": 3}, src)
    state = extract_state_dict(src)
    assert state.keys() == block.state_dict().keys()


@pytest.mark.slow
def test_full_arcface_module_converts_to_strict_state_dict(tmp_path: Path, fake_original: types.ModuleType) -> None:
    torch.manual_seed(0)
    model = ArcFace(101).eval()
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    src = tmp_path / "arcface_checkpoint.tar"
    try:
        _as_original_file(model, fake_original, src)
        dst = tmp_path / "arcface.pth"
        state = convert_arcface(src, dst, depth=101)
        with pytest.raises(LayoutError):
            convert_arcface(src, tmp_path / "wrong.pth", depth=50)
    finally:
        sys.modules[ORIGINAL] = fake_original
    assert not (tmp_path / "wrong.pth").exists()
    assert state.keys() == reference.keys()
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    loaded = load_arcface(dst, depth=101)
    fresh = ArcFace(101)
    fresh.load_state_dict(reference)
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(loaded(x), fresh.eval()(x))
    with pytest.raises(CheckpointReadError):
        load_arcface(src, depth=101)  # the raw pickle is refused by the state-dict loader


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = torch.nn.Sequential(torch.nn.Linear(2, 2))
    hostile.payload = _Hostile(marker)  # type: ignore[assignment]
    src = tmp_path / "evil.tar"
    torch.save(hostile, src)
    state = extract_state_dict(src)
    assert set(state) == {"0.weight", "0.bias"}
    torch.save({"x": _Hostile(marker)}, src)
    with pytest.raises(CheckpointReadError):
        extract_state_dict(src)
    assert not marker.exists()


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(CheckpointReadError):
        extract_state_dict(tmp_path / "absent.tar")
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a pickle at all")
    with pytest.raises(CheckpointReadError):
        extract_state_dict(junk)
    assert main([str(junk), str(tmp_path / "o.pth")]) == 1
