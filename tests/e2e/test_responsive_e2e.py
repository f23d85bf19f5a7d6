"""On a phone (390×844) no page of the portal scrolls sideways: wide tables scroll inside their
own box. Every page is visited signed out, as a designer and as an admin, with a real finished
sweep (the stand-in flow on the real cluster) and a sweep waiting for approval to show.

:func:`arrange_site` and :func:`site_pages` are shared with the accessibility and metrics table
tests of this folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from portal import accounts
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import SubmissionState, User
from tests.e2e.conftest import LivePortal, shot
from tests.e2e.steps import PASSWORD, sign_in
from tests.integration.engine_helpers import wait_final

pytestmark = pytest.mark.cluster

PHONE = {"width": 390, "height": 844}
DESIGNER = "ada"
ADMIN = "grace"

#: Elements that stick out on the right of the viewport, outside a box that scrolls sideways.
STICKING_OUT = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter(e => !(e.parentElement && e.parentElement.closest('.table-wrap, pre')))
  .slice(0, 5)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className} `
    + `right=${Math.round(e.getBoundingClientRect().right)}`)"""

#: Open every <details> (and show a chooser still hidden), as a curious designer would, and
#: wait until what that loads (htmx) has been swapped in and laid out.
OPEN_ALL_DETAILS = """async () => {
  const frames = () => new Promise(
    done => requestAnimationFrame(() => requestAnimationFrame(done)));
  document.querySelectorAll('details').forEach(d => { d.hidden = false; d.open = true; });
  await frames();  // the 'toggle' events (htmx triggers) are fired in a later task
  const busy = '.htmx-request, .htmx-swapping, .htmx-settling';
  for (let i = 0; i < 200 && document.querySelector(busy); i++) {
    await new Promise(done => setTimeout(done, 50));
  }
  await frames();
}"""


@dataclass(frozen=True)
class Site:
    """The submissions :func:`arrange_site` made (uuids)."""

    finished: str
    waiting: str


def arrange_site(portal: LivePortal, repo_url: str) -> Site:
    """Users ada (designer) and grace (admin); a 2×2 sweep of ada's, run to the end on the
    real cluster (set ``OPENLANE_STANDIN_SECONDS`` first), and a 3-point one waiting for
    approval."""
    app = portal.app
    with app.app_context():
        accounts.create_user(DESIGNER, "ada@example.org", PASSWORD, slurm_account="openlane")
        accounts.create_user(ADMIN, "grace@example.org", PASSWORD, role="admin")
        owner = db.session.scalar(select(User).where(User.username == DESIGNER))
        slurm = slurm_client(app.config)

        def plan(name: str, sweeps: list[str]) -> svc.Plan:
            request = svc.SubmissionRequest(
                repo_url=repo_url,
                ref="main",
                design_path="designs/counter",
                cli_sweeps=sweeps,
                resources=svc.Resources(time_minutes=10, mem_mb=256),
                name=name,
            )
            return svc.plan_submission(request, app.config, slurm, owner=owner)

        finished = svc.create_submission(
            plan("clock and utilisation", ["CLOCK_PERIOD=10,20", "FP_CORE_UTIL=30,50"]), owner
        )
        finished = wait_final(app, svc.launch(finished, app.config, slurm))
        assert finished.state == SubmissionState.COMPLETED, finished.error
        app.config["APPROVAL_ARRAY_SIZE"] = 2
        waiting = svc.create_submission(plan("three clocks", ["CLOCK_PERIOD=10,15,20"]), owner)
        assert waiting.state == SubmissionState.AWAITING_APPROVAL
        site = Site(finished=finished.uuid, waiting=waiting.uuid)
        db.session.remove()
    return site


def site_pages(site: Site) -> dict[str | None, list[str]]:
    """Every page, by who looks at it (None: signed out)."""
    return {
        None: ["/auth/login", "/auth/register", "/auth/reset", "/auth/reset/not-a-token", "/nope"],
        DESIGNER: [
            "/",
            "/submissions/new",
            f"/submissions/{site.finished}",
            f"/submissions/{site.waiting}",
            f"/submissions/{site.finished}/script",
            "/account/",
            "/account/tokens",
        ],
        ADMIN: [
            "/admin/",
            "/admin/users",
            "/admin/cluster",
            "/admin/images",
            "/admin/email",
            f"/admin/submissions/{site.waiting}/script",
            f"/submissions/{site.finished}",
        ],
    }


def open_as(
    open_page: Callable[[str], Page], portal: LivePortal, who: str | None, viewport: dict
) -> Page:
    """A page in its own browser context at ``viewport``, signed in as ``who`` (or not)."""
    page = open_page(who or "anonymous")
    page.set_viewport_size(viewport)
    if who:
        sign_in(page, portal, who)
    return page


def visit(page: Page, url: str) -> None:
    """Open ``url`` and wait until htmx has loaded what the page loads by itself."""
    page.goto(url)
    page.wait_for_load_state("networkidle")


def overflow(page: Page) -> tuple[int, int]:
    """(document width, viewport width) in CSS pixels."""
    return page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")


def test_no_page_scrolls_sideways_on_a_phone(live_portal, open_page, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "0")
    site = arrange_site(live_portal, example_repo)
    wide: list[str] = []
    for who, paths in site_pages(site).items():
        page = open_as(open_page, live_portal, who, PHONE)
        for path in paths:
            visit(page, live_portal.at(path))
            for when in ("as loaded", "with every <details> open"):
                if when != "as loaded":
                    page.evaluate(OPEN_ALL_DETAILS)
                width, viewport = overflow(page)
                assert viewport == PHONE["width"]
                if width > viewport:
                    wide.append(f"{who}: {path} {when}: {width}px {page.evaluate(STICKING_OUT)}")
            if path.startswith("/submissions/") and who == DESIGNER:
                shot(page, "phone-submission")
    assert not wide, "pages wider than the phone:\n" + "\n".join(wide)

    # The metrics table is wider than the phone: it scrolls inside its own box instead.
    page = open_as(open_page, live_portal, DESIGNER, PHONE)
    visit(page, live_portal.at(f"/submissions/{site.finished}"))
    box = page.evaluate(
        """() => { const w = document.querySelector('#results .table-wrap');
                   return [w.scrollWidth, w.clientWidth, getComputedStyle(w).overflowX]; }"""
    )
    assert box[0] > box[1] and box[2] == "auto", box
