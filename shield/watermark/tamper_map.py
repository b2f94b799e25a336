"""Rendering a verify report as an image for people: tampered blocks tinted and outlined.

Below the picture a legend strip says, in one caption line, what the check found, and
shows a swatch for each kind of cell: intact (shown as is), changed (red) and not
covered (grey: blocks cut by a crop, which cannot be checked). An intact map is then
told apart from the photo itself, and a grey crop border is explained.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from shield.watermark.checks import check_rgb
from shield.watermark.errors import WatermarkInputError
from shield.watermark.types import WatermarkReport, WatermarkStatus

__all__ = ["render_tamper_map", "tamper_map_caption", "LEGEND"]

#: The legend's entries: swatch colour and label, in the order shown.
LEGEND = (
    ((255, 255, 255), "intact (as is)"),
    ((230, 20, 20), "changed"),
    ((128, 128, 128), "not covered (crop border)"),
)
_STRIP_BG = (24, 24, 24)
_STRIP_FG = (240, 240, 240)

_RED = np.array([230, 20, 20], dtype=np.float32)
_GREY = np.array([128, 128, 128], dtype=np.float32)
_TINT = 0.45
_LINE = 3  # outline width in pixels


def render_tamper_map(rgb: np.ndarray, report: WatermarkReport, *, legend: bool = True) -> np.ndarray:
    """(H+strip)xWx3 uint8 picture of ``report`` over ``rgb``, with a legend strip below.

    Tampered cells are tinted red, cells that could not be checked (cut by a crop) grey,
    each tampered region gets a red outline; intact areas are shown unchanged. The top
    H rows are the picture; with ``legend`` a strip below carries the caption
    (:func:`tamper_map_caption`) and the colour key (:data:`LEGEND`).

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
    picture = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if not legend:
        return picture
    return np.concatenate([picture, _legend_strip(w, tamper_map_caption(report))], axis=0)


def tamper_map_caption(report: WatermarkReport) -> str:
    """One line saying what the map shows, e.g. ``2 regions changed: 96.1% of the picture intact``."""
    intact = f"{100 * report.intact_fraction:.1f}% of the picture intact"
    regions = len(report.tampered_regions)
    status = report.status
    if status is WatermarkStatus.INTACT:
        return "Intact: every block verified, nothing changed since signing"
    if status is WatermarkStatus.TAMPERED:
        cut = "; the grey border was cut by a crop" if np.any(report.unverified_blocks) else ""
        return f"{regions} region{'s' if regions != 1 else ''} changed since signing (red): {intact}{cut}"
    if status is WatermarkStatus.CROPPED:
        return f"Cropped from the signed picture: {intact}; the grey border could not be checked"
    if status is WatermarkStatus.REENCODED:
        return "Re-encoded or resized: the fragile mark is damaged everywhere, edits cannot be located"
    if status is WatermarkStatus.ABSENT:
        return "No shield watermark found: nothing to check"
    return "Watermark of another publisher key: nothing could be checked"


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _legend_strip(width: int, caption: str) -> np.ndarray:
    """The strip under the map: caption on the first line, the colour key below it."""
    from PIL import Image, ImageDraw

    size = int(min(28, max(11, width // 40)))
    font = _font(size)
    pad, line = size // 2, int(size * 1.5)
    rows = [caption]
    # the key on one line when it fits, else one entry a line
    entries = [label for _, label in LEGEND]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    one_line = sum(probe.textlength(e, font=font) + 2.5 * size for e in entries) + pad <= width
    key_lines = [list(LEGEND)] if one_line else [[e] for e in LEGEND]
    height = pad + line * (1 + len(key_lines)) + pad
    strip = Image.new("RGB", (width, height), _STRIP_BG)
    draw = ImageDraw.Draw(strip)
    draw.text((pad, pad), _fit(draw, rows[0], font, width - 2 * pad), fill=_STRIP_FG, font=font)
    y = pad + line
    for entries_on_line in key_lines:
        x = float(pad)
        for colour, label in entries_on_line:
            draw.rectangle((x, y + 1, x + size, y + size), fill=colour, outline=_STRIP_FG)
            x += size * 1.5
            draw.text((x, y), label, fill=_STRIP_FG, font=font)
            x += draw.textlength(label, font=font) + size
        y += line
    return np.asarray(strip, dtype=np.uint8)


def _fit(draw: Any, text: str, font: Any, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."
