"""The verify page's API: the same JSON as `shield verify --json`, bounded uploads, clear
4xx errors, protect-then-verify, and nothing left behind in the temporary folder."""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shield.commands.verify import verify as verify_command
from shield.serve import ServeOptions
from tests.serve.conftest import Published, TestClient, client_for

#: The painted square of the edit test: x, y, side, in pixels of the 512 x 512 portrait.
SQUARE = (300, 200, 64)


def _verify(client: TestClient, path: Path, name: str | None = None) -> tuple[int, dict[str, object], dict[str, str]]:
    res = client.post("/api/verify", files={"file": (name or path.name, path.read_bytes(), "image/png")})
    return res.status_code, res.json(), dict(res.headers)


def _cli_json(published: Published, path: Path) -> dict[str, object]:
    """What `shield verify PATH --json` prints, run in-process with the same settings."""
    done = CliRunner().invoke(verify_command, [str(path), "--json"], obj={"settings": published.settings})
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def test_verify_protected_photo_is_the_cli_json(published: Published, client: TestClient) -> None:
    status, doc, headers = _verify(client, published.protected)
    assert status == 200
    assert doc["verdict"] == "authentic"
    assert doc["asset_id"] == published.asset_id
    cli = _cli_json(published, published.protected)
    assert cli["verdict"] == "authentic"
    image = cli["image"]
    assert isinstance(image, dict)
    image["path"] = published.protected.name  # the page knows the file by its name only
    assert doc == cli
    ledger = doc["ledger"]
    assert isinstance(ledger, dict) and ledger["tx"] == published.tx


def test_verify_answer_is_the_cli_text(published: Published, client: TestClient) -> None:
    """Byte for byte the text the CLI prints (indentation, key order), path aside."""
    res = client.post("/api/verify", files={"file": ("portrait.png", published.original.read_bytes())})
    done = CliRunner().invoke(verify_command, [str(published.original), "--json"], obj={"settings": published.settings})
    assert res.headers["content-type"] == "application/json"
    assert json.loads(res.text)["verdict"] == "re-encoded-match"  # the original looks like the protected copy
    assert res.text + "\n" == done.stdout.replace(json.dumps(str(published.original)), json.dumps("portrait.png"))


def test_plain_photo_has_no_provenance_and_no_map(client: TestClient, published: Published) -> None:
    status, doc, headers = _verify(client, published.plain)
    assert status == 200
    assert doc["verdict"] == "no-provenance"
    assert doc["summary"] == "UNKNOWN ORIGIN: no shield provenance found"
    assert "x-shield-tamper-map" not in headers


def test_protected_photo_has_a_tamper_map(client: TestClient, published: Published) -> None:
    _, _, headers = _verify(client, published.protected)
    res = client.get(headers["x-shield-tamper-map"])
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    width, height = Image.open(io.BytesIO(res.content)).size
    assert width == 512 and height >= 512  # the photo, and a legend strip below it when there is one


def test_edited_photo_is_modified_and_its_map_shows_where(client: TestClient, published: Published, tmp_path: Path) -> None:
    rgb = np.asarray(Image.open(published.protected).convert("RGB")).copy()
    x, y, side = SQUARE
    rgb[y : y + side, x : x + side] = (20, 200, 40)
    edited = tmp_path / "edited.png"
    Image.fromarray(rgb).save(edited)
    status, doc, headers = _verify(client, edited)
    assert status == 200 and doc["verdict"] == "modified"
    regions = doc["watermark"]["tampered_regions"]  # type: ignore[index]
    assert regions, doc
    tamper_map = np.asarray(Image.open(io.BytesIO(client.get(headers["x-shield-tamper-map"]).content)).convert("RGB"))
    cy, cx = y + side // 2, x + side // 2
    inside, painted = tamper_map[cy, cx].astype(int), rgb[cy, cx].astype(int)
    assert inside[0] > painted[0] + 60 and inside[1] < painted[1] - 60, (inside, painted)  # tinted red
    outside = tamper_map[20, 20].astype(int)
    assert (outside == rgb[20, 20]).all()  # intact areas are shown as they are


def test_unknown_tamper_map_is_404_json(client: TestClient) -> None:
    res = client.get("/api/tamper-map/" + "A" * 22)
    assert res.status_code == 404 and "no such tamper map" in res.json()["error"]


def test_oversize_upload_is_413(published: Published) -> None:
    small = client_for(published.settings, ServeOptions(max_upload_bytes=4096))
    res = small.post("/api/verify", files={"file": ("portrait.png", published.protected.read_bytes())})
    assert res.status_code == 413
    assert "4096 bytes upload limit" in res.json()["error"]


def _multipart(filename: str, data: bytes, boundary: str = "b0undary") -> bytes:
    return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()


