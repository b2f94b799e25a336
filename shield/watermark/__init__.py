"""Fragile watermark: publicly verifiable tamper localization and a keyless payload.

Scheme ``shield.fragile.v1`` (expert layer; the recipes are ``shield.protect`` /
``shield.verify``). The image is cut into 32x32 blocks (edge blocks up to 63 wide). In
the least significant bits of each block, at fixed public positions, go: a keyless,
CRC-checked record (signed image size, block coordinates, and the Reed-Solomon coded
payload: version, 128-bit asset id, chain id, registry), the truncated SHA-256 digests
of the other blocks of its 2x2 tile, and one Ed25519 signature by the publisher over the
tile (its four digests, position, image size, asset id). Anyone with the publisher's
public key can check each block on its own; nobody without the private key can make a
changed block check out. See :mod:`shield.watermark.record` for the exact bytes.
Related work: Wong & Memon, "Secret and public key image watermarking schemes for image
authentication and ownership verification", IEEE TIP 10(10), 2001 (block-wise public-key
fragile watermarking); Holliman & Memon, IEEE TIP 9(3), 2000 (the collage attack that the
position/image binding defeats).
"""

from shield.watermark.embed import embed
from shield.watermark.errors import ImageTooSmallError, LossyFormatError, WatermarkInputError, WatermarkKeyError
from shield.watermark.formats import require_lossless
from shield.watermark.layout import BLOCK as BLOCK_SIZE
from shield.watermark.reading import read_payload
from shield.watermark.record import SCHEME
from shield.watermark.tamper_map import render_tamper_map
from shield.watermark.types import (
    PAYLOAD_VERSION,
    Payload,
    PayloadReading,
    Region,
    WatermarkReport,
    WatermarkStatus,
)
from shield.watermark.verify import verify

__all__ = [
    "SCHEME",
    "BLOCK_SIZE",
    "PAYLOAD_VERSION",
    "Payload",
    "PayloadReading",
    "Region",
    "WatermarkReport",
    "WatermarkStatus",
    "embed",
    "verify",
    "read_payload",
    "render_tamper_map",
    "require_lossless",
    "ImageTooSmallError",
    "LossyFormatError",
    "WatermarkInputError",
    "WatermarkKeyError",
]
