"""Public verification: which blocks are exactly as the publisher signed them.

A block is intact when (1) its record passes its CRC, (2) the Ed25519 signature it
carries verifies, under the given public key, over its tile message built from its own
digest, the sibling digests it carries and the position, size and asset id in its
record, and (3) that record names the block's actual place in the signed grid, the
signed image size, and the payload the image as a whole carries. (2) makes forgery need
the private key or a 128-bit second preimage; (3) defeats block moves, collages and
transplants from other images of the same publisher.
"""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shield.watermark.checks import check_rgb, public_key_of
from shield.watermark.errors import WatermarkInputError
from shield.watermark.layout import BLOCK, DIGEST_BYTES, USED_BITS, Grid
from shield.watermark.locate import Location, locate
from shield.watermark.reading import soft_decode, vote_codewords
from shield.watermark.record import ASSET, CODEWORD, FINGERPRINT, decode_codeword, key_fingerprint, record_fields, tile_prefixes
from shield.watermark.regions import FAILED, INTACT, UNCHECKED, Cells, cells_of, looks_reencoded, regions_of
from shield.watermark.scan import BlockScan, scan
from shield.watermark.types import Payload, WatermarkReport, WatermarkStatus

__all__ = ["verify"]

log = logging.getLogger(__name__)
REENCODED_TEXT = "re-encoded, fragile watermark destroyed"


