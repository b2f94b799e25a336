r"""Byte formats: the keyless per-block record, the payload codeword, the signed tile message.

Record (84 bytes, big-endian, written into each block's record slots, MSB first):

    0      u8   record format version (1)
    1..3   u24  signed image width W0
    4..6   u24  signed image height H0
    7..8   u16  block column bx
    9..10  u16  block row by
    11..71 61 B payload codeword: Reed-Solomon (reedsolo, GF(2^8), 16 parity bytes) over
                u8 payload version | 16 B asset id | u64 chain id | 20 B registry
    72..79 8 B  fingerprint of the signing public key (first 8 bytes of SHA-256 over
                b"shield.fragile.v1/key\0" | raw key), so a verifier can say "wrong key"
                and look the publisher up without trying keys
    80..83 u32  CRC-32 (zlib) of bytes 0..79

The record is keyless and unauthenticated on its own (anyone can write one); it lets a
reader find the grid of a cropped image and the payload. Authenticity comes from the
signature, whose tile message covers every record through the block digests.

Tile message (signed with Ed25519, one per 2x2 tile of blocks, 113 bytes):

    b"shield.fragile.v1\0" | u8 version | u32 W0 | u32 H0 | u16 block | u16 tx | u16 ty |
    16 B asset id | 4 x 16 B block digests (row-major in the tile; zeros for absent blocks)

Block digest: SHA-256 of the block's values in slot order (see layout) with the LSBs
of its signature and sibling-digest slots cleared, truncated to 16 bytes. It covers all
other bits, including the record, so every changed stored value of the block changes
the digest, the stored signature or the stored sibling digests, and each of those breaks
the check.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from typing import NamedTuple

import numpy as np
from reedsolo import ReedSolomonError, RSCodec

from shield.watermark.layout import BLOCK, DIGEST_BYTES, REC_BYTES
from shield.watermark.types import Payload

__all__ = [
    "SCHEME",
    "RECORD_VERSION",
    "encode_payload",
    "decode_codeword",
    "key_fingerprint",
    "pack_records",
    "crc_ok",
    "Record",
    "parse_record",
    "tile_message",
    "block_digests",
    "record_fields",
    "tile_prefixes",
    "CODEWORD",
    "ASSET",
    "FINGERPRINT",
]

SCHEME = "shield.fragile.v1"
RECORD_VERSION = 1
RS_NSYM = 16
PAYLOAD_BYTES = 45
CODEWORD_BYTES = PAYLOAD_BYTES + RS_NSYM
FINGERPRINT_BYTES = 8
_HEAD = struct.Struct(">B3s3sHH")
_DOMAIN = SCHEME.encode() + b"\0"
_RS = RSCodec(RS_NSYM)


def encode_payload(p: Payload) -> bytes:
    """Payload -> 61-byte Reed-Solomon codeword (systematic: payload bytes first)."""
    raw = struct.pack(">B16sQ20s", p.version, p.asset_id, p.chain_id, p.registry)
    return bytes(_RS.encode(raw))


def decode_codeword(cw: bytes, erasures: list[int] | None = None) -> tuple[Payload, int] | None:
    """Reed-Solomon decode a codeword; returns (payload, bytes corrected) or None."""
    try:
        msg, _, errata = _RS.decode(bytearray(cw), erase_pos=erasures or None)
    except ReedSolomonError:
        return None
    version, asset_id, chain_id, registry = struct.unpack(">B16sQ20s", bytes(msg))
    return Payload(version, asset_id, chain_id, registry), len(errata)


def key_fingerprint(raw_public_key: bytes) -> bytes:
    """8-byte fingerprint of a raw 32-byte Ed25519 public key, as stored in records."""
    return hashlib.sha256(_DOMAIN[:-1] + b"/key\0" + raw_public_key).digest()[:FINGERPRINT_BYTES]


def pack_records(
    width: int, height: int, bx: np.ndarray, by: np.ndarray, codeword: bytes, fingerprint: bytes
) -> np.ndarray:
    """Records for the given blocks as an (n, 84) uint8 array."""
    n = len(bx)
    out = np.empty((n, REC_BYTES), dtype=np.uint8)
    out[:, 0] = RECORD_VERSION
    out[:, 1:4] = np.frombuffer(width.to_bytes(3, "big"), dtype=np.uint8)
    out[:, 4:7] = np.frombuffer(height.to_bytes(3, "big"), dtype=np.uint8)
    out[:, 7] = bx >> 8
    out[:, 8] = bx & 0xFF
    out[:, 9] = by >> 8
    out[:, 10] = by & 0xFF
    out[:, 11 : 11 + CODEWORD_BYTES] = np.frombuffer(codeword, dtype=np.uint8)
    out[:, 11 + CODEWORD_BYTES : REC_BYTES - 4] = np.frombuffer(fingerprint, dtype=np.uint8)
    for i in range(n):
        out[i, REC_BYTES - 4 :] = np.frombuffer(zlib.crc32(out[i, : REC_BYTES - 4].tobytes()).to_bytes(4, "big"), dtype=np.uint8)
    return out


def crc_ok(records: np.ndarray) -> np.ndarray:
    """Bool per record: CRC-32 matches and the version byte is known."""
    ok = np.zeros(len(records), dtype=bool)
    body = REC_BYTES - 4
    for i, row in enumerate(records):
        b = row.tobytes()
        ok[i] = b[0] == RECORD_VERSION and zlib.crc32(b[:body]) == int.from_bytes(b[body:], "big")
    return ok


class Record(NamedTuple):
    """Fields of one valid record."""

    width: int
    height: int
    bx: int
    by: int
    codeword: bytes
    fingerprint: bytes

    @property
    def asset_id(self) -> bytes:
        return self.codeword[1:17]


def parse_record(row: np.ndarray) -> Record:
    """Fields of a record row (call only on rows that passed :func:`crc_ok`)."""
    b = row.tobytes()
    _, w, h, bx, by = _HEAD.unpack_from(b)
    return Record(int.from_bytes(w, "big"), int.from_bytes(h, "big"), bx, by, b[11 : 11 + CODEWORD_BYTES], b[11 + CODEWORD_BYTES : REC_BYTES - 4])


def tile_prefixes(width: np.ndarray, height: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """(n, 33) vectorised :func:`tile_message` prefixes (domain up to ty)."""
    n = len(width)
    out = np.empty((n, len(_DOMAIN) + 15), dtype=np.uint8)
    out[:, : len(_DOMAIN)] = np.frombuffer(_DOMAIN, dtype=np.uint8)
    cols = len(_DOMAIN)
    out[:, cols] = RECORD_VERSION
    for off, vals, nbytes in ((1, width, 4), (5, height, 4), (9, np.full(n, BLOCK), 2), (11, tx, 2), (13, ty, 2)):
        for k in range(nbytes):
            out[:, cols + off + k] = (vals >> (8 * (nbytes - 1 - k))) & 0xFF
    return out


def tile_message(width: int, height: int, tx: int, ty: int, asset_id: bytes, digests: bytes) -> bytes:
    """The bytes signed for one tile (``digests``: 4 x 16 bytes, row-major)."""
    return _DOMAIN + struct.pack(">BIIHHH", RECORD_VERSION, width, height, BLOCK, tx, ty) + asset_id + digests


def block_digests(blocks: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(n, 16) truncated SHA-256 of each block (slot order) ANDed with ``mask``."""
    work = blocks & mask
    out = b"".join(hashlib.sha256(row.data).digest()[:DIGEST_BYTES] for row in work)
    return np.frombuffer(out, dtype=np.uint8).reshape(len(blocks), DIGEST_BYTES)


def record_fields(records: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised fields of (n, 84) records: width, height, bx, by (int64 arrays)."""
    r = records.astype(np.int64)
    return {
        "width": (r[:, 1] << 16) | (r[:, 2] << 8) | r[:, 3],
        "height": (r[:, 4] << 16) | (r[:, 5] << 8) | r[:, 6],
        "bx": (r[:, 7] << 8) | r[:, 8],
        "by": (r[:, 9] << 8) | r[:, 10],
    }


#: Column ranges inside a record row.
CODEWORD = slice(11, 11 + CODEWORD_BYTES)
ASSET = slice(12, 28)
FINGERPRINT = slice(11 + CODEWORD_BYTES, REC_BYTES - 4)
