"""Ledger fixtures: an in-process eth-tester chain, funded accounts, ledgers on it."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from web3 import EthereumTesterProvider, Web3

from shield.config import Settings
from shield.ledger import Ledger, open_ledger
from shield.provenance import certs


@dataclass(frozen=True)
class FakeKeys:
    """Publisher keys without a keystore (what a PublisherKeys needs), for ledger tests."""

    c2pa_cert_chain_pem: bytes
    c2pa_private_key_pem: bytes
    cert_fingerprint: bytes
    trust_anchors_pem: bytes
    watermark_key: ed25519.Ed25519PrivateKey
    c2pa_sign: Callable[[bytes], bytes] | None = field(default=None)

    @property
    def watermark_public_key(self) -> bytes:
        return self.watermark_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def make_keys(name: str = "test publisher") -> FakeKeys:
    root = certs.make_root_ca(name, datetime.now(UTC))
    leaf = certs.issue_signing_cert(root, name, datetime.now(UTC))
    pem = leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    return FakeKeys(certs.cert_pem(leaf.cert), pem, certs.fingerprint(leaf.cert), certs.cert_pem(root.cert),
                    ed25519.Ed25519PrivateKey.generate())


def registered(lg: Ledger, keys: FakeKeys) -> Ledger:
    lg.publisher_keys = keys
    lg.register_publisher(keys.cert_fingerprint, keys.watermark_public_key)
    return lg


def make_account(w3: Web3, seed: int) -> LocalAccount:
    """A deterministic account funded with 100 ETH from eth-tester's first account."""
    account: LocalAccount = Account.from_key(seed.to_bytes(32, "big"))
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": Web3.to_wei(100, "ether")})
    return account


@pytest.fixture()
def w3() -> Web3:
    return Web3(EthereumTesterProvider())


@pytest.fixture()
def ledger(w3: Web3, settings: Settings) -> Iterator[Ledger]:
    """Our publisher's ledger; deploys a fresh registry on the in-process chain."""
    lg = open_ledger(settings.with_chain(chain_id=None), make_account(w3, 0xA11CE), w3=w3)
    yield registered(lg, make_keys("alice"))
    lg.close()


@pytest.fixture()
def other_ledger(w3: Web3, settings: Settings, ledger: Ledger) -> Iterator[Ledger]:
    """A second publisher (own home, own outbox) on the same registry."""
    other = dataclasses.replace(settings, home=settings.home / "other")
    other = other.with_chain(chain_id=None, registry=ledger.registry_address)
    lg = open_ledger(other, make_account(w3, 0xB0B), w3=w3)
    yield registered(lg, make_keys("bob"))
    lg.close()


@pytest.fixture()
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
