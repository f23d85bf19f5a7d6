"""Browser steps shared by the end-to-end tests: accounts, the submit form, and watching a page
that htmx keeps up to date (without ever calling ``page.reload``)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

from portal import accounts
from tests.e2e.conftest import LivePortal

PASSWORD = "correct horse battery"
SUBMISSION_URL = re.compile(r"/submissions/[0-9a-f-]{36}$")


def register(page: Page, portal: LivePortal, username: str) -> None:
    """Create an account through the registration page (signed in afterwards)."""
    page.goto(portal.at("/auth/register"))
    page.fill("input[name=username]", username)
    page.fill("input[name=email]", f"{username}@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirm]", PASSWORD)
    page.click("#main form [type=submit]")
    page.wait_for_selector(".usermenu")
    assert username in page.inner_text(".usermenu")


def create_admin(portal: LivePortal, username: str = "grace") -> None:
    """An admin account, made the way operators make one (portal.accounts)."""
    with portal.app.app_context():
        accounts.create_user(username, f"{username}@example.org", PASSWORD, role="admin")


def sign_in(page: Page, portal: LivePortal, username: str) -> None:
    """Sign in through the login page."""
    page.goto(portal.at("/auth/login"))
    page.fill("input[name=login]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#main form [type=submit]")
    page.wait_for_selector(".usermenu")
    assert username in page.inner_text(".usermenu")


@dataclass
class SubmitForm:
    """What the tests type into the submit form."""

    repo_url: str
    sweep: Sequence[tuple[str, str]] = ()
    name: str = ""
    ref: str = "main"
    design_path: str = "designs/counter"
    cpus: int = 1
    mem_mb: int = 512
    time_minutes: int = 10
    partition: str = "debug"
    throttle: int = 0
    extra: Mapping[str, str] = field(default_factory=dict)


def open_submit_form(page: Page, portal: LivePortal) -> None:
    """The New submission page, with submit.js attached."""
    page.goto(portal.at("/"))
    page.click("a.btn-primary:has-text('New submission')")
    page.wait_for_url("**/submissions/new")
    page.wait_for_selector("#submit-form[data-enhanced=yes]")


def fill_submit_form(page: Page, form: SubmitForm) -> None:
    """Type the design, the sweep rows and the resources into the open form."""
    page.fill("#repo_url", form.repo_url)
    page.fill("#ref", form.ref)
    page.fill("#design_path", form.design_path)
    page.fill("#name", form.name)
    for row, (parameter, values) in enumerate(form.sweep):
        if page.locator(f"#sweep-{row}-parameter").count() == 0:
            page.click("[data-sweep-add]")
        page.select_option(f"#sweep-{row}-parameter", parameter)
        page.fill(f"#sweep-{row}-values", values)
    page.select_option("#partition", form.partition)
    page.fill("#cpus", str(form.cpus))
    page.fill("#mem_mb", str(form.mem_mb))
    page.fill("#time_minutes", str(form.time_minutes))
    page.fill("#throttle", str(form.throttle))
    for selector, value in form.extra.items():
        page.fill(selector, value)


def wait_estimate(page: Page, points: int, needs_approval: bool = False) -> None:
    """Wait until the live estimate (htmx) shows this many points and approval verdict."""
    approval = "yes" if needs_approval else "no"
    page.wait_for_selector(
        f"#estimate .estimate[data-points='{points}'][data-ready=yes]"
        f"[data-needs-approval={approval}]"
    )


def submit(page: Page) -> str:
    """Press Submit; return the new submission's uuid (the browser is on its page)."""
    page.click("#submit-form button.btn-primary[type=submit]")
    page.wait_for_url(SUBMISSION_URL)
    return page.url.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- live pages

MARK_SCRIPT = "() => { window.__noReload = 1; }"


@dataclass
class Watch:
    """What a page showed while it was watched: snapshots and main-frame navigations."""

    snapshots: list[dict[str, Any]]
    navigations: list[str]

    def marked(self) -> list[dict[str, Any]]:
        """Snapshots taken while the page was the same document as when it was marked."""
        return [s for s in self.snapshots if s.get("marker")]


def track_navigations(page: Page) -> list[str]:
    """Main-frame navigations from now on (a reload counts, an htmx swap does not)."""
    seen: list[str] = []
    page.on(
        "framenavigated", lambda frame: seen.append(frame.url) if frame == page.main_frame else None
    )
    return seen


def watch(
    page: Page,
    snapshot_js: str,
    done: Callable[[dict[str, Any]], bool],
    navigations: list[str],
    timeout: float = 90,
    interval: float = 0.3,
) -> Watch:
    """Read ``snapshot_js`` (returns an object; ``marker`` is added) until ``done`` says so.

    The page is only looked at, never reloaded. A snapshot whose document is being replaced
    (a navigation in progress) is skipped.
    """
    script = f"() => Object.assign(({snapshot_js})(), {{marker: window.__noReload === 1}})"
    snapshots: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            snap = page.evaluate(script)
        except PlaywrightError:
            snap = None
        if snap is not None:
            snapshots.append(snap)
            if done(snap):
                return Watch(snapshots, list(navigations))
        if time.monotonic() > deadline:
            last = snapshots[-3:]
            raise AssertionError(f"the page did not get there in {timeout}s; last: {last}")
        page.wait_for_timeout(interval * 1000)


def until(page: Page, function_js: str, arg: Any = None, timeout: float = 15) -> Any:
    """Poll ``function_js`` (a JS function of ``arg``) until it returns something truthy.

    Unlike ``page.wait_for_function``, this never evaluates a string inside the page, which
    the portal's CSP (no 'unsafe-eval') forbids.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(function_js, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout}s: {function_js}")
        page.wait_for_timeout(200)


LIVE_SNAPSHOT = """() => {
  const live = document.getElementById('live');
  return {
    state: live ? live.dataset.state : null,
    final: live ? live.dataset.final : null,
    tasks: Array.from(document.querySelectorAll('#live .task-row')).map(r => r.dataset.state),
    url: location.href,
  };
}"""


def all_in(state: str, count: int) -> Callable[[dict[str, Any]], bool]:
    """``done`` for :func:`watch`: the tasks table shows ``count`` tasks, all in ``state``."""
    return lambda snap: len(snap["tasks"]) == count and set(snap["tasks"]) == {state}
