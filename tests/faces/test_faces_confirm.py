"""The second opinion on HOG faces: dlib's mmod CNN keeps human faces, drops look-alikes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps

from shield.faces import Box, Face, confirm_faces, detect_faces
from shield.faces.confirm import MIN_CONFIRM_CONFIDENCE, confirm_face


def _face(box: Box) -> Face:
    return Face(box, 1.0, np.zeros((5, 2)))


def test_astronaut_keeps_her_face_and_drops_the_suit() -> None:
    rgb = skimage.data.astronaut()
    faces = detect_faces(rgb, upsample=1)
    checks = confirm_faces(rgb, faces)
    kept = [c.face for c in checks if c.confirmed]
    assert len(kept) == 1
    b = kept[0].box
    assert 150 < b.left < b.right < 300 and 50 < b.top < b.bottom < 200  # her face
    assert all(c.confidence >= MIN_CONFIRM_CONFIDENCE for c in checks if c.confirmed)
    # HOG's second face on the suit, when it finds one, is not confirmed
    assert all(not c.confirmed for c in checks if c.face.box.top > 250)


def test_a_box_on_no_face_is_not_confirmed() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    [check] = confirm_faces(noise, [_face(Box(100, 100, 180, 180))])
    assert not check.confirmed and check.confidence < MIN_CONFIRM_CONFIDENCE


def test_a_face_box_across_the_photo_edge_is_checked() -> None:
    rgb = skimage.data.astronaut()
    face = detect_faces(rgb)[0]
    b = face.box
    shifted = np.ascontiguousarray(rgb[int(b.top) - 10 :, int(b.left) - 10 :])  # the face near the top-left corner
    moved = _face(Box(10, 10, 10 + b.width, 10 + b.height))
    assert confirm_face(shifted, moved).confirmed


def test_malformed_image_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="rgb"):
        confirm_faces(np.zeros((10, 10), dtype=np.uint8), [])


def test_monkey_of_the_shared_data_is_not_a_face(shared_data: Path) -> None:
    with Image.open(shared_data / "nonfaces" / "liveportrait_s22.jpg") as im:
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    faces = detect_faces(rgb, upsample=1, max_side=640)
    assert faces, "HOG takes the monkey for a face (the case this check exists for)"
    assert not any(c.confirmed for c in confirm_faces(rgb, faces))
