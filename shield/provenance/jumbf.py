"""Read-only access to the C2PA manifest store embedded in a PNG (expert layer).

c2pa-python reports the manifest as JSON but not the raw signing certificate nor the
stored bytes, and shield needs both: the SHA-256 of the leaf certificate (the publisher
fingerprint registered on the ledger) and a hash of the manifest store that signer and
verifier compute identically. This module recovers them from the file itself:

- PNG: the manifest store is the payload of the ``caBX`` chunk (C2PA 2.x, "Embedding
  manifests into PNG"). Its bytes equal what ``Builder.sign`` returns, so
  ``SHA-256(caBX payload)`` is the manifest hash on both sides.
- JUMBF (ISO/IEC 19566-5): boxes of ``LBox(4) TBox(4) [XLBox(8)] payload``; a superbox
  ``jumb`` starts with a description box ``jumd`` holding a 16-byte type UUID, a toggle
  byte and, when toggle bit 1 is set, a NUL-terminated label.
- The claim signature (label ``c2pa.signature``) is a COSE_Sign1 (RFC 9052 §4.2) in a
  ``cbor`` box; its ``x5chain`` header (label 33, RFC 9360) carries the certificate
  chain, leaf first.

Only the subset of CBOR (RFC 8949) that COSE headers use is decoded, with explicit
limits, because the input is attacker-controlled.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PNG_SIGNATURE",
    "png_chunks",
    "png_manifest_store",
    "webp_manifest_store",
    "manifest_store",
    "JumbfBox",
    "jumbf_boxes",
    "active_manifest_signature",
    "cose_certificate_chain",
    "cbor_decode",
    "CborError",
    "MAX_CBOR_DEPTH",
    "MAX_CBOR_ITEMS",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: CBOR nesting deeper than this is not a COSE header: reject rather than recurse.
MAX_CBOR_DEPTH = 16
#: Largest array/map length accepted; COSE headers hold a handful of entries.
MAX_CBOR_ITEMS = 4096
#: JUMBF nesting deeper than this is not a C2PA manifest store.
MAX_JUMBF_DEPTH = 8
COSE_HEADER_X5CHAIN = 33


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, bytes]]:
    """Yield ``(type, offset, payload)`` for each chunk of a PNG; stop at a malformed one."""
    if not data.startswith(PNG_SIGNATURE):
        return
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return
        yield ctype, pos, data[pos + 8 : pos + 8 + length]
        pos = end
        if ctype == b"IEND":
            return


def png_manifest_store(data: bytes) -> bytes | None:
    """The C2PA manifest store (JUMBF bytes of the first ``caBX`` chunk), or None."""
    for ctype, _, payload in png_chunks(data):
        if ctype == b"caBX":
            return payload
    return None


def webp_manifest_store(data: bytes) -> bytes | None:
    """The C2PA manifest store of a WebP (payload of its first RIFF ``C2PA`` chunk), or None."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    end = min(len(data), 8 + struct.unpack_from("<I", data, 4)[0])
    pos = 12
    while pos + 8 <= end:
        tag = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        if pos + 8 + size > end:
            return None
        if tag == b"C2PA":
            return data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    return None


def manifest_store(data: bytes, mime: str) -> bytes | None:
    """The embedded C2PA manifest store of a PNG or WebP, or None (none, or another format)."""
    if mime == "image/png":
        return png_manifest_store(data)
    if mime == "image/webp":
        return webp_manifest_store(data)
    return None


@dataclass(frozen=True)
class JumbfBox:
    """One JUMBF box: its type, its label when it is a labelled superbox, its payload."""

    box_type: bytes
    label: str | None
    payload: bytes
    children: tuple[JumbfBox, ...]


