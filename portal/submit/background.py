"""Submitting from the web and the API: validate, record, then launch off the request thread.

A launch clones the repository and stages every task's config, which can take longer than a
browser should wait. :func:`submit_request` therefore records the submission (state STAGING)
and hands the launch to a background thread with its own app context. If the process dies
mid-launch, the poller relaunches submissions stuck in STAGING/SUBMITTING once their launch claim
expired (:mod:`portal.submit.claims`), and the launch is idempotent by job name, so no array is
submitted twice. :class:`HandOver` is what the poller runs for that each cycle: the poller is
given it (``Poller(..., hand_over=HandOver(app))``) and never imports this module.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.cluster.overview import page_client
from portal.config import settings_of
from portal.extensions import db
from portal.models import Submission, SubmissionState, User
from portal.slurm.client import SlurmClient
from portal.submit import claims
from portal.submit.plan import Progress

log = logging.getLogger(__name__)

STUCK_AFTER = timedelta(minutes=2)


def submit_request(
    app: Flask,
    request: svc.SubmissionRequest,
    owner: User,
    *,
    background: bool | None = None,
    progress: Progress | None = None,
    cached: bool = True,
) -> Submission:
    """Plan (raises :class:`~portal.submit.SubmissionError`), record and start a launch: the
    one way the form, the API and the CLI submit.

    A submission that needs approval is recorded and waits for an admin; nothing is launched.
    A plan made while Slurm does not answer raises its Slurm error and records nothing.
    ``cached`` plans with the pages' cached ``sinfo`` (:func:`planning_client`: a request
    thread waits 3 s at most, and a silent controller costs one request per 10 s that wait);
    the CLI asks Slurm itself. ``background`` and ``progress`` as for :func:`start_launch`
    (the CLI launches in the foreground and prints the progress).
    """
    slurm = planning_client(app, owner) if cached else slurm_client(app.config, owner)
    plan = svc.plan_submission(request, app.config, slurm, owner=owner)
    svc.require_cluster(plan)  # Slurm does not answer: refuse now (API 503), record nothing
    submission = svc.create_submission(plan, owner)
    if submission.state == SubmissionState.STAGING:
        start_launch(app, submission, background=background, progress=progress)
    return submission


def planning_client(app: Flask, owner: User) -> SlurmClient:
    """The client a request thread plans with: the pages' (short timeouts, ``sinfo`` shared
    and kept 30 s, an error 10 s; :func:`portal.cluster.overview.page_client`), once the owner
    is known to have the Unix account jobs run as (raises
    :class:`~portal.cluster.connect.RunAsError` otherwise)."""
    slurm_client(app.config, owner)
    return page_client(app.config)


def start_launch(
    app: Flask,
    submission: Submission,
    *,
    background: bool | None = None,
    progress: Progress | None = None,
) -> threading.Thread | None:
    """Launch ``submission`` in a daemon thread, or now when ``background`` is false (by
    default ``LAUNCH_IN_BACKGROUND``), telling ``progress`` how staging goes. The launch takes
    the submission's claim first."""
    if background is None:
        background = settings_of(app).LAUNCH_IN_BACKGROUND
    if not background:
        svc.launch(submission, app.config, slurm_client(app.config), progress)
        return None
    thread = threading.Thread(
        target=_launch_by_id,
        args=(app, submission.id),
        name=f"launch-{submission.uuid}",
        daemon=True,
    )
    thread.start()
    return thread


def _launch_by_id(app: Flask, submission_id: int) -> None:
    with app.app_context():
        try:
            submission = db.session.get(Submission, submission_id)
            if submission is None:
                return
            # The service client: launch itself switches to the owner's Unix account when
            # SLURM_RUN_AS is 'user', and turns a missing account into SUBMIT_FAILED.
            svc.launch(submission, app.config, slurm_client(app.config))
        except Exception:  # a background thread has nobody else to tell
            log.exception("launch of submission %s failed", submission_id)
        finally:
            db.session.remove()


def find_stuck(older_than: timedelta = STUCK_AFTER) -> list[Submission]:
    """Submissions left in STAGING/SUBMITTING by a process that died mid-launch: their launch
    claim expired, or no launch claimed them within ``older_than``."""
    return list(
        db.session.scalars(
            select(Submission).where(
                Submission.state.in_([SubmissionState.STAGING, SubmissionState.SUBMITTING]),
                claims.abandoned(older_than),
            )
        )
    )


class HandOver:
    """The poller's hand-over of launches, called first in each cycle that holds the lease.

    Starts a launch for each submission a dead process left mid-launch (its claim expired) and
    each retry that is due: in launcher threads, never inside the cycle; each launch takes the
    submission's claim first, so none runs twice. ``launching`` keeps the threads still alive.
    """

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.launching: dict[int, threading.Thread] = {}

    def __call__(self) -> list[threading.Thread]:
        """Start the due launches (in the current app context); returns the new threads."""
        self.launching = {sid: t for sid, t in self.launching.items() if t.is_alive()}
        threads = []
        for submission in [*find_stuck(), *svc.due_retries()]:
            if submission.id in self.launching:
                continue
            if submission.state == SubmissionState.SUBMIT_FAILED:
                log.info("launching submission %s again (attempt %d)", submission.uuid,
                         (submission.launch_attempts or 0) + 1)  # fmt: skip
            else:
                log.warning("relaunching submission %s left in %s (its launch claim expired)",
                            submission.uuid, submission.state)  # fmt: skip
            thread = start_launch(self.app, submission, background=True)
            if thread is not None:
                self.launching[submission.id] = thread
                threads.append(thread)
        return threads
