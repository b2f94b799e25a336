"""Face-video data for training and evaluating the motion surrogates.

Pipeline per clip: decode with PyAV, detect the face with dlib's HOG detector on a
subsample of frames, build one square crop per frame around the face (enlarged
:data:`CROP_ENLARGE` times, centre smoothed over the clip, size fixed per clip: the
"vox" style of the FOMM data), resize to the working resolution and cache the frames as
``<home>/cache/frames/<res>/<clip>.npz`` with a JSON sidecar of metadata.

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

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shield.errors import FaceError, InputError
from shield.imaging.hashing import file_sha256

__all__ = [
    "VALIDATION_CLIPS",
    "VALIDATION_PHOTOS",
    "PROTECTION_PEOPLE",
    "CROP_ENLARGE",
    "ClipMeta",
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

#: Clips held out from training (by name, without extension). Chosen once to cover each
#: source (real talking heads, full-body portrait, news clip, two generated sources).
VALIDATION_CLIPS: tuple[str, ...] = (
    "liveportrait_d12",
    "liveportrait_d19",
    "liveportrait_s20",
    "vexpress_short_case_AOC",
    "vexpress_vasa-1_7",
    "vexpress_emo_talk_hb",
)

#: Portraits of people who appear in validation clips: never used for training.
VALIDATION_PHOTOS: tuple[str, ...] = ("liveportrait_d12", "liveportrait_d19", "vexpress_aoc_ref")

#: People (``photos_identities.csv``) in the photos ``shield bench protection`` is
#: measured on (the first six by name, see bench/README.md): never used for training, so
#: the benchmark's faces stay unseen by the models it attacks.
PROTECTION_PEOPLE: tuple[str, ...] = ("person_00", "person_03")

#: Side of the square crop relative to the detected face box side (FOMM vox-like).
CROP_ENLARGE = 1.7
#: Detections per clip (evenly spaced frames); HOG costs ~30 ms per frame at 320 px.
DETECTIONS_PER_CLIP = 24
#: Longest side of the frame handed to the detector, in pixels.
DETECT_MAX_SIDE = 320
#: Moving-average window (in detections) for the crop centre.
SMOOTH_WINDOW = 5
#: Hard cap on frames decoded per clip (a long clip is truncated, not refused).
MAX_FRAMES = 1200
_CACHE_VERSION = 1


class NoFaceInClipError(FaceError):
    """No face was found on any sampled frame of a clip."""

    default_fix = "remove the clip from the data folder, or check that it shows a face"


@dataclass(frozen=True)
class ClipMeta:
    """What was done to one clip. Boxes are (x0, y0, side) in source pixels."""

    name: str
    source: str
    source_sha256: str
    synthetic: bool
    fps: float
    num_frames: int
    source_size: tuple[int, int]
    resolution: int
    detections: int
    crop_side: int


@dataclass(frozen=True)
class Clip:
    """Cropped frames (T, R, R, 3) uint8 RGB and their metadata."""

    meta: ClipMeta
    frames: np.ndarray


def is_synthetic(name: str) -> bool:
    """True for clips that are themselves outputs of generative models."""
    return name.startswith("vexpress_vasa-1_") or name.startswith("vexpress_emo_")


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


def cache_dir(home: Path, resolution: int) -> Path:
    return Path(home) / "cache" / "frames" / str(resolution)


def _decode(path: Path) -> tuple[list[np.ndarray], float]:
    import av

    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 25.0)
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= MAX_FRAMES:
                    break
    except av.error.FFmpegError as exc:
        raise InputError(f"{path.name}: cannot decode video ({exc})") from exc
    if not frames:
        raise InputError(f"{path.name}: video has no frames")
    return frames, fps


def _detect(frames: Sequence[np.ndarray]) -> dict[int, tuple[float, float, float]]:
    """{frame index: (cx, cy, side)} of the largest face on evenly spaced frames."""
    import dlib
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    n = len(frames)
    picks = np.unique(np.linspace(0, n - 1, min(n, DETECTIONS_PER_CLIP)).round().astype(int))
    found: dict[int, tuple[float, float, float]] = {}
    for i in picks:
        img = frames[i]
        h, w = img.shape[:2]
        # Small faces in large frames (full-body portraits) need the second, finer pass.
        for max_side, upsample in ((DETECT_MAX_SIDE, 0), (2 * DETECT_MAX_SIDE, 1)):
            s = min(1.0, max_side / max(h, w))
            small = np.asarray(Image.fromarray(img).resize((round(w * s), round(h * s)), Image.Resampling.BILINEAR)) if s < 1 else img
            rects = detector(small, upsample)
            if rects:
                r = max(rects, key=lambda q: q.width() * q.height())
                found[int(i)] = ((r.left() + r.right()) / 2 / s, (r.top() + r.bottom()) / 2 / s, max(r.width(), r.height()) / s)
                break
    return found


def crop_boxes(
    detections: dict[int, tuple[float, float, float]], num_frames: int, frame_hw: tuple[int, int]
) -> np.ndarray:
    """Per-frame square crops (x0, y0, side) as int array (T, 3), inside the frame.

    The side is CROP_ENLARGE x the median face side (capped by the frame), the centre
    is interpolated between detections and smoothed by a moving average.
    """
    if not detections:
        raise NoFaceInClipError("no face found in the clip")
    h, w = frame_hw
    idx = np.array(sorted(detections))
    vals = np.array([detections[i] for i in idx])
    side = int(min(CROP_ENLARGE * float(np.median(vals[:, 2])), h, w))
    k = min(SMOOTH_WINDOW, len(idx))
    kernel = np.ones(k) / k
    cx = np.convolve(np.pad(vals[:, 0], (k // 2, k - 1 - k // 2), mode="edge"), kernel, mode="valid")
    cy = np.convolve(np.pad(vals[:, 1], (k // 2, k - 1 - k // 2), mode="edge"), kernel, mode="valid")
    t = np.arange(num_frames)
    cx_t = np.interp(t, idx, cx)
    cy_t = np.interp(t, idx, cy)
    x0 = np.clip(np.round(cx_t - side / 2), 0, w - side).astype(int)
    y0 = np.clip(np.round(cy_t - side / 2), 0, h - side).astype(int)
    return np.stack([x0, y0, np.full(num_frames, side)], axis=1)


def _crop_resize(frames: Sequence[np.ndarray], boxes: np.ndarray, resolution: int) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(frames), resolution, resolution, 3), dtype=np.uint8)
    for i, (img, (x0, y0, s)) in enumerate(zip(frames, boxes, strict=True)):
        crop = Image.fromarray(img[y0 : y0 + s, x0 : x0 + s])
        out[i] = np.asarray(crop.resize((resolution, resolution), Image.Resampling.LANCZOS))
    return out


def _process(path: Path, resolution: int) -> Clip:
    frames, fps = _decode(path)
    detections = _detect(frames)
    try:
        boxes = crop_boxes(detections, len(frames), frames[0].shape[:2])
    except NoFaceInClipError as exc:
        raise NoFaceInClipError(f"{path.name}: no face found on {DETECTIONS_PER_CLIP} sampled frames") from exc
    meta = ClipMeta(
        name=path.stem,
        source=path.name,
        source_sha256=file_sha256(path),
        synthetic=is_synthetic(path.stem),
        fps=fps,
        num_frames=len(frames),
        source_size=(int(frames[0].shape[1]), int(frames[0].shape[0])),
        resolution=resolution,
        detections=len(detections),
        crop_side=int(boxes[0, 2]),
    )
    return Clip(meta, _crop_resize(frames, boxes, resolution))


def load_clip(path: Path, resolution: int, home: Path, *, refresh: bool = False) -> Clip:
    """Cropped frames of one clip, from the cache when it matches the source file."""
    folder = cache_dir(home, resolution)
    npz, side = folder / f"{path.stem}.npz", folder / f"{path.stem}.json"
    if not refresh and npz.is_file() and side.is_file():
        doc = json.loads(side.read_text())
        if doc.get("version") == _CACHE_VERSION and doc["meta"]["source_sha256"] == file_sha256(path):
            meta_doc = doc["meta"]
            meta_doc["source_size"] = tuple(meta_doc["source_size"])
            with np.load(npz) as z:
                return Clip(ClipMeta(**meta_doc), z["frames"])
    clip = _process(path, resolution)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{path.stem}.tmp.npz"
    np.savez_compressed(tmp, frames=clip.frames)
    tmp.replace(npz)
    side.write_text(json.dumps({"version": _CACHE_VERSION, "meta": asdict(clip.meta)}, indent=1))
    log.info("cached %s: %d frames, crop %d px", clip.meta.name, clip.meta.num_frames, clip.meta.crop_side)
    return clip


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
        detections = _detect([img])
        if not detections:
            log.warning("%s: no face found, not used", path.name)
            continue
        crops.append(_crop_resize([img], crop_boxes(detections, 1, img.shape[:2]), resolution)[0])
    return crops


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shield.adversarial.data --res 64``: fill the frame cache."""
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
