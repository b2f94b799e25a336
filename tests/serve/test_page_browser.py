"""The verify page in a real browser: Debian's chromium, headless, driven by Playwright.

A person uploads a protected photo and reads the verdict and the ledger record; uploads a
plain photo and reads "unknown origin"; protects a photo, downloads it and checks it.
With SHIELD_WRITE_SCREENSHOT=1 the verify result is saved as docs/verify-page.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.serve.conftest import LiveServer, Published

if TYPE_CHECKING:
    from playwright.sync_api import Page

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "docs" / "verify-page.png"
#: Milliseconds a verification may take in the browser (first use loads the readers).
VERDICT_TIMEOUT_MS = 60_000

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="needs Debian's chromium for the browser test (apt-get install chromium)")


@pytest.fixture(scope="module")
def browser_page(live_server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """A fresh page at the server's address, and the console errors it logs."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium is not None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(live_server.url)
            yield page, errors
        finally:
            browser.close()


def _verify(page: Page, path: Path) -> None:
    page.set_input_files("#verify-file", str(path))
    expect(page.locator("#verify-status")).to_have_text(f"Checked {path.name}.", timeout=VERDICT_TIMEOUT_MS)


def test_protected_photo_shows_authentic_and_its_record(browser_page: tuple[Page, list[str]], published: Published) -> None:
    page, errors = browser_page
    _verify(page, published.protected)
    verdict = page.locator("#verdict")
    assert "AUTHENTIC: intact since publication" in verdict.inner_text()
    assert "v-good" in (verdict.get_attribute("class") or "")
    record = page.locator("#record").inner_text()
    assert published.asset_id in record and published.tx in record
    assert "Publisher" in record and "local devnet" in record
    assert page.locator("#tamper-map").evaluate("img => img.complete && img.naturalWidth") == 512
    assert "Red tint" in page.locator("#tamper").inner_text()
    if os.environ.get("SHIELD_WRITE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.locator("section.card").first.screenshot(path=str(SCREENSHOT))  # the verify card
    assert errors == []


def test_plain_photo_shows_unknown_origin(browser_page: tuple[Page, list[str]], published: Published) -> None:
    page, errors = browser_page
    _verify(page, published.plain)
    verdict = page.locator("#verdict")
    assert "UNKNOWN ORIGIN" in verdict.inner_text() and "no-provenance" in verdict.inner_text()
    assert "v-none" in (verdict.get_attribute("class") or "")
    assert "No tamper map" in page.locator("#tamper").inner_text()
    assert "no record" in page.locator("#record").inner_text() or "not checked" in page.locator("#record").inner_text()
    assert errors == []


def test_garbage_shows_the_error(browser_page: tuple[Page, list[str]], tmp_path: Path) -> None:
    page, errors = browser_page
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a picture" * 10)
    page.set_input_files("#verify-file", str(junk))
    alert = page.locator("#verify-error")
    alert.wait_for(state="visible", timeout=VERDICT_TIMEOUT_MS)
    assert "junk.png: not a PNG, JPEG, WebP or TIFF image" in alert.inner_text()
    assert not page.locator("#verify-result").is_visible()
    # The browser itself logs the 415 answer as a failed resource load; nothing else.
    assert all("415" in e for e in errors), errors
    errors.clear()


def test_protect_then_check(browser_page: tuple[Page, list[str]], published: Published, tmp_path: Path) -> None:
    page, errors = browser_page
    page.set_input_files("#protect-file", str(published.original))
    page.check("#protect-no-adversarial")
    page.click("#protect-button")
    link = page.locator("#protect-download")
    link.wait_for(state="visible", timeout=VERDICT_TIMEOUT_MS)
    assert link.get_attribute("download") == "portrait.shield.png"
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / "downloaded.png"
    download.value.save_as(str(saved))
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "anchored" in page.locator("#protect-details").inner_text()
    page.click("#protect-check")
    expect(page.locator("#verify-status")).to_have_text("Checked portrait.shield.png.", timeout=VERDICT_TIMEOUT_MS)
    assert "AUTHENTIC: intact since publication" in page.locator("#verdict").inner_text()
    assert errors == []
