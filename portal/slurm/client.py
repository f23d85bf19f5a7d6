"""The portal's Slurm client: one object that submits, queries and cancels through a transport.

Errors come in two kinds. :class:`~portal.slurm.transports.TransportError` means the command
could not be run (connection, timeout, missing binary): for ``sbatch`` the job *may* exist, so
the caller reconciles by job name before any resubmit. :class:`SlurmError` means Slurm ran and
refused; it carries Slurm's own message for the user.

In ``run as user`` mode the client sits on a ``LocalTransport(run_as=...)``: sbatch and scancel
run through ``sudo -n -u <user>``, every query keeps running as the portal's account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from portal.slurm import commands
from portal.slurm.commands import Node, SinfoReport, SlurmParseError, TaskRow
from portal.slurm.states import ACTIVE, COMPLETED, PENDING, REQUEUEABLE, RUNNING, is_terminal
from portal.slurm.transports import CommandResult, Transport

log = logging.getLogger(__name__)

#: Slurm's MaxArraySize default (the largest index is MaxArraySize - 1).
DEFAULT_MAX_ARRAY_SIZE = 1001
#: Slurm's MaxJobCount default.
DEFAULT_MAX_JOB_COUNT = 10000
#: Slurm's MinJobAge default, in seconds.
DEFAULT_MIN_JOB_AGE = 300

#: Seconds a pending reason squeue gave is reused while sacct's answer stays the same (and
#: no pending task may have started): a queue waiting unchanged costs one sacct per cycle.
PENDING_REASON_MAX_AGE = 30.0

#: sacct messages meaning "this cluster keeps no accounting": squeue is the only source.
ACCOUNTING_DISABLED_MESSAGES = (
    "Slurm accounting storage is disabled",
    "accounting_storage/none",
)
_INVALID_JOB_ID = "Invalid job id specified"
#: States a squeue row complementing sacct may report: a task that ended any other way waits
#: for sacct, which has its exit code and signal (squeue has none).
_FINAL_IN_SQUEUE_TOO = frozenset({*ACTIVE, PENDING, COMPLETED})


class SlurmError(Exception):
    """A Slurm command ran and failed; ``message`` is what Slurm said (its stderr)."""

    def __init__(self, argv: Sequence[str], returncode: int, message: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.message = message.strip() or f"exit status {returncode}, no message"
        super().__init__(f"{program_name(argv)} failed: {self.message}")


def program_name(argv: Sequence[str]) -> str:
    """The Slurm program an argv runs, skipping ``env VAR=...`` and ``sudo ... --`` prefixes."""
    words = list(argv)
    if words[:1] == ["sudo"] and "--" in words:
        words = words[words.index("--") + 1 :]
    if words[:1] == ["env"]:
        words = [word for word in words[1:] if "=" not in word]
    return words[0] if words else "?"


def accounting_disabled(stderr: str) -> bool:
    """True when sacct says the cluster has no accounting storage at all."""
    return any(message in stderr for message in ACCOUNTING_DISABLED_MESSAGES)


class SlurmClient:
    """Submit, query and cancel Slurm jobs through one transport."""

    def __init__(
        self,
        transport: Transport,
        timeout: float = 60,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.clock = clock
        self._config: dict[str, str] | None = None
        self._last_sacct: tuple[str, list[TaskRow]] = ("", [])
        #: sacct's and squeue's answers, their merge, when squeue was asked, and whether a
        #: pending task in that sacct answer may have started
        self._last_pending: tuple[str, str, list[TaskRow], float, bool] = ("", "", [], 0.0, True)

    # -- plumbing --------------------------------------------------------------------------

    def _run(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        return self.transport.run(argv, stdin=stdin, timeout=self.timeout)

    def _checked(self, argv: Sequence[str], stdin: str | None = None) -> CommandResult:
        result = self._run(argv, stdin)
        if not result.ok:
            raise SlurmError(argv, result.returncode, result.stderr)
        return result

    # -- jobs ------------------------------------------------------------------------------

    def submit(
        self,
        script_path: str | None = None,
        script_text: str | None = None,
        test_only: bool = False,
    ) -> str:
        """Submit one batch script (a file on the Slurm side, or its text on stdin).

        Returns the job id, or with ``test_only`` the scheduler's estimate
        (``"Job 12 to start at ... in partition debug"``); nothing is queued then.
        """
        if (script_path is None) == (script_text is None):
            raise ValueError("give exactly one of script_path and script_text")
        argv = commands.sbatch_argv(script_path, test_only=test_only)
        result = self._checked(argv, stdin=script_text)
        try:
            if test_only:
                return commands.parse_test_only(result.stderr)
            return commands.parse_sbatch(result.stdout)
        except SlurmParseError as exc:
            raise SlurmError(argv, result.returncode, f"{exc} {result.stderr}") from exc

    def query(self, job_ids: Iterable[str], since: datetime | str | None = None) -> list[TaskRow]:
        """Task rows of all ``job_ids`` with ONE sacct call.

        Jobs with tasks sacct reports PENDING are asked once more, with ONE
        ``squeue --states=PENDING,RUNNING`` (:meth:`_follow_pending`): for why each task waits
        (squeue's reason) and for the tasks slurmctld already runs (slurmdbd records starts
        seconds late). If the cluster has no accounting, squeue answers instead (with a
        warning; finished tasks then stay visible only for MinJobAge). Ids sacct does not know
        yet (slurmdbd records jobs asynchronously) are looked up with one squeue call; a task
        squeue already shows as failed is left out then, because squeue knows no exit code:
        sacct brings it later.
        If slurmdbd is down, :class:`SlurmError` is raised: the caller must keep the states it
        has.
        """
        ids = sorted(set(job_ids), key=_job_sort_key)
        if not ids:
            return []
        argv = commands.sacct_argv(ids, since=since)
        result = self._run(argv)
        if accounting_disabled(result.stderr):
            log.warning("Slurm accounting is disabled; falling back to squeue for job states")
            return self._squeue(ids)
        if not result.ok:
            raise SlurmError(argv, result.returncode, result.stderr)
        rows = self._parse_sacct(result.stdout)
        missing = set(ids) - {row.job_id for row in rows}
        rows = self._follow_pending(rows, result.stdout)
        rows = self._follow_requeues(rows)
        if missing:
            found = self._squeue_quietly(sorted(missing, key=_job_sort_key))
            rows.extend(row for row in found if row.state in _FINAL_IN_SQUEUE_TOO)
        return rows

    def _parse_sacct(self, stdout: str) -> list[TaskRow]:
        """:func:`commands.parse_sacct`, remembering the last answer: a poller asking about
        10,000 pending tasks gets the same text cycle after cycle (a fresh list each time)."""
        if stdout != self._last_sacct[0]:
            self._last_sacct = (stdout, commands.parse_sacct(stdout))
        return list(self._last_sacct[1])

    def _follow_pending(self, rows: list[TaskRow], sacct_text: str) -> list[TaskRow]:
        """Where sacct (which printed ``sacct_text``) shows pending tasks, at most ONE
        ``squeue --states=PENDING,RUNNING`` over their jobs (:func:`_merge_pending`); a
        failing squeue leaves sacct's answer standing. While sacct answers the same and no
        pending task may have started (:func:`~portal.slurm.commands.may_have_started`),
        the last merge is reused for :data:`PENDING_REASON_MAX_AGE` seconds without asking
        squeue (a fresh list each time)."""
        last_sacct, last_answer, merged, asked_at, lagging = self._last_pending
        now = self.clock()
        if sacct_text == last_sacct and not lagging and now - asked_at < PENDING_REASON_MAX_AGE:
            return list(merged)
        pending = [row for row in rows if row.state == PENDING]
        if not pending:
            return rows
        waiting = sorted({row.job_id for row in pending}, key=_job_sort_key)
        try:
            answer = self._squeue_text(waiting, states=(PENDING, RUNNING))
        except SlurmError as exc:
            log.warning("squeue complementing sacct failed: %s", exc)
            return rows
        if (sacct_text, answer) != (last_sacct, last_answer):
            merged = _merge_pending(rows, commands.parse_squeue(answer))
        lagging = any(commands.may_have_started(row) for row in pending)
        self._last_pending = (sacct_text, answer, merged, now, lagging)
        return list(merged)

    def _follow_requeues(self, rows: list[TaskRow]) -> list[TaskRow]:
        """A task sacct shows as NODE_FAIL or PREEMPTED may have been requeued: Slurm then
        runs it again under the same id, and sacct shows the ended attempt until the new one
        starts. One squeue over those jobs: a task squeue still holds (pending or running) is
        not final, and its row replaces sacct's, so the portal keeps following it (no
        "failed" email, no resubmit offer while Slurm still has an attempt)."""
        ended = {row.job_id for row in rows if row.state in REQUEUEABLE}
        if not ended:
            return rows
        held = {
            (row.job_id, row.task_index): row
            for row in self._squeue_quietly(sorted(ended, key=_job_sort_key))
            if not is_terminal(row.state)
        }
        return [
            held.get((row.job_id, row.task_index), row) if row.state in REQUEUEABLE else row
            for row in rows
        ]

    def _squeue_text(
        self,
        job_ids: Sequence[str] = (),
        names: Sequence[str] = (),
        states: Sequence[str] = (),
    ) -> str:
        argv = commands.squeue_argv(job_ids, names=names, states=states)
        result = self._run(argv)
        if not result.ok:
            if _INVALID_JOB_ID in result.stderr:
                return ""  # squeue -j of one id it no longer knows
            raise SlurmError(argv, result.returncode, result.stderr)
        return result.stdout

    def _squeue(
        self,
        job_ids: Sequence[str] = (),
        names: Sequence[str] = (),
        states: Sequence[str] = (),
    ) -> list[TaskRow]:
        return commands.parse_squeue(self._squeue_text(job_ids, names, states))

    def _squeue_quietly(self, job_ids: Sequence[str], states: Sequence[str] = ()) -> list[TaskRow]:
        """squeue as a complement to sacct: its failure leaves sacct's answer standing."""
        try:
            return self._squeue(job_ids, states=states)
        except SlurmError as exc:
            log.warning("squeue complementing sacct failed: %s", exc)
            return []

    def find_by_name(self, name: str, since: datetime | str | None = None) -> list[str]:
        """Job ids of every job named ``name`` (squeue, then sacct from ``since``).

        Used to reconcile a submission left in SUBMITTING after a crash: an empty list means
        Slurm has no such job. Raises :class:`SlurmError` when either source cannot answer
        (accounting switched off entirely is not an error: squeue alone answers then).
        """
        found = {row.job_id for row in self._squeue(names=[name])}
        argv = commands.sacct_argv(names=[name], since=since)
        result = self._run(argv)
        if accounting_disabled(result.stderr):
            log.warning("Slurm accounting is disabled; name lookup used squeue only")
        elif not result.ok:
            raise SlurmError(argv, result.returncode, result.stderr)
        else:
            found |= {row.job_id for row in commands.parse_sacct(result.stdout) if row.name == name}
        return sorted(found, key=_job_sort_key)

    def cancel(self, job_id: str, indices: Sequence[int] | None = None) -> None:
        """Cancel a job array, or only the given task indices of it.

        Slurm 22.05's scancel exits 0 silently for finished or unknown jobs, so that is not an
        error; a refusal (e.g. ``Access/permission denied``, exit 210) is. Tasks cancelled
        while still pending vanish from sacct and squeue: the caller records them itself.
        """
        self._checked(commands.scancel_argv(job_id, indices))

    # -- cluster ---------------------------------------------------------------------------

    def config(self) -> dict[str, str]:
        """``scontrol show config`` as a dict (fetched once per client)."""
        if self._config is None:
            result = self._checked(commands.scontrol_config_argv())
            self._config = commands.parse_scontrol_config(result.stdout)
        return self._config

    def _config_int(self, key: str, default: int) -> int:
        value = self.config().get(key, "").split(" ", 1)[0]
        return int(value) if value.isdigit() else default

    def max_array_size(self) -> int:
        """MaxArraySize: an array may hold indices ``0 .. MaxArraySize-1`` (default 1001)."""
        return self._config_int("MaxArraySize", DEFAULT_MAX_ARRAY_SIZE)

    def max_job_count(self) -> int:
        """MaxJobCount: job records slurmctld keeps, every array task counting (10000)."""
        return self._config_int("MaxJobCount", DEFAULT_MAX_JOB_COUNT)

    def job_records(self) -> int:
        """Job records slurmctld holds now, each array task counting (one ``squeue``)."""
        return commands.count_job_records(self._checked(commands.job_records_argv()).stdout)

    def min_job_age(self) -> int:
        """MinJobAge in seconds: how long squeue still shows a finished job (300)."""
        return self._config_int("MinJobAge", DEFAULT_MIN_JOB_AGE)

    def associations(self, user: str) -> dict[str, tuple[str, ...]]:
        """The accounts ``user`` may charge, each with the QOS it may use (``sacctmgr``)."""
        result = self._checked(commands.associations_argv(user))
        return commands.parse_associations(result.stdout)

    def version(self) -> str:
        """The cluster's Slurm version (``"22.05.8"``), from ``sinfo --version``."""
        return commands.parse_version(self._checked(commands.version_argv()).stdout)

    def partitions(self) -> list[dict[str, Any]]:
        """Partitions from ``scontrol show partition`` (MaxTime in minutes, None = unlimited)."""
        result = self._checked(commands.scontrol_partitions_argv())
        return commands.parse_scontrol_partitions(result.stdout)

    def sinfo(self) -> SinfoReport:
        """Partitions and nodes from one ``sinfo`` call."""
        return commands.parse_sinfo(self._checked(commands.sinfo_argv()).stdout)

    def nodes(self) -> list[Node]:
        """Compute nodes with state, CPUs (total and allocated) and memory."""
        return list(self.sinfo().nodes)


def _merge_pending(rows: list[TaskRow], live: list[TaskRow]) -> list[TaskRow]:
    """sacct's ``rows`` completed by squeue's pending and running rows ``live``: a task squeue
    shows pending takes squeue's reason (Priority, Resources, JobHeldUser...: slurmctld's
    current one, which sacct does not follow); a task sacct calls pending that squeue shows
    running takes squeue's row (slurmdbd records starts seconds late, so sacct may still say
    PENDING, or list the array as one pending job without indices). Tasks only squeue lists
    are added; squeue never replaces a row sacct has in another state."""
    now = {(row.job_id, row.task_index): row for row in live if row.state in (PENDING, RUNNING)}
    merged = []
    for row in rows:
        seen = now.pop((row.job_id, row.task_index), None)
        if seen is not None and row.state == PENDING:
            row = seen if seen.state == RUNNING else row._replace(reason=seen.reason)
        merged.append(row)
    known = {(row.job_id, row.task_index) for row in rows}
    merged.extend(row for key, row in now.items() if key not in known)
    return merged


def _job_sort_key(job_id: str) -> tuple[int, str]:
    head = job_id.split("+", 1)[0]
    return (int(head) if head.isdigit() else 0, job_id)
