"""The submission page on a real sweep: the engine runs ONE 3-point sweep of the example design
on the real Slurm cluster (the stand-in flow, task 2 made to fail), shared by this module and
test_web_files.py; then the page, its partials and its actions are driven through the Flask
test client with CSRF on. Synthetic submissions (database rows only) cover escaping and the
query count of a big array.
"""

from __future__ import annotations

import html
import io
import json
import re
import stat
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape
from sqlalchemy import event, select

from portal import accounts
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, Task, User, utcnow
from portal.results.table import results_table
from portal.track.poller import poll_once
from portal.web import detail
from tests.integration.engine_helpers import STANDIN, make_app, wait_final
from tests.integration.web_helpers import PASSWORD, SITE, csrf, login

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]

FAIL_WRAPPER = Path(__file__).resolve().parents[1] / "standin" / "fail_some_tasks.sh"
XSS_NAME = '<script>alert("name")</script> counter sweep'
XSS_LOG = "<script>alert('log')</script> printed by the test wrapper"
HTMX = {"HX-Request": "true"}


@dataclass
class Sweep:
    """The finished sweep every test here looks at."""

    app: Flask
    uuid: str
    run_dir: Path
    tmp: Path


_SWEEP: dict[str, Sweep] = {}


def write_wrapper(folder: Path, name: str, body: str) -> str:
    path = folder / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def submit(app: Flask, repo: str, sweeps: list[str], name: str = "") -> Submission:
    """Plan, record and launch a sweep of the example design as ada (synchronously)."""
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        cli_sweeps=sweeps,
        resources=svc.Resources(time_minutes=10, mem_mb=256),
        name=name,
    )
    slurm = slurm_client(app.config)
    owner = db.session.scalar(select(User).where(User.username == "ada"))
    plan = svc.plan_submission(request, app.config, slurm, owner=owner)
    submission = svc.create_submission(plan, owner)
    return svc.launch(submission, app.config, slurm)


def finished_sweep(tmp_path_factory: pytest.TempPathFactory, example_repo: str) -> Sweep:
    """Run the 3-point sweep once per test session (task 2 fails with exit code 3)."""
    if "sweep" in _SWEEP:
        return _SWEEP["sweep"]
    tmp = tmp_path_factory.mktemp("web-detail")
    wrapper = write_wrapper(
        tmp,
        "fail-task-2.sh",
        f'echo "{XSS_LOG}"\nOLP_TEST_FAIL_TASKS=2 exec "{FAIL_WRAPPER}" "$@"',
    )
    app = make_app(
        tmp,
        FLOW_EXECUTABLE_OVERRIDE=wrapper,
        REGISTRATION="open",
        RATELIMIT_ENABLED=False,
        SITE_URL=SITE,
    )
    with app.app_context():
        accounts.create_user("ada", "ada@example.org", PASSWORD, slurm_account="openlane")
        accounts.create_user("bob", "bob@example.org", PASSWORD, slurm_account="openlane")
        accounts.create_user("grace", "grace@example.org", PASSWORD, role="admin")
        sub = submit(app, example_repo, ["CLOCK_PERIOD=10,20,30"], name=XSS_NAME)
        assert sub.state == "QUEUED", sub.error
        wait_final(app, sub)
        assert sub.state == "PARTIAL", [(t.state, t.exit_code) for t in sub.tasks]
        assert [t.state for t in sub.tasks] == ["COMPLETED", "COMPLETED", "FAILED"]
        sweep = Sweep(app, sub.uuid, Path(sub.run_dir), tmp)
        db.session.remove()
    _SWEEP["sweep"] = sweep
    return sweep


@pytest.fixture
def sweep(tmp_path_factory, example_repo) -> Sweep:
    return finished_sweep(tmp_path_factory, example_repo)


