"""The local verify page's server: ``create_app(settings)`` builds the FastAPI app.

Routes:
    ``GET /``                         the page (one static HTML file, no external assets).
    ``POST /api/verify``              one photo (multipart field ``file``) -> exactly the JSON of
                                      `shield verify --json`, except that ``image.path`` is the
                                      uploaded file's name. When a fragile watermark was checked,
                                      the header ``X-Shield-Tamper-Map`` names the map's URL.
    ``GET /api/tamper-map/<token>``   that map (PNG), kept in memory for the last few checks.
    ``POST /api/protect``             one photo (``file``; ``strength`` fast|balanced,
                                      ``no_adversarial``, ``whole_frame``) -> the protected PNG as a
                                      download; ``X-Shield-*`` headers say asset id and ledger state.

Each request works in its own temporary folder, deleted when it is answered; nothing else
is written except what protection records in the shield home (ledger index, outbox).
The pipeline runs in worker threads so the page stays responsive; protections run one at
a time. Errors are JSON ``{"error", "fix"}`` with a 4xx status for what the sender can fix.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from shield.config import Settings
from shield.errors import (
    ConfigError,
    ImageError,
    ImageTooLargeError,
    InputError,
    LedgerError,
    NoFaceError,
    ShieldError,
    UnsupportedImageError,
)
from shield.serve.guard import LOOPBACK_NAMES, host_allowed, origin_allowed, page_headers
from shield.serve.maps import TamperMaps
from shield.serve.upload import Upload, UploadError, read_upload

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shield.pipeline import ProtectOutcome
    from shield.report import VerifyReport

__all__ = ["ServeOptions", "ProtectRequest", "create_app", "protect_request", "status_for", "DEFAULT_MAX_UPLOAD_BYTES"]

log = logging.getLogger(__name__)

#: Largest photo accepted by default: a 24 MP PNG is about 35 MB.
DEFAULT_MAX_UPLOAD_BYTES = 40 * 1024 * 1024
#: Presets offered by the page: `max` takes many minutes on a CPU, too long for a page.
PAGE_STRENGTHS = ("fast", "balanced")
#: Verifications running at once (each holds a decoded photo in memory).
MAX_CONCURRENT_VERIFY = 2
#: Longest X-Shield-* header value (the ledger message of a queued anchor).
MAX_HEADER_TEXT = 400
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_MEDIA_TYPES = {".png": "image/png", ".webp": "image/webp"}
#: The CLI's advice names --whole-frame; the page's form calls it this.
_PAGE_FIX_NO_FACE = "tick \"Protect the whole image when no face is found\" (form field whole_frame=true)"


@dataclass(frozen=True)
class ServeOptions:
    """Choices of one `shield serve`.

    Attributes:
        max_upload_bytes: largest uploaded photo, in bytes (413 above it).
        trust_anchors: PEM of the CAs verification trusts; None: the local keystore's.
        use_ledger: False skips the ledger lookup when verifying.
        allowed_hosts: Host names answered (DNS-rebinding guard); None answers any.
        strengths: protection presets a request may ask for.
    """

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    trust_anchors: bytes | None = None
    use_ledger: bool = True
    allowed_hosts: frozenset[str] | None = LOOPBACK_NAMES
    strengths: tuple[str, ...] = PAGE_STRENGTHS

    def __post_init__(self) -> None:
        if self.max_upload_bytes < 1:
            raise InputError(f"max_upload_bytes must be positive, got {self.max_upload_bytes}")


@dataclass(frozen=True)
class ProtectRequest:
    """The options of one protect request (the page's form)."""

    strength: str = "balanced"
    adversarial: bool = True
    whole_frame: bool = False


_TRUE, _FALSE = frozenset({"1", "true", "on", "yes"}), frozenset({"0", "false", "off", "no", ""})


def _flag(fields: Mapping[str, str], name: str) -> bool:
    raw = fields.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise UploadError(f"form field {name!r} must be true or false, got {raw!r}", fix="send true or false")


def protect_request(fields: Mapping[str, str], strengths: tuple[str, ...] = PAGE_STRENGTHS) -> ProtectRequest:
    """Read the protect form fields ``strength``, ``no_adversarial``, ``whole_frame``.

    Raises:
        UploadError: an unknown strength or a flag that is not true/false.
    """
    strength = fields.get("strength", "balanced").strip() or "balanced"
    if strength not in strengths:
        raise UploadError(f"strength must be one of {', '.join(strengths)}, got {strength!r}",
                          fix=f"choose {' or '.join(strengths)}")
    return ProtectRequest(strength, not _flag(fields, "no_adversarial"), _flag(fields, "whole_frame"))


def status_for(exc: ShieldError) -> int:
    """The HTTP status for an error: 4xx for what the sender can fix, 5xx for the server's."""
    if isinstance(exc, UploadError):
        return exc.status
    if isinstance(exc, ImageTooLargeError):
        return 413
    if isinstance(exc, UnsupportedImageError):
        return 415
    if isinstance(exc, (ImageError, NoFaceError, InputError)):
        return 422
    if isinstance(exc, LedgerError):
        return 503
    return 500  # keys, configuration, models: the server's to fix


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _error(status: int, message: str, fix: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "fix": fix or None}, status_code=status)


def _header_text(value: object) -> str:
    """A header-safe line: ASCII, one line, bounded."""
    text = " ".join(str(value).split()).encode("ascii", "replace").decode("ascii")
    return text[:MAX_HEADER_TEXT]


def _load_page() -> str:
    """The page's HTML, shipped beside this module (package data)."""
    try:
        return resources.files("shield.serve").joinpath("static/index.html").read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("the verify page (shield/serve/static/index.html) is missing from this installation",
                          fix="reinstall shield") from exc