def test_oversize_streamed_upload_is_413(published: Published) -> None:
    """Without a Content-Length (chunked), reading stops at the limit."""
    small = client_for(published.settings, ServeOptions(max_upload_bytes=4096))
    body = _multipart("big.png", bytes(200_000))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    res = small.post("/api/verify", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b0undary"})
    assert "content-length" not in res.request.headers
    assert res.status_code == 413 and "upload limit" in res.json()["error"]


def test_garbage_bytes_are_a_clear_4xx(client: TestClient) -> None:
    res = client.post("/api/verify", files={"file": ("photo.png", b"\x00garbage" * 100)})
    assert res.status_code == 415
    doc = res.json()
    assert doc["error"].startswith("photo.png: not a PNG, JPEG, WebP or TIFF image"), doc
    assert "shield-serve-" not in res.text and "Traceback" not in res.text


def test_truncated_png_is_a_clear_4xx(client: TestClient, published: Published) -> None:
    data = published.plain.read_bytes()[:5000]
    res = client.post("/api/verify", files={"file": ("cut.png", data)})
    assert 400 <= res.status_code < 500 and res.json()["error"].startswith("cut.png"), res.text


@pytest.mark.parametrize(("body", "content_type", "status", "words"), [
    (b"hello", "text/plain", 415, "not multipart/form-data"),
    (_multipart("a.png", b"x")[:-20], "multipart/form-data; boundary=b0undary", 400, "ended before"),
    (b"--b0undary\r\nContent-Disposition: form-data; name=\"strength\"\r\n\r\nfast\r\n--b0undary--\r\n",
     "multipart/form-data; boundary=b0undary", 400, "no photo in the upload"),
    (_multipart("a.png", b"x").replace(b'name="file"', b'name="other"'), "multipart/form-data; boundary=b0undary", 400,
     "unexpected file field"),
])
def test_malformed_uploads_are_400s(client: TestClient, body: bytes, content_type: str, status: int, words: str) -> None:
    res = client.post("/api/verify", content=body, headers={"content-type": content_type})
    assert res.status_code == status and words in res.json()["error"], res.text


def test_protect_returns_a_photo_that_verifies(client: TestClient, published: Published) -> None:
    res = client.post("/api/protect", files={"file": ("holiday photo.png", published.original.read_bytes())},
                      data={"no_adversarial": "true", "strength": "fast"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "image/png"
    assert res.headers["content-disposition"] == 'attachment; filename="holiday_photo.shield.png"'
    assert res.headers["x-shield-ledger"].startswith("anchored"), res.headers
    assert "adversarial perturbation skipped" in res.headers["x-shield-notes"]
    check = client.post("/api/verify", files={"file": ("holiday_photo.shield.png", res.content)})
    doc = check.json()
    assert doc["verdict"] == "authentic", doc
    assert doc["asset_id"] == res.headers["x-shield-asset-id"]


def test_protect_without_a_face_says_what_to_tick(client: TestClient, published: Published) -> None:
    res = client.post("/api/protect", files={"file": ("cat.png", published.plain.read_bytes())},
                      data={"strength": "fast"})
    assert res.status_code == 422, res.text
    doc = res.json()
    assert "face" in doc["error"] and "whole_frame=true" in doc["fix"], doc


@pytest.mark.parametrize(("fields", "words"), [
    ({"strength": "max"}, "strength must be one of fast, balanced"),
    ({"no_adversarial": "perhaps"}, "'no_adversarial' must be true or false"),
])
def test_protect_rejects_bad_options(client: TestClient, published: Published, fields: dict[str, str], words: str) -> None:
    res = client.post("/api/protect", files={"file": ("p.png", published.original.read_bytes())}, data=fields)
    assert res.status_code == 400 and words in res.json()["error"], res.text


def test_requests_leave_nothing_in_the_temporary_folder(published: Published, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    client = client_for(published.settings, ServeOptions(max_upload_bytes=100_000))
    assert client.post("/api/verify", files={"file": ("a.png", published.protected.read_bytes()[:90_000])}).status_code == 422
    assert client.post("/api/verify", files={"file": ("b.png", published.protected.read_bytes())}).status_code == 413
    ok = client_for(published.settings)
    assert ok.post("/api/verify", files={"file": ("c.png", published.protected.read_bytes())}).json()["verdict"] == "authentic"
    assert list(scratch.iterdir()) == []


def test_other_origins_and_hosts_are_refused(published: Published, client: TestClient) -> None:
    photo = {"file": ("p.png", published.original.read_bytes())}
    cross = client.post("/api/protect", files=photo, data={"no_adversarial": "true"},
                        headers={"origin": "https://attacker.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
    rebound = client.post("/api/verify", files=photo, headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 403
    same = client.post("/api/verify", files=photo, headers={"origin": "http://127.0.0.1:8000"})
    assert same.status_code == 200


def test_page_is_self_contained_and_runs_only_its_own_script(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    page = res.text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must load nothing from elsewhere"
    assert "@import" not in page and "url(" not in page
    policy = res.headers["content-security-policy"]
    assert "default-src 'none'" in policy and re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", policy)


def test_an_unexpected_failure_is_a_500_json_without_traceback(published: Published, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import shield.pipeline

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(shield.pipeline, "verify_file", broken)
    res = client_for(published.settings).post("/api/verify", files={"file": ("p.png", published.plain.read_bytes())})
    assert res.status_code == 500
    assert res.json()["error"].startswith("internal error (RuntimeError)") and "Traceback" not in res.text
    assert "disk on fire" in caplog.text  # the details go to the server's log, not to the sender
