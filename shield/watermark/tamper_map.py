"""Rendering a verify report as an image for people: tampered blocks tinted and outlined."""

from __future__ import annotations

import numpy as np

from shield.watermark.checks import check_rgb
from shield.watermark.errors import WatermarkInputError
from shield.watermark.types import WatermarkReport

__all__ = ["render_tamper_map"]

_RED = np.array([230, 20, 20], dtype=np.float32)
_GREY = np.array([128, 128, 128], dtype=np.float32)
_TINT = 0.45
_LINE = 3  # outline width in pixels


def render_tamper_map(rgb: np.ndarray, report: WatermarkReport) -> np.ndarray:
    """HxWx3 uint8 picture of ``report`` over ``rgb``.

    Tampered cells are tinted red, cells that could not be checked (cut by a crop) grey,
    each tampered region gets a red outline; intact areas are shown unchanged.

    Raises:
        TypeError: ``rgb`` malformed; WatermarkInputError: its size does not match the report.
    """
    img = check_rgb(rgb)
    h, w = img.shape[:2]
    if report.grid_x and (report.grid_x[-1], report.grid_y[-1]) != (w, h):
        raise WatermarkInputError(f"rgb: {w}x{h} is not the image this report was made for")
    out = img.astype(np.float32)
    xs, ys = report.grid_x, report.grid_y
    for mask, colour in ((report.tampered_blocks, _RED), (report.unverified_blocks, _GREY)):
        for r, c in zip(*np.nonzero(mask)):
            cell = out[ys[r] : ys[r + 1], xs[c] : xs[c + 1]]
            cell *= 1 - _TINT
            cell += _TINT * colour
    for reg in report.tampered_regions:
        x0, y0, x1, y1 = reg.x, reg.y, reg.x + reg.width, reg.y + reg.height
        out[y0 : min(y0 + _LINE, y1), x0:x1] = _RED
        out[max(y1 - _LINE, y0) : y1, x0:x1] = _RED
        out[y0:y1, x0 : min(x0 + _LINE, x1)] = _RED
        out[y0:y1, max(x1 - _LINE, x0) : x1] = _RED
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
