"""The tamper maps of recent verifications, in memory only, each under an unguessable token.

The verify answer stays the JSON of `shield verify --json`; the picture is fetched
separately (``GET /api/tamper-map/<token>``). Maps are never written to disk, and only
the last few are kept, so memory stays bounded however many photos are checked.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict

__all__ = ["TamperMaps", "MAX_MAPS", "MAX_MAP_BYTES"]

#: Maps kept at once: enough for a few people checking photos side by side.
MAX_MAPS = 16
#: Total bytes of the kept maps (PNG): a few full-size maps; the oldest go first.
MAX_MAP_BYTES = 256 * 1024 * 1024


class TamperMaps:
    """A small least-recently-stored cache of PNG bytes keyed by random tokens."""

    def __init__(self, capacity: int = MAX_MAPS, max_bytes: int = MAX_MAP_BYTES) -> None:
        if capacity < 1 or max_bytes < 1:
            raise ValueError("capacity and max_bytes must be positive")
        self.capacity, self.max_bytes = capacity, max_bytes
        self._maps: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, png: bytes) -> str:
        """Keep ``png``; return its token (128 random bits, URL-safe)."""
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._maps[token] = png
            self._bytes += len(png)
            while len(self._maps) > self.capacity or (self._bytes > self.max_bytes and len(self._maps) > 1):
                _, old = self._maps.popitem(last=False)
                self._bytes -= len(old)
        return token

    def get(self, token: str) -> bytes | None:
        """The map stored under ``token``, or None when unknown or already dropped."""
        with self._lock:
            return self._maps.get(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._maps)
