"""Faults of the storage under a run (issue 14's matrix), on the real cluster:

* the run folder's filesystem full (a small tmpfs as RUN_ROOT): at staging, and under tasks;
* a task's folder deleted while the task runs;
* the database (a real PostgreSQL) restarted in the middle of a poll cycle.

Each must end in the right state with a reason a designer can act on, and lose or duplicate
nothing: no second array, exactly one email.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Outbox, Submission, User
from portal.slurm.client import SlurmClient
from portal.track.poller import Poller
from tests.fixtures.postgres import PostgresServer, create_database, throwaway_postgres
from tests.integration.engine_helpers import make_app, wait_final

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def request(repo: str, *points: str) -> svc.SubmissionRequest:
    return svc.SubmissionRequest(
        repo_url=repo,
        design_path="designs/counter",
        cli_sweeps=[f"CLOCK_PERIOD={','.join(points or ('10',))}"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )


def owner() -> User:
    user = db.session.scalar(select(User).where(User.username == "ada"))
    if user is None:
        user = User(username="ada", email="ada@example.org", slurm_account="openlane")
        db.session.add(user)
        db.session.commit()
    return user


def create(app, repo: str, *points: str) -> Submission:  # noqa: ANN001 - a Flask app
    slurm = slurm_client(app.config)
    plan = svc.plan_submission(request(repo, *points), app.config, slurm, owner=owner())
    return svc.create_submission(plan, owner())


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs: room for the staged run, not for much more."""
    mount = tmp_path / "runs-fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(filesystem: Path, leave_bytes: int) -> Path:
    """Write a filler file until only about ``leave_bytes`` are free."""
    filler = filesystem / "filler"
    size = shutil.disk_usage(filesystem).free - leave_bytes
    with filler.open("ab") as handle:
        handle.write(b"\0" * max(size, 0))
    return filler


def test_staging_onto_a_full_filesystem_says_so_and_retries(
    tmp_path, small_filesystem, example_repo
):
    app = make_app(tmp_path, RUN_ROOT=str(small_filesystem / "runs"))
    with app.app_context():
        fill(small_filesystem, 0)
        submission = create(app, example_repo)
        svc.launch(submission, app.config, slurm_client(app.config))
        assert submission.state == "SUBMIT_FAILED" and submission.job_ids == []
        assert "no space left on device" in submission.error.lower(), submission.error
        assert str(small_filesystem) not in submission.error  # no server path for designers
        assert submission.retry_at is not None  # a passing cause: room can be made
        db.session.remove()


def test_tasks_on_a_full_filesystem_fail_with_the_reason(tmp_path, small_filesystem, example_repo):
    app = make_app(tmp_path, RUN_ROOT=str(small_filesystem / "runs"))
    with app.app_context():
        submission = create(app, example_repo, "10", "20")
        svc.launch(submission, app.config, slurm_client(app.config))
        assert submission.state == "QUEUED", submission.error
        fill(small_filesystem, 256 * 1024)  # before the tasks start (Slurm takes a second)
        wait_final(app, submission)
        assert submission.state == "FAILED" and len(submission.job_ids) == 1
        for task in submission.tasks:
            assert task.state == "FAILED" and task.exit_code == 28  # ENOSPC, from the script
            [reason] = task.metrics["errors"]
            assert reason.startswith("no space left on device: the run folder's filesystem has")
            err = Path(submission.run_dir) / "logs" / f"{submission.job_ids[0]}_{task.index}.err"
            assert "no space left on device" in err.read_text()
        db.session.remove()


def test_a_task_folder_deleted_while_it_runs(tmp_path, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "4")  # the run lasts a few seconds
    app = make_app(tmp_path)
    with app.app_context():
        submission = create(app, example_repo)
        svc.launch(submission, app.config, slurm_client(app.config))
        folder = Path(submission.run_dir) / "tasks" / "0"
        deadline = time.monotonic() + 60
        while not (folder / "started").exists():
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.2)
        shutil.rmtree(folder)
        wait_final(app, submission)
        [task] = submission.tasks
        assert submission.state == "FAILED" and task.state == "FAILED" and task.exit_code != 0
        assert task.metrics["errors"][0].startswith("the task's folder tasks/0 was deleted")
        db.session.remove()


class RestartsTheDatabase(SlurmClient):
    """The real client, but PostgreSQL is restarted right after sacct answers: the cycle's
    writes that follow find the connection gone."""

    def __init__(self, inner: SlurmClient, server: PostgresServer) -> None:
        super().__init__(inner.transport, timeout=inner.timeout)
        self.server = server
        self.restarts = 0

    def query(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - SlurmClient.query's
        rows = super().query(*args, **kwargs)
        if len(rows) == 2 and all(row.state == "COMPLETED" for row in rows):
            self.server.pg_ctl("restart")
            self.restarts += 1
        return rows


def test_the_database_restarted_mid_cycle(tmp_path, example_repo):
    with throwaway_postgres() as server:
        url = create_database(server.url, "portal")
        app = make_app(tmp_path, SQLALCHEMY_DATABASE_URI=url)
        with app.app_context():
            submission = create(app, example_repo, "10", "20")
            svc.launch(submission, app.config, slurm_client(app.config))
            slurm = slurm_client(app.config)
            deadline = time.monotonic() + 120
            while [row.state for row in slurm.query(submission.job_ids)] != ["COMPLETED"] * 2:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            uuid = submission.uuid
            db.session.remove()
        poller = Poller(app, RestartsTheDatabase(slurm, server))
        assert poller.run_cycle() is None  # the cycle failed: nothing of it committed
        assert poller.slurm.restarts == 1 and poller.errors == 1
        with app.app_context():
            assert db.session.scalar(select(Submission.state).where(Submission.uuid == uuid)) == (
                "QUEUED"
            )
            db.session.remove()
        poller.slurm, poller.resume_at = slurm, 0.0  # the database is back; skip the backoff
        stats = poller.run_cycle()
        assert stats is not None and stats.tasks_changed == 2 and poller.errors == 0
        poller.run_cycle()  # and once more: nothing left to change, no second email
        with app.app_context():
            submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
            assert submission.state == "COMPLETED"
            assert all(task.metrics for task in submission.tasks)
            assert db.session.scalar(select(func.count(Outbox.id))) == 1
            db.session.remove()
            db.engine.dispose()
