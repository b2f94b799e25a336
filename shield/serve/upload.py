"""One photo uploaded as multipart/form-data, streamed into the request's own folder.

The body goes through python-multipart's streaming parser; the photo's bytes are
written straight into the folder the caller created for this request (nothing is
spooled elsewhere), and reading stops at the first byte over the limit. Every way a
body can be wrong is an :class:`UploadError` carrying the HTTP status to answer with.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from shield.errors import InputError

__all__ = [
    "Upload",
    "UploadError",
    "UploadTooLargeError",
    "read_upload",
    "safe_filename",
    "BODY_OVERHEAD",
    "MAX_FIELD_BYTES",
    "MAX_FIELDS",
]

#: Bytes a body may carry beyond the photo: part headers, boundaries and the small
#: form fields. A body longer than the photo limit plus this is refused unread.
BODY_OVERHEAD = 64 * 1024
#: Largest form field (strength, flags: a few characters each).
MAX_FIELD_BYTES = 256
#: Most parts in one body: the photo and a handful of options.
MAX_FIELDS = 8
#: Longest file name kept from the upload (the rest of the stem is cut).
MAX_FILENAME = 100
#: Longest part header line (a Content-Disposition with a long file name fits).
MAX_HEADER_BYTES = 4096


class UploadError(InputError):
    """The request body is not one photo uploaded as multipart/form-data."""

    status: int = 400
    default_fix = "send the photo as the `file` field of a multipart/form-data POST"


class UploadTooLargeError(UploadError):
    """The uploaded photo is larger than the server's limit."""

    status = 413
    default_fix = "upload a smaller file, or restart `shield serve` with a larger --max-upload-mb"


class UnsupportedUploadError(UploadError):
    """The body is not multipart/form-data."""

    status = 415


@dataclass(frozen=True)
class Upload:
    """The photo of one request.

    Attributes:
        path: where its bytes were written (inside the request's folder).
        filename: the sender's file name, reduced to a safe base name.
        size: its length in bytes.
        fields: the other (small, text) form fields by name.
    """

    path: Path
    filename: str
    size: int
    fields: Mapping[str, str] = field(default_factory=dict)


def safe_filename(raw: str) -> str:
    """A base name safe to create in a folder: no directories, no odd characters.

    Keeps letters, digits, ``.``, ``_`` and ``-`` (others become ``_``), drops leading
    dots, and cuts the stem so that the name fits :data:`MAX_FILENAME` with its suffix.
    """
    base = re.split(r"[/\\]", raw)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    if not name.strip("_"):
        return "photo"
    if len(name) > MAX_FILENAME:
        stem, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 8 else ""
        name = (stem if keep else name)[: MAX_FILENAME - len(keep) - 1] + ("." + keep if keep else "")
    return name


class _Collector:
    """The parser's callbacks: headers per part, the photo to a file, fields to memory."""

    def __init__(self, folder: Path, file_field: str, max_bytes: int) -> None:
        self.folder, self.file_field, self.max_bytes = folder, file_field, max_bytes
        self.fields: dict[str, str] = {}
        self.upload: Upload | None = None
        self.ended = False
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_field = b""
        self._header_value = b""
        self._name: str | None = None
        self._value = bytearray()
        self._file: BinaryIO | None = None
        self._file_path: Path | None = None
        self._file_name = ""
        self._size = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_FIELDS:
            raise UploadError(f"more than {MAX_FIELDS} form fields")
        self._headers, self._name, self._value = {}, None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_field.strip().lower()] = self._header_value.strip()
        self._header_field, self._header_value = b"", b""

    def headers_finished(self) -> None:
        kind, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if kind != b"form-data" or b"name" not in params:
            raise UploadError("a form part has no Content-Disposition: form-data name")
        name = params[b"name"].decode("utf-8", "replace")
        if b"filename" not in params:
            self._name = name
            return
        if name != self.file_field:
            raise UploadError(f"unexpected file field {name!r}: the photo goes in {self.file_field!r}")
        if self.upload is not None or self._file is not None:
            raise UploadError("more than one photo in one request: upload them one at a time")
        self._file_name = safe_filename(params[b"filename"].decode("utf-8", "replace"))
        self._file_path = self.folder / self._file_name
        self._file = self._file_path.open("xb")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None:
            self._size += len(chunk)
            if self._size > self.max_bytes:
                raise UploadTooLargeError(f"the photo is larger than the {_human(self.max_bytes)} upload limit")
            self._file.write(chunk)
        elif self._name is not None:
            self._value += chunk
            if len(self._value) > MAX_FIELD_BYTES:
                raise UploadError(f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self._file is not None and self._file_path is not None:
            self._file.close()
            self._file = None
            self.upload = Upload(self._file_path, self._file_name, self._size)
        elif self._name is not None:
            try:
                self.fields[self._name] = self._value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UploadError(f"form field {self._name!r} is not UTF-8 text") from exc

    def end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def read_upload(headers: Mapping[str, str], body: AsyncIterator[bytes], folder: Path, *, max_bytes: int,
                      file_field: str = "file") -> Upload:
    """Stream one multipart/form-data body into ``folder`` and return its photo.

    Args:
        headers: the request headers (``content-type``, ``content-length``; lower case).
        body: the request body in chunks.
        folder: an existing, empty folder of this request; the photo is written there.
        max_bytes: largest photo accepted, in bytes.
        file_field: the form field that carries the photo.

    Raises:
        UploadTooLargeError: the photo (or the declared body) exceeds the limit.
        UnsupportedUploadError: the body is not multipart/form-data.
        UploadError: the body is malformed, truncated, or holds no photo.
    """
    kind, params = parse_options_header(headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedUploadError("the request is not multipart/form-data")
    limit = max_bytes + BODY_OVERHEAD
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadTooLargeError(f"the upload ({_human(int(declared))}) is larger than the {_human(max_bytes)} upload limit")
    collector = _Collector(folder, file_field, max_bytes)
    try:
        parser = MultipartParser(boundary, collector.callbacks(), max_header_size=MAX_HEADER_BYTES)  # type: ignore[arg-type]
        received = 0
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise UploadTooLargeError(f"the upload is larger than the {_human(max_bytes)} upload limit")
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise UploadError(f"malformed multipart body: {exc}") from exc
    finally:
        collector.close()
    if not collector.ended:
        raise UploadError("the upload ended before its closing boundary (interrupted?)")
    if collector.upload is None:
        raise UploadError(f"no photo in the upload: send it as the {file_field!r} file field")
    upload = collector.upload
    return Upload(upload.path, upload.filename, upload.size, dict(collector.fields))


def _human(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"