def client_for(app: Flask, username: str | None = "ada"):
    client = app.test_client()
    if username:
        response = login(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return client


def load(app: Flask, uuid: str) -> Submission:
    """A fresh copy of the submission and its tasks (detached)."""
    with app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        list(sub.tasks)
        _ = sub.owner
        db.session.expunge_all()
        return sub


def task_rows(page: str) -> dict[int, str]:
    """``{index: row html}`` of the tasks table."""
    rows = re.findall(r'<tr class="task-row[^"]*" data-index="(\d+)"(.*?)</tr>', page, re.S)
    return {int(index): body for index, body in rows}


def oob_regions(text: str) -> dict[str, str]:
    """``{id: markup up to the next one}`` of the regions an answer swaps in out of band."""
    starts = list(re.finditer(r'<\w+ [^>]*\bid="([\w-]+)"[^>]*\bhx-swap-oob="', text))
    ends = [m.start() for m in starts[1:]] + [len(text)]
    return {m.group(1): text[m.start() : end] for m, end in zip(starts, ends, strict=True)}


def versions(regions: dict[str, str]) -> dict[str, str]:
    """``{id: data-version}`` of the regions that carry one."""
    found = {key: re.search(r'^<[^>]*data-version="(\w+)"', body) for key, body in regions.items()}
    return {key: match.group(1) for key, match in found.items() if match}


def island(page: str) -> dict:
    match = re.search(r"<template id=\"chart-data\" data-chart='([^']*)'>", page)
    assert match, "no chart data island"
    return json.loads(html.unescape(match.group(1)))


# --------------------------------------------------------------------------- the page


def test_page_header_tasks_table_and_escaping(sweep):
    sub = load(sweep.app, sweep.uuid)
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    # the name is shown escaped, never as markup
    assert XSS_NAME not in page and '<script>alert("name")' not in page
    assert str(escape(XSS_NAME)) in page
    for fact in (sub.repo_url, sub.commit[:12], "ada", "openlane1", sub.job_ids[0]):
        assert fact in page
    assert 'class="chip chip-partial"' in page
    rows = task_rows(page)
    assert sorted(rows) == [0, 1, 2]
    for task in sub.tasks:
        row = rows[task.index]
        assert f"chip-{task.state.lower()}" in row
        assert task.node and task.node in row
        assert f"{task.params['CLOCK_PERIOD']}" in row and "CLOCK_PERIOD" in row
    assert re.search(r'<td class="num mono">3</td>', rows[2])  # the failed task's exit code
    base = f"/submissions/{sweep.uuid}"
    assert f'hx-get="{base}/tasks/1" hx-target="#task-panel"' in rows[1]
    assert f'href="{base}?task=1#task-panel"' in rows[1]
    # final: the table is not polled any more; the page loads only local scripts
    assert 'hx-trigger="every' not in page
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert "/static/js/detail.js" in scripts and "/static/js/pareto.js" in scripts
    assert all(src.startswith("/static/") for src in scripts)
    assert not re.search(r"<script(?![^>]*src=)", page)
    assert " style=" not in page and " onclick=" not in page


def test_log_line_with_markup_is_escaped_in_the_console(sweep):
    page = client_for(sweep.app).get(f"/submissions/{sweep.uuid}?task=0").get_data(as_text=True)
    console = re.search(r'<pre class="console"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert XSS_LOG not in page
    assert str(escape(XSS_LOG)) in console
    assert "OpenLane stand-in: TEST DOUBLE" in console


def test_metrics_table_units_and_chart_island_match_portal_results(sweep):
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}")
    page = response.get_data(as_text=True)
    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == sweep.uuid))
        data = island(page)
        x, y = data["x"], data["y"]
        expected = results_table(sub, detail.objectives_for(x, y))
        default = results_table(sub)
        metrics = {t.index: t.metrics for t in sub.tasks}
    assert x != y and x in default.objectives  # the first measured default objective
    assert data["pareto"] == expected.pareto and data["best"] == expected.best
    assert data["objectives"] == expected.objectives
    assert [row["index"] for row in data["rows"]] == [0, 1]  # completed tasks only
    for row in data["rows"]:
        assert row["metrics"][x] == metrics[row["index"]][x]
        assert row["metrics"][y] == metrics[row["index"]][y]
        assert row["pareto"] == (row["index"] in expected.pareto)
    assert data["fields"]["die_area_um2"] == {"label": "Die area", "unit": "µm²"}
    # metrics table: units in the headers, one row per task with metrics, front marked
    table = re.search(r'<table class="table metrics-table".*?</table>', page, re.S).group(0)
    assert 'Die area <span class="unit">[µm²]</span>' in table
    body_rows = re.findall(r'<tr data-index="(\d+)"( class="on-front")?>', table)
    assert [int(i) for i, _ in body_rows] == [0, 1]
    on_front = [int(i) for i, mark in body_rows if mark]
    assert on_front == [i for i in (0, 1) if i in default.pareto]
    area = metrics[0]["die_area_um2"]
    assert f'data-value="{area}"' in table


