"""Training data: the fixed split, the still photos, loading clips by name (real data via shared_data).

The crop pipeline itself is the runtime one, tested in tests/adversarial/test_clips.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.surrogates import data
from lab.surrogates.data import (
    PROTECTION_PEOPLE,
    VALIDATION_CLIPS,
    VALIDATION_PHOTOS,
    list_clips,
    list_stills,
    load_clips,
    load_stills,
    photo_identities,
    split_clips,
)
from shield.adversarial import clips
from shield.errors import InputError


def test_training_crops_are_the_runtime_crops() -> None:
    # the surrogates were trained on the crops `shield bench protection` drives them with
    assert data.load_clip is clips.load_clip and data.crop_boxes is clips.crop_boxes
    assert data.VALIDATION_CLIPS is clips.VALIDATION_CLIPS and data.CROP_ENLARGE == clips.CROP_ENLARGE


def test_split_is_by_clip_and_fixed() -> None:
    names = ["x1", "liveportrait_d12", "vexpress_vasa-1_7", "x2"]
    train, val = split_clips(names)
    assert val == ["liveportrait_d12", "vexpress_vasa-1_7"]
    assert train == ["x1", "x2"]
    assert not set(train) & set(val)


def test_missing_videos_folder_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list_clips(tmp_path)


def test_training_portraits_leave_out_validation_people_and_evaluation_photos(tmp_path: Path) -> None:
    from PIL import Image

    with pytest.raises(InputError):
        list_stills(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("liveportrait_b", "liveportrait_a", "deepface_img1", *VALIDATION_PHOTOS):
        Image.new("RGB", (40, 30), (90, 120, 150)).save(photos / f"{name}.jpg")
    assert [p.stem for p in list_stills(tmp_path)] == ["liveportrait_a", "liveportrait_b"]
    assert load_stills(tmp_path, 32) == []  # flat images: no face found, skipped


def test_labelled_training_photos_leave_out_protection_people_and_unlabelled_photos(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("deepface_img1", "deepface_img2", "deepface_img3", "deepface_couple", "liveportrait_a"):
        Image.new("RGB", (40, 30), (90, 120, 150)).save(photos / f"{name}.jpg")
    table = tmp_path / "photos_identities.csv"
    with pytest.raises(InputError):
        list_stills(tmp_path, "labelled")  # no table
    rows = ["photos/deepface_img1.jpg,person_x", f"photos/deepface_img2.jpg,{PROTECTION_PEOPLE[0]}", "photos/deepface_img9.jpg,person_y"]
    table.write_text("file,identity\n" + "\n".join(rows) + "\n")
    # img2: a protection-benchmark person; img9: listed but absent; couple, img3: not labelled
    assert [p.name for p in list_stills(tmp_path, "labelled")] == ["deepface_img1.jpg"]
    assert [p.stem for p in list_stills(tmp_path)] == ["liveportrait_a"]
    with pytest.raises(ValueError):
        list_stills(tmp_path, "everything")
    for broken in ("name,who\nphotos/deepface_img1.jpg,person_x\n", "file,identity\nphotos/deepface_img1.jpg\n", "file,identity\n,person_x\n"):
        table.write_text(broken)
        with pytest.raises(InputError):
            photo_identities(tmp_path)
    table.write_bytes(b"file,identity\n\xff\xfe\x00,\x81\n")
    with pytest.raises(InputError):
        photo_identities(tmp_path)


def test_protection_benchmark_photos_are_never_training_photos(shared_data: Path) -> None:
    people = photo_identities(shared_data)
    # bench/README.md: `shield bench protection` runs on the first six photos by name
    from shield.commands.bench import benchmark_photos

    benchmark = [p.name for p in benchmark_photos(shared_data / "photos", limit=6)]
    assert {people[name] for name in benchmark if name in people} <= set(PROTECTION_PEOPLE)
    training = {p.name for kind in ("portraits", "labelled") for p in list_stills(shared_data, kind)}
    assert training.isdisjoint(benchmark)
    assert len(list_stills(shared_data, "labelled")) >= 40


def test_training_portraits_are_face_crops(shared_data: Path) -> None:
    stills = load_stills(shared_data, 32)
    assert len(stills) >= 10  # 17 of the 18 portraits hold a face the detector finds
    assert all(s.dtype == np.uint8 and s.shape == (32, 32, 3) for s in stills)
    stems = {p.stem for p in list_stills(shared_data)}
    assert stems.isdisjoint(VALIDATION_PHOTOS) and all((shared_data / "photos" / f"{n}.jpg").is_file() for n in VALIDATION_PHOTOS)


def test_every_validation_clip_exists(shared_data: Path) -> None:
    names = {p.stem for p in list_clips(shared_data)}
    assert set(VALIDATION_CLIPS) <= names
    train, val = split_clips(names)
    assert len(val) == len(VALIDATION_CLIPS) and len(train) == len(names) - len(val)


def test_clips_load_by_name(shared_data: Path, tmp_path: Path) -> None:
    clip = load_clips(shared_data, 32, tmp_path, names=["vexpress_rd_radio10"])[0]
    assert clip.meta.name == "vexpress_rd_radio10" and clip.frames.shape[1:] == (32, 32, 3)
    with pytest.raises(InputError):
        load_clips(shared_data, 32, tmp_path, names=["no_such_clip"])
