"""Break tests of every role on constructed cases, and the attack breaking a real ported network.

All on bundled images (skimage's astronaut portrait and cat), so they always run; the
attack is also run on one real photo of ../shared/data (skipped when it is absent).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from shield.adversarial.face_views import FaceGeometry, affine_crop, largest_face, locate_faces
from shield.adversarial.pipeline_check import MtcnnDlib, pipeline_verdict
from shield.adversarial.presets import PRESETS
from shield.adversarial.protect import protect_pixels
from shield.adversarial.threats import Target, load_targets
from shield.tensors import to_tensor

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return np.array(data.astronaut())


@pytest.fixture(scope="module")
def face(portrait: np.ndarray) -> FaceGeometry:
    return largest_face(locate_faces(portrait))


def _verdict(target: Target, face: FaceGeometry, clean: np.ndarray, other: np.ndarray) -> bool | None:
    view = target.view(face, clean.shape[1], clean.shape[0])
    assert view is not None
    return target.check(to_tensor(clean), to_tensor(other), lambda x: affine_crop(x, view)).broken


@pytest.fixture(scope="module")
def targets() -> dict[str, Target]:
    return {t.name: t for t in load_targets(["blazeface-short", "facemesh", "dlib-resnet", "multistyle26"])}


def test_the_clean_photo_breaks_no_stage(portrait: np.ndarray, face: FaceGeometry, targets: dict[str, Target]) -> None:
    for name, target in targets.items():
        assert _verdict(target, face, portrait, portrait.copy()) is False, name


def test_a_photo_without_the_face_breaks_the_detector(portrait: np.ndarray, face: FaceGeometry, targets: dict[str, Target]) -> None:
    blank = np.full_like(portrait, 128)
    assert _verdict(targets["blazeface-short"], face, portrait, blank) is True
    # a detector that misses the clean face is not tested: the verdict does not apply
    assert _verdict(targets["blazeface-short"], face, blank, blank) is None


def test_moved_landmarks_another_face_and_a_changed_output_break_their_stages(
    portrait: np.ndarray, face: FaceGeometry, targets: dict[str, Target]
) -> None:
    shifted = np.roll(portrait, (24, 18), axis=(0, 1))
    assert _verdict(targets["facemesh"], face, portrait, shifted) is True
    cat = np.array(data.chelsea())[:, :, :3]
    other = np.array(portrait)
    other[: cat.shape[0], : min(cat.shape[1], 512)] = cat[:, :512]
    assert _verdict(targets["dlib-resnet"], face, portrait, other) is True
    assert _verdict(targets["multistyle26"], face, portrait, np.roll(other, 60, axis=1)) is True


def test_the_attack_breaks_a_real_detector_within_the_budget(portrait: np.ndarray, face: FaceGeometry, targets: dict[str, Target]) -> None:
    preset = replace(PRESETS["fast"], name="unit", steps=12, eot=None, weights={"blazeface-short": 1.0})
    result = protect_pixels(portrait, strength=preset, seed=0, models=[targets["blazeface-short"]], faces=[face])
    assert result.self_check["blazeface-short"].broken == 1
    change = np.abs(result.rgb.astype(np.int16) - portrait.astype(np.int16))
    assert 0 < change.max() <= int(preset.eps * 255) and result.psnr > 35


@pytest.mark.parametrize("name", ["blazeface-short", "dlib-resnet"])
def test_the_attack_breaks_a_real_network_on_a_real_photo(shared_data: Path, name: str, targets: dict[str, Target]) -> None:
    """The shared-data variant of the test above: a detector and an identity encoder on one real
    photo (a tuning photo at its own 594 x 408 px, the face about 220 px), with the full budget and steps."""
    rgb = np.asarray(Image.open(shared_data / "photos" / "deepface_img10.jpg").convert("RGB"))
    face = largest_face(locate_faces(rgb))
    preset = replace(PRESETS["balanced"], name="unit", eot=None, terms_per_step=None, weights={name: 1.0})
    result = protect_pixels(rgb, strength=preset, seed=0, models=[targets[name]], faces=[face])
    assert result.self_check[name].broken == 1
    change = np.abs(result.rgb.astype(np.int16) - rgb.astype(np.int16))
    assert 0 < change.max() <= int(preset.eps * 255) and result.psnr > 35


def test_the_pipeline_holds_on_the_clean_photo_and_breaks_at_detection_without_a_face(portrait: np.ndarray) -> None:
    front_end = MtcnnDlib()
    clean = pipeline_verdict(front_end, portrait, portrait.copy())
    assert clean.broken is False and clean.stage is None
    gone = pipeline_verdict(front_end, portrait, np.full_like(portrait, 128))
    assert gone.broken is True and gone.stage == "detect"
    assert pipeline_verdict(front_end, np.full_like(portrait, 128), portrait).broken is None