def test_results_json_for_another_pair_and_bad_pairs(sweep):
    client = client_for(sweep.app)
    data = client.get(f"/submissions/{sweep.uuid}/results.json").get_json()
    fields = list(data["fields"])
    assert len(fields) >= 3
    x, y = fields[-1], fields[0]
    other = client.get(f"/submissions/{sweep.uuid}/results.json?x={x}&y={y}").get_json()
    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == sweep.uuid))
        expected = results_table(sub, detail.objectives_for(x, y))
    assert (other["x"], other["y"]) == (x, y)
    assert other["pareto"] == expected.pareto and other["best"] == expected.best
    for query in (f"x={x}&y={x}", f"x=nope&y={y}", f"x={x}&y=design"):
        bad = client.get(f"/submissions/{sweep.uuid}/results.json?{query}")
        assert bad.status_code == 400
        assert bad.get_json()["error"]["code"] == "invalid_request"


def test_results_csv_has_every_task(sweep):
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/results.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).strip().splitlines()
    assert lines[0].startswith("index,state,CLOCK_PERIOD") and "die_area_um2 [µm²]" in lines[0]
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]


def test_tasks_partial_filters_and_paginates(sweep, monkeypatch):
    client = client_for(sweep.app)

    def partial(query: str) -> str:
        answer = client.get(f"/submissions/{sweep.uuid}/tasks{query}", headers=HTMX)
        return answer.get_data(as_text=True)

    failed = partial("?state=failed")
    assert sorted(task_rows(failed)) == [2]
    assert 'id="live"' in failed and "<html" not in failed
    monkeypatch.setattr(detail, "TASKS_PER_PAGE", 2)
    first = partial("")
    second = partial("?page=2")
    assert sorted(task_rows(first)) == [0, 1] and sorted(task_rows(second)) == [2]
    assert "page 2 of 2" in second
    beyond = partial("?page=99")
    assert sorted(task_rows(beyond)) == [2]  # clamped to the last page
    # the live poll of a final submission swaps the state chip and the metrics section in
    # out of band: the open page shows the results without a reload
    live = client.get(f"/submissions/{sweep.uuid}/tasks?live=1", headers={"HX-Request": "true"})
    assert "HX-Refresh" not in live.headers
    html = live.get_data(as_text=True)
    assert re.search(r'id="results"[^>]*hx-swap-oob="outerHTML"', html)
    assert f'hx-get="/submissions/{sweep.uuid}/results"' in html
    assert re.search(r'id="submission-state" data-state="[A-Z]+" hx-swap-oob="true"', html)
    plain = client.get(f"/submissions/{sweep.uuid}/tasks", headers={"HX-Request": "true"})
    assert "hx-swap-oob" not in plain.get_data(as_text=True)


