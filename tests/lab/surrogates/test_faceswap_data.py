"""Aligned chips for faceswap-ae and the split by time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lab.surrogates.faceswap_data import FaceChips, load_chips, split_by_time
from shield.errors import ConfigError


def test_split_by_time_holds_out_a_tail_with_a_gap() -> None:
    frames = np.array([f for f in range(100) if f % 7])  # some frames without a face
    chips = FaceChips("x", np.zeros((len(frames), 4, 4, 3), np.uint8), frames, 100)
    split = split_by_time(chips, val_fraction=0.2, gap_frames=10)
    assert split.val_frames.min() >= 80 and split.val_frames.max() == 99
    assert split.train_frames.max() < 70
    assert len(split.train) == len(split.train_frames) and len(split.val) == len(split.val_frames)
    with pytest.raises(ValueError):
        split_by_time(chips, val_fraction=1.0)


def test_missing_clip_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_chips(tmp_path, tmp_path, "absent")


@pytest.mark.slow
def test_real_clip_chips_are_cached(shared_data: Path, tmp_path: Path) -> None:
    chips = load_chips(shared_data, tmp_path, "liveportrait_d0", size=64)
    assert chips.chips.shape[1:] == (64, 64, 3) and chips.chips.dtype == np.uint8
    assert len(chips.chips) >= 0.9 * chips.total_frames
    assert list((tmp_path / "cache" / "faceswap").glob("liveportrait_d0-*.npz"))
    again = load_chips(shared_data, tmp_path, "liveportrait_d0", size=64)
    assert np.array_equal(again.chips, chips.chips)
