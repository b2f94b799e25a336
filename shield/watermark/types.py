"""Typed results and the payload of the fragile watermark."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from shield.watermark.errors import WatermarkInputError

__all__ = [
    "PAYLOAD_VERSION",
    "Payload",
    "Region",
    "WatermarkStatus",
    "WatermarkReport",
    "PayloadReading",
]

#: Version of the payload layout (first payload byte).
PAYLOAD_VERSION = 1
_U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class Payload:
    """What every block carries, readable without any key.

    Attributes:
        version: payload format version, 0..255 (this code writes :data:`PAYLOAD_VERSION`).
        asset_id: the 128-bit asset id (16 bytes) that ties watermark, manifest and ledger.
        chain_id: EIP-155 chain id of the ledger, 0..2**64-1 (0 for none).
        registry: 20-byte registry contract address (all zero for none).
    """

    version: int
    asset_id: bytes
    chain_id: int = 0
    registry: bytes = bytes(20)

    def __post_init__(self) -> None:
        if not isinstance(self.version, int) or isinstance(self.version, bool):
            raise TypeError(f"version: expected int, got {type(self.version).__name__}")
        if not 0 <= self.version <= 255:
            raise WatermarkInputError(f"version: must be 0..255, got {self.version}")
        if not isinstance(self.asset_id, bytes):
            raise TypeError(f"asset_id: expected bytes, got {type(self.asset_id).__name__}")
        if len(self.asset_id) != 16:
            raise WatermarkInputError(f"asset_id: must be 16 bytes, got {len(self.asset_id)}")
        if not isinstance(self.chain_id, int) or isinstance(self.chain_id, bool):
            raise TypeError(f"chain_id: expected int, got {type(self.chain_id).__name__}")
        if not 0 <= self.chain_id <= _U64_MAX:
            raise WatermarkInputError(f"chain_id: must be 0..2**64-1, got {self.chain_id}")
        if not isinstance(self.registry, bytes):
            raise TypeError(f"registry: expected bytes, got {type(self.registry).__name__}")
        if len(self.registry) != 20:
            raise WatermarkInputError(f"registry: must be 20 bytes, got {len(self.registry)}")


@dataclass(frozen=True)
class Region:
    """A rectangle in pixels of the verified image (x, y of the top-left corner)."""

    x: int
    y: int
    width: int
    height: int


class WatermarkStatus(enum.Enum):
    """Overall verdict of :func:`shield.watermark.verify`.

    INTACT: every block checks out and the size is the signed one.
    TAMPERED: some blocks fail (local edits); ``tampered_regions`` says where.
    CROPPED: the surviving blocks check out but the image is a crop of the signed one.
    REENCODED: damage everywhere (re-encoding, resizing, global filters).
    ABSENT: no watermark found.
    WRONG_KEY: a watermark is there but no block's signature matches the given key.
    """

    INTACT = "intact"
    TAMPERED = "tampered"
    CROPPED = "cropped"
    REENCODED = "re-encoded"
    ABSENT = "absent"
    WRONG_KEY = "wrong-key"


def _empty_grid() -> np.ndarray:
    return np.zeros((0, 0), dtype=bool)


@dataclass(frozen=True)
class WatermarkReport:
    """Result of :func:`shield.watermark.verify`.

    The verified image is split into cells by ``grid_x`` / ``grid_y`` (pixel edges,
    ascending, from 0 to width/height). On an image of the signed size the cells are the
    watermark blocks; on a crop they are the signed blocks clipped to the image.

    Attributes:
        present: a watermark was found (records readable).
        intact_fraction: fraction of the image's pixels in blocks that verified, in [0,1].
        block_size: nominal block side in pixels (edge blocks are up to 2x-1 wider).
        tampered_blocks: bool grid (rows, cols) of cells that failed or were added.
        tampered_regions: bounding boxes of connected groups of tampered cells.
        payload: the payload (authenticated when ``payload_authenticated``).
        status: overall verdict.
        crop_offset: (x, y) of the verified image's top-left in the signed image, set
            when the size differs from the signed one; None otherwise. Negative values
            mean content was added above / left of the signed image.
        explanation: one or two sentences for the user.
        unverified_blocks: bool grid of cells that could not be checked (blocks cut by a
            crop); neither intact nor tampered.
        grid_x, grid_y: cell edges in pixels.
        original_size: signed (width, height), when known.
        payload_authenticated: the payload comes from blocks whose signatures verified.
        blocks_checked: number of whole blocks whose signature was checked.
        blocks_intact: number of those that verified.
    """

    present: bool
    intact_fraction: float
    block_size: int
    tampered_blocks: np.ndarray
    tampered_regions: tuple[Region, ...]
    payload: Payload | None
    status: WatermarkStatus
    crop_offset: tuple[int, int] | None
    explanation: str
    unverified_blocks: np.ndarray = field(default_factory=_empty_grid)
    grid_x: tuple[int, ...] = ()
    grid_y: tuple[int, ...] = ()
    original_size: tuple[int, int] | None = None
    payload_authenticated: bool = False
    blocks_checked: int = 0
    blocks_intact: int = 0


@dataclass(frozen=True)
class PayloadReading:
    """Result of the keyless :func:`shield.watermark.read_payload`.

    Attributes:
        payload: decoded payload, or None.
        blocks_total: whole blocks examined.
        blocks_valid: blocks whose record passed its CRC.
        blocks_voted: blocks that contributed to the decoded payload.
        rs_errors_corrected: byte errors/erasures Reed-Solomon corrected (0 on a clean read).
        candidates: distinct payloads seen among valid records (2+ means a collage or splice).
        crop_offset: (x, y) of the image's top-left in the signed image when the size differs.
        original_size: signed (width, height), when known.
        explanation: one sentence for the user.
        key_fingerprint: 8-byte fingerprint of the signing public key named by most valid
            records (unauthenticated; to look the publisher up), or None.
    """

    payload: Payload | None
    blocks_total: int
    blocks_valid: int
    blocks_voted: int
    rs_errors_corrected: int
    candidates: int
    crop_offset: tuple[int, int] | None
    original_size: tuple[int, int] | None
    explanation: str
    key_fingerprint: bytes | None = None
