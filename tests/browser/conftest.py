"""Browser tests: the real app under uvicorn, driven by Debian's Chromium through Playwright.

Playwright's own browser download does not work here, so the tests launch /usr/bin/chromium.
Without it they skip on a user's machine, and fail when the CI environment variable is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import serve_app

CHROMIUM = os.environ.get("CONVLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the app, served by uvicorn in a subprocess on a free port."""
    log = tmp_path_factory.mktemp("server") / "uvicorn.log"
    try:
        with serve_app(log) as base:
            yield base
    except RuntimeError as err:
        pytest.fail(str(err))

@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (Debian's), shared by the session."""
    if not Path(CHROMIUM).exists():
        reason = (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
                  "to run the browser tests")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Console:
    """Console errors, page errors and failed requests seen by one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []


@pytest.fixture
def page(browser, server):  # type: ignore[no-untyped-def]
    """A fresh 1280x900 page; page.console.errors collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server)
    pg = context.new_page()
    console = Console()
    pg.on("console", lambda m: m.type == "error" and console.errors.append(m.text))
    pg.on("pageerror", lambda e: console.errors.append(str(e)))
    pg.console = console  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Folder for the screenshots of the main views (gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
