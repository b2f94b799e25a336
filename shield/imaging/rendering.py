"""What in a file, besides the first frame's stored pixel values, changes what a viewer
shows: extra frames (APNG, animated WebP, multi-page TIFF, MPO) and colour or geometry
metadata (ICC profiles, gamma, chromaticities, sRGB intent, CICP, EXIF orientation).

shield's protected files are PNGs holding only IHDR, IDAT, IEND and the C2PA ``caBX``
chunk (see :func:`shield.imaging.encode_png`): the fragile watermark signs the stored
pixel values, so anything here was added after publication and is not bound by it. A
verifier treats its presence as a modification (issue 18: a ``gAMA`` 0.2 chunk or an
``iCCP`` profile with swapped primaries recolours the face without touching a pixel).

Pure functions on bytes: container walks bounded by :data:`MAX_CHUNKS`, never raising
on hostile input (a malformed container yields what was read up to the damage).
References: PNG 3rd edition (W3C 2025) sections 4.3, 11.3; APNG (PNG 3rd ed. 11.3.6);
JPEG (ITU T.81 Annex B) with ICC.1:2022 Annex B.4 (APP2) and EXIF 2.32 (APP1);
WebP container (RFC 9649) VP8X flags and chunks.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RenderingMetadata", "rendering_metadata", "PNG_RENDERING_CHUNKS", "MAX_CHUNKS"]

#: Most chunks/segments walked: a real photo has tens; this bounds hostile files.
MAX_CHUNKS = 100_000

#: PNG chunks that change how the stored pixels are shown (colour, transparency,
#: animation, orientation via eXIf). Ancillary text chunks (tEXt, iTXt, zTXt), time and
#: physical size do not change the picture.
PNG_RENDERING_CHUNKS = frozenset({
    b"acTL", b"fcTL", b"fdAT",  # APNG: other frames, possibly the one a viewer shows
    b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"cICP", b"mDCV", b"cLLI", b"mDCv", b"cLLi",  # colour
    b"tRNS", b"bKGD", b"sBIT",  # transparency and its backdrop, significant bits
    b"eXIf",  # EXIF, whose orientation tag rotates the picture
})


@dataclass(frozen=True)
class RenderingMetadata:
    """What was found.

    Attributes:
        items: names of rendering-relevant chunks/segments in file order, deduplicated
            (PNG chunk types, "JPEG APP2 ICC_PROFILE", "WebP ICCP", ...).
        frames: frames or pages the container declares (1 when it declares nothing).
    """

    items: tuple[str, ...] = ()
    frames: int = 1

    @property
    def changes_rendering(self) -> bool:
        return bool(self.items) or self.frames > 1


def rendering_metadata(data: bytes, fmt: str) -> RenderingMetadata:
    """Rendering-relevant metadata in an encoded image (see the module docstring).

    Args:
        data: the whole file.
        fmt: its content format ("PNG", "JPEG", "WEBP", "TIFF").
    """
    if fmt == "PNG":
        return _png(data)
    if fmt == "JPEG":
        return _jpeg(data)
    if fmt == "WEBP":
        return _webp(data)
    return RenderingMetadata()


def _png(data: bytes) -> RenderingMetadata:
    found: dict[str, None] = {}
    frames = 1
    pos = 8
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = data[pos + 4:pos + 8]
        if ctype == b"IEND":
            break
        if ctype in PNG_RENDERING_CHUNKS:
            found[ctype.decode("latin-1")] = None
            if ctype == b"acTL" and length >= 8 and pos + 16 <= len(data):
                frames = max(frames, struct.unpack_from(">I", data, pos + 8)[0])
        elif ctype not in (b"IHDR", b"IDAT", b"PLTE", b"caBX") and ctype[:1].isupper():
            found[ctype.decode("latin-1")] = None  # an unknown critical chunk
        pos += 12 + length
    return RenderingMetadata(tuple(found), frames)


def _exif_orientation(exif: bytes) -> int:
    """The orientation tag (0x0112) of a TIFF-structured EXIF block, 1 when absent."""
    if len(exif) < 8 or exif[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if exif[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack_from(end + "I", exif, 4)
        (count,) = struct.unpack_from(end + "H", exif, ifd)
        for i in range(min(count, 1024)):
            tag, _typ, _n = struct.unpack_from(end + "HHI", exif, ifd + 2 + 12 * i)
            if tag == 0x0112:
                return int(struct.unpack_from(end + "H", exif, ifd + 2 + 12 * i + 8)[0])
    except struct.error:
        return 1
    return 1


def _jpeg(data: bytes) -> RenderingMetadata:
    found: dict[str, None] = {}
    frames = 1
    pos = 2
    for _ in range(MAX_CHUNKS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker in (0xD9, 0xDA):  # EOI, SOS: metadata comes before the scan
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        body = data[pos + 4:pos + 2 + length]
        if marker == 0xE2 and body.startswith(b"ICC_PROFILE\0"):
            found["JPEG APP2 ICC_PROFILE"] = None
        elif marker == 0xE2 and body.startswith(b"MPF\0"):
            found["JPEG APP2 MPF (multi-picture)"] = None
            frames = max(frames, 2)
        elif marker == 0xE1 and body.startswith(b"Exif\0\0") and _exif_orientation(body[6:]) != 1:
            found["JPEG APP1 EXIF orientation"] = None
        elif marker == 0xEE and body.startswith(b"Adobe"):
            found["JPEG APP14 Adobe colour transform"] = None
        pos += 2 + length
    return RenderingMetadata(tuple(found), frames)


def _webp(data: bytes) -> RenderingMetadata:
    found: dict[str, None] = {}
    frames = 0
    pos = 12
    for _ in range(MAX_CHUNKS):
        if pos + 8 > len(data):
            break
        tag = data[pos:pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if tag == b"ICCP":
            found["WebP ICCP"] = None
        elif tag == b"EXIF" and _exif_orientation(data[pos + 8:pos + 8 + size].removeprefix(b"Exif\0\0")) != 1:
            found["WebP EXIF orientation"] = None
        elif tag == b"ANIM":
            found["WebP ANIM"] = None
        elif tag == b"ANMF":
            frames += 1
        pos += 8 + size + (size & 1)
    return RenderingMetadata(tuple(found), max(frames, 1))
