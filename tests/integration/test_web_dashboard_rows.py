"""Two sweeps with the same name are told apart on the dashboard: each row shows its Slurm job
id(s), when it was submitted and its ref (issue 15, point 9)."""

from __future__ import annotations

import re
from datetime import datetime

from portal.extensions import db
from portal.models import Submission
from tests.integration.web_helpers import add_user, login


def add(app, owner_id: int, ref: str, job_ids: list[str], submitted: datetime | None) -> str:
    with app.app_context():
        submission = Submission(
            owner_id=owner_id,
            name="counter (4 points)",
            repo_url="https://git.example.org/ada/counter.git",
            ref=ref,
            flow="librelane",
            state="COMPLETED" if submitted else "AWAITING_APPROVAL",
            n_tasks=4,
            job_ids=job_ids,
            created_at=datetime(2026, 12, 8, 9, 0),
            submitted_at=submitted,
        )
        db.session.add(submission)
        db.session.commit()
        return submission.uuid


def row_html(html: str, uuid: str) -> str:
    match = re.search(rf'<tr id="submission-{uuid}".*?</tr>', html, re.S)
    assert match, uuid
    return match.group(0)


def test_rows_of_same_named_sweeps_show_job_submitted_time_and_ref(app):
    ada = add_user(app, "ada")
    first = add(app, ada, "main", ["3101"], datetime(2026, 12, 8, 9, 15))
    second = add(app, ada, "v2-fast", ["3140", "3162"], datetime(2026, 12, 8, 10, 42))
    waiting = add(app, ada, "main", [], None)
    client = app.test_client()
    login(client, "ada")
    for url in ("/", "/dashboard/rows"):
        html = client.get(url).get_data(as_text=True)
        assert '<th scope="col" class="nowrap">Slurm job</th>' in html
        assert '<th scope="col" class="nowrap">Submitted (UTC)</th>' in html
        one, two = row_html(html, first), row_html(html, second)
        assert '<span class="nowrap">3101</span>' in one and "3140" not in one
        assert '<span class="nowrap">3140</span>, <span class="nowrap">3162</span>' in two
        assert '<td class="nowrap dash-submitted">2026-12-08 09:15</td>' in one
        assert '<td class="nowrap dash-submitted">2026-12-08 10:42</td>' in two
        assert '<td class="mono dash-ref" title="main">main</td>' in one
        assert '<td class="mono dash-ref" title="v2-fast">v2-fast</td>' in two
        queued = row_html(html, waiting)
        assert '<td class="mono dash-jobs"><span class="muted">—</span></td>' in queued
        assert "created 2026-12-08 09:00" in queued
