"""Embedding the fragile watermark (see :mod:`shield.watermark.record` for the formats).

Order of work, so that every digest covers the final values of the bits it covers:
1. write each block's record by LSB matching (the +-1 direction follows the hint's sign
   where there is one, so the change agrees with the adversarial perturbation);
2. digest every block with its signature and sibling-digest slots' LSBs cleared;
3. sign each 2x2 tile's message (4 digests, position, size, asset id) with Ed25519;
4. write sibling digests and the signature by LSB replacement (higher bits untouched,
   so the digests stay valid).
At most 1568 of a 32x32 block's 3072 LSBs are set and each changes by at most 1, so the
PSNR is at least 51.0 dB and about 54 dB on average.
"""

from __future__ import annotations

import logging

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shield.watermark.checks import check_hint, check_private_key, check_rgb
from shield.watermark.errors import ImageTooSmallError
from shield.watermark.layout import DIGEST_BYTES, REC, SIB, SIG, USED_BITS, Grid, Group, extract, insert, slots
from shield.watermark.record import block_digests, encode_payload, key_fingerprint, pack_records, tile_message
from shield.watermark.types import Payload

__all__ = ["embed"]

log = logging.getLogger(__name__)


def _match_lsb(values: np.ndarray, bits: np.ndarray, hint: np.ndarray | None) -> np.ndarray:
    """Set LSBs to ``bits`` by +-1 steps; direction from ``hint`` where nonzero."""
    v = values.astype(np.int16)
    default = 1 - 2 * (v & 1)  # plain LSB replacement: even +1, odd -1
    step = default if hint is None else np.where(hint > 0, 1, np.where(hint < 0, -1, default))
    step = np.where(v == 255, -1, np.where(v == 0, 1, step))
    flip = (v & 1) != bits
    return (v + flip * step).astype(np.uint8)


def _tile_digests(digests: np.ndarray, grid: Grid) -> np.ndarray:
    """(ny, nx, 16) block digests -> (nty, ntx, 64): the four digests of each 2x2 tile."""
    nty, ntx = (grid.ny + 1) // 2, (grid.nx + 1) // 2
    pad = np.zeros((2 * nty, 2 * ntx, DIGEST_BYTES), dtype=np.uint8)
    pad[: grid.ny, : grid.nx] = digests
    return pad.reshape(nty, 2, ntx, 2, DIGEST_BYTES).transpose(0, 2, 1, 3, 4).reshape(nty, ntx, 4 * DIGEST_BYTES)


def sibling_digests(tiles: np.ndarray, bx: np.ndarray, by: np.ndarray) -> np.ndarray:
    """(n, 48): for each block, the digests of the other three tile positions, in order."""
    four = tiles[by // 2, bx // 2].reshape(len(bx), 4, DIGEST_BYTES)
    own = (by % 2) * 2 + (bx % 2)
    keep = np.arange(4)[None, :] != own[:, None]
    return four[keep].reshape(len(bx), 3 * DIGEST_BYTES)


def embed(
    rgb: np.ndarray,
    payload: Payload,
    key: Ed25519PrivateKey,
    *,
    hint: np.ndarray | None = None,
) -> np.ndarray:
    """Return a watermarked copy of ``rgb``.

    Args:
        rgb: HxWx3 uint8 RGB image; at least 32x32 pixels or so (each block must hold
            1568 bits, i.e. at least 523 pixels).
        payload: what the keyless record carries (asset id, chain, registry).
        key: the publisher's Ed25519 watermark key.
        hint: optional HxWx3 signed perturbation (int or float); where a record bit needs
            a +-1 change, the step takes the hint's sign.

    Returns:
        HxWx3 uint8 array; differs from ``rgb`` by at most 1 per value (PSNR >= 51 dB).

    Raises:
        TypeError: malformed ``rgb``, ``payload``, ``key`` or ``hint`` (message names it).
        ImageTooSmallError: the image cannot hold one block.
    """
    img = check_rgb(rgb)
    if not isinstance(payload, Payload):
        raise TypeError(f"payload: expected a Payload, got {type(payload).__name__}")
    key = check_private_key(key)
    hint_f = check_hint(hint, img.shape)
    h, w = img.shape[:2]
    grid = Grid(w, h)
    if grid.min_block_bits() < USED_BITS:
        raise ImageTooSmallError(f"rgb: a {w}x{h} image is too small to carry the watermark (needs about 32x32 pixels)")
    out = img.copy()
    codeword = encode_payload(payload)
    fingerprint = key_fingerprint(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    digests = np.zeros((grid.ny, grid.nx, DIGEST_BYTES), dtype=np.uint8)
    work: list[tuple[Group, np.ndarray]] = []
    for g in grid.groups():
        x0, y0 = int(grid.xs[g.bx0]), int(grid.ys[g.by0])
        blocks = extract(out, x0, y0, g)
        bx, by = g.coords()
        bits = np.unpackbits(pack_records(w, h, bx, by, codeword, fingerprint), axis=1)
        hint_rec = None if hint_f is None else extract(hint_f, x0, y0, g)[:, REC]
        blocks[:, REC] = _match_lsb(blocks[:, REC], bits, hint_rec)
        digests[by, bx] = block_digests(blocks, slots(g.bh, g.bw).digest_mask)
        work.append((g, blocks))
    tiles = _tile_digests(digests, grid)
    nty, ntx = tiles.shape[:2]
    sigs = np.empty((nty, ntx, 64), dtype=np.uint8)
    for ty in range(nty):
        for tx in range(ntx):
            sig = key.sign(tile_message(w, h, tx, ty, payload.asset_id, tiles[ty, tx].tobytes()))
            sigs[ty, tx] = np.frombuffer(sig, dtype=np.uint8)
    for g, blocks in work:
        bx, by = g.coords()
        sib_bits = np.unpackbits(sibling_digests(tiles, bx, by), axis=1)
        sig_bits = np.unpackbits(sigs[by // 2, bx // 2], axis=1)
        blocks[:, SIB] = (blocks[:, SIB] & 0xFE) | sib_bits
        blocks[:, SIG] = (blocks[:, SIG] & 0xFE) | sig_bits
        insert(out, int(grid.xs[g.bx0]), int(grid.ys[g.by0]), g, blocks)
    log.debug("embedded %d blocks, %d tile signatures in a %dx%d image", grid.nx * grid.ny, nty * ntx, w, h)
    return out
