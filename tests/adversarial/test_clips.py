"""The runtime clip reader of `shield bench protection --driving`: crop geometry, labels,
the missing-extra error, and caching of a real clip (via shared_data)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from shield.adversarial.clips import (
    CROP_ENLARGE,
    MissingBenchExtraError,
    NoFaceInClipError,
    cache_dir,
    crop_boxes,
    is_synthetic,
    load_clip,
)
from shield.errors import ConfigError, FaceError


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


def test_generated_clips_are_labelled_synthetic() -> None:
    assert is_synthetic("vexpress_vasa-1_l3") and is_synthetic("vexpress_emo_talk_hb")
    assert not is_synthetic("vexpress_short_case_AOC") and not is_synthetic("liveportrait_d0")


def test_missing_pyav_is_a_config_error_naming_the_bench_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded")
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    with pytest.raises(MissingBenchExtraError) as info:
        load_clip(clip, 32, tmp_path)
    assert isinstance(info.value, ConfigError) and "shield[bench]" in info.value.fix


def test_real_clip_is_cropped_cached_and_reloaded(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "videos" / "vexpress_rd_radio10.mp4"
    clip = load_clip(path, 32, tmp_path)
    assert clip.frames.dtype == np.uint8 and clip.frames.shape[1:] == (32, 32, 3)
    assert clip.meta.num_frames == len(clip.frames) > 30
    assert clip.meta.detections > 0 and not clip.meta.synthetic
    # a face crop is not a flat image: the centre differs from the border
    assert clip.frames.std() > 10
    assert (cache_dir(tmp_path, 32) / "vexpress_rd_radio10.npz").is_file()
    again = load_clip(path, 32, tmp_path)
    assert np.array_equal(again.frames, clip.frames) and again.meta == clip.meta
