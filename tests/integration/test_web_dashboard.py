"""The dashboard through the real Flask test client on a real SQLite database (CSRF on).

Submissions and tasks are written straight into the database in the states the poller would
leave them in; the end-to-end path (form -> cluster -> COMPLETED on the dashboard) is in
test_web_submit.py.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import event

from portal.extensions import db
from portal.models import Submission, Task, utcnow
from tests.integration.web_helpers import add_user, login

ROW_RE = re.compile(r'<tr id="submission-([0-9a-f-]{36})" class="dash-row"(.*?)>', re.S)


def make_submission(app, owner_id, name, state="COMPLETED", tasks=(), *, repo=None, age=0):
    """A submission with one task per state in ``tasks``; returns its uuid."""
    with app.app_context():
        submission = Submission(
            owner_id=owner_id,
            name=name,
            repo_url=repo or f"https://git.example.org/{name.replace(' ', '-')}.git",
            ref="main",
            flow="openlane1",
            state=state,
            n_tasks=len(tasks),
            created_at=utcnow() - timedelta(minutes=age),
        )
        submission.tasks = [Task(index=i, state=s) for i, s in enumerate(tasks)]
        db.session.add(submission)
        db.session.commit()
        return submission.uuid


def rows_of(html: str) -> dict[str, dict[str, str]]:
    """uuid -> the row's data- attributes, in page order."""
    out = {}
    for uuid, attrs in ROW_RE.findall(html):
        out[uuid] = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', attrs))
    return out


@pytest.fixture
def people(app):
    return {
        "ada": add_user(app, "ada"),
        "bob": add_user(app, "bob"),
        "boss": add_user(app, "boss", role="admin"),
    }


def client_for(app, name):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


# --------------------------------------------------------------------------- visibility


def test_users_see_only_their_own_submissions_admins_see_all(app, people):
    ada = make_submission(app, people["ada"], "ada sweep")
    bob = make_submission(app, people["bob"], "bob sweep")

    html = client_for(app, "ada").get("/").get_data(as_text=True)
    assert list(rows_of(html)) == [ada]
    assert "bob sweep" not in html and bob not in html
    assert f'href="/submissions/{ada}"' in html
    assert '<th scope="col">Owner</th>' not in html

    boss = client_for(app, "boss")
    html = boss.get("/").get_data(as_text=True)
    assert set(rows_of(html)) == {ada, bob}
    assert '<th scope="col">Owner</th>' in html
    assert re.search(r'<td class="dash-owner">bob</td>', html)
    assert 'name="mine"' in html  # the admin's "mine only" filter

    mine = boss.get("/?mine=1").get_data(as_text=True)
    assert rows_of(mine) == {}
    own = make_submission(app, people["boss"], "boss sweep")
    assert list(rows_of(boss.get("/?mine=1").get_data(as_text=True))) == [own]
    # the partial honours the same rule
    partial = client_for(app, "bob").get("/dashboard/rows").get_data(as_text=True)
    assert list(rows_of(partial)) == [bob]