def test_task_panel_partial(sweep):
    client = client_for(sweep.app)
    panel = client.get(f"/submissions/{sweep.uuid}/tasks/1", headers={"HX-Request": "true"})
    text = panel.get_data(as_text=True)
    assert panel.status_code == 200 and text.lstrip().startswith('<section id="task-panel"')
    assert f"/submissions/{sweep.uuid}/tasks/1/layout.png" in text
    assert f"/submissions/{sweep.uuid}/tasks/1/archive.tar.gz" in text
    assert re.search(rf"/submissions/{sweep.uuid}/tasks/1/files/runs/[^\"]+\.gds", text)
    failed = client.get(f"/submissions/{sweep.uuid}/tasks/2", headers={"HX-Request": "true"})
    assert "No final GDS yet." in failed.get_data(as_text=True)
    assert "layout.png" not in failed.get_data(as_text=True)
    plain = client.get(f"/submissions/{sweep.uuid}/tasks/1")
    assert plain.status_code == 302 and plain.location.endswith("?task=1#task-panel")
    assert client.get(f"/submissions/{sweep.uuid}/tasks/7").status_code == 302
    assert (
        client.get(f"/submissions/{sweep.uuid}/tasks/7", headers={"HX-Request": "1"}).status_code
        == 404
    )


def test_fragments_opened_directly_answer_the_full_page(sweep):
    """Somebody opening a partial's address (no HX-Request) gets the styled page, with the task
    filter they asked for, owner and share-link holder alike; htmx still gets the partial."""
    client = client_for(sweep.app)
    shown = share(client, sweep.uuid, 3600).get_data(as_text=True)
    shared = re.search(r'id="share-link-value">([^<]+)<', shown).group(1)[len(SITE) :]
    anonymous = sweep.app.test_client()
    for who, base in ((client, f"/submissions/{sweep.uuid}"), (anonymous, shared)):
        for path in ("/tasks?state=failed", "/tasks?state=failed&live=1", "/results"):
            answer = who.get(base + path)
            page = answer.get_data(as_text=True)
            assert answer.status_code == 200, path
            assert page.lstrip().lower().startswith("<!doctype html>"), path
            assert "/static/css/detail.css" in page and "/static/js/detail.js" in page
            for region in ("submission-facts", "live", "task-panel", "results"):
                assert f'id="{region}"' in page, (path, region)
            assert "hx-swap-oob" not in page
        filtered = who.get(base + "/tasks?state=failed").get_data(as_text=True)
        assert sorted(task_rows(filtered)) == [2]
        for path in ("/tasks", "/results"):
            bare = who.get(base + path, headers=HTMX).get_data(as_text=True)
            assert "<html" not in bare and "/static/css/detail.css" not in bare, path


# --------------------------------------------------------------------------- access


def test_other_user_gets_404_admin_sees_everything(sweep):
    bob = client_for(sweep.app, "bob")
    root = client_for(sweep.app, "grace")
    base = f"/submissions/{sweep.uuid}"
    for path in ("", "/tasks", "/tasks/0", "/results", "/results.json", "/results.csv"):
        assert bob.get(base + path, headers={"HX-Request": "true"}).status_code == 404, path
        assert root.get(base + path, headers={"HX-Request": "true"}).status_code == 200, path
    token = csrf(bob.get("/account/").get_data(as_text=True))
    for action in ("cancel", "resubmit", "export", "share"):
        answer = bob.post(f"{base}/{action}", data={"csrf_token": token, "expires": "3600"})
        assert answer.status_code == 404, action
    anonymous = sweep.app.test_client().get(base)
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.location
    assert client_for(sweep.app).get("/submissions/not-a-uuid").status_code == 404


# --------------------------------------------------------------------------- actions


def test_actions_refuse_posts_without_csrf(sweep):
    client = client_for(sweep.app)
    before = load(sweep.app, sweep.uuid)
    for action in ("cancel", "resubmit", "export", "share"):
        response = client.post(f"/submissions/{sweep.uuid}/{action}", data={"expires": "3600"})
        assert response.status_code == 400, action
        assert "CSRF" in response.get_data(as_text=True)
        forged = client.post(
            f"/submissions/{sweep.uuid}/{action}", data={"csrf_token": "forged", "expires": "60"}
        )
        assert forged.status_code == 400, action
    after = load(sweep.app, sweep.uuid)
    assert (after.state, after.job_ids) == (before.state, before.job_ids)


