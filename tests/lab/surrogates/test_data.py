"""The face-video pipeline: crop geometry, split, caching (real clips via shared_data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.surrogates.data import (
    CROP_ENLARGE,
    PROTECTION_PEOPLE,
    VALIDATION_CLIPS,
    VALIDATION_PHOTOS,
    NoFaceInClipError,
    cache_dir,
    crop_boxes,
    is_synthetic,
    list_clips,
    list_stills,
    load_clip,
    load_clips,
    load_stills,
    photo_identities,
    split_clips,
)
from shield.errors import FaceError, InputError


def test_crop_is_square_enlarged_and_inside_the_frame() -> None:
    det = {0: (100.0, 120.0, 60.0), 10: (110.0, 118.0, 64.0), 20: (300.0, 40.0, 62.0)}
    boxes = crop_boxes(det, 21, (240, 320))
    assert boxes.shape == (21, 3)
    side = int(CROP_ENLARGE * 62.0)
    assert (boxes[:, 2] == side).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + side <= 320).all()
    assert (boxes[:, 1] >= 0).all() and (boxes[:, 1] + side <= 240).all()
    # centres move smoothly: no jump larger than the largest jump between detections
    assert np.abs(np.diff(boxes[:, 0])).max() <= 20


def test_crop_never_exceeds_a_face_filling_frame() -> None:
    boxes = crop_boxes({0: (256.0, 256.0, 400.0)}, 3, (512, 480))
    assert (boxes[:, 2] == 480).all() and (boxes[:, 0] == 0).all()


def test_no_detection_is_a_face_error() -> None:
    with pytest.raises(NoFaceInClipError):
        crop_boxes({}, 10, (100, 100))
    assert issubclass(NoFaceInClipError, FaceError)


def test_split_is_by_clip_and_fixed() -> None:
    names = ["x1", "liveportrait_d12", "vexpress_vasa-1_7", "x2"]
    train, val = split_clips(names)
    assert val == ["liveportrait_d12", "vexpress_vasa-1_7"]
    assert train == ["x1", "x2"]
    assert not set(train) & set(val)


def test_generated_clips_are_labelled_synthetic() -> None:
    assert is_synthetic("vexpress_vasa-1_l3") and is_synthetic("vexpress_emo_talk_hb")
    assert not is_synthetic("vexpress_short_case_AOC") and not is_synthetic("liveportrait_d0")


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


def test_real_clip_is_cropped_cached_and_reloaded(shared_data: Path, tmp_path: Path) -> None:
    clip = load_clips(shared_data, 32, tmp_path, names=["vexpress_rd_radio10"])[0]
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (32, 32, 3)
    assert clip.meta.num_frames == len(clip.frames) > 30
    assert clip.meta.detections > 0 and not clip.meta.synthetic
    # a face crop is not a flat image: the centre differs from the border
    assert clip.frames.std() > 10
    assert (cache_dir(tmp_path, 32) / "vexpress_rd_radio10.npz").is_file()
    again = load_clip(shared_data / "videos" / "vexpress_rd_radio10.mp4", 32, tmp_path)
    assert np.array_equal(again.frames, clip.frames) and again.meta == clip.meta
    with pytest.raises(InputError):
        load_clips(shared_data, 32, tmp_path, names=["no_such_clip"])
