"""One launch at a time (the probe's fault B), on the real cluster with a real git daemon.

The probe's failure: a clone taking 150 s was "found in STAGING" by the poller after 2 minutes
and launched again inside the poll cycle; the relaunch deleted the first launch's clone, the
poller's lease passed to another process while it cloned, and both launches could have called
sbatch. Here a Git host that is slow to answer (a relay holding each connection for seconds)
stands in for the slow clone, and the claim is made short (LAUNCH_CLAIM_SECONDS) so that
several claim lengths pass during one clone.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User, utcnow
from portal.runfolder import RunFolder
from portal.submit.background import HandOver, find_stuck, start_launch
from portal.track.poller import Poller
from tests.fixtures.gitdaemon import slow_relay
from tests.integration.engine_helpers import wait_final

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]

CLAIM_SECONDS = 1.5
CLONE_DELAY = 5.0  # over three claim lengths


def ada() -> User:
    return db.session.scalar(select(User).where(User.username == "ada"))


def create(app, repo_url: str) -> Submission:  # noqa: ANN001 - the app fixture
    request = svc.SubmissionRequest(
        repo_url=repo_url,
        design_path="designs/counter",
        cli_sweeps=["CLOCK_PERIOD=10,20"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )
    plan = svc.plan_submission(request, app.config, slurm_client(app.config), owner=ada())
    return svc.create_submission(plan, ada())


def through(relay_port: int, repo_url: str) -> str:
    """``repo_url`` (git://127.0.0.1:<port>/x.git) served through the relay instead."""
    host, _, path = repo_url.removeprefix("git://").partition("/")
    return f"git://127.0.0.1:{relay_port}/{path}"


def claim_of(submission: Submission) -> tuple[str | None, object]:
    db.session.expire_all()
    row = db.session.execute(
        select(Submission.launch_claim, Submission.launch_claim_until).where(
            Submission.id == submission.id
        )
    ).one()
    return row.launch_claim, row.launch_claim_until


def wait_for_claim(submission: Submission, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token, _until = claim_of(submission)
        if token:
            return token
        time.sleep(0.05)
    raise AssertionError("the launch never claimed its submission")


def arrays_named(app, submission: Submission) -> list[str]:  # noqa: ANN001
    return slurm_client(app.config).find_by_name(
        f"olp-{submission.uuid}", since=submission.created_at - timedelta(minutes=1)
    )


@pytest.fixture
def slow_app(engine_app):  # noqa: ANN001, ANN201 - fixtures
    engine_app.config.update(LAUNCH_CLAIM_SECONDS=CLAIM_SECONDS, LAUNCH_IN_BACKGROUND=True)
    return engine_app


def test_a_slow_clone_keeps_its_claim_and_runs_once(slow_app, git_daemon, example_repo):
    with slow_relay(git_daemon.modern.port, CLONE_DELAY) as port:
        submission = create(slow_app, through(port, example_repo))
        first = start_launch(slow_app, submission)
        token = wait_for_claim(submission)
        time.sleep(2 * CLAIM_SECONDS)  # the clone still waits on the slow host
        held, until = claim_of(submission)
        assert first.is_alive() and held == token
        assert until > utcnow()  # renewed by the heartbeat, two claim lengths on
        # What the probe's poller did at created + 2:01, here with no grace at all:
        assert find_stuck(older_than=timedelta(0)) == []
        assert HandOver(slow_app)() == []
        # A second launch in this process (an admin's retry, a CLI) leaves it alone too.
        db.session.refresh(submission)
        svc.launch(submission, slow_app.config, slurm_client(slow_app.config))
        assert first.is_alive() and claim_of(submission)[0] == token
        first.join(timeout=120)
    db.session.refresh(submission)
    assert submission.state == "QUEUED", submission.error
    assert len(submission.job_ids) == 1 and submission.launch_attempts == 1
    assert arrays_named(slow_app, submission) == submission.job_ids  # ONE array in Slurm
    assert claim_of(submission) == (None, None)  # released when the launch ended
    wait_final(slow_app, submission)
    assert submission.state == "COMPLETED"  # the first launch's clone was never deleted


def test_an_expired_claim_is_relaunched_off_the_poll_cycle(slow_app, git_daemon, example_repo):
    with slow_relay(git_daemon.modern.port, CLONE_DELAY) as port:
        submission = create(slow_app, through(port, example_repo))
        # A launch whose process died: its claim ran out a second ago.
        db.session.execute(
            update(Submission)
            .where(Submission.id == submission.id)
            .values(
                launch_claim="dead-host:1:abc", launch_claim_until=utcnow() - timedelta(seconds=1)
            )
        )
        db.session.commit()
        hand_over = HandOver(slow_app)
        poller = Poller(slow_app, slurm_client(slow_app.config), hand_over=hand_over)
        stats = poller.run_cycle()
        assert stats is not None  # the cycle ended while the relaunch still clones
        relaunch = hand_over.launching[submission.id]
        assert relaunch.is_alive()
        assert poller.run_cycle() is not None and hand_over.launching[submission.id] is relaunch
        relaunch.join(timeout=120)
    db.session.refresh(submission)
    assert submission.state == "QUEUED", submission.error
    assert arrays_named(slow_app, submission) == submission.job_ids and len(submission.job_ids) == 1
    wait_final(slow_app, submission)
    assert submission.state == "COMPLETED"


def test_a_live_claim_of_another_process_is_left_alone(slow_app, example_repo):
    submission = create(slow_app, example_repo)
    db.session.execute(
        update(Submission)
        .where(Submission.id == submission.id)
        .values(
            launch_claim="other-host:2:def",
            launch_claim_until=utcnow() + timedelta(minutes=1),
            updated_at=utcnow() - timedelta(hours=1),
        )  # fmt: skip
    )
    db.session.commit()
    assert find_stuck(older_than=timedelta(0)) == []
    hand_over = HandOver(slow_app)
    poller = Poller(slow_app, slurm_client(slow_app.config), hand_over=hand_over)
    assert poller.run_cycle() is not None and hand_over.launching == {}
    db.session.refresh(submission)
    svc.launch(submission, slow_app.config, slurm_client(slow_app.config))
    assert submission.state == "STAGING" and submission.job_ids == []
    assert not RunFolder.of(submission, slow_app.config).root.exists()  # nothing touched


def test_a_launch_that_lost_its_claim_never_calls_sbatch(slow_app, example_repo):
    """Another process took the claim over while this launch staged (this one was frozen
    past its claim): it stops before sbatch, and the submission stays for the new holder."""
    submission = create(slow_app, example_repo)

    def taken_over(stage: str, _fraction: float | None) -> None:
        if stage == "writing task configs":
            with db.engine.begin() as connection:
                connection.execute(
                    update(Submission)
                    .where(Submission.id == submission.id)
                    .values(launch_claim="new-holder:3:fed")
                )

    svc.launch(submission, slow_app.config, slurm_client(slow_app.config), progress=taken_over)
    db.session.refresh(submission)
    assert submission.state == "STAGING" and submission.job_ids == []
    assert arrays_named(slow_app, submission) == []
    assert claim_of(submission)[0] == "new-holder:3:fed"  # not released by the loser
