"""Slurm task states and how a whole job array's state is derived from them.

Slurm reports a task's state in long form (``COMPLETED``) from ``sacct``/``squeue %T`` and
sometimes decorated: ``CANCELLED by 0`` (sacct names the cancelling uid), a trailing ``+``
(steps of a requeued job). :func:`normalize_state` strips all of that, and also maps the short
codes of ``squeue %t`` (``CD``, ``PD``...).
"""

from __future__ import annotations

from collections.abc import Iterable

PENDING = "PENDING"
RUNNING = "RUNNING"
COMPLETING = "COMPLETING"
CONFIGURING = "CONFIGURING"
SUSPENDED = "SUSPENDED"
STOPPED = "STOPPED"
SIGNALING = "SIGNALING"
STAGE_OUT = "STAGE_OUT"
RESIZING = "RESIZING"
REQUEUED = "REQUEUED"
REQUEUE_HOLD = "REQUEUE_HOLD"
REQUEUE_FED = "REQUEUE_FED"
RESV_DEL_HOLD = "RESV_DEL_HOLD"
SPECIAL_EXIT = "SPECIAL_EXIT"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
TIMEOUT = "TIMEOUT"
OUT_OF_MEMORY = "OUT_OF_MEMORY"
NODE_FAIL = "NODE_FAIL"
BOOT_FAIL = "BOOT_FAIL"
DEADLINE = "DEADLINE"
PREEMPTED = "PREEMPTED"
CANCELLED = "CANCELLED"
REVOKED = "REVOKED"

#: Short codes printed by ``squeue %t`` / ``sinfo``-style compact output.
SHORT_CODES: dict[str, str] = {
    "PD": PENDING,
    "R": RUNNING,
    "CG": COMPLETING,
    "CF": CONFIGURING,
    "S": SUSPENDED,
    "ST": STOPPED,
    "SI": SIGNALING,
    "SO": STAGE_OUT,
    "RS": RESIZING,
    "RQ": REQUEUED,
    "RH": REQUEUE_HOLD,
    "RF": REQUEUE_FED,
    "RD": RESV_DEL_HOLD,
    "SE": SPECIAL_EXIT,
    "CD": COMPLETED,
    "F": FAILED,
    "TO": TIMEOUT,
    "OOM": OUT_OF_MEMORY,
    "NF": NODE_FAIL,
    "BF": BOOT_FAIL,
    "DL": DEADLINE,
    "PR": PREEMPTED,
    "CA": CANCELLED,
    "RV": REVOKED,
}

#: Task is holding (or about to hold) resources: the array has started.
ACTIVE: frozenset[str] = frozenset(
    {RUNNING, COMPLETING, CONFIGURING, SUSPENDED, STOPPED, SIGNALING, STAGE_OUT, RESIZING}
)
#: Terminal and unsuccessful (anything that ended without exit 0 and was not cancelled).
FAILURES: frozenset[str] = frozenset(
    {FAILED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED}
)
#: Ended states after which Slurm may run the task again under the same id (Requeue=1): a
#: task in one is final only once squeue no longer holds it.
REQUEUEABLE: frozenset[str] = frozenset({NODE_FAIL, PREEMPTED})
#: Terminal because someone (user, admin, federation) withdrew the task.
CANCELLATIONS: frozenset[str] = frozenset({CANCELLED, REVOKED})
#: A task in one of these states will never change again.
TERMINAL: frozenset[str] = frozenset({COMPLETED}) | FAILURES | CANCELLATIONS

#: Submission states returned by :func:`derive_submission_state`.
SUBMISSION_QUEUED = "QUEUED"
SUBMISSION_RUNNING = "RUNNING"
SUBMISSION_COMPLETED = "COMPLETED"
SUBMISSION_FAILED = "FAILED"
SUBMISSION_PARTIAL = "PARTIAL"
SUBMISSION_CANCELLED = "CANCELLED"


def normalize_state(raw: str) -> str:
    """Return the bare long state name: ``"CANCELLED by 0"`` -> ``"CANCELLED"``, ``"CD"`` ->
    ``"COMPLETED"``. Unknown words are returned upper-cased, never dropped."""
    word = raw.strip().split(" ", 1)[0].rstrip("+").upper()
    return SHORT_CODES.get(word, word)


def is_terminal(state: str) -> bool:
    """True when a task in ``state`` (raw or normalized) is finished for good."""
    return normalize_state(state) in TERMINAL


def derive_submission_state(task_states: Iterable[str]) -> str:
    """Derive one submission (job array) state from its task states.

    Rules, first match wins (states may be raw or normalized):

    1. no tasks known yet -> ``QUEUED``;
    2. some task not terminal (pending, running, requeued, held, unknown word):
       ``RUNNING`` if any task is active or already finished (the array has started; this also
       covers throttled arrays between waves, so the state does not flap), else ``QUEUED``;
    3. every task ``COMPLETED`` -> ``COMPLETED``;
    4. some task completed and some did not (failed, timed out, cancelled...) -> ``PARTIAL``:
       the one word for a mixed outcome, whatever ended the other tasks (two completed and
       one cancelled is PARTIAL, not CANCELLED: results exist);
    5. no task completed: ``FAILED`` if some task failed (FAILED, TIMEOUT, OUT_OF_MEMORY,
       NODE_FAIL, BOOT_FAIL, DEADLINE, PREEMPTED; cancelled tasks do not hide a failure),
       else every task was cancelled -> ``CANCELLED``.
    """
    states = [normalize_state(state) for state in task_states]
    if not states:
        return SUBMISSION_QUEUED
    if any(state not in TERMINAL for state in states):
        started = any(state in ACTIVE or state in TERMINAL or state == REQUEUED for state in states)
        return SUBMISSION_RUNNING if started else SUBMISSION_QUEUED
    completed = sum(state == COMPLETED for state in states)
    if completed == len(states):
        return SUBMISSION_COMPLETED
    if completed:
        return SUBMISSION_PARTIAL
    if any(state in FAILURES for state in states):
        return SUBMISSION_FAILED
    return SUBMISSION_CANCELLED
