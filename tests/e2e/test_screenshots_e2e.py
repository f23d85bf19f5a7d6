"""The screenshots of the README: dashboard, new-submission form, a running and a finished
submission, at 1400 px and on a 390 px phone, from a real sweep on the real cluster.

In CI they land with the other artifacts (``test-artifacts/e2e/``); to refresh the committed
ones: ``PORTAL_SCREENSHOTS_DIR=docs/screenshots .venv/bin/pytest tests/e2e/test_screenshots_e2e.py``
(one line).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_responsive_e2e import DESIGNER, PHONE, arrange_site, open_as, overflow, visit

pytestmark = pytest.mark.cluster

WIDE = {"width": 1400, "height": 900}


def start_running(portal, repo_url: str) -> str:  # noqa: ANN001 - a LivePortal
    """A 2-point sweep of ada's whose tasks run for a minute; returns its uuid once RUNNING."""
    app = portal.app
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == DESIGNER))
        slurm = slurm_client(app.config)
        request = svc.SubmissionRequest(
            repo_url=repo_url,
            design_path="designs/counter",
            cli_sweeps=["SYNTH_STRATEGY=AREA 0,DELAY 0"],
            resources=svc.Resources(time_minutes=10, mem_mb=256),
            name="synthesis strategies",
        )
        submission = svc.create_submission(
            svc.plan_submission(request, app.config, slurm, owner=owner), owner
        )
        svc.launch(submission, app.config, slurm)
        uuid = submission.uuid
        deadline = time.monotonic() + 90
        while db.session.scalar(select(Submission.state).where(Submission.uuid == uuid)) != (
            "RUNNING"
        ):
            assert time.monotonic() < deadline, "the sweep never ran"
            time.sleep(0.5)
            db.session.expire_all()
        db.session.remove()
    return uuid


def test_readme_screenshots(live_portal, open_page, example_repo, monkeypatch):
    folder = Path(os.environ.get("PORTAL_SCREENSHOTS_DIR") or ARTIFACTS / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "1")
    site = arrange_site(live_portal, example_repo)
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "60")
    running = start_running(live_portal, example_repo)
    pages = {
        "dashboard": "/",
        "new-submission": "/submissions/new",
        "running": f"/submissions/{running}",
        "finished": f"/submissions/{site.finished}",
    }
    try:
        for viewport in (WIDE, PHONE):
            page = open_as(open_page, live_portal, DESIGNER, viewport)
            for name, path in pages.items():
                visit(page, live_portal.at(path))
                assert overflow(page)[0] <= viewport["width"], (name, overflow(page))
                target = folder / f"{name}-{viewport['width']}.png"
                page.screenshot(path=str(target), full_page=True, caret="initial")
                with Image.open(target) as image:
                    assert image.width == viewport["width"], (name, image.size)
            page.context.close()
    finally:
        with live_portal.app.app_context():
            submission = db.session.scalar(select(Submission).where(Submission.uuid == running))
            svc.cancel(submission, slurm_client(live_portal.app.config))
            db.session.remove()
