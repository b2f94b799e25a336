"""vintagify's CycleGAN generator: strict loading, gradients, and agreement with vintagify's own model code.

The reference is ``vintagify/generator.py`` of the installed wheel, executed on its own
(``import vintagify`` would pull in torchvision and matplotlib for the CLI, which shield
does not install); that file needs only torch and is the class vintagify's inference runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from shield.adversarial.models._strict import CheckpointReadError, LayoutError
from shield.adversarial.models.cyclegan import (
    PARAMETERS,
    REQUIREMENT,
    SHA256,
    SIZE_BYTES,
    WEIGHTS_FILE,
    VintageCycleGAN,
    load_vintage_cyclegan,
    vintagify_view,
)
from shield.adversarial.models.package_files import pypi_file
from shield.errors import ModelError
from shield.tensors import to_tensor

#: Port vs vintagify's own ResnetGenerator, same input, [0, 1] output units. Measured:
#: 0.0 (the same torch operators in the same order) on astronaut and the shared photos.
TOLERANCE = 1e-5
#: vintagify_view vs vintagify's PIL resize + centre crop, in grey levels (8-bit rounding).
VIEW_MAX_LEVELS = 1.0
#: Test resolution: a 128 px crop keeps each forward pass well under a second on one core.
SIDE = 128

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def port() -> VintageCycleGAN:
    return load_vintage_cyclegan()


@pytest.fixture(scope="module")
def weights_path() -> Path:
    return pypi_file("vintagify", WEIGHTS_FILE, REQUIREMENT)


@pytest.fixture(scope="module")
def reference(weights_path: Path) -> Any:
    """vintagify's ResnetGenerator with the released weights, as its inference loads it."""
    source = pypi_file("vintagify", "generator.py", REQUIREMENT)
    spec = importlib.util.spec_from_file_location("vintagify_generator_reference", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.ResnetGenerator()
    net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    return net.eval()


def _reference_output(reference: Any, x: torch.Tensor) -> torch.Tensor:
    """vintagify's inference: normalise to [-1, 1], generator, ``(y + 1) / 2``."""
    with torch.no_grad():
        return (reference(x * 2.0 - 1.0) + 1.0) / 2.0


def _pil_view(rgb: np.ndarray, size: int) -> np.ndarray:
    """torchvision ``Resize(size + 30)`` + ``CenterCrop(size)`` on a PIL image, written out."""
    img = Image.fromarray(rgb)
    w, h = img.size
    short = size + 30
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    resized = img.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    return np.asarray(resized.crop((left, top, left + size, top + size)))


def _photo(shared_data: Path, index: int = 0) -> np.ndarray:
    paths = sorted((shared_data / "photos").glob("*.jpg"))
    return np.asarray(Image.open(paths[index]).convert("RGB"))


def test_loads_strictly_and_frozen(port: VintageCycleGAN, weights_path: Path) -> None:
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    assert set(state) == set(port.state_dict())
    assert sum(p.numel() for p in port.parameters()) == PARAMETERS
    assert not port.training
    assert not any(p.requires_grad for p in port.parameters())


def test_constants_describe_the_installed_file(weights_path: Path) -> None:
    data = weights_path.read_bytes()
    assert len(data) == SIZE_BYTES
    assert hashlib.sha256(data).hexdigest() == SHA256


def test_corrupt_or_foreign_files_raise_typed_errors(weights_path: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(weights_path.read_bytes()[:4096])
    with pytest.raises(CheckpointReadError):
        load_vintage_cyclegan(path=garbage)
    with pytest.raises(CheckpointReadError):
        load_vintage_cyclegan(path=tmp_path / "missing.pth")
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    missing = dict(state)
    del missing["model.10.block.5.weight"]
    torch.save(missing, tmp_path / "missing_key.pth")
    with pytest.raises(LayoutError, match="model.10.block.5.weight"):
        load_vintage_cyclegan(path=tmp_path / "missing_key.pth")
    wrong = dict(state)
    wrong["model.26.weight"] = torch.zeros(3, 64, 5, 5)
    torch.save(wrong, tmp_path / "wrong_shape.pth")
    with pytest.raises(LayoutError, match="model.26.weight"):
        load_vintage_cyclegan(path=tmp_path / "wrong_shape.pth")
    extra = dict(state, **{"model.27.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ModelError, match="model.27.weight"):
        load_vintage_cyclegan(path=tmp_path / "extra.pth")


def test_astronaut_matches_vintagify(port: VintageCycleGAN, reference: Any) -> None:
    x = vintagify_view(to_tensor(skimage.data.astronaut()), SIDE)
    with torch.no_grad():
        ours = port(x)
    ref = _reference_output(reference, x)
    assert ours.shape == x.shape
    assert float((ours - ref).abs().max()) <= TOLERANCE
    assert 0.0 <= float(ours.min()) and float(ours.max()) <= 1.0
    assert float((ours - x).abs().mean()) > 0.02  # it does change the photo


def test_shared_photos_match_vintagify(shared_data: Path, port: VintageCycleGAN, reference: Any) -> None:
    for index in (0, 7, 30):
        x = vintagify_view(to_tensor(_photo(shared_data, index)), SIDE)
        with torch.no_grad():
            ours = port(x)
        assert float((ours - _reference_output(reference, x)).abs().max()) <= TOLERANCE


def _check_gradient(port: VintageCycleGAN, rgb: np.ndarray) -> None:
    image = to_tensor(rgb).requires_grad_(True)
    out = port(vintagify_view(image, SIDE))
    out.mean().backward()
    assert image.grad is not None
    assert bool(torch.isfinite(image.grad).all()) and float(image.grad.abs().sum()) > 0


def test_gradient_reaches_the_astronaut_pixels(port: VintageCycleGAN) -> None:
    _check_gradient(port, skimage.data.astronaut())


def test_gradient_reaches_a_shared_photo(shared_data: Path, port: VintageCycleGAN) -> None:
    _check_gradient(port, _photo(shared_data, 3))


def test_sides_not_divisible_by_four_keep_their_size(port: VintageCycleGAN, reference: Any) -> None:
    x = vintagify_view(to_tensor(skimage.data.astronaut()), SIDE)[:, :, :, :126]
    with torch.no_grad():
        ours = port(x[:, :, :125])
    assert ours.shape == (1, 3, 125, 126)
    padded = torch.nn.functional.pad(x[:, :, :125], (0, 2, 0, 3), mode="reflect")
    ref = _reference_output(reference, padded)[:, :, :125, :126]
    assert float((ours - ref).abs().max()) <= TOLERANCE


def test_view_matches_vintagify_preprocessing() -> None:
    rgb = skimage.data.astronaut()[:400]  # not square: the shorter side is the height
    ref = _pil_view(rgb, SIDE).astype(np.float32)
    ours = vintagify_view(to_tensor(rgb), SIDE)[0].permute(1, 2, 0).numpy() * 255.0
    assert ours.shape == ref.shape == (SIDE, SIDE, 3)
    assert float(np.abs(ours - ref).max()) <= VIEW_MAX_LEVELS


def test_rejects_wrong_shapes(port: VintageCycleGAN) -> None:
    with pytest.raises(ValueError, match="B, 3, H, W"):
        port(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="H, W >= 8"):
        port(torch.rand(1, 3, 7, 64))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        vintagify_view(torch.rand(1, 4, 64, 64))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda(port: VintageCycleGAN) -> None:
    x = vintagify_view(to_tensor(skimage.data.astronaut()), 64)
    with torch.no_grad():
        cpu = port(x)
        gpu = load_vintage_cyclegan("cuda")(x.cuda()).cpu()
    assert float((cpu - gpu).abs().max()) <= 1e-3  # TF32/cuDNN convolutions, not bit-equal
