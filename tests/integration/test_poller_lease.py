"""A gunicorn worker that stops gracefully gives the poll lease up (the probe saw a restart
wait about a minute, ``POLL_LEASE_SECONDS``, before anyone polled again): a real gunicorn with
``POLLER_ENABLED`` on loopback, stopped with SIGTERM as a deployment restart does."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from benchmarks.common import gunicorn, make_portal_app, portal_env, portal_settings
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import User, utcnow
from portal.track.poller import poll_once

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def lease_row(database_url: str) -> tuple[str, str] | None:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(
                text("SELECT holder, expires_at > :now FROM leases WHERE name = 'poller'"),
                {"now": utcnow().isoformat(sep=" ")},  # as SQLite stores it
            ).first()
    finally:
        engine.dispose()
    return None if row is None else (row[0], bool(row[1]))


def test_a_graceful_stop_releases_the_poll_lease(tmp_path: Path):
    (tmp_path / "pdks" / "sky130A").mkdir(parents=True)
    settings = portal_settings(
        tmp_path, PDK_ROOT=str(tmp_path / "pdks"), POLLER_ENABLED=True,
        POLL_INTERVAL_SECONDS=1, POLL_LEASE_SECONDS=600,
    )  # fmt: skip
    make_portal_app(settings)  # the schema
    database_url = settings["SQLALCHEMY_DATABASE_URI"]
    env = portal_env(settings, tmp_path / "instance")
    with gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=2) as server:
        deadline = time.monotonic() + 30
        while (row := lease_row(database_url)) is None or not row[1]:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.2)
        holder_pid = int(row[0].rsplit(":", 1)[1])  # "host:pid"
        assert holder_pid != server.process.pid  # a worker holds it, not the master
    # Stopped well inside the 600 s lease: the lease is free for the next process now.
    assert lease_row(database_url) == (row[0], False)


def test_a_cycle_that_lost_its_lease_writes_nothing(engine_app, example_repo):
    """sacct may take up to SLURM_COMMAND_TIMEOUT: if the lease passed to another poller
    meanwhile, this cycle's answer is dropped, and the lease holder's cycle writes it."""
    owner = db.session.scalar(select(User).where(User.username == "ada"))
    request = svc.SubmissionRequest(
        repo_url=example_repo, design_path="designs/counter",
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )  # fmt: skip
    slurm = slurm_client(engine_app.config)
    submission = svc.create_submission(
        svc.plan_submission(request, engine_app.config, slurm, owner=owner), owner
    )
    svc.launch(submission, engine_app.config, slurm)
    [task] = submission.tasks
    deadline = time.monotonic() + 120
    while all(row.state == "PENDING" for row in slurm.query(submission.job_ids)):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    stats = poll_once(slurm, keep_lease=lambda: False)
    db.session.refresh(task)
    assert stats.lease_lost and stats.tasks_changed == 0 and task.state == "PENDING"
    assert poll_once(slurm, keep_lease=lambda: True).tasks_changed == 1
    db.session.refresh(task)
    assert task.state != "PENDING"
