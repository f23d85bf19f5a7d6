"""A held array on the real cluster: its tasks carry Slurm's pending reason (JobHeldUser) in the
database, the submission page's task rows and the API's task JSON; polling it costs one sacct
and at most one squeue per cycle (a held array is not in sacct's answer until it may start:
squeue answers for it), an unchanged cycle writes nothing, and the reason goes once the tasks
run (issue 15, point 9)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pytest
from flask import Flask
from sqlalchemy import event, select

from portal import accounts
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User
from portal.slurm.client import SlurmClient, program_name
from portal.slurm.transports import CommandResult, LocalTransport
from portal.track.poller import PollMemory, poll_once
from tests.integration.engine_helpers import make_app
from tests.integration.web_helpers import add_user, login

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


class HoldingTransport(LocalTransport):
    """The portal's local transport; ``sbatch`` gets ``--hold``; commands counted by program."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter[str] = Counter()

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        """Run ``argv`` for real (held, if it is sbatch) and count it."""
        program = program_name(argv)
        self.calls[program] += 1
        if program == "sbatch":
            argv = [argv[0], "--hold", *argv[1:]]
        return super().run(argv, stdin=stdin, timeout=timeout)


def launch(app: Flask, repo: str, slurm: SlurmClient, throttle: int = 0) -> Submission:
    """A 2-task sweep of the example by ada."""
    owner = db.session.scalar(select(User).where(User.username == "ada"))
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        cli_sweeps=["FP_CORE_UTIL=30,40"],
        resources=svc.Resources(time_minutes=10, mem_mb=256, throttle=throttle),
    )
    plan = svc.plan_submission(request, app.config, slurm, owner=owner)
    return svc.launch(svc.create_submission(plan, owner), app.config, slurm)


def tasks_of(uuid: str) -> list[tuple[str, str | None]]:
    """(state, pending reason) of each task, read afresh."""
    db.session.expire_all()
    sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
    return [(t.state, t.pending_reason) for t in sub.tasks]


def test_a_held_array_shows_why_it_waits(tmp_path: Path, example_repo: str) -> None:
    site = make_app(tmp_path, SITE_URL="http://portal.test")
    add_user(site, "ada", slurm_account="openlane")
    transport = HoldingTransport()
    slurm = SlurmClient(transport)
    with site.app_context():
        sub = launch(site, example_repo, slurm)  # held: the transport adds --hold
        assert sub.state == "QUEUED", sub.error
        uuid, (job_id,) = sub.uuid, sub.job_ids
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        token, _ = accounts.create_api_token(owner, "laptop")
    writes: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy event
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            writes.append(statement)

    memory = PollMemory()

    def cycle() -> int:
        """One poll cycle with the memory: its writes; one sacct, at most one squeue."""
        transport.calls.clear()
        writes.clear()
        poll_once(slurm, memory)
        assert transport.calls["sacct"] == 1 and transport.calls["squeue"] <= 1
        return len(writes)

    deadline = time.monotonic() + 60
    try:
        with site.app_context():
            event.listen(db.engine, "before_cursor_execute", seen)
            try:
                while tasks_of(uuid) != [("PENDING", "JobHeldUser")] * 2:
                    assert time.monotonic() < deadline, tasks_of(uuid)
                    cycle()
                    time.sleep(0.5)
                skipped = 0
                while skipped < 2:  # slurmdbd may record the job a moment late: it settles
                    assert time.monotonic() < deadline, "the Slurm answer never settled"
                    skipped = skipped + 1 if cycle() == 0 else 0
                    time.sleep(0.5)
            finally:
                event.remove(db.engine, "before_cursor_execute", seen)

        client = site.test_client()
        login(client, "ada")
        page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
        rows = page.split('class="task-row')[1:]
        assert len(rows) == 2 and all(
            '<span class="muted pending-reason" title="Why Slurm keeps this task waiting">'
            "JobHeldUser</span>" in row
            for row in rows
        )
        api = site.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        tasks = api.get(f"/api/v1/submissions/{uuid}/tasks", headers=auth).get_json()
        doc = api.get("/api/v1/openapi.json").get_json()
        schema = {"$ref": "#/components/schemas/TaskPage", "components": doc["components"]}
        jsonschema.Draft202012Validator(schema).validate(tasks)
        assert [t["pending_reason"] for t in tasks["items"]] == ["JobHeldUser"] * 2

        subprocess.run(["scontrol", "release", job_id], check=True)
        with site.app_context():
            while [state for state, _ in tasks_of(uuid)] != ["COMPLETED"] * 2:
                assert time.monotonic() < deadline + 120, tasks_of(uuid)
                cycle()
                time.sleep(0.5)
            assert tasks_of(uuid) == [("COMPLETED", None)] * 2
        page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
        assert "task-row" in page and "pending-reason" not in page
    finally:
        subprocess.run(["scancel", job_id], check=False)


def test_a_throttled_array_s_waiting_task_says_why(
    tmp_path: Path, example_repo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sacct lists the eligible waiting task (Reason None); squeue says why it waits."""
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "60")
    site = make_app(tmp_path)
    add_user(site, "ada", slurm_account="openlane")
    slurm = slurm_client(site.config)
    with site.app_context():
        sub = launch(site, example_repo, slurm, throttle=1)
        assert sub.state == "QUEUED", sub.error
        uuid, (job_id,) = sub.uuid, sub.job_ids
        try:
            deadline = time.monotonic() + 90
            while tasks_of(uuid) != [("RUNNING", None), ("PENDING", "JobArrayTaskLimit")]:
                assert time.monotonic() < deadline, tasks_of(uuid)
                poll_once(slurm)
                time.sleep(0.5)
            waiting = slurm.query([job_id])
            assert {(row.task_index, row.reason) for row in waiting if row.state == "PENDING"} == {
                (1, "JobArrayTaskLimit")
            }
        finally:
            subprocess.run(["scancel", job_id], check=False)