def test_page_offers_actions_with_csrf_tokens(sweep):
    page = client_for(sweep.app).get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
    forms = re.findall(r'<form method="post" action="([^"]+)"(.*?)</form>', page, re.S)
    actions = {action.rsplit("/", 1)[-1]: body for action, body in forms}
    assert {"resubmit", "export", "share"} <= set(actions)
    assert "cancel" not in actions  # the submission has finished
    for body in actions.values():
        assert 'name="csrf_token"' in body
    assert "Resubmit 1 failed task" in page


def test_export_bundle_download(sweep):
    client = client_for(sweep.app)
    page = client.get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
    response = client.post(f"/submissions/{sweep.uuid}/export", data={"csrf_token": csrf(page)})
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    assert "attachment" in response.headers["Content-Disposition"]
    with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as tar:
        names = tar.getnames()
        top = names[0].split("/")[0]
        script = tar.extractfile(f"{top}/job.sbatch").read().decode()
    assert f"{top}/task-configs.txt" in names and f"{top}/task-configs.index" in names
    assert f"{top}/sweep.tsv" in names
    assert "#SBATCH --array=0-2" in script
    assert not any("/.git/" in name for name in names)
    # the contract's GET form gives the same bundle (a download changes nothing)
    again = client.get(f"/submissions/{sweep.uuid}/export")
    assert again.status_code == 200 and again.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(again.data), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == sorted(names)


