"""Who may talk to the local server: the Host and Origin checks, and the page's headers.

`shield serve` signs and anchors photos with the user's own keys, so a web page open in
the same browser must not be able to make it do so. Two checks, both cheap:

- Host: bound to a loopback address, the server answers only requests addressed to a
  loopback name. A hostile site that re-points its own domain at 127.0.0.1 (DNS
  rebinding) sends its own domain as Host and is refused.
- Origin: a browser names the page that sends a POST; one from another origin is
  refused (a cross-site form post needs no CORS preflight, so this is the check that
  stops it). Clients that send no Origin (curl, scripts) are not browsers' victims.

The page itself gets a Content-Security-Policy that runs only its own inline script
(pinned by hash) and talks only to this server.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from urllib.parse import urlsplit

__all__ = ["LOOPBACK_NAMES", "allowed_hosts_for", "host_allowed", "origin_allowed", "page_headers", "is_loopback"]

#: Host names that reach this machine only.
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the server reachable from this machine only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str) -> frozenset[str] | None:
    """The Host names to accept when bound to ``bind_host``; None accepts any.

    Loopback: the loopback names (and the bound address). A specific interface: those
    plus that address. All interfaces (``0.0.0.0``, ``::``): any name, since the machine's
    names are not known here; the command warns about it.
    """
    name = bind_host.strip("[]").lower()
    if name in ("0.0.0.0", "::", ""):
        return None
    return LOOPBACK_NAMES | {name}


def _host_name(host_header: str) -> str:
    """``example.org:8000`` -> ``example.org``; ``[::1]:8000`` -> ``::1``."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def host_allowed(host_header: str | None, allowed: frozenset[str] | None) -> bool:
    if allowed is None:
        return True
    return host_header is not None and _host_name(host_header) in allowed


def origin_allowed(origin: str | None, host_header: str | None) -> bool:
    """A POST's Origin (when sent) must be this server's own ``http://<Host>``."""
    if origin is None:
        return True
    if host_header is None or origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.strip().lower()


_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page_headers(html: str) -> dict[str, str]:
    """Security headers of the page: only its own inline script (by hash) may run."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode("utf-8")).digest()).decode("ascii") + "'"
        for s in _SCRIPT.findall(html)
    )
    scripts = hashes or "'none'"
    policy = (
        "default-src 'none'; "
        f"script-src {scripts}; "
        "style-src 'unsafe-inline'; "
        "img-src 'self' blob: data:; "
        "connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
