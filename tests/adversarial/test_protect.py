"""Face-aware protection recipe (shield.adversarial.protect) on tiny random models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shield_tiny_models import tiny_threat_models
from skimage import data

from shield.adversarial.attacks import FommDistortion, KeypointDisplacement
from shield.adversarial.face_views import FaceGeometry, affine_crop, largest_face, locate_faces
from shield.adversarial.models.arcface import ArcFace
from shield.adversarial.models.fomm import FOMM
from shield.adversarial.models.simswap import SimSwapGenerator
from shield.adversarial.presets import PRESETS, RUIZ_BASELINE, get_preset
from shield.adversarial.protect import _face_region, _terms, _whole_region, protect_pixels, texture_mask
from shield.adversarial.threats import Target
from shield.adversarial.threats.fomm_mini import FommMiniA, FommTarget
from shield.adversarial.threats.fomm_vox import FommVox
from shield.adversarial.threats.simswap import SimSwap
from shield.adversarial.threats.arcface import ArcFaceR100
from shield.adversarial.models.fomm.config import TINY
from shield.errors import InputError, NoFaceError
from shield.faces import crop_matrix, detect_faces
from shield.tensors import to_tensor

torch.set_num_threads(1)

QUICK = replace(
    PRESETS["balanced"], name="quick", steps=3, motions=3, motions_per_step=2,
    weights={"fomm-mini-a": 1.0, "faceswap-ae": 1.0, "dlib-resnet": 0.01, "fomm-vox-256": 1.0, "simswap-224": 1.0, "arcface-r100": 0.01},
)  # fmt: skip


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return np.array(data.astronaut())


@pytest.fixture(scope="module")
def face(portrait: np.ndarray) -> FaceGeometry:
    faces = locate_faces(portrait)
    assert faces, "dlib finds the astronaut's face"
    return largest_face(faces)


def test_budget_holds_after_quantisation_and_outside_the_face_nothing_changes(portrait: np.ndarray, face: FaceGeometry) -> None:
    result = protect_pixels(portrait, strength=QUICK, seed=1, models=tiny_threat_models(identity=True), faces=[face])
    assert result.rgb.dtype == np.uint8 and result.rgb.shape == portrait.shape
    change = np.abs(result.rgb.astype(np.int16) - portrait.astype(np.int16))
    assert 0 < change.max() <= int(QUICK.eps * 255)
    assert np.array_equal(result.delta, result.rgb.astype(np.int16) - portrait.astype(np.int16))
    x0, y0, x1, y1 = result.faces[0].region
    outside = change.copy()
    outside[y0:y1, x0:x1] = 0
    assert outside.max() == 0
    assert 30 < result.psnr < 100 and 0.9 < result.ssim <= 1
    assert result.faces[0].psnr > 20 * np.log10(255 / 4) - 0.5  # the RMS budget of 4/255
    assert set(result.self_check) == {"fomm-mini-a", "faceswap-ae", "dlib-resnet"}
    assert result.params["seed"] == 1 and result.params["eps_8bit"] == 16
    record = result.manifest_record()
    assert record["applied"] and record["self_check"]["fomm-mini-a"]["trials"] == 16
    assert set(record["stages"][0]) == {"fomm-mini-a", "faceswap-ae", "dlib-resnet"}
    assert record["self_check"]["dlib-resnet"]["role"] == "identity"


def test_a_seeded_run_is_reproducible(portrait: np.ndarray, face: FaceGeometry) -> None:
    models = tiny_threat_models()
    a = protect_pixels(portrait, strength=QUICK, seed=7, models=models, faces=[face])
    b = protect_pixels(portrait, strength=QUICK, seed=7, models=models, faces=[face])
    c = protect_pixels(portrait, strength=QUICK, seed=8, models=models, faces=[face])
    assert np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.rgb, c.rgb)


def test_protection_disrupts_the_attacked_model_more_than_noise(portrait: np.ndarray, face: FaceGeometry) -> None:
    models = tiny_threat_models()
    preset = replace(RUIZ_BASELINE, steps=8, motions=4, motions_per_step=4)
    result = protect_pixels(portrait, strength=preset, seed=0, models=models, faces=[face])
    limit = int(preset.eps * 255)
    noise = np.random.default_rng(0).choice([-limit, limit], size=result.delta.shape) * (result.delta != 0)
    noisy = np.clip(portrait.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    target = models[0]
    assert isinstance(target, FommMiniA)
    fomm = target.fomm
    view = face.fomm_view(fomm.resolution)

    def recon_error(img: np.ndarray) -> float:
        with torch.no_grad():
            src = affine_crop(to_tensor(img), view)
            clean = affine_crop(to_tensor(portrait), view)
            return float((fomm(src, clean) - fomm(clean, clean)).pow(2).mean())

    assert recon_error(result.rgb) > 2 * recon_error(noisy) > 0


def test_no_face_raises_unless_whole_frame_is_asked() -> None:
    flat = np.full((64, 80, 3), 120, dtype=np.uint8)
    flat[:, 40:] = 30
    models = tiny_threat_models()
    with pytest.raises(NoFaceError):
        protect_pixels(flat, strength=QUICK, seed=0, models=models)
    result = protect_pixels(flat, strength=replace(QUICK, perceptual=False), seed=0, whole_frame=True, models=models)
    assert result.params["whole_frame"] is True and len(result.faces) == 1
    assert result.faces[0].region == (0, 0, 80, 64)
    assert 0 < np.abs(result.delta).max() <= 16


def test_nonface_images_of_the_shared_data_are_refused(shared_data: Path) -> None:
    path = sorted((shared_data / "nonfaces").iterdir())[0]
    img = np.array(Image.open(path).convert("RGB").resize((160, 160)))
    with pytest.raises(NoFaceError):
        protect_pixels(img, strength=QUICK, seed=0, models=tiny_threat_models())


def test_progress_is_reported_per_attack_step(portrait: np.ndarray, face: FaceGeometry) -> None:
    calls: list[tuple[str, int]] = []

    def progress(total: int) -> Callable[[int], None]:
        calls.append(("total", total))
        return lambda n: calls.append(("advance", n))

    protect_pixels(portrait, strength=QUICK, seed=0, models=tiny_threat_models(), faces=[face, face], progress=progress)
    assert calls == [("total", 2 * QUICK.steps)] + [("advance", 1)] * (2 * QUICK.steps)


def test_texture_mask_spares_flat_areas() -> None:
    x = torch.full((1, 3, 32, 32), 0.5)
    x[..., 16:] = torch.rand(1, 3, 32, 16, generator=torch.Generator().manual_seed(0))
    mask = texture_mask(x)
    assert float(mask[..., 4:12, 2:10].max()) == pytest.approx(0.5)
    assert float(mask[..., 20:28, 24:30].min()) > 0.9


def test_presets_are_a_frozen_table() -> None:
    assert list(PRESETS) == ["fast", "balanced", "max"]
    assert get_preset("fast").steps < get_preset("balanced").steps < get_preset("max").steps
    with pytest.raises(InputError):
        get_preset("extreme")
    with pytest.raises(TypeError):
        PRESETS["fast"] = QUICK  # type: ignore[index]


def _with_simswap(models: list[Target]) -> list[Target]:
    """``models`` plus a narrow one-block SimSwap and the smallest IR-SE ArcFace (random weights)."""
    from shield.adversarial.attacks.losses import SimSwapLatent

    torch.manual_seed(3)
    arcface = ArcFace(50).eval()
    return [*models, SimSwap(SimSwapGenerator(latent=512, blocks=1, width=8).eval(), arcface), ArcFaceR100(SimSwapLatent(arcface))]


def test_the_simswap_view_is_the_arcface_224_template_crop(portrait: np.ndarray, face: FaceGeometry) -> None:
    detected = max(detect_faces(portrait), key=lambda f: f.box.area)
    expected = crop_matrix(detected, "arcface_224")
    region = _face_region(face, _with_simswap(tiny_threat_models()), portrait.shape[1], portrait.shape[0])
    view = region.views["simswap-224"]
    assert view.size == 224
    assert np.allclose(view.shifted(-region.x0, -region.y0).matrix, expected, atol=1e-9)


def test_simswap_and_arcface_are_attacked_and_recorded(portrait: np.ndarray, face: FaceGeometry) -> None:
    models = _with_simswap(tiny_threat_models())
    preset = replace(QUICK, steps=2, eot=None)
    result = protect_pixels(portrait, strength=preset, seed=2, models=models, faces=[face])
    assert result.params["models"] == ["fomm-mini-a", "faceswap-ae", "simswap-224", "arcface-r100"]
    check = result.self_check["simswap-224"]
    assert check.trials == 5 and check.tested == 1  # own + 2 held-out latents, 2 targets
    assert result.self_check["arcface-r100"].measure > 0
    change = np.abs(result.delta).max()
    assert 0 < change <= 16
    region = _face_region(face, models, portrait.shape[1], portrait.shape[0])
    x = to_tensor(portrait)[..., region.y0 : region.y1, region.x0 : region.x1]
    terms = _terms(models, region, preset, torch.Generator().manual_seed(0))
    assert {t.name for t in terms} == {"fomm", "keypoints", "swap", "simswap", "identity"}
    assert affine_crop(x, region.views["arcface-r100"]).shape == (1, 3, 224, 224)
    assert not {"simswap-224", "arcface-r100"} & set(PRESETS["fast"].attacked())  # too slow for fast: ~5 s per step


def _with_vox(models: list[Target], resolution: int = 64) -> list[Target]:
    """``models`` plus an official-architecture FOMM (default 64 px, twice the tiny surrogate's 32), random weights."""
    torch.manual_seed(4)
    return [*models, FommVox(FOMM(replace(TINY, resolution=resolution)).eval())]


def test_an_official_fomm_is_attacked_on_its_own_crop_and_self_checked(portrait: np.ndarray, face: FaceGeometry) -> None:
    models = _with_vox(tiny_threat_models())
    target = models[-1]
    assert isinstance(target, FommTarget)
    vox = target.fomm
    region = _face_region(face, models, portrait.shape[1], portrait.shape[0])
    mini, official = region.views["fomm-mini-a"], region.views["fomm-vox-256"]
    assert (mini.size, official.size) == (32, 64)
    assert np.allclose(official.matrix, 2 * mini.matrix + np.array([0, 0, 0.5]), atol=1e-9)  # same square, 2x
    terms = _terms(models, region, QUICK, torch.Generator().manual_seed(0))
    on_vox = [t for t in terms if vox in t.networks()]
    assert [type(t) for t in on_vox] == [FommDistortion, KeypointDisplacement]
    assert isinstance(on_vox[0], FommDistortion) and on_vox[0].per_step == 1 and len(on_vox[0].motions) == QUICK.motions
    output_only = _terms(models, region, replace(QUICK, output_only=True), torch.Generator())
    assert [type(t) for t in output_only if vox in t.networks()] == [FommDistortion]
    assert "fomm-vox-256" not in PRESETS["fast"].attacked()

    preset = replace(QUICK, steps=2, eot=None)
    result = protect_pixels(portrait, strength=preset, seed=3, models=models, faces=[face])
    assert result.params["models"] == ["fomm-mini-a", "faceswap-ae", "fomm-vox-256"]
    check = result.self_check["fomm-vox-256"]
    assert check.trials == 16 and check.tested == 1
    assert result.manifest_record()["self_check"]["fomm-vox-256"]["trials"] == 16


def test_the_official_fomm_changes_the_attack_only_when_weighted(portrait: np.ndarray, face: FaceGeometry) -> None:
    plain = tiny_threat_models()
    # At the surrogate's resolution its crop adds nothing to the region (a finer crop
    # reaches half a pixel closer to the square's edge and widens the feathered mask).
    models = _with_vox(plain, resolution=32)
    preset = replace(QUICK, steps=2, eot=None)
    unweighted = replace(preset, weights={**preset.weights, "fomm-vox-256": 0.0})
    without = protect_pixels(portrait, strength=preset, seed=5, models=plain, faces=[face])
    measured_only = protect_pixels(portrait, strength=unweighted, seed=5, models=models, faces=[face])
    attacked = protect_pixels(portrait, strength=preset, seed=5, models=models, faces=[face])
    assert set(without.self_check) == {"fomm-mini-a", "faceswap-ae"}
    assert np.array_equal(measured_only.rgb, without.rgb)
    assert measured_only.self_check["fomm-mini-a"] == without.self_check["fomm-mini-a"]
    assert "fomm-vox-256" not in measured_only.self_check  # not attacked, so not measured (keeps `fast` fast)
    assert "fomm-vox-256" not in measured_only.params["models"]
    assert "fomm-vox-256" in attacked.self_check and "fomm-vox-256" in attacked.params["models"]
    assert not np.array_equal(attacked.rgb, without.rgb)


def test_the_whole_frame_fallback_gives_the_official_fomm_its_square(portrait: np.ndarray) -> None:
    models = _with_vox(tiny_threat_models())
    region = _whole_region(models, 80, 64)
    assert region.views["fomm-vox-256"].size == 64 and region.views["fomm-mini-a"].size == 32
    flat = np.full((64, 80, 3), 120, dtype=np.uint8)
    flat[:, 40:] = 30
    result = protect_pixels(flat, strength=replace(QUICK, steps=2, eot=None, perceptual=False), seed=0, whole_frame=True, models=models)
    assert result.self_check["fomm-vox-256"].trials == 16


def test_perceptual_shaping_removes_the_colour_cast_and_keeps_the_budget(portrait: np.ndarray, face: FaceGeometry) -> None:
    from shield.adversarial.metrics import colour_shift

    models = tiny_threat_models()
    assert QUICK.shaping is not None
    shaped = protect_pixels(portrait, strength=QUICK, seed=3, models=models, faces=[face])
    plain = protect_pixels(portrait, strength=replace(QUICK, shaping=None), seed=3, models=models, faces=[face])
    assert shaped.params["shaping"]["chroma"] == QUICK.shaping.chroma and plain.params["shaping"] is None
    x0, y0, x1, y1 = shaped.faces[0].region
    clean = to_tensor(portrait[y0:y1, x0:x1])
    a = colour_shift(to_tensor(shaped.rgb[y0:y1, x0:x1]), clean)
    b = colour_shift(to_tensor(plain.rgb[y0:y1, x0:x1]), clean)
    assert a.local_chroma < 0.5 * b.local_chroma and a.local_luma < 0.5 * b.local_luma
    assert (a.cb + a.cr) < 0.9 * (b.cb + b.cr)
    assert 0 < np.abs(shaped.delta).max() <= int(QUICK.eps * 255)


def test_a_large_face_is_attacked_at_the_networks_scale_and_keeps_its_budget(portrait: np.ndarray) -> None:
    from shield.adversarial.protect import MAX_SHAPED_FACE_SIDE, _work_scale

    big = np.array(Image.fromarray(portrait).resize((1536, 1536), Image.Resampling.LANCZOS))
    large = largest_face(locate_faces(big))
    models = tiny_threat_models(identity=True)
    region = _face_region(large, models, 1536, 1536)
    side = max(large.box[2] - large.box[0], large.box[3] - large.box[1])
    scale = _work_scale(region, region.y1 - region.y0, region.x1 - region.x0, QUICK)
    assert side > MAX_SHAPED_FACE_SIDE and scale == pytest.approx(MAX_SHAPED_FACE_SIDE / side)
    assert _work_scale(_whole_region(models, 1536, 1536), 1536, 1536, QUICK) == pytest.approx(640 / 1536)
    result = protect_pixels(big, strength=QUICK, seed=2, models=models, faces=[large])
    change = np.abs(result.rgb.astype(np.int16) - big.astype(np.int16))
    assert 0 < change.max() <= int(QUICK.eps * 255)
    x0, y0, x1, y1 = result.faces[0].region
    assert change[:y0].max() == 0 and change[y1:].max() == 0 and change[:, :x0].max() == 0 and change[:, x1:].max() == 0
    # upsampled, the perturbation keeps the energy the work copy gave it: 39 dB on the face
    # here, where a 1 px blur before the upsampling left 48 dB
    assert result.faces[0].psnr < 44
