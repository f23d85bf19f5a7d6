"""The open submission page follows every region that can change, from a sweep waiting for an
admin to its end, without a reload, and stops asking the portal anything once it is final."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Request
from sqlalchemy import select

from portal.extensions import db
from portal.models import Submission, User
from portal.web.admin_queue import approve_and_launch
from portal.web.detail import POLL_SECONDS
from tests.e2e.conftest import shot
from tests.e2e.steps import (
    MARK_SCRIPT,
    SubmitForm,
    create_admin,
    fill_submit_form,
    open_submit_form,
    register,
    submit,
    track_navigations,
    wait_estimate,
    watch,
)

pytestmark = pytest.mark.cluster

# Every region of the page that can change, read with selectors of the page's own markup.
PAGE_SNAPSHOT = """() => {
  const live = document.getElementById('live');
  const fact = (label) => {
    const dt = Array.from(document.querySelectorAll('.detail-facts dt'))
      .find(d => d.textContent.trim() === label);
    return dt ? dt.nextElementSibling.textContent.trim() : null;
  };
  const panel = document.getElementById('task-panel');
  const chip = panel.querySelector('.task-panel-head .chip');
  const side = panel.querySelector('.task-side');
  return {
    state: live.dataset.state,
    final: live.dataset.final,
    polling: live.hasAttribute('hx-trigger'),
    badge: document.getElementById('submission-state').dataset.state,
    jobs: Array.from(document.querySelectorAll('.detail-facts .job-id'))
      .map(e => e.textContent.trim()),
    submitted: fact('Submitted'),
    finished: fact('Finished'),
    cancel: Array.from(document.querySelectorAll('.detail-actions button'))
      .some(b => b.textContent.includes('Cancel submission')),
    panel: panel.dataset.index,
    panelState: chip ? chip.textContent.trim() : null,
    folderMissing: side.textContent.includes('does not exist yet'),
    archive: panel.querySelector('a.download-archive') !== null,
  };
}"""

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")


def test_page_follows_a_sweep_from_approval_to_end(
    live_portal, page, example_repo, monkeypatch
) -> None:
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "8")  # several polls see the tasks running
    live_portal.app.config["APPROVAL_ARRAY_SIZE"] = 1  # the page opens before any launch
    create_admin(live_portal, "grace")
    register(page, live_portal, "ada")
    open_submit_form(page, live_portal)
    fill_submit_form(
        page,
        SubmitForm(repo_url=example_repo, sweep=[("CLOCK_PERIOD", "10, 20")], name="live page"),
    )
    wait_estimate(page, points=2, needs_approval=True)
    uuid = submit(page)

    navigations = track_navigations(page)
    page.evaluate(MARK_SCRIPT)
    asked: list[tuple[float, str]] = []  # (when, url) of every request about this submission

    def record(request: Request) -> None:
        if f"/submissions/{uuid}" in request.url:
            asked.append((time.monotonic(), request.url))

    page.on("request", record)
    waiting = page.evaluate(f"({PAGE_SNAPSHOT})()")
    assert waiting["state"] == "AWAITING_APPROVAL" and waiting["polling"], waiting
    assert waiting["jobs"] == [] and waiting["submitted"] == "—" and waiting["finished"] == "—"
    assert waiting["cancel"] and waiting["panel"] == "0"
    assert waiting["panelState"] == "pending" and waiting["folderMissing"], waiting
    shot(page, "live-page-waiting")
    # A poll that changes nothing leaves the regions alone (a selection in them survives), and
    # it names the task the panel shows.
    page.evaluate("() => { document.querySelector('.detail-facts').kept = 1; }")
    with page.expect_response(lambda r: f"/submissions/{uuid}/tasks?" in r.url) as polled:
        pass
    assert "task=0" in polled.value.url, polled.value.url
    page.wait_for_timeout(500)  # swapped and settled
    assert page.evaluate("() => document.querySelector('.detail-facts').kept") == 1

    with live_portal.app.app_context():
        submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        admin = db.session.scalar(select(User).where(User.username == "grace"))
        approve_and_launch(live_portal.app, submission, admin)
        db.session.remove()

    seen = watch(page, PAGE_SNAPSHOT, lambda snap: snap["final"] == "1", navigations, timeout=120)
    final_at = time.monotonic()
    assert seen.navigations == [] and all(s["marker"] for s in seen.snapshots), "page replaced"
    with live_portal.app.app_context():
        done = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        job, submitted_at = done.job_ids, done.submitted_at
        finished_at = done.finished_at
        assert done.state == "COMPLETED", done.error
        db.session.remove()
    submitted = f"{submitted_at:%Y-%m-%d %H:%M:%S} UTC"

    # While the sweep ran, the header facts and the open task panel followed it.
    running = [s for s in seen.snapshots if s["final"] == "0"]
    assert any(s["jobs"] == job for s in running), running
    assert any(s["submitted"] == submitted for s in running), running
    assert all(s["finished"] == "—" for s in running), running
    assert any(s["panelState"] == "running" and not s["folderMissing"] for s in running), running
    assert all(s["polling"] for s in running), running

    # At the end: finished time, no Cancel, the task panel's files, and no more polling.
    end = seen.snapshots[-1]
    assert end["badge"] == end["state"] == "COMPLETED", end
    assert end["jobs"] == job and end["submitted"] == submitted
    assert end["finished"] == f"{finished_at:%Y-%m-%d %H:%M:%S} UTC" and TIME.match(end["finished"])
    assert not end["cancel"], end
    assert end["panelState"] == "completed" and end["archive"] and not end["folderMissing"], end
    assert not end["polling"], end
    shot(page, "live-page-completed")

    polled = [url for _, url in asked if re.search(rf"/submissions/{uuid}/tasks\?", url)]
    assert polled, "the listener saw no poll while the sweep ran"
    settle = 4.0  # the metrics section loads once and the console's last read comes back
    page.wait_for_timeout((settle + 2 * POLL_SECONDS + 1) * 1000)
    late = [url for when, url in asked if when > final_at + settle]
    assert late == [], late
    assert page.console_errors == [], "\n".join(page.console_errors)