def _tile_messages(s: BlockScan, f: dict[str, np.ndarray]) -> np.ndarray:
    """(n, 113) tile message each block implies: its record's fields, its own digest at
    its place among the sibling digests it carries."""
    assert s.sibs is not None and s.digests is not None
    n = len(s.bx)
    prefix = tile_prefixes(f["width"], f["height"], f["bx"] // 2, f["by"] // 2)
    own = (f["by"] % 2) * 2 + (f["bx"] % 2)
    four = np.empty((n, 4, DIGEST_BYTES), dtype=np.uint8)
    sib = s.sibs.reshape(n, 3, DIGEST_BYTES)
    others = np.arange(4)[None, :] != own[:, None]
    four[others] = sib.reshape(-1, DIGEST_BYTES)
    four[~others] = s.digests
    return np.concatenate([prefix, s.records[:, ASSET], four.reshape(n, 4 * DIGEST_BYTES)], axis=1)


def _check_blocks(s: BlockScan, pk: Ed25519PublicKey) -> tuple[np.ndarray, np.ndarray]:
    """Per block: its signature verifies; its record names this place and size.

    Blocks of one untouched tile imply the same (message, signature), so each distinct
    pair is verified once.
    """
    n = len(s.bx)
    sig_ok = np.zeros(n, dtype=bool)
    f = record_fields(s.records)
    placed = s.valid & (f["width"] == s.grid.width) & (f["height"] == s.grid.height) & (f["bx"] == s.bx) & (f["by"] == s.by)
    idx = np.nonzero(s.valid)[0]
    if idx.size == 0:
        return sig_ok, placed
    assert s.sigs is not None
    sub = {k: v[idx] for k, v in f.items()}
    rows = np.concatenate([_tile_messages(_take(s, idx), sub), s.sigs[idx]], axis=1)
    msg_len = rows.shape[1] - 64
    verdicts: dict[bytes, bool] = {}
    for k, row in zip(idx, rows):
        key = row.tobytes()
        ok = verdicts.get(key)
        if ok is None:
            try:
                pk.verify(key[msg_len:], key[:msg_len])
                ok = True
            except InvalidSignature:
                ok = False
            verdicts[key] = ok
        sig_ok[k] = ok
    log.debug("checked %d blocks with %d signature verifications", n, len(verdicts))
    return sig_ok, placed


def _take(s: BlockScan, idx: np.ndarray) -> BlockScan:
    assert s.sigs is not None and s.sibs is not None and s.digests is not None
    return BlockScan(
        s.grid, s.offset, s.brange, s.bx[idx], s.by[idx], s.records[idx], s.valid[idx],
        s.sigs[idx], s.sibs[idx], s.digests[idx],
    )


def _majority_fingerprint(s: BlockScan) -> bytes | None:
    counts = Counter(row.tobytes() for row in s.records[s.valid][:, FINGERPRINT])
    return counts.most_common(1)[0][0] if counts else None


def _report(
    status: WatermarkStatus,
    explanation: str,
    cells: Cells,
    shape: tuple[int, int],
    *,
    present: bool,
    payload: Payload | None,
    authenticated: bool,
    loc: Location | None,
    checked: int = 0,
    intact: int = 0,
) -> WatermarkReport:
    h, w = shape
    crop = None
    if loc is not None and (loc.width, loc.height, loc.ox, loc.oy) != (w, h, 0, 0):
        crop = (loc.ox, loc.oy)
    return WatermarkReport(
        present=present,
        intact_fraction=cells.area(cells.intact) / float(w * h),
        block_size=BLOCK,
        tampered_blocks=cells.tampered,
        tampered_regions=regions_of(cells),
        payload=payload,
        status=status,
        crop_offset=crop,
        explanation=explanation,
        unverified_blocks=cells.unverified,
        grid_x=tuple(int(v) for v in cells.xs),
        grid_y=tuple(int(v) for v in cells.ys),
        original_size=None if loc is None else (loc.width, loc.height),
        payload_authenticated=authenticated,
        blocks_checked=checked,
        blocks_intact=intact,
    )


def _not_found(img: np.ndarray, expected: bytes | None) -> WatermarkReport:
    h, w = img.shape[:2]
    grid = Grid(w, h)
    if expected is not None:
        state = np.full((grid.ny, grid.nx), FAILED, dtype=np.int8)
        status, text = WatermarkStatus.REENCODED, f"{REENCODED_TEXT}: no block of the expected watermark survives"
    else:
        state = np.full((grid.ny, grid.nx), UNCHECKED, dtype=np.int8)
        status = WatermarkStatus.ABSENT
        text = "no fragile watermark found: never watermarked, or re-encoded or resized (which destroys it)"
    cells = cells_of(state, grid, 0, 0, w, h)
    # no record passed its CRC anywhere and voting found no payload either
    return _report(status, text, cells, (h, w), present=False, payload=None, authenticated=False, loc=None)


def _keyless_payload(s: BlockScan) -> Payload | None:
    best = vote_codewords(s.records[s.valid])
    got = decode_codeword(best[0]) if best else soft_decode(s.records)
    return None if got is None else got[0]


def verify(
    rgb: np.ndarray,
    public_key: Ed25519PublicKey | bytes,
    *,
    asset_id: bytes | None = None,
) -> WatermarkReport:
    """Check every block of ``rgb`` against the publisher's public key.

    Args:
        rgb: HxWx3 uint8 RGB image as received (possibly edited or cropped).
        public_key: the publisher's Ed25519 watermark public key (object or 32 raw bytes).
        asset_id: the asset id the image should carry (from the C2PA manifest), if known.
            Blocks of other assets then count as tampered even if they are the majority,
            and a missing watermark reads as re-encoding rather than absence.

    Returns:
        WatermarkReport; never raises for a wrong key or a damaged image.

    Raises:
        TypeError: ``rgb`` or ``public_key`` of the wrong type or shape.
        WatermarkKeyError: ``public_key`` bytes are not an Ed25519 key.
        WatermarkInputError: ``asset_id`` is not 16 bytes.
    """
    img = check_rgb(rgb)
    pk = public_key_of(public_key)
    if asset_id is not None and (not isinstance(asset_id, bytes) or len(asset_id) != 16):
        raise WatermarkInputError("asset_id: expected 16 bytes or None")
    h, w = img.shape[:2]
    found = _locate_and_scan(img)
    if found is None:
        return _not_found(img, asset_id)
    loc, s = found
    grid = loc.grid
    sig_ok, placed = _check_blocks(s, pk)
    authentic = sig_ok & placed
    chosen, intact = _identity(s, authentic, asset_id)
    state = np.full((grid.ny, grid.nx), UNCHECKED, dtype=np.int8)
    state[s.by, s.bx] = np.where(intact, INTACT, FAILED)
    checked, n_ok = len(s.bx), int(intact.sum())
    signer = _majority_fingerprint(s)
    if not sig_ok.any() and signer is not None and signer != key_fingerprint(pk.public_bytes(Encoding.Raw, PublicFormat.Raw)):
        state[:] = UNCHECKED
        cells = cells_of(state, grid, loc.ox, loc.oy, w, h)
        text = f"a fragile watermark is present but signed by another key (fingerprint {signer.hex()}), not this one"
        return _report(WatermarkStatus.WRONG_KEY, text, cells, (h, w), present=True, payload=_keyless_payload(s),
                       authenticated=False, loc=loc, checked=checked, intact=n_ok)
    cells = cells_of(state, grid, loc.ox, loc.oy, w, h)
    got = decode_codeword(chosen) if chosen is not None else None
    payload, authenticated = (got[0], True) if got is not None else (_keyless_payload(s), False)
    if chosen is None and asset_id is not None and authentic.any():
        status = WatermarkStatus.TAMPERED
        text = "no block carries the expected asset id: the pixels are another protected image's"
    else:
        moved = int((sig_ok & ~intact).sum())
        status, text = _verdict(state, cells, loc, (h, w), has_identity=chosen is not None, moved=moved)
    return _report(status, text, cells, (h, w), present=True, payload=payload, authenticated=authenticated,
                   loc=loc, checked=checked, intact=n_ok)


def _locate_and_scan(img: np.ndarray) -> tuple[Location, BlockScan] | None:
    """Find the signed grid and read every whole block on it (None: no watermark)."""
    h, w = img.shape[:2]
    local = Grid(w, h)
    s = scan(img, local, 0, 0, full=True) if local.min_block_bits() >= USED_BITS else None
    loc = locate(img, s)
    if loc is None and s is not None and soft_decode(s.records) is not None:
        # no record survives intact, yet voting recovers the payload: a damaged
        # watermark on this very grid (e.g. scattered changes everywhere)
        loc = Location(w, h, 0, 0, 0)
    if loc is None:
        return None
    if s is None or (loc.width, loc.height, loc.ox, loc.oy) != (w, h, 0, 0):
        s = scan(img, loc.grid, loc.ox, loc.oy, full=True)
    return loc, s


def _identity(s: BlockScan, authentic: np.ndarray, asset_id: bytes | None) -> tuple[bytes | None, np.ndarray]:
    """The payload codeword the image stands for, and which blocks are intact under it.

    The expected asset id wins when given; otherwise the codeword most authentic,
    well-placed blocks carry (a collage is judged by its larger part).
    """
    codewords = [row.tobytes() for row in s.records[:, CODEWORD]]
    counts = Counter(codewords[i] for i in np.nonzero(authentic)[0])
    if asset_id is not None:
        counts = Counter({cw: n for cw, n in counts.items() if cw[1:17] == asset_id})
    chosen = counts.most_common(1)[0][0] if counts else None
    same = np.array([cw == chosen for cw in codewords], dtype=bool)
    return chosen, authentic & same


def _verdict(
    state: np.ndarray, cells: Cells, loc: Location, shape: tuple[int, int], *, has_identity: bool, moved: int
) -> tuple[WatermarkStatus, str]:
    h, w = shape
    checked = int((state != UNCHECKED).sum())
    failed = int((state == FAILED).sum())
    cropped = (loc.width, loc.height, loc.ox, loc.oy) != (w, h, 0, 0)
    extended = loc.ox < 0 or loc.oy < 0 or loc.ox + w > loc.width or loc.oy + h > loc.height
    if extended:
        crop_text = f"content added around the signed {loc.width}x{loc.height} image (offset ({loc.ox}, {loc.oy}))"
    else:
        crop_text = f"cropped from {loc.width}x{loc.height} at offset ({loc.ox}, {loc.oy})"
    if looks_reencoded(state):
        return WatermarkStatus.REENCODED, f"{REENCODED_TEXT} ({failed} of {checked} blocks fail, spread over the whole image)"
    if not has_identity:
        return WatermarkStatus.TAMPERED, f"none of the {checked} blocks verifies: all changed since signing"
    if cells.tampered.any():
        regions = regions_of(cells)
        share = cells.area(cells.tampered) / float(w * h)
        text = f"{failed} of {checked} blocks changed since signing, in {len(regions)} region(s) covering {share:.1%} of the image"
        if moved:
            text += f"; {moved} of them are authentic blocks moved or taken from another protected image"
        if cropped:
            text += f"; {crop_text}"
        return WatermarkStatus.TAMPERED, text
    if cropped:
        return WatermarkStatus.CROPPED, f"{crop_text}; the {checked} whole blocks left verify"
    return WatermarkStatus.INTACT, f"all {checked} blocks verify: the pixels are exactly as signed"