def create_app(settings: Settings, options: ServeOptions | None = None) -> FastAPI:
    """The verify page's app for ``settings`` (home, keys, chain) and ``options``."""
    opts = options if options is not None else ServeOptions()
    page = _load_page()
    headers = page_headers(page)
    maps = TamperMaps()
    protect_lock = threading.Lock()  # one protection at a time: it is CPU- and memory-heavy
    verify_slots = threading.BoundedSemaphore(MAX_CONCURRENT_VERIFY)

    async def guard(request: Request) -> None:
        host = request.headers.get("host")
        if not host_allowed(host, opts.allowed_hosts):
            raise _Refused(f"this server answers requests to {', '.join(sorted(opts.allowed_hosts or ()))} only")
        if request.method == "POST" and not origin_allowed(request.headers.get("origin"), host):
            raise _Refused("cross-origin request refused: use the page this server serves")

    app = FastAPI(title="shield verify page", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(guard)])

    async def refused(request: Request, exc: Exception) -> Response:
        return _error(403, str(exc), "open the page at the address `shield serve` prints")

    app.add_exception_handler(_Refused, refused)

    async def receive(request: Request, folder: Path) -> Upload:
        folder.mkdir()
        try:
            return await read_upload(request.headers, request.stream(), folder, max_bytes=opts.max_upload_bytes)
        except ClientDisconnect as exc:
            raise UploadError("the upload was interrupted") from exc

    def failed(exc: Exception, folder: Path) -> JSONResponse:
        if isinstance(exc, ShieldError):
            # Messages name the file by its temporary path; the sender knows it by its name.
            message = exc.message.replace(str(folder / "in") + "/", "").replace(str(folder), "<upload>")
            fix = _PAGE_FIX_NO_FACE if isinstance(exc, NoFaceError) else exc.fix
            return _error(status_for(exc), message, fix)
        log.error("unexpected error while answering a request", exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); the log of `shield serve` (its stderr) has the details")

    def verify_one(path: Path, map_path: Path) -> VerifyReport:
        from shield.pipeline import verify_file

        with verify_slots:
            return verify_file(path, settings, trust_anchors=opts.trust_anchors, use_ledger=opts.use_ledger,
                               tamper_map=map_path)

    def protect_one(path: Path, outdir: Path, req: ProtectRequest) -> ProtectOutcome:
        from shield.pipeline import ProtectOptions, protect_files

        choice = ProtectOptions(outdir=outdir, strength=req.strength, whole_frame=req.whole_frame,
                                adversarial=req.adversarial)
        with protect_lock:
            [outcome] = protect_files([path], settings, choice)
        return outcome

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)

    @app.post("/api/verify")
    async def api_verify(request: Request) -> Response:
        with tempfile.TemporaryDirectory(prefix="shield-serve-") as tmp:
            folder = Path(tmp)
            try:
                upload = await receive(request, folder / "in")
                report = await run_in_threadpool(verify_one, upload.path, folder / "tamper-map.png")
                doc = _report_json(report, upload.filename)
                map_path = folder / "tamper-map.png"
                extra = {}
                if map_path.is_file():
                    extra["X-Shield-Tamper-Map"] = f"/api/tamper-map/{maps.put(map_path.read_bytes())}"
            except Exception as exc:  # the server boundary: every failure becomes a JSON answer
                return failed(exc, folder)
        return Response(doc, media_type="application/json", headers=extra)

    @app.get("/api/tamper-map/{token}")
    async def api_tamper_map(token: str) -> Response:
        png = maps.get(token) if _TOKEN.fullmatch(token) else None
        if png is None:
            return _error(404, "no such tamper map (only the maps of the last few checks are kept)",
                          "verify the photo again")
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.post("/api/protect")
    async def api_protect(request: Request) -> Response:
        with tempfile.TemporaryDirectory(prefix="shield-serve-") as tmp:
            folder = Path(tmp)
            try:
                upload = await receive(request, folder / "in")
                req = protect_request(upload.fields, opts.strengths)
                outcome = await run_in_threadpool(protect_one, upload.path, folder / "out", req)
                data = outcome.output.read_bytes()
            except Exception as exc:  # the server boundary: every failure becomes a JSON answer
                return failed(exc, folder)
        media = _MEDIA_TYPES.get(outcome.output.suffix.lower(), "application/octet-stream")
        return Response(data, media_type=media, headers=_protect_headers(outcome))

    return app


def _report_json(report: VerifyReport, filename: str) -> str:
    """The text `shield verify --json` prints, with the uploaded name as ``image.path``."""
    from shield.commands._common import to_jsonable

    doc = to_jsonable(report)
    if isinstance(doc.get("image"), dict):
        doc["image"]["path"] = filename
    return json.dumps(doc, indent=2, sort_keys=False)


def _protect_headers(outcome: ProtectOutcome) -> dict[str, str]:
    """Download name and what the page shows next to the download link."""
    ledger = outcome.ledger
    if ledger.get("status") == "queued":
        line = f"queued: {ledger.get('message')}"
    else:
        line = f"{ledger.get('status')}: chain {ledger.get('chain_id')}, tx {ledger.get('tx')}, block {ledger.get('block')}"
    out = {
        "Content-Disposition": f'attachment; filename="{outcome.output.name}"',
        "X-Shield-Asset-Id": outcome.asset_id,
        "X-Shield-Ledger": _header_text(line),
        "X-Shield-Development-Keys": "true" if outcome.manifest.get("development_keys") else "false",
        "X-Shield-Notes": _header_text("; ".join(outcome.notes)),
    }
    if outcome.psnr is not None:
        out["X-Shield-Psnr"] = f"{outcome.psnr:.1f}"
    return out