def _raw_boxes(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    pos = 0
    while pos + 8 <= len(data):
        size, btype = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                return
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            header = 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            return
        yield btype, data[pos + header : pos + size]
        pos += size


def _label(jumd: bytes) -> str | None:
    if len(jumd) < 17 or not jumd[16] & 0x02:
        return None
    end = jumd.find(b"\x00", 17)
    raw = jumd[17:] if end < 0 else jumd[17:end]
    return raw.decode("utf-8", "replace")


def jumbf_boxes(data: bytes, depth: int = 0) -> tuple[JumbfBox, ...]:
    """Parse a JUMBF byte string into a tree of boxes (superboxes get their label)."""
    out = []
    for btype, payload in _raw_boxes(data):
        label: str | None = None
        children: tuple[JumbfBox, ...] = ()
        if btype == b"jumb" and depth < MAX_JUMBF_DEPTH:
            kids = list(_raw_boxes(payload))
            if kids and kids[0][0] == b"jumd":
                label = _label(kids[0][1])
            children = jumbf_boxes(payload, depth + 1)
        out.append(JumbfBox(btype, label, payload, children))
    return tuple(out)


def active_manifest_signature(store: bytes) -> tuple[str, bytes] | None:
    """``(manifest label, COSE_Sign1 bytes)`` of the active (last) manifest, or None."""
    top = jumbf_boxes(store)
    if not top or top[0].label != "c2pa":
        return None
    manifests = [b for b in top[0].children if b.box_type == b"jumb" and b.label]
    if not manifests:
        return None
    active = manifests[-1]
    for box in active.children:
        if box.label == "c2pa.signature":
            for content in box.children:
                if content.box_type == b"cbor":
                    return active.label or "", content.payload
    return None


class CborError(ValueError):
    """The bytes are not CBOR of the supported subset."""


def _cbor_item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_CBOR_DEPTH:
        raise CborError("CBOR nested too deeply")
    if pos >= len(data):
        raise CborError("truncated CBOR")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        width = 1 << (info - 24)
        if pos + width > len(data):
            raise CborError("truncated CBOR")
        arg = int.from_bytes(data[pos : pos + width], "big")
        pos += width
    else:
        raise CborError("indefinite-length CBOR is not supported")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise CborError("truncated CBOR string")
        raw = data[pos : pos + arg]
        return (raw if major == 2 else raw.decode("utf-8", "replace")), pos + arg
    if major in (4, 5):
        if arg > MAX_CBOR_ITEMS:
            raise CborError("CBOR container too large")
        if major == 4:
            items = []
            for _ in range(arg):
                item, pos = _cbor_item(data, pos, depth + 1)
                items.append(item)
            return items, pos
        mapping: dict[Any, Any] = {}
        for _ in range(arg):
            key, pos = _cbor_item(data, pos, depth + 1)
            value, pos = _cbor_item(data, pos, depth + 1)
            if isinstance(key, (list, dict)):
                raise CborError("unsupported CBOR map key")
            mapping[key] = value
        return mapping, pos
    if major == 6:
        return _cbor_item(data, pos, depth + 1)  # tags (e.g. 18 = COSE_Sign1) are transparent
    simple = {20: False, 21: True, 22: None, 23: None}
    if info in simple:
        return simple[info], pos
    return arg, pos  # floats are not needed here: their raw bits are returned


def cbor_decode(data: bytes) -> Any:
    """Decode one CBOR item (subset: ints, strings, arrays, maps, tags, simple values)."""
    value, _ = _cbor_item(data, 0, 0)
    return value


def cose_certificate_chain(cose_sign1: bytes) -> list[bytes]:
    """DER certificates of a COSE_Sign1's ``x5chain`` header, leaf first ([] if absent)."""
    try:
        message = cbor_decode(cose_sign1)
        if not isinstance(message, list) or len(message) != 4:
            return []
        protected = cbor_decode(message[0]) if message[0] else {}
        unprotected = message[1] if isinstance(message[1], dict) else {}
    except CborError:
        return []
    for header in (protected, unprotected):
        chain = header.get(COSE_HEADER_X5CHAIN) if isinstance(header, dict) else None
        if isinstance(chain, bytes):
            return [chain]
        if isinstance(chain, list):
            return [c for c in chain if isinstance(c, bytes)]
    return []
