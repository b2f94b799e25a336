"""The verify page's small parts: file names, Host/Origin checks, the map cache, error
statuses, and the `shield serve` command itself."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from shield.commands.serve import listen
from shield.errors import (
    CorruptImageError,
    ImageTooLargeError,
    InputError,
    KeystoreError,
    LedgerError,
    NoFaceError,
    ShieldError,
)
from shield.serve.app import protect_request, status_for
from shield.serve.guard import allowed_hosts_for, host_allowed, is_loopback, origin_allowed
from shield.serve.maps import TamperMaps
from shield.serve.upload import MAX_FILENAME, UploadError, UploadTooLargeError, safe_filename
from tests.pipeline.conftest import make_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("raw", "expected"), [
    ("photo.png", "photo.png"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\me\\holiday.jpg", "holiday.jpg"),
    ("été à Paris.jpeg", "_t____Paris.jpeg"),
    ("...hidden.png", "hidden.png"),
    ("", "photo"),
    ("///", "photo"),
])
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_safe_filename_cuts_long_names_but_keeps_the_suffix() -> None:
    name = safe_filename("x" * 500 + ".webp")
    assert len(name) == MAX_FILENAME and name.endswith(".webp")


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("192.168.1.4", False), ("example.org", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_host_check_follows_the_bound_address() -> None:
    loop = allowed_hosts_for("127.0.0.1")
    assert host_allowed("127.0.0.1:8000", loop) and host_allowed("localhost:8000", loop)
    assert host_allowed("[::1]:8000", loop)
    assert not host_allowed("attacker.example:8000", loop) and not host_allowed(None, loop)
    lan = allowed_hosts_for("192.168.1.4")
    assert host_allowed("192.168.1.4:8000", lan) and not host_allowed("attacker.example", lan)
    assert allowed_hosts_for("0.0.0.0") is None and host_allowed("anything", None)


def test_origin_check() -> None:
    assert origin_allowed(None, "127.0.0.1:8000")  # curl, scripts
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not origin_allowed("http://127.0.0.1:9999", "127.0.0.1:8000")
    assert not origin_allowed("https://attacker.example", "127.0.0.1:8000")
    assert not origin_allowed("null", "127.0.0.1:8000")


def test_tamper_maps_keep_the_latest_within_bounds() -> None:
    maps = TamperMaps(capacity=2, max_bytes=10)
    first, second = maps.put(b"aaaa"), maps.put(b"bbbb")
    assert maps.get(first) == b"aaaa" and len(first) >= 16 and first != second
    third = maps.put(b"cccc")
    assert maps.get(first) is None and maps.get(second) == b"bbbb" and maps.get(third) == b"cccc"
    big = maps.put(b"d" * 9)  # over max_bytes with the others: they go, the newest stays
    assert len(maps) == 1 and maps.get(big) == b"d" * 9


@pytest.mark.parametrize(("error", "status"), [
    (UploadTooLargeError("x"), 413), (UploadError("x"), 400), (ImageTooLargeError("x"), 413),
    (CorruptImageError("x"), 422), (NoFaceError("x"), 422), (InputError("x"), 422),
    (LedgerError("x"), 503), (KeystoreError("x"), 500),
])
def test_status_for(error: ShieldError, status: int) -> None:
    assert status_for(error) == status


def test_protect_request_defaults_and_flags() -> None:
    req = protect_request({})
    assert (req.strength, req.adversarial, req.whole_frame) == ("balanced", True, False)
    req = protect_request({"strength": "fast", "no_adversarial": "on", "whole_frame": "true"})
    assert (req.strength, req.adversarial, req.whole_frame) == ("fast", False, True)


def test_listen_on_a_taken_port_is_a_clear_error() -> None:
    taken = listen("127.0.0.1", 0)
    try:
        with pytest.raises(InputError, match="cannot listen on 127.0.0.1:"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_serve_command_serves_the_page(tmp_path: Path) -> None:
    """`shield serve --port 0` as a user runs it: prints the address, answers on it."""
    cfg = make_settings(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update(SHIELD_HOME=str(cfg.home), SHIELD_KEYS_DIR=str(cfg.keys_dir), SHIELD_SERVE_MAX_UPLOAD_MB="0.01")
    proc = subprocess.Popen([sys.executable, "-m", "shield.cli", "serve", "--port", "0"], cwd=tmp_path, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = line.split(" at ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:"), line
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as res:
                    assert res.status == 200 and b"Check a photo" in res.read()
                break
            except (ConnectionError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        body = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + bytes(200_000) + b"\r\n--b--\r\n"
        request = urllib.request.Request(url + "api/verify", data=body, method="POST",
                                         headers={"Content-Type": "multipart/form-data; boundary=b"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 413  # SHIELD_SERVE_MAX_UPLOAD_MB=0.01
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_port_in_use_exits_with_one_line(tmp_path: Path) -> None:
    taken = listen("127.0.0.1", 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIELD_")}
    env.update(SHIELD_HOME=str(tmp_path / "home"), SHIELD_KEYS_DIR=str(tmp_path / "keys"))
    try:
        done = subprocess.run([sys.executable, "-m", "shield.cli", "serve", "--port", str(taken.getsockname()[1])],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    finally:
        taken.close()
    assert done.returncode == InputError.exit_code
    assert done.stderr.startswith("shield: error: cannot listen on 127.0.0.1:") and "Traceback" not in done.stderr
