"""What the submission page (:mod:`portal.web.detail`) and its downloads
(:mod:`portal.web.files`) share: finding a task, whose files they may show, whether a task's
log is final, the share-link lifetimes offered and the session key of a just-created link.

Kept apart from both blueprints so that neither imports the other.
"""

from __future__ import annotations

import contextlib
import os
import pwd

from flask import abort, current_app
from sqlalchemy import select

from portal.cluster.connect import run_as_user
from portal.extensions import db
from portal.models import FINAL_STATES, Submission, Task
from portal.slurm.states import TERMINAL
from portal.web.sharing import max_age

#: Session key holding a just-created share link until the page shows it once.
SHARE_SESSION_KEY = "detail_share_link"

#: Largest GDS drawn as a preview.
LAYOUT_MAX_BYTES = 256 * 1024 * 1024


def find_task(submission: Submission, index: int) -> Task | None:
    """Task ``index`` of ``submission`` (None when it has none; negative: none)."""
    if index < 0:
        return None
    return db.session.scalar(
        select(Task).where(Task.submission_id == submission.id, Task.index == index)
    )


def get_task(submission: Submission, index: int) -> Task:
    """Task ``index`` of ``submission`` or 404."""
    task = find_task(submission, index)
    if task is None:
        abort(404)
    return task


def file_owners(submission: Submission) -> frozenset[int]:
    """Whose files a page or download may show: the portal's own account, and with
    ``SLURM_RUN_AS=user`` the designer's Unix account its jobs ran as."""
    owners = {os.geteuid()}
    try:
        name = run_as_user(current_app.config, submission.owner)
    except ValueError:  # no usable Unix account: only the portal's files
        name = None
    if name:
        with contextlib.suppress(KeyError):
            owners.add(pwd.getpwnam(name).pw_uid)
    return frozenset(owners)


def task_is_final(submission: Submission, task: Task) -> bool:
    """Nothing more will be written to this task's log."""
    return task.state in TERMINAL or submission.state in FINAL_STATES


def share_choices() -> list[tuple[int, str]]:
    """Lifetimes offered for share links (never above SHARE_LINK_MAX_AGE)."""
    limit = max_age()
    options = [(3600, "1 hour"), (86400, "1 day"), (3 * 86400, "3 days"), (7 * 86400, "7 days")]
    choices = [(seconds, label) for seconds, label in options if seconds <= limit]
    if limit > 0 and (not choices or choices[-1][0] < limit):
        choices.append((limit, _duration(limit)))
    return choices


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} seconds"
