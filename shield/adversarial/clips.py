"""Face-video clips as FOMM driving sequences: decode, find the face, crop, cache.

Pipeline per clip: decode with PyAV, detect the face with dlib's HOG detector on a
subsample of frames, build one square crop per frame around the face (enlarged
:data:`CROP_ENLARGE` times, centre smoothed over the clip, size fixed per clip: the
"vox" style of the FOMM data), resize to the working resolution and cache the frames as
``<home>/cache/frames/<res>/<clip>.npz`` with a JSON sidecar of metadata.

``shield bench protection --driving DIR`` drives its FOMM deepfakes with these crops
(:data:`VALIDATION_CLIPS` when present). The surrogates were trained on crops from the
same pipeline (``lab.surrogates.data`` builds on this module), so both share one cache.
PyAV is an optional dependency (the ``bench`` extra): it is imported only when a clip is
decoded, and its absence is a :class:`MissingBenchExtraError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from shield.errors import ConfigError, FaceError, InputError
from shield.imaging.hashing import file_sha256

__all__ = [
    "VALIDATION_CLIPS",
    "CROP_ENLARGE",
    "MissingBenchExtraError",
    "NoFaceInClipError",
    "ClipMeta",
    "Clip",
    "is_synthetic",
    "cache_dir",
    "detect_largest",
    "crop_boxes",
    "crop_resize",
    "load_clip",
]

log = logging.getLogger(__name__)

#: Clips held out from surrogate training (by name, without extension). Chosen once to
#: cover each source (real talking heads, full-body portrait, news clip, two generated
#: sources); ``shield bench protection`` drives its deepfakes with them.
VALIDATION_CLIPS: tuple[str, ...] = (
    "liveportrait_d12",
    "liveportrait_d19",
    "liveportrait_s20",
    "vexpress_short_case_AOC",
    "vexpress_vasa-1_7",
    "vexpress_emo_talk_hb",
)

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


class MissingBenchExtraError(ConfigError):
    """An optional package of the ``bench`` extra (PyAV, to decode clips) is not installed."""

    default_fix = "pip install 'shield[bench]'"


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


def cache_dir(home: Path, resolution: int) -> Path:
    """Folder of the cached crops at ``resolution`` pixels under ``home``."""
    return Path(home) / "cache" / "frames" / str(resolution)


def _decode(path: Path) -> tuple[list[np.ndarray], float]:
    try:
        import av
    except ImportError as exc:
        raise MissingBenchExtraError(f"{path.name}: decoding a video clip needs PyAV (the 'av' package)") from exc

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


def detect_largest(frames: Sequence[np.ndarray]) -> dict[int, tuple[float, float, float]]:
    """{frame index: (cx, cy, side)} in source pixels of the largest face on evenly spaced frames.

    At most :data:`DETECTIONS_PER_CLIP` frames are searched with dlib's HOG detector, at
    :data:`DETECT_MAX_SIDE` px and then, when nothing is found, at twice that size with one
    upsampling. Frames where no face is found are absent from the result.
    """
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

    Raises:
        NoFaceInClipError: ``detections`` is empty.
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


def crop_resize(frames: Sequence[np.ndarray], boxes: np.ndarray, resolution: int) -> np.ndarray:
    """(T, R, R, 3) uint8: each frame cut at its box (x0, y0, side) and resized (Lanczos) to ``resolution`` px."""
    from PIL import Image

    out = np.empty((len(frames), resolution, resolution, 3), dtype=np.uint8)
    for i, (img, (x0, y0, s)) in enumerate(zip(frames, boxes, strict=True)):
        crop = Image.fromarray(img[y0 : y0 + s, x0 : x0 + s])
        out[i] = np.asarray(crop.resize((resolution, resolution), Image.Resampling.LANCZOS))
    return out


def _process(path: Path, resolution: int) -> Clip:
    frames, fps = _decode(path)
    detections = detect_largest(frames)
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
    return Clip(meta, crop_resize(frames, boxes, resolution))


def load_clip(path: Path, resolution: int, home: Path, *, refresh: bool = False) -> Clip:
    """Cropped frames of one clip at ``resolution`` px, from the cache under ``home`` when it matches the source file.

    Raises:
        MissingBenchExtraError: the clip must be decoded and PyAV is not installed.
        InputError: the file cannot be decoded or has no frames.
        NoFaceInClipError: no face on any sampled frame.
    """
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