def test_cancel_form_validates_its_input(sweep):
    """A finished submission cannot be cancelled; bad task lists are refused (nothing runs)."""
    client = client_for(sweep.app)
    page = client.get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
    token = csrf(page)
    answer = client.post(
        f"/submissions/{sweep.uuid}/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Nothing was cancelled: the submission is already partial" in answer.get_data(
        as_text=True
    )
    answer = client.post(
        f"/submissions/{sweep.uuid}/cancel",
        data={"csrf_token": token, "tasks": ["1", "x;rm"]},
        follow_redirects=True,
    )
    assert "Nothing was cancelled: not a task index" in answer.get_data(as_text=True)
    assert load(sweep.app, sweep.uuid).state == "PARTIAL"


# --------------------------------------------------------------------------- synthetic data


def add_synthetic(app: Flask, n_tasks: int, params: dict, state: str = "RUNNING") -> str:
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        sub = Submission(
            owner_id=owner.id,
            name=f"synthetic {n_tasks}",
            repo_url="git://example.invalid/x.git",
            ref="main",
            flow="openlane1",
            state=state,
            n_tasks=n_tasks,
            job_ids=["999999"],
        )
        db.session.add(sub)
        db.session.flush()
        states = ["COMPLETED", "RUNNING", "PENDING", "FAILED"]
        db.session.add_all(
            Task(
                submission_id=sub.id,
                index=i,
                params=params,
                state=states[i % 4],
                array_job_id="999999",
                array_index=i,
                metrics={"die_area_um2": 1000.0 + i, "setup_ws_ns": 1.0 - i / n_tasks}
                if i % 4 == 0
                else None,
            )
            for i in range(n_tasks)
        )
        db.session.commit()
        return sub.uuid


def test_parameters_are_escaped(sweep):
    uuid = add_synthetic(sweep.app, 2, {"CLOCK_PERIOD": '<img src=x onerror="alert(1)">'})
    page = client_for(sweep.app).get(f"/submissions/{uuid}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page


LIVE_REGIONS = ["submission-state", "submission-alerts", "submission-facts", "submission-actions"]
TASK_PARTS = ["task-panel-head", "task-errors", "task-log-links", "task-side"]


def test_live_poll_swaps_every_region_that_can_change(sweep):
    """The poll of a running submission refreshes, out of band, the state, the alerts, the
    facts, the actions and the open task's panel parts; once final it says so in each of them,
    loads the metrics and polls no more."""
    uuid = add_synthetic(sweep.app, 4, {"CLOCK_PERIOD": 10})
    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        sub.error = "sbatch: <b>refused</b> once"
        db.session.commit()
    owner = client_for(sweep.app)
    shown = share(owner, uuid, 3600).get_data(as_text=True)
    shared = re.search(r'id="share-link-value">([^<]+)<', shown).group(1)[len(SITE) :]

    def poll(
        task: str = "1", client: FlaskClient = owner, base: str = f"/submissions/{uuid}"
    ) -> tuple[str, dict[str, str]]:
        answer = client.get(f"{base}/tasks?live=1&task={task}", headers=HTMX)
        text = answer.get_data(as_text=True)
        return text, oob_regions(text)

    text, running = poll()
    assert list(running) == LIVE_REGIONS + TASK_PARTS
    assert 'hx-trigger="every' in text and 'hx-include="#task-panel-index"' in text
    assert 'data-state="RUNNING"' in running["submission-state"]
    assert "sbatch: &lt;b&gt;refused&lt;/b&gt; once" in running["submission-alerts"]
    assert '<span class="job-id">999999</span>' in running["submission-facts"]
    assert 'id="finished-at"><span class="muted">—</span>' in running["submission-facts"]
    assert "Cancel submission" in running["submission-actions"]
    assert 'data-task-index="1" data-state="RUNNING"' in running["task-panel-head"]
    assert all('data-task-index="1"' in running[part] for part in TASK_PARTS)
    assert "The task folder does not exist yet." in running["task-side"]
    assert re.findall(r'<tr class="task-row is-selected" data-index="(\d+)"', text) == ["1"]
    # Nothing changed: every region keeps its version (CSRF tokens differ, they do not count).
    assert versions(poll()[1]) == versions(running)
    assert len(versions(running)) == len(LIVE_REGIONS + TASK_PARTS) - 1  # all but the badge
    # No open task, or one it does not have: no panel parts. A link holder has no actions.
    assert list(poll("")[1]) == list(poll("99")[1]) == LIVE_REGIONS
    assert list(poll(client=sweep.app.test_client(), base=shared)[1]) == [
        name for name in LIVE_REGIONS + TASK_PARTS if name != "submission-actions"
    ]

    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        sub.state, sub.error, sub.finished_at = "COMPLETED", None, utcnow()
        for task in sub.tasks:
            task.state = "COMPLETED"
        db.session.commit()
        finished = f"{sub.finished_at:%Y-%m-%d %H:%M:%S} UTC"
    text, final = poll()
    assert 'hx-trigger="every' not in text and 'data-final="1"' in text
    assert list(final) == LIVE_REGIONS + TASK_PARTS + ["results"]
    assert 'data-state="COMPLETED"' in final["submission-state"]
    assert "detail-error" not in final["submission-alerts"]
    assert f'id="finished-at">{finished}</dd>' in final["submission-facts"]
    assert "Cancel submission" not in final["submission-actions"]
    assert 'data-state="COMPLETED"' in final["task-panel-head"]
    changed = {k for k, v in versions(final).items() if v != versions(running)[k]}
    assert changed == {
        "submission-alerts",
        "submission-facts",
        "submission-actions",
        "task-panel-head",
    }


def test_big_array_page_costs_few_queries_and_no_full_task_load(sweep):
    uuid = add_synthetic(sweep.app, detail.INLINE_RESULTS_MAX + 200, {"CLOCK_PERIOD": 10})
    client = client_for(sweep.app)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with sweep.app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = client.get(f"/submissions/{uuid}")
        live = client.get(f"/submissions/{uuid}/tasks?page=3&state=pending", headers=HTMX)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and live.status_code == 200
    assert len(task_rows(page)) == detail.TASKS_PER_PAGE
    assert 'hx-trigger="every' in page  # running: polled
    assert 'hx-get="/submissions/' in page and 'hx-trigger="load"' in page  # lazy metrics
    task_selects = [s for s in statements if re.search(r"FROM tasks\b", s)]
    assert len(statements) <= 12, statements
    for statement in task_selects:  # every task query is grouped or limited
        assert "GROUP BY" in statement or "LIMIT" in statement, statement
    # the lazily loaded metrics: all tasks with metrics, in the island and the table
    results = client.get(f"/submissions/{uuid}/results", headers={"HX-Request": "true"})
    data = island(results.get_data(as_text=True))
    assert len(data["rows"]) == len(range(0, detail.INLINE_RESULTS_MAX + 200, 4))


# --------------------------------------------------------------------------- share links


def share(client, uuid: str, seconds: int):
    page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    return client.post(
        f"/submissions/{uuid}/share",
        data={"csrf_token": csrf(page), "expires": str(seconds)},
        follow_redirects=True,
    )


def test_share_link_opens_the_page_read_only_without_login(sweep):
    owner = client_for(sweep.app)
    shown = share(owner, sweep.uuid, 3600).get_data(as_text=True)
    link = re.search(r'id="share-link-value">([^<]+)<', shown).group(1)
    assert link.startswith(f"{SITE}/shared/")
    path = link[len(SITE) :]
    # shown once only
    again = owner.get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
    assert 'id="share-link-value"' not in again

    anonymous = sweep.app.test_client()
    response = anonymous.get(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert "Shared, read-only view" in page and str(escape(XSS_NAME)) in page
    assert 'method="post"' not in page.split('id="main"', 1)[1]  # no actions at all
    assert f"/submissions/{sweep.uuid}" not in page  # every link stays on the shared URLs
    assert sorted(task_rows(page)) == [0, 1, 2]
    assert f'hx-get="{path}/tasks/2" hx-target="#task-panel"' in task_rows(page)[2]
    assert island(page)["pareto"]
    for sub_path in ("/tasks", "/tasks/0", "/results.json", "/results.csv", "/tasks/0/log"):
        answer = anonymous.get(path + sub_path, headers={"HX-Request": "true"})
        assert answer.status_code == 200, sub_path
    # the owner's URLs still need a login; actions are not reachable through the link
    assert anonymous.get(f"/submissions/{sweep.uuid}").status_code == 302
    assert anonymous.post(path + "/cancel").status_code in (400, 404, 405)


def test_share_link_lifetime_is_capped(sweep):
    owner = client_for(sweep.app)
    limit = sweep.app.config["SHARE_LINK_MAX_AGE"]
    refused = share(owner, sweep.uuid, limit + 1).get_data(as_text=True)
    assert "No share link was created" in refused and 'id="share-link-value"' not in refused
    sweep.app.config["SHARE_LINK_MAX_AGE"] = 7200
    try:
        page = owner.get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
        offered = re.findall(r'<option value="(\d+)"', page.split('id="share-expires"')[1])
        assert offered == ["3600", "7200"]
    finally:
        sweep.app.config["SHARE_LINK_MAX_AGE"] = limit


# --------------------------------------------------------------------------- live runs


def poll_until(app: Flask, sub: Submission, done, timeout: float = 90) -> None:
    """Run the real poller until ``done([task states])`` holds (at least one cycle)."""
    slurm = slurm_client(app.config)
    deadline = time.monotonic() + timeout
    while True:
        poll_once(slurm)
        db.session.refresh(sub)
        states = [t.state for t in sub.tasks]
        if done(states):
            return
        assert time.monotonic() < deadline, f"tasks still {states}"
        time.sleep(0.5)


def test_running_task_console_follows_the_log_and_cancel_forms(sweep, example_repo):
    """A running array: the console answers only new bytes, the page polls, and cancelling
    selected tasks then the whole submission goes through scancel."""
    app = sweep.app
    slow = write_wrapper(sweep.tmp, "slow.sh", f'OPENLANE_STANDIN_SLEEP=120 exec "{STANDIN}" "$@"')
    fail_wrapper = app.config["FLOW_EXECUTABLE_OVERRIDE"]
    app.config["FLOW_EXECUTABLE_OVERRIDE"] = slow
    try:
        with app.app_context():
            sub = submit(app, example_repo, ["CLOCK_PERIOD=10,20"], name="slow")
            assert sub.state == "QUEUED", sub.error
            poll_until(app, sub, lambda states: states == ["RUNNING", "RUNNING"])
            uuid, run_dir = sub.uuid, Path(sub.run_dir)
            job = sub.job_ids[0]
            db.session.remove()
    finally:
        app.config["FLOW_EXECUTABLE_OVERRIDE"] = fail_wrapper
    client = client_for(app)
    try:
        log = run_dir / "logs" / f"{job}_0.out"
        deadline = time.monotonic() + 60  # RUNNING in sacct can precede the task's first line
        while not (log.is_file() and log.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.5)
        first = client.get(f"/submissions/{uuid}/tasks/0/log?offset=0")
        assert first.status_code == 200 and first.headers["X-Log-Done"] == "0"
        offset = int(first.headers["X-Log-Offset"])
        assert offset == len(first.data) > 0 and first.headers["X-Log-File"] == f"{job}_0.out"
        second = None
        for _ in range(40):  # the stand-in prints a line every second while it "routes"
            second = client.get(f"/submissions/{uuid}/tasks/0/log?offset={offset}")
            if second.data:
                break
            time.sleep(0.5)
        assert second is not None and second.data, "the log did not grow"
        assert int(second.headers["X-Log-Start"]) == offset
        end = int(second.headers["X-Log-Offset"])
        assert log.read_bytes()[:end] == first.data + second.data

        page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
        assert 'hx-trigger="every' in page and 'data-done="0"' in page
        assert 'name="tasks" value="0"' in page and 'name="tasks" value="1"' in page
        token = csrf(page)
        nothing = client.post(
            f"/submissions/{uuid}/cancel",
            data={"csrf_token": token, "scope": "selected"},
            follow_redirects=True,
        )
        assert "Nothing was cancelled: no task was selected" in nothing.get_data(as_text=True)
        one = client.post(
            f"/submissions/{uuid}/cancel",
            data={"csrf_token": token, "scope": "selected", "tasks": "1"},
            follow_redirects=True,
        )
        assert "Cancel requested for task(s) 1." in one.get_data(as_text=True)
        with app.app_context():
            sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
            poll_until(app, sub, lambda states: states[1] == "CANCELLED")
            assert [t.state for t in sub.tasks] == ["RUNNING", "CANCELLED"]
            db.session.remove()
        whole = client.post(
            f"/submissions/{uuid}/cancel", data={"csrf_token": token}, follow_redirects=True
        )
        assert "Cancel requested for the whole submission." in whole.get_data(as_text=True)
    finally:
        with app.app_context():
            sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
            if sub.state not in ("CANCELLED", "COMPLETED", "FAILED", "PARTIAL"):
                svc.cancel(sub, slurm_client(app.config))
            wait_final(app, sub, timeout=90)
            assert sub.state == "CANCELLED"
            db.session.remove()
    done = client.get(f"/submissions/{uuid}/tasks/0/log?offset=0")
    assert done.headers["X-Log-Done"] == "1"


def test_resubmit_failed_tasks_through_the_form(sweep):
    """Last test of the module: it runs task 2 again (it fails again: same wrapper)."""
    client = client_for(sweep.app)
    before = load(sweep.app, sweep.uuid)
    page = client.get(f"/submissions/{sweep.uuid}").get_data(as_text=True)
    answer = client.post(
        f"/submissions/{sweep.uuid}/resubmit",
        data={"csrf_token": csrf(page)},
        follow_redirects=True,
    )
    assert "Resubmitted 1 task(s) as one new array." in answer.get_data(as_text=True)
    after = load(sweep.app, sweep.uuid)
    assert len(after.job_ids) == len(before.job_ids) + 1
    assert after.tasks[2].array_job_id == after.job_ids[-1]
    assert after.tasks[0].array_job_id == before.tasks[0].array_job_id
    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == sweep.uuid))
        wait_final(sweep.app, sub)
        assert sub.state == "PARTIAL" and sub.tasks[2].exit_code == 3
        db.session.remove()
    # the console of task 2 now reads the new attempt's log
    log = client.get(f"/submissions/{sweep.uuid}/tasks/2/log?offset=0&stream=err")
    assert log.headers["X-Log-File"] == f"{after.job_ids[-1]}_2.err"
    assert b"injected failure of task 2" in log.data
