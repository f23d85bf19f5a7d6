"""A sweep that ended with some tasks completed and some cancelled is PARTIAL, and the page, the
API and the email all say so (issue 15, point 7: it used to read "Cancelled")."""

from __future__ import annotations

from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.models import Outbox, Submission, Task, User
from portal.track.rollup import update_submission_states
from tests.integration.web_helpers import add_user, login


def test_two_completed_and_one_cancelled_read_partial_everywhere(app):
    add_user(app, "ada")
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        token, _ = accounts.create_api_token(owner, "laptop")
        submission = Submission(
            owner=owner,
            name="counter",
            repo_url="https://example.org/chip.git",
            ref="main",
            flow="openlane1",
            state="RUNNING",
            n_tasks=3,
            job_ids=["41"],
        )
        submission.tasks = [
            Task(index=i, state=state, array_job_id="41", array_index=i)
            for i, state in enumerate(["COMPLETED", "COMPLETED", "RUNNING"])
        ]
        db.session.add(submission)
        db.session.commit()
        submission.tasks[2].state = "CANCELLED"  # what the poller writes after the scancel
        assert update_submission_states({submission.id}) == 1
        db.session.commit()
        uuid = submission.uuid
        assert submission.state == "PARTIAL"
        subject = db.session.scalar(select(Outbox.subject))
        body = db.session.scalar(select(Outbox.body_text))
    assert subject.startswith("[OpenLane Portal] PARTIAL: counter (2 of 3 tasks completed)")
    assert "State:       PARTIAL, 2 of 3 tasks completed" in body

    client = app.test_client()
    login(client, "ada")
    page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    assert '<span class="chip chip-partial">partial</span>' in page
    assert "chip-cancelled" not in page.split('id="submission-state"')[1].split("</div>")[0]
    dashboard = client.get("/").get_data(as_text=True)
    assert 'data-state="PARTIAL"' in dashboard and ">partial</span>" in dashboard

    api = app.test_client().get(
        f"/api/v1/submissions/{uuid}", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.get_json()["submission"]["state"] == "PARTIAL"
