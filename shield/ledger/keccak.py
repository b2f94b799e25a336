"""Keccak-256 (Ethereum's hash) without importing eth_utils (~0.3 s of a cold start).

pycryptodome's implementation (about 40 ms to import) is used when present, as eth-hash
itself does; eth-hash's automatic backend choice is the fallback.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["keccak"]


def _pick() -> Callable[[bytes], bytes]:
    try:
        from Crypto.Hash import keccak as _k
    except ImportError:  # pragma: no cover - eth-hash picks whichever backend is installed
        from eth_hash.auto import keccak as auto

        return lambda data: bytes(auto(data))
    return lambda data: _k.new(data=data, digest_bits=256).digest()


_KECCAK = _pick()


def keccak(data: bytes) -> bytes:
    """Keccak-256 of ``data`` (32 bytes), as the EVM's keccak256."""
    return _KECCAK(bytes(data))
