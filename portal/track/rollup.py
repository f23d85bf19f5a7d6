"""A submission's state, derived from all of its tasks.

Both the poll cycle (:mod:`portal.track.poller`, after Slurm's answer) and the submission service
(:func:`portal.submit.cancel`, after marking pending tasks cancelled) change task states;
this one function turns them into the submission's state and queues the completion mail, so
neither imports the other.
"""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.mail.outbox import queue_submission_mail
from portal.models import FINAL_STATES, Submission, SubmissionState, Task, utcnow
from portal.slurm.states import derive_submission_state


def update_submission_states(submission_ids: set[int]) -> int:
    """Derive each touched submission's state from all its tasks; queue mail when it ends."""
    if not submission_ids:
        return 0
    states: dict[int, list[str]] = {sid: [] for sid in submission_ids}
    for sid, state in db.session.execute(
        select(Task.submission_id, Task.state).where(Task.submission_id.in_(list(submission_ids)))
    ):
        states[sid].append(state)
    changed = 0
    for submission in db.session.scalars(
        select(Submission).where(Submission.id.in_(list(submission_ids)))
    ):
        derived = SubmissionState(derive_submission_state(states[submission.id]))
        if derived == submission.state:
            continue
        submission.state = derived
        changed += 1
        if derived in FINAL_STATES:
            submission.finished_at = utcnow()
            queue_submission_mail(submission)
    return changed
