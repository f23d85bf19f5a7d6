"""SUBMIT_FAILED is no dead end (the probe's fault C), on the real cluster:

* Slurm that does not answer at submit time: the API answers 503 ``slurm_unavailable`` and
  nothing is recorded;
* a launch that fails for a passing cause (the controller or login node unreachable) waits and
  is retried by the poller with backoff, visible as such, and then runs as ONE array;
* a final failure emails the owner, and "Retry" (API, page, CLI) launches the same submission.

The unreachable Slurm is an ssh transport to a closed loopback port: the same TransportError a
login node that is down gives, without stopping the cluster the other tests use.
"""

from __future__ import annotations

import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal import accounts
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Outbox, Submission, User, utcnow
from portal.slurm.client import SlurmClient
from portal.slurm.transports import SSHTransport, TransportError
from portal.submit.background import HandOver
from tests.fixtures.gitdaemon import closed_port, stalled_server
from tests.integration.engine_helpers import wait_final
from tests.integration.web_helpers import slurm_at

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def ada() -> User:
    return db.session.scalar(select(User).where(User.username == "ada"))


def request(repo: str) -> svc.SubmissionRequest:
    return svc.SubmissionRequest(
        repo_url=repo,
        design_path="designs/counter",
        cli_sweeps=["CLOCK_PERIOD=10,20"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )


def unreachable_client(port: int) -> SlurmClient:
    return SlurmClient(SSHTransport(host="127.0.0.1", port=port, user="nobody"), timeout=5)


def test_passing_causes_are_told_from_refusals():
    refused = TransportError("cannot connect to 127.0.0.1:1: Connection refused")
    assert svc.is_passing(refused)
    assert svc.retry_delay(1, {"LAUNCH_RETRY_BASE_SECONDS": 30, "LAUNCH_MAX_ATTEMPTS": 6}) == 30
    assert svc.retry_delay(3, {"LAUNCH_RETRY_BASE_SECONDS": 30, "LAUNCH_MAX_ATTEMPTS": 6}) == 120
    assert svc.retry_delay(6, {"LAUNCH_RETRY_BASE_SECONDS": 30, "LAUNCH_MAX_ATTEMPTS": 6}) is None
    assert not svc.is_passing(svc.SubmissionError("unknown partition 'x'"))


def test_a_passing_failure_is_retried_by_the_poller_as_one_array(engine_app, example_repo):
    plan = svc.plan_submission(
        request(example_repo), engine_app.config, slurm_client(engine_app.config), owner=ada()
    )
    submission = svc.create_submission(plan, ada())
    with closed_port() as port:
        svc.launch(submission, engine_app.config, unreachable_client(port))
    assert submission.state == "SUBMIT_FAILED" and not submission.job_ids
    assert submission.retry_at is not None and submission.launch_attempts == 1
    assert "tries again at" in submission.error and "attempt 2 of 6" in submission.error
    assert db.session.scalar(select(func.count(Outbox.id))) == 0  # not final: no email yet
    assert svc.due_retries() == []  # not due before its time
    submission.retry_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    for thread in HandOver(engine_app)():  # what the poller runs first in each cycle
        thread.join(timeout=120)
    db.session.refresh(submission)
    assert submission.state == "QUEUED" and len(submission.job_ids) == 1
    assert submission.retry_at is None and submission.launch_attempts == 2
    wait_final(engine_app, submission)
    assert submission.state == "COMPLETED"


def test_a_final_failure_emails_the_owner_and_retry_launches_it(engine_app, example_repo):
    engine_app.config.update(LAUNCH_MAX_ATTEMPTS=1, LAUNCH_IN_BACKGROUND=False)
    plan = svc.plan_submission(
        request(example_repo), engine_app.config, slurm_client(engine_app.config), owner=ada()
    )
    submission = svc.create_submission(plan, ada())
    with closed_port() as port:
        svc.launch(submission, engine_app.config, unreachable_client(port))
    assert submission.state == "SUBMIT_FAILED" and submission.retry_at is None
    [mail] = db.session.scalars(select(Outbox)).all()
    assert mail.recipient == "ada@example.org"
    assert mail.subject.startswith("[OpenLane Portal] SUBMIT_FAILED")
    assert "portal retry" in mail.body_text and submission.uuid in mail.body_text
    token, _ = accounts.create_api_token(ada(), "retry")
    client = engine_app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.post(f"/api/v1/submissions/{submission.uuid}/retry", headers=headers)
    assert answer.status_code == 202, answer.get_json()
    db.session.refresh(submission)
    assert submission.state == "QUEUED" and len(submission.job_ids) == 1
    again = client.post(f"/api/v1/submissions/{submission.uuid}/retry", headers=headers)
    assert again.status_code == 409  # only a SUBMIT_FAILED submission can be retried
    wait_final(engine_app, submission)
    assert submission.state == "COMPLETED"


def test_slurm_down_at_submit_is_503_and_records_nothing(engine_app, example_repo):
    token, _ = accounts.create_api_token(ada(), "down")
    with closed_port() as port:
        engine_app.config.update(slurm_at(port))
        answer = engine_app.test_client().post(
            "/api/v1/submissions",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "repo_url": example_repo,
                "design_path": "designs/counter",
                "resources": {"time_minutes": 10, "mem_mb": 256},
            },
        )
    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "slurm_unavailable"
    assert db.session.scalar(select(func.count(Submission.id))) == 0


def test_a_silent_controller_holds_one_api_submit_3_s_and_the_next_none(engine_app, example_repo):
    """Planning on a request thread uses the pages' cached sinfo: the first submit waits for a
    controller that accepts and never answers at most 3 s, the next one (within 10 s) answers
    503 at once, and Slurm was asked once."""
    token, _ = accounts.create_api_token(ada(), "silent")
    held: list[socket.socket] = []
    body = {
        "repo_url": example_repo,
        "design_path": "designs/counter",
        "resources": {"time_minutes": 10, "mem_mb": 256},
    }
    with stalled_server(held) as port:
        engine_app.config.update(slurm_at(port))
        client = engine_app.test_client()
        waits = []
        for _ in range(2):
            started = time.monotonic()
            answer = client.post(
                "/api/v1/submissions", headers={"Authorization": f"Bearer {token}"}, json=body
            )
            waits.append(time.monotonic() - started)
            assert answer.status_code == 503, answer.get_json()
            assert answer.get_json()["error"]["code"] == "slurm_unavailable"
        assert len(held) == 1  # one sinfo went to the controller
    assert waits[0] < 5 and waits[1] < 1, waits
    assert db.session.scalar(select(func.count(Submission.id))) == 0


def test_a_designers_error_text_names_no_server_path(engine_app, example_repo):
    """A design folder that is not in the repository: the reason names the folder inside the
    checkout, not where the run lives on the server."""
    wrong = svc.SubmissionRequest(
        repo_url=example_repo,
        design_path="designs/no-such-design",
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )
    slurm = slurm_client(engine_app.config)
    submission = svc.create_submission(
        svc.plan_submission(wrong, engine_app.config, slurm, owner=ada()), ada()
    )
    svc.launch(submission, engine_app.config, slurm)
    assert submission.state == "SUBMIT_FAILED"
    assert "design/designs/no-such-design" in submission.error
    assert str(engine_app.config["RUN_ROOT"]) not in submission.error
    assert submission.uuid not in submission.error
    assert svc.without_server_paths("/r/u/design/x and /r/other", "/r/u", "/r") == (
        "design/x and other"
    )
