"""Fault A on the real cluster: the node set DOWN under a running task (the probe's
`scontrol update nodename=<node> state=down`). Slurm ends the attempt as NODE_FAIL and requeues
the task; the portal must keep following it (no FAILED, no email, no resubmit offer) until the
requeued attempt, started once the node is back, completes: one array, one email, COMPLETED.

The cluster has one node, so while it is down nothing else runs; the test always resumes it.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import FINAL_STATES, Outbox, User
from portal.track.poller import poll_once
from tests.integration.engine_helpers import wait_final

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def scontrol_node(node: str, state: str) -> None:
    argv = ["scontrol", "update", f"nodename={node}", f"state={state}"]
    if state == "down":
        argv.append("reason=olp-node-fail-test")
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


def node_state(node: str) -> str:
    return subprocess.run(
        ["sinfo", "-h", "-n", node, "-o", "%t"], check=True, capture_output=True, text=True
    ).stdout.strip()


def the_node() -> str:
    nodes = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%N"], check=True, capture_output=True, text=True
    ).stdout.split()
    return sorted(set(nodes))[0]


def sacct_attempts(job_id: str) -> list[str]:
    """Every attempt sacct keeps of the array's task 0 (``-D``: duplicates, i.e. requeues)."""
    out = subprocess.run(
        ["sacct", "-D", "-n", "-X", "-P", "-j", f"{job_id}_0", "-o", "State"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_a_node_set_down_under_a_running_task_is_followed_to_the_requeued_end(
    engine_app, example_repo, monkeypatch
):
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "15")  # long enough to be caught running
    owner = db.session.scalar(select(User).where(User.username == "ada"))
    slurm = slurm_client(engine_app.config)
    request = svc.SubmissionRequest(
        repo_url=example_repo, design_path="designs/counter",
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )  # fmt: skip
    submission = svc.create_submission(
        svc.plan_submission(request, engine_app.config, slurm, owner=owner), owner
    )
    svc.launch(submission, engine_app.config, slurm)
    [task] = submission.tasks
    deadline = time.monotonic() + 120
    while task.state != "RUNNING":
        assert time.monotonic() < deadline, f"the task never ran ({task.state})"
        poll_once(slurm)
        db.session.refresh(task)
        time.sleep(0.5)
    node = the_node()
    scontrol_node(node, "down")
    try:
        deadline = time.monotonic() + 60
        while "NODE_FAIL" not in sacct_attempts(submission.job_ids[0]):
            assert time.monotonic() < deadline, "Slurm never ended the attempt as NODE_FAIL"
            time.sleep(1)
        for _ in range(3):  # the portal looks while the node is down and the task requeued
            poll_once(slurm)
            db.session.refresh(submission)
            db.session.refresh(task)
            assert submission.state not in FINAL_STATES, (submission.state, task.state)
            assert task.state not in ("NODE_FAIL", "FAILED"), task.state
            time.sleep(1)
        assert db.session.scalar(select(func.count(Outbox.id))) == 0  # no "failed" email
    finally:
        if node_state(node).startswith("down"):  # (slurmd may have brought it back itself)
            scontrol_node(node, "resume")
    # Slurm holds a requeued job back (its BeginTime) for a couple of minutes; the admin's way
    # to let it start at once changes nothing the portal sees, and saves the test that wait.
    subprocess.run(
        ["scontrol", "update", f"jobid={submission.job_ids[0]}_0", "StartTime=now"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    wait_final(engine_app, submission, timeout=400)
    assert submission.state == "COMPLETED" and task.state == "COMPLETED"
    assert len(submission.job_ids) == 1 and task.metrics  # the requeued attempt's reports
    attempts = sacct_attempts(submission.job_ids[0])
    assert attempts[0] == "NODE_FAIL" or "NODE_FAIL" in attempts, attempts
    assert attempts[-1] == "COMPLETED", attempts
    [mail] = db.session.scalars(select(Outbox)).all()
    assert "COMPLETED" in mail.subject
