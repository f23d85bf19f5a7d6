"""The dashboard row of a running sweep turns COMPLETED while the page stays open."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shot
from tests.e2e.steps import (
    MARK_SCRIPT,
    SubmitForm,
    fill_submit_form,
    open_submit_form,
    register,
    submit,
    track_navigations,
    wait_estimate,
    watch,
)

pytestmark = pytest.mark.cluster


def row_snapshot(uuid: str) -> str:
    return f"""() => {{
  const row = document.getElementById('submission-{uuid}');
  const list = document.getElementById('submission-list');
  return {{
    state: row ? row.dataset.state : null,
    done: row ? Number(row.dataset.done) : null,
    total: row ? Number(row.dataset.total) : null,
    chip: row ? row.querySelector('.chip').textContent.trim() : null,
    counts: row ? row.querySelector('.progress-counts').textContent.replace(/\\s+/g, ' ') : null,
    polling: list ? list.dataset.polling : null,
  }};
}}"""


def test_dashboard_updates_without_reload(live_portal, page, example_repo, monkeypatch):
    # Two tasks one after the other, ~5 s each: the dashboard (polled every 5 s) sees them run.
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "5")
    register(page, live_portal, "ada")
    open_submit_form(page, live_portal)
    fill_submit_form(
        page,
        SubmitForm(
            repo_url=example_repo,
            sweep=[("FP_CORE_UTIL", "35, 45")],
            name="utilisation pair",
            throttle=1,
        ),
    )
    wait_estimate(page, points=2)
    uuid = submit(page)

    page.click(".crumbs a")  # back to the dashboard, as a designer would
    page.wait_for_selector(f"#submission-{uuid}")
    url = page.url
    assert url == live_portal.at("/")
    navigations = track_navigations(page)
    page.evaluate(MARK_SCRIPT)
    first = page.evaluate(f"({row_snapshot(uuid)})()")
    assert first["state"] != "COMPLETED" and first["done"] < 2, first
    assert first["polling"] == "on"
    shot(page, "dashboard-running")

    seen = watch(
        page, row_snapshot(uuid), lambda s: s["state"] == "COMPLETED", navigations, timeout=120
    )
    last = seen.snapshots[-1]
    # Every look was at the same document: the row was swapped in by htmx, never reloaded.
    assert len(seen.marked()) == len(seen.snapshots)
    assert seen.navigations == []
    assert page.url == url
    assert last["done"] == last["total"] == 2
    assert last["chip"] == "completed"
    assert "2/2 done" in last["counts"]  # whitespace folded to single spaces
    assert last["polling"] == "off"  # nothing left to change: polling stopped
    assert len({(s["state"], s["done"]) for s in seen.snapshots}) >= 2
    shot(page, "dashboard-completed")
    assert page.console_errors == [], "\n".join(page.console_errors)
