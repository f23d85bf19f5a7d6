"""End-to-end fixtures: the portal served over real HTTP with its poller, driven by Debian's
Chromium through Playwright. Screenshots land in ``test-artifacts/e2e/`` (CI keeps them).

Chromium comes from the Debian package (scripts/bootstrap installs it); Playwright never
downloads a browser here. A missing /usr/bin/chromium fails the tests, it does not skip them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from portal.cluster.connect import slurm_client
from portal.submit.background import HandOver
from portal.track.poller import Poller
from portal.track.scheduler import start_scheduler
from tests.conftest import REPO_ROOT
from tests.integration.engine_helpers import make_app

CHROMIUM = os.environ.get("PORTAL_E2E_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts" / "e2e"


@dataclass
class LivePortal:
    """A running portal: its app (for arranging data) and its base URL."""

    app: Flask
    url: str
    server: BaseWSGIServer

    def at(self, path: str) -> str:
        return self.url + path


@pytest.fixture
def live_portal(tmp_path: Path, slurm_cluster: None) -> Iterator[LivePortal]:
    """The portal on a free loopback port, with the real poller (1 s cycle) against Slurm."""
    app = make_app(
        tmp_path,
        REGISTRATION="open",
        SITE_URL="http://127.0.0.1",
        GIT_ALLOW_FILE_URLS=True,
        LAUNCH_IN_BACKGROUND=True,
        POLL_INTERVAL_SECONDS=1,
        RATELIMIT_ENABLED=False,
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["SITE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    poller = Poller(app, slurm_client(app.config), hand_over=HandOver(app))
    scheduler = start_scheduler(app, poller)
    try:
        yield LivePortal(app=app, url=url, server=server)
    finally:
        scheduler.shutdown(wait=True)
        poller.stop()
        server.shutdown()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, through Playwright."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} not found: install the Debian package 'chromium'", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser, request: pytest.FixtureRequest) -> Iterator[Callable[[str], object]]:
    """Open pages in fresh browser contexts (one user each); ``open_page("admin")``.

    Every page records console errors and uncaught exceptions in ``page.console_errors`` (CSP
    violations show up there) and gets a full-page screenshot when the test ends, named after
    the test and the label.
    """
    opened: list[tuple[str, object, object]] = []

    def make(label: str = "") -> object:
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, accept_downloads=True
        )
        context.set_default_timeout(15_000)
        new = context.new_page()
        errors: list[str] = []
        new.on("console", lambda msg: _record_console(errors, new, msg))
        new.on("pageerror", lambda exc: errors.append(str(exc)))
        new.console_errors = errors  # type: ignore[attr-defined]
        opened.append((label, context, new))
        return new

    try:
        yield make
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        for label, context, opened_page in opened:
            name = f"{base}-{label}" if label else base
            try:
                opened_page.screenshot(
                    path=str(ARTIFACTS / f"{name}.png"), full_page=True, caret="initial"
                )
            except Exception:  # noqa: BLE001 - a closed page must not hide the test's result
                pass
            finally:
                context.close()


@pytest.fixture
def page(open_page) -> object:  # noqa: ANN001 - fixture
    """A fresh browser context and page; a full-page screenshot is saved when the test ends."""
    return open_page("")


def _record_console(errors: list[str], page, msg) -> None:  # noqa: ANN001 - Playwright objects
    """Keep console errors with where they came from (page address, script and line)."""
    if msg.type != "error":
        return
    where = msg.location or {}
    source = f"{where.get('url') or '?'}:{where.get('lineNumber', '?')}"
    errors.append(f"{msg.text} [on {page.url} from {source}]")


def shot(page, name: str, selector: str | None = None) -> Path:  # noqa: ANN001 - a Playwright page
    """Save a named screenshot (full page, or one element) as a test artifact; return its path.

    ``caret="initial"``: Playwright's default hides the text caret by writing an inline style
    on every input and leaves ``style=""`` behind, which htmx then copies while settling a
    swap -- a CSP violation the page itself never causes.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    if selector:
        page.locator(selector).screenshot(path=str(path), caret="initial")
    else:
        page.screenshot(path=str(path), full_page=True, caret="initial")
    return path
