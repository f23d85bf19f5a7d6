"""Submitting from the web and the API: validate, record, then launch off the request thread.

A launch clones the repository and stages every task's config, which can take longer than a
browser should wait. :func:`submit_request` therefore records the submission (state STAGING)
and hands the launch to a background thread with its own app context. If the process dies
mid-launch, the poller relaunches submissions stuck in STAGING/SUBMITTING once their launch claim
expired (:mod:`portal.launchclaims`), and the launch is idempotent by job name, so no array is
submitted twice.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from portal import submissions as svc
from portal.cluster import slurm_client
from portal.extensions import db
from portal.models import Submission, SubmissionState, User

log = logging.getLogger(__name__)


def submit_request(app: Flask, request: svc.SubmissionRequest, owner: User) -> Submission:
    """Plan (raises :class:`~portal.submissions.SubmissionError`), record and start a launch.

    A submission that needs approval is recorded and waits for an admin; nothing is launched.
    """
    slurm = slurm_client(app.config, owner)
    plan = svc.plan_submission(request, app.config, slurm, owner=owner)
    svc.require_cluster(plan)  # Slurm does not answer: refuse now (API 503), record nothing
    submission = svc.create_submission(plan, owner)
    if submission.state == SubmissionState.STAGING:
        start_launch(app, submission)
    return submission


def start_launch(
    app: Flask, submission: Submission, *, background: bool | None = None
) -> threading.Thread | None:
    """Launch ``submission`` in a daemon thread, or now when ``background`` is false (by
    default ``LAUNCH_IN_BACKGROUND``). The launch takes the submission's claim first."""
    if background is None:
        background = bool(app.config.get("LAUNCH_IN_BACKGROUND", True))
    if not background:
        svc.launch(submission, app.config, slurm_client(app.config))
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
