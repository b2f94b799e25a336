"""The few ABI encodings the registry's reads need, by hand (no eth_abi, no web3).

Every read view of ShieldRegistry takes static arguments or one ``bytes32[]`` and returns
static words, one dynamic ``bytes``/``string`` or one ``address[]``/``bytes32[]``; these
helpers cover exactly that, and reject a malformed answer with
:class:`~shield.ledger.errors.ChainUnavailableError` (a node that answers garbage is
treated like one that does not answer).
"""

from __future__ import annotations

from collections.abc import Sequence

from shield.ledger.errors import ChainUnavailableError
from shield.ledger.keccak import keccak

__all__ = ["selector", "event_topic", "word_uint", "word_address", "word_bytes", "encode_call", "words",
           "decode_bytes", "decode_words_array", "decode_address_array", "checksum", "MAX_ARRAY"]

#: Longest array or byte string accepted from a node's answer (elements or bytes): far
#: above any real answer (4096 claimants, 500 storage words, a 2 KB proof, a member list
#: of 10^5 photos), so a hostile node cannot make the reader allocate without bound.
MAX_ARRAY = 1 << 23


def selector(signature: str) -> bytes:
    """The 4-byte function selector of ``signature`` (e.g. ``"publisherOf(address)"``)."""
    return keccak(signature.encode())[:4]


def event_topic(signature: str) -> bytes:
    return keccak(signature.encode())


def word_uint(value: int) -> bytes:
    if value < 0 or value >= 1 << 256:
        raise ValueError("uint256 out of range")
    return value.to_bytes(32, "big")


def word_address(address: str) -> bytes:
    raw = bytes.fromhex(address.removeprefix("0x"))
    if len(raw) != 20:
        raise ValueError(f"not an address: {address!r}")
    return raw.rjust(32, b"\0")


def word_bytes(value: bytes) -> bytes:
    """A fixed-size ``bytesN`` argument (left-aligned, zero-padded)."""
    if len(value) > 32:
        raise ValueError("bytesN is at most 32 bytes")
    return bytes(value).ljust(32, b"\0")


def encode_call(signature: str, *static_words: bytes, array: Sequence[bytes] | None = None) -> bytes:
    """Calldata of ``signature`` with static word arguments, or one ``bytes32[]`` argument."""
    if array is not None:
        return selector(signature) + word_uint(32) + word_uint(len(array)) + b"".join(word_bytes(a) for a in array)
    return selector(signature) + b"".join(static_words)


def _malformed(what: str) -> ChainUnavailableError:
    return ChainUnavailableError(f"malformed answer from the Ethereum node ({what})")


def words(data: bytes, count: int, what: str = "static words") -> list[bytes]:
    """The first ``count`` 32-byte words of ``data``."""
    if len(data) < 32 * count:
        raise _malformed(what)
    return [data[32 * i: 32 * i + 32] for i in range(count)]


def _uint(word: bytes) -> int:
    return int.from_bytes(word, "big")


def _dynamic(data: bytes, head: int, what: str) -> tuple[int, int]:
    """(start of the payload, length) of the dynamic value whose offset is at ``head``."""
    if len(data) < head + 32:
        raise _malformed(what)
    offset = _uint(data[head:head + 32])
    if offset > len(data) - 32:
        raise _malformed(what)
    length = _uint(data[offset:offset + 32])
    if length > MAX_ARRAY:
        raise _malformed(what)
    return offset + 32, length


def decode_bytes(data: bytes, head: int = 0, what: str = "bytes") -> bytes:
    """A dynamic ``bytes`` (or ``string``) value whose offset word is at byte ``head``."""
    start, length = _dynamic(data, head, what)
    if len(data) < start + length:
        raise _malformed(what)
    return data[start:start + length]


def decode_words_array(data: bytes, head: int = 0, what: str = "bytes32[]") -> list[bytes]:
    start, count = _dynamic(data, head, what)
    if len(data) < start + 32 * count:
        raise _malformed(what)
    return [data[start + 32 * i: start + 32 * i + 32] for i in range(count)]


def checksum(raw: bytes) -> str:
    """EIP-55 checksummed form of a 20-byte address."""
    hexed = raw.hex()
    digest = keccak(hexed.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hexed))


def word_to_address(word: bytes) -> str:
    return checksum(word[12:32])


def decode_address_array(data: bytes, head: int = 0, what: str = "address[]") -> list[str]:
    return [word_to_address(w) for w in decode_words_array(data, head, what)]
