"""What happens to a recorded submission after it was asked for: an admin approves or
rejects it, its owner cancels it or resubmits its failed tasks as one new array.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import update

from portal.cluster.connect import client_for_owner
from portal.config import SettingsLike, as_settings
from portal.errors import SubmissionError
from portal.extensions import db
from portal.mail.outbox import queue_decision_mail
from portal.models import Submission, SubmissionState, User, audit, utcnow
from portal.runfolder import RunFolder
from portal.slurm.client import SlurmClient
from portal.slurm.states import PENDING, is_terminal
from portal.submit.launch import launch, require_state, share_with_job_user, submit_arrays
from portal.submit.plan import check_job_room
from portal.submit.script import render_for, write_scripts
from portal.track.rollup import update_submission_states

log = logging.getLogger(__name__)


def record_approval(submission: Submission, admin: User) -> Submission:
    """An admin lets a waiting submission run: state STAGING, decider, audit entry and the
    decision email in one commit. Nothing is launched here (see :func:`approve`).

    The state change is one conditional UPDATE, so of two admins approving at once exactly
    one wins; the other gets :class:`SubmissionError` and nothing changes.
    """
    claimed = db.session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.state == SubmissionState.AWAITING_APPROVAL,
        )
        .values(state=SubmissionState.STAGING, decided_by_id=admin.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(submission)
        raise SubmissionError(
            f"submission is {submission.state}, not {SubmissionState.AWAITING_APPROVAL}: "
            "it was decided meanwhile"
        )
    db.session.refresh(submission)
    audit("submission.approve", actor=admin, submission=submission)
    queue_decision_mail(submission, approved=True)
    db.session.commit()
    return submission


def approve(
    submission: Submission, admin: User, settings: SettingsLike, slurm: SlurmClient
) -> Submission:
    """An admin lets a waiting submission run, and it is launched at once (the CLI's way)."""
    return launch(record_approval(submission, admin), settings, slurm)


def reject(submission: Submission, admin: User, reason: str) -> Submission:
    """An admin refuses a waiting submission, with a reason the owner will read."""
    require_state(submission, SubmissionState.AWAITING_APPROVAL)
    if not reason.strip():
        raise SubmissionError("a rejection needs a reason")
    submission.state = SubmissionState.REJECTED
    submission.decided_by_id = admin.id
    submission.decision_reason = reason.strip()
    submission.finished_at = utcnow()
    audit("submission.reject", actor=admin, submission=submission, reason=reason.strip())
    queue_decision_mail(submission, approved=False)
    db.session.commit()
    return submission


def cancel(
    submission: Submission,
    slurm: SlurmClient,
    indices: Sequence[int] | None = None,
    actor: User | None = None,
) -> None:
    """scancel the whole submission or some task indices (one scancel per array)."""
    if submission.state in (
        SubmissionState.AWAITING_APPROVAL,
        SubmissionState.SUBMIT_FAILED,
        SubmissionState.DRAFT,
    ):
        submission.state = SubmissionState.CANCELLED
        submission.finished_at = utcnow()
    else:
        by_job: dict[str, list[int]] = {}
        wanted = set(indices) if indices is not None else None
        unknown = wanted - {t.index for t in submission.tasks} if wanted else set()
        if unknown:
            raise SubmissionError(f"no such task index: {', '.join(map(str, sorted(unknown)))}")
        for task in submission.tasks:
            if task.array_job_id and (wanted is None or task.index in wanted):
                by_job.setdefault(task.array_job_id, []).append(task.array_index)
        for job_id, array_indices in by_job.items():
            slurm.cancel(job_id, None if wanted is None else sorted(array_indices))
        _mark_pending_cancelled(submission, wanted)
    audit("submission.cancel", actor=actor, submission=submission, tasks=indices)
    db.session.commit()


def _mark_pending_cancelled(submission: Submission, wanted: set[int] | None) -> None:
    """Slurm forgets array tasks cancelled while pending (neither sacct nor squeue shows them),
    so the canceller records them; running ones are left to the poller."""
    for task in submission.tasks:
        if task.state == PENDING and (wanted is None or task.index in wanted):
            task.state, task.pending_reason = "CANCELLED", None
            task.ended_at = utcnow()
    update_submission_states({submission.id})


def resubmit_failed(
    submission: Submission,
    settings: SettingsLike,
    slurm: SlurmClient,
    actor: User | None = None,
) -> list[int]:
    """ONE new array over only the failed task indices (same run dir and configs)."""
    failed = [t.index for t in submission.tasks if is_terminal(t.state) and t.state != "COMPLETED"]
    if not failed:
        raise SubmissionError("no failed tasks to resubmit")
    if submission.state not in (
        SubmissionState.FAILED,
        SubmissionState.PARTIAL,
        SubmissionState.CANCELLED,
    ):
        raise SubmissionError(f"submission is {submission.state}; wait until it has finished")
    settings = as_settings(settings)
    slurm = client_for_owner(slurm, settings, submission.owner)
    folder = RunFolder.of(submission, settings)
    check_job_room(slurm, settings, len(failed))
    rendered = render_for(
        submission,
        folder.design,
        settings,
        tasks=failed,
        max_array_size=slurm.max_array_size(),
        round_number=folder.next_round(),
    )
    scripts = write_scripts(folder.root, rendered)
    share_with_job_user(submission, settings, folder)
    submission.state = SubmissionState.SUBMITTING
    submission.finished_at = None
    audit("submission.resubmit", actor=actor, submission=submission, tasks=failed)
    db.session.commit()
    submit_arrays(submission, scripts, slurm)
    return failed
