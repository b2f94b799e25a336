"""Relative animation (the FOMM demo's ``normalize_kp``), specs section 1.

kp_new = (kp_d - kp_d_first) * scale + kp_s and J_new = (J_d inv(J_d_first)) J_s, where
with "adapt movement scale" ``scale = sqrt(area(hull(kp_s))) / sqrt(area(hull(kp_d_first)))``,
computed outside autograd.
"""

from __future__ import annotations

import numpy as np
import torch

from shield.adversarial.models.fomm.keypoint_detector import Keypoints

__all__ = ["convex_hull_area", "movement_scale", "relative_keypoints"]


def convex_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull of (N, 2) points (Andrew's monotone chain + shoelace)."""
    pts = sorted({(float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64).reshape(-1, 2)})
    if len(pts) < 3:
        return 0.0

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[tuple[float, float]] = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = np.array(lower[:-1] + upper[:-1])
    x, y = hull[:, 0], hull[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def movement_scale(kp_source: Keypoints, kp_driving_first: Keypoints) -> float:
    """sqrt(hull area of source keypoints) / sqrt(same for the first driving frame).

    Uses batch element 0, as upstream. Returns 1.0 when the driving hull is degenerate.
    """
    src = convex_hull_area(kp_source.value[0].detach().cpu().numpy())
    drv = convex_hull_area(kp_driving_first.value[0].detach().cpu().numpy())
    if drv <= 0.0:
        return 1.0
    return float(np.sqrt(src) / np.sqrt(drv))


def relative_keypoints(
    kp_source: Keypoints,
    kp_driving: Keypoints,
    kp_driving_first: Keypoints,
    *,
    scale: float = 1.0,
    relative_jacobian: bool = True,
) -> Keypoints:
    """Transfer the driving motion relative to its first frame onto the source keypoints.

    Args:
        kp_source: keypoints of the source image (B, K, ...).
        kp_driving: keypoints of the current driving frame.
        kp_driving_first: keypoints of the first driving frame.
        scale: movement scale (see :func:`movement_scale`), 1.0 to disable.
        relative_jacobian: also transfer jacobians relatively; else use the driving ones.
    """
    value = (kp_driving.value - kp_driving_first.value) * scale + kp_source.value
    if relative_jacobian:
        jac = torch.matmul(torch.matmul(kp_driving.jacobian, torch.inverse(kp_driving_first.jacobian)), kp_source.jacobian)
    else:
        jac = kp_driving.jacobian
    return Keypoints(value, jac)
