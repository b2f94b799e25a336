"""Face-video data for training and evaluating the motion surrogates.

Clips are cropped by the runtime pipeline of :mod:`shield.adversarial.clips` (decode
with PyAV, dlib HOG detection, "vox"-style square crops enlarged
:data:`~shield.adversarial.clips.CROP_ENLARGE` times, cached per resolution under
``<home>/cache/frames/<res>/``); this module adds what only training needs.

The train/validation split is by clip (never by frame) and fixed: see
:data:`VALIDATION_CLIPS`. Still portraits (``photos/liveportrait_*.jpg``, cropped the
same way) can widen the set of faces a motion model sees; photos of the people in
validation clips (:data:`VALIDATION_PHOTOS`) are never among them. The labelled
``deepface_*`` photos (``photos_identities.csv``) can widen it further, except those of
the people the protection benchmark is measured on (:data:`PROTECTION_PEOPLE`). Clips named
``vexpress_vasa-1_*`` and ``vexpress_emo_*`` are generated videos (demo outputs of other
methods) and are labelled ``synthetic``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from shield.adversarial.clips import (
    CROP_ENLARGE,
    VALIDATION_CLIPS,
    Clip,
    ClipMeta,
    NoFaceInClipError,
    cache_dir,
    crop_boxes,
    crop_resize,
    detect_largest,
    is_synthetic,
    load_clip,
)
from shield.errors import InputError

__all__ = [
    "VALIDATION_CLIPS",
    "VALIDATION_PHOTOS",
    "PROTECTION_PEOPLE",
    "CROP_ENLARGE",
    "ClipMeta",
    "NoFaceInClipError",
    "Clip",
    "list_clips",
    "split_clips",
    "is_synthetic",
    "crop_boxes",
    "load_clip",
    "load_clips",
    "list_stills",
    "load_stills",
    "photo_identities",
    "cache_dir",
]

log = logging.getLogger(__name__)

#: Portraits of people who appear in validation clips: never used for training.
VALIDATION_PHOTOS: tuple[str, ...] = ("liveportrait_d12", "liveportrait_d19", "vexpress_aoc_ref")

#: People (``photos_identities.csv``) in the photos ``shield bench protection`` is
#: measured on (the first six by name, see bench/README.md): never used for training, so
#: the benchmark's faces stay unseen by the models it attacks.
PROTECTION_PEOPLE: tuple[str, ...] = ("person_00", "person_03")


def list_clips(data_dir: Path) -> list[Path]:
    """Sorted ``videos/*.mp4`` under ``data_dir``."""
    videos = Path(data_dir) / "videos"
    if not videos.is_dir():
        raise InputError(f"{videos}: no videos folder", fix="set SHIELD_DATA_DIR to the shared data folder")
    return sorted(videos.glob("*.mp4"))


def split_clips(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(train, validation) clip names, split by :data:`VALIDATION_CLIPS`."""
    names = sorted(names)
    val = [n for n in names if n in VALIDATION_CLIPS]
    train = [n for n in names if n not in VALIDATION_CLIPS]
    return train, val


def load_clips(data_dir: Path, resolution: int, home: Path, names: Iterable[str] | None = None) -> list[Clip]:
    """Load (and cache) every clip, or only ``names``, sorted by name."""
    paths = list_clips(data_dir)
    if names is not None:
        wanted = set(names)
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise InputError(f"unknown clips: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if p.stem in wanted]
    return [load_clip(p, resolution, home) for p in paths]


def list_stills(data_dir: Path, kind: str = "portraits") -> list[Path]:
    """Sorted training photos of one kind.

    ``portraits``: ``photos/liveportrait_*.jpg`` except :data:`VALIDATION_PHOTOS`.
    ``labelled``: the ``deepface_*`` photos listed in ``photos_identities.csv`` except
    those of :data:`PROTECTION_PEOPLE`. Unlabelled photos (a couple, a group, a mirrored
    copy) are never used: who is in them is unknown.
    """
    photos = Path(data_dir) / "photos"
    if not photos.is_dir():
        raise InputError(f"{photos}: no photos folder", fix="set SHIELD_DATA_DIR to the shared data folder")
    if kind == "portraits":
        return [p for p in sorted(photos.glob("liveportrait_*.jpg")) if p.stem not in VALIDATION_PHOTOS]
    if kind == "labelled":
        people = photo_identities(data_dir)
        return sorted(photos / name for name, person in people.items() if person not in PROTECTION_PEOPLE and (photos / name).is_file())
    raise ValueError(f"unknown kind of still photos: {kind!r}")


def photo_identities(data_dir: Path) -> dict[str, str]:
    """``{photo file name: person}`` from ``photos_identities.csv`` (rows ``photos/NAME,person``)."""
    import csv

    table = Path(data_dir) / "photos_identities.csv"
    fix = "set SHIELD_DATA_DIR to the shared data folder"
    try:
        with table.open(newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{table}: cannot read the photo identities ({exc})", fix=fix) from exc
    people = {}
    for line, row in enumerate(rows, start=2):
        name, person = row.get("file"), row.get("identity")
        if not name or not person:
            raise InputError(f"{table}, line {line}: a row needs a file and an identity", fix=fix)
        people[Path(name).name] = person
    return people


def load_stills(data_dir: Path, resolution: int, kind: str = "portraits") -> list[np.ndarray]:
    """One (R, R, 3) uint8 face crop per training photo of ``kind`` (:func:`list_stills`), cropped like a clip frame.

    A photo where the detector finds no face is skipped with a warning.
    """
    from PIL import Image

    crops = []
    for path in list_stills(data_dir, kind):
        with Image.open(path) as im:
            img = np.asarray(im.convert("RGB"))
        detections = detect_largest([img])
        if not detections:
            log.warning("%s: no face found, not used", path.name)
            continue
        crops.append(crop_resize([img], crop_boxes(detections, 1, img.shape[:2]), resolution)[0])
    return crops


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.surrogates.data --res 64``: fill the frame cache."""
    import argparse

    from shield.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, default=64)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    settings = load_settings()
    if settings.data_dir is None:
        raise InputError("no shared data folder", fix="set SHIELD_DATA_DIR")
    for clip in load_clips(settings.data_dir, args.res, settings.home):
        log.info("%s %d frames synthetic=%s", clip.meta.name, clip.meta.num_frames, clip.meta.synthetic)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