def test_anonymous_visitors_are_sent_to_sign_in(app):
    client = app.test_client()
    response = client.get("/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    partial = client.get("/dashboard/rows", headers={"HX-Request": "true"})
    assert partial.status_code == 401 and "/auth/login" in partial.headers["HX-Redirect"]


# --------------------------------------------------------------------------- filters and pages


def test_state_and_text_filters(app, people):
    uid = people["ada"]
    done = make_submission(app, uid, "adder done", "COMPLETED", ["COMPLETED"])
    running = make_submission(app, uid, "adder running", "RUNNING", ["RUNNING"])
    failed = make_submission(app, uid, "mult failed", "FAILED", ["FAILED"], repo="https://h/zz.git")
    waiting = make_submission(app, uid, "100% util", "AWAITING_APPROVAL", ["PENDING"])
    client = client_for(app, "ada")

    def shown(query):
        return set(rows_of(client.get(f"/?{query}").get_data(as_text=True)))

    assert shown("") == {done, running, failed, waiting}
    assert shown("state=COMPLETED") == {done}
    assert shown("state=active") == {running, waiting}
    assert shown("state=finished") == {done, failed}
    assert shown("q=ADDER") == {done, running}  # case-insensitive, on the name
    assert shown("q=zz.git") == {failed}  # on the repository URL
    assert shown("q=100%25") == {waiting}  # '%' is a literal, not a wildcard
    assert shown("q=1%25l") == set()  # would match "100% util" as a LIKE wildcard
    assert shown("q=adder&state=RUNNING") == {running}
    assert shown("state=NOT_A_STATE") == {done, running, failed, waiting}  # ignored

    empty = client.get("/?q=nothing-like-this").get_data(as_text=True)
    assert "No submissions match these filters." in empty
    html = client.get("/?state=RUNNING&q=adder").get_data(as_text=True)
    assert '<option value="RUNNING" selected>' in html and 'value="adder"' in html


def test_pagination_in_sql_newest_first(app, people):
    uuids = [make_submission(app, people["ada"], f"s{i:02d}", age=100 - i) for i in range(30)]
    newest_first = uuids[::-1]
    client = client_for(app, "ada")

    first = client.get("/").get_data(as_text=True)
    assert list(rows_of(first)) == newest_first[:25]
    assert "30 submissions · page 1 of 2" in first
    assert 'href="/?page=2"' in first and 'rel="prev"' not in first

    second = client.get("/?page=2").get_data(as_text=True)
    assert list(rows_of(second)) == newest_first[25:]
    assert 'rel="prev" href="/"' in second and 'rel="next"' not in second

    beyond = client.get("/?page=99").get_data(as_text=True)
    assert list(rows_of(beyond)) == newest_first[25:]  # clamped to the last page

    small = client.get("/?per_page=10&page=3&q=s").get_data(as_text=True)
    assert list(rows_of(small)) == newest_first[20:30]
    assert 'href="/?q=s&amp;page=2&amp;per_page=10"' in small  # filters kept in the pager


# --------------------------------------------------------------------------- progress


def test_progress_counts_from_task_states(app, people):
    tasks = ["COMPLETED"] * 3 + ["RUNNING", "COMPLETING"] + ["PENDING"] * 2
    tasks += ["FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED"]
    mixed = make_submission(app, people["ada"], "mixed", "RUNNING", tasks)
    fresh = make_submission(app, people["ada"], "fresh", "STAGING", [])
    html = client_for(app, "ada").get("/").get_data(as_text=True)
    rows = rows_of(html)
    assert rows[mixed] == {
        "uuid": mixed,
        "state": "RUNNING",
        "done": "3",
        "running": "2",
        "pending": "2",
        "failed": "3",
        "cancelled": "1",
        "total": "11",
    }
    assert rows[fresh]["total"] == "0" and rows[fresh]["pending"] == "0"
    assert 'aria-label="3 done, 2 running, 2 pending, 3 failed, 1 cancelled of 11"' in html
    # bar segments are SVG attributes (no style=""; the CSP forbids inline styles)
    done_width = round(100 * 3 / 11, 3)
    assert f'class="seg seg-done" x="0.0" y="0" width="{done_width}"' in html
    assert "style=" not in html


def test_one_query_for_all_progress_bars(app, people):
    """The list costs the same number of statements for 2 rows as for 25 (no N+1)."""
    for i in range(2):
        make_submission(app, people["ada"], f"a{i}", "RUNNING", ["COMPLETED", "PENDING"])
    client = client_for(app, "ada")

    def statements(url):
        seen = []
        with app.app_context():
            engine = db.engine

        def count(conn, cursor, statement, *args):
            seen.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return seen

    few = statements("/dashboard/rows")
    for i in range(30):
        make_submission(app, people["ada"], f"b{i}", "RUNNING", ["COMPLETED", "RUNNING", "FAILED"])
    many = statements("/dashboard/rows")
    assert len(few) == len(many)
    assert sum("FROM tasks" in s for s in many) == 1
    assert sum("GROUP BY tasks.submission_id" in s for s in many) == 1


# --------------------------------------------------------------------------- live updates


def test_rows_partial_polls_only_while_something_can_change(app, people):
    uid = people["ada"]
    make_submission(app, uid, "done", "COMPLETED", ["COMPLETED"])
    client = client_for(app, "ada")

    partial = client.get("/dashboard/rows?state=finished", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert partial.status_code == 200
    assert "<html" not in body
    assert 'id="submission-list"' in body and 'data-polling="off"' in body
    assert "hx-trigger" not in body

    make_submission(app, uid, "still running", "RUNNING", ["RUNNING"])
    page = client.get("/?q=r").get_data(as_text=True)
    assert 'data-polling="on"' in page
    assert 'hx-get="/dashboard/rows?q=r" hx-trigger="every 5s" hx-swap="outerHTML"' in page
    body = client.get("/dashboard/rows?q=r").get_data(as_text=True)
    assert 'hx-trigger="every 5s"' in body

    # a final row alone on the page stops the polling even if others elsewhere run
    assert "hx-trigger" not in client.get("/dashboard/rows?state=COMPLETED").get_data(as_text=True)


def test_filter_changes_keep_the_address_bar_in_step(app, people):
    make_submission(app, people["ada"], "x")
    client = client_for(app, "ada")
    answer = client.get(
        "/dashboard/rows?state=COMPLETED&q=x",
        headers={"HX-Request": "true", "HX-Trigger": "dashboard-filters"},
    )
    assert answer.headers["HX-Replace-Url"] == "/?state=COMPLETED&q=x"
    poll = client.get("/dashboard/rows?state=COMPLETED", headers={"HX-Request": "true"})
    assert "HX-Replace-Url" not in poll.headers  # the poll does not touch the URL


# --------------------------------------------------------------------------- safety and empty


def test_names_and_urls_are_escaped(app, people):
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    make_submission(app, people["ada"], evil, repo='https://h/"><svg onload=alert(1)>.git')
    client = client_for(app, "ada")
    for url in ("/", "/dashboard/rows", "/?q=%3Cscript%3E"):
        html = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "<svg onload" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    search = client.get("/?q=%22%3E%3Cb%3Ebold").get_data(as_text=True)
    assert '"><b>bold' not in search and "&#34;&gt;&lt;b&gt;bold" in search


def test_empty_state_invites_a_first_submission(app, people):
    html = client_for(app, "ada").get("/").get_data(as_text=True)
    assert "No submissions yet" in html
    assert 'href="/submissions/new"' in html and "Submit your first sweep" in html
    assert 'data-polling="off"' in html
