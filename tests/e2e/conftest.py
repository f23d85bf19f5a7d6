"""End-to-end fixtures: the portal served over real HTTP with its poller, driven by Debian's
Chromium through Playwright. Screenshots land in ``test-artifacts/e2e/`` (CI keeps them).

Chromium comes from the Debian package (scripts/bootstrap installs it); Playwright never
downloads a browser here. A missing /usr/bin/chromium fails the tests, it does not skip them.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from portal.cluster import slurm_client
from portal.poller import Poller
from portal.scheduler import start_scheduler
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
    poller = Poller(app, slurm_client(app.config))
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
def page(browser, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh browser context and page; a full-page screenshot is saved when the test ends."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        finally:
            context.close()


def shot(page, name: str) -> Path:  # noqa: ANN001 - a Playwright page
    """Save a named full-page screenshot as a test artifact and return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
