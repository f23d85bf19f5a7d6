"""The poll cycle: ONE sacct call for every unfinished task of every active submission.

Per cycle: count the unfinished tasks per array, ask Slurm once, stop there if both equal what
the last cycle saw (:class:`PollMemory`), else load the unfinished tasks (plain rows, not ORM
objects), write only the tasks whose state or pending reason changed (one bulk UPDATE; the
reason is squeue's, see :meth:`~portal.slurm.client.SlurmClient.query`), read the reports of
tasks that just finished, derive the state of each touched submission from all of its tasks,
and queue the completion email in the same transaction. Tasks that are finished are never
queried again.

:class:`Poller` adds what a long-running process needs: a database lease so exactly one poller
is active however many processes start one, and exponential backoff while Slurm errors (with
slurmdbd down, states stay as they are and the next good cycle catches up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import DBAPIError

from portal import leases
from portal.config import Settings, settings_of
from portal.extensions import db
from portal.models import ACTIVE_STATES, Submission, Task
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import TaskRow, pending_reason
from portal.slurm.states import COMPLETED, TERMINAL, is_terminal
from portal.slurm.transports import TransportError
from portal.track.collect import collect_task_metrics
from portal.track.rollup import update_submission_states

log = logging.getLogger(__name__)

LEASE_NAME = "poller"


@dataclass
class CycleStats:
    """What one cycle did."""

    submissions: int = 0
    tasks_followed: int = 0
    sacct_calls: int = 0
    rows: int = 0
    tasks_changed: int = 0
    submissions_changed: int = 0
    seconds: float = 0.0
    lease_lost: bool = False


@dataclass
class PollMemory:
    """What the last committed cycle of one poller saw, so that a cycle seeing exactly the
    same stops before reading every followed task row.

    ``followed`` is (array job id, unfinished tasks) per array, from one aggregate query;
    ``rows`` is Slurm's answer. Every change in Slurm changes ``rows``; every change the
    portal makes to a followed task (submit, cancel of pending tasks, resubmit, relaunch)
    changes ``followed``. A long queue of pending tasks therefore costs one sacct call and
    one small query per cycle, no more than submitit's in-memory watcher.
    """

    followed: tuple[tuple[str, int], ...] | None = None
    rows: list[TaskRow] | None = None

    def forget(self) -> None:
        """The next cycle reads every followed task again."""
        self.followed = self.rows = None


def poll_once(
    slurm: SlurmClient,
    memory: PollMemory | None = None,
    *,
    keep_lease: Callable[[], bool] | None = None,
) -> CycleStats:
    """Run one cycle in the current app context; raises SlurmError/TransportError untouched.

    With ``memory`` (kept across cycles by :class:`Poller`), a cycle whose followed arrays and
    Slurm answer equal the last committed cycle's writes nothing and reads no task rows.
    ``keep_lease`` renews the poller's lease once Slurm has answered (sacct may take up to
    SLURM_COMMAND_TIMEOUT); when it was lost meanwhile, the cycle writes nothing.
    """
    started = time.perf_counter()
    stats = CycleStats()
    active = db.session.execute(
        select(Submission.id, Submission.submitted_at, Submission.flow, Submission.run_dir).where(
            Submission.state.in_(list(ACTIVE_STATES))
        )
    ).all()
    stats.submissions = len(active)
    if not active:
        return stats
    by_id = {row.id: row for row in active}
    unfinished = (
        Task.submission_id.in_(list(by_id)),
        Task.state.not_in(list(TERMINAL)),
        Task.array_job_id.is_not(None),
    )
    followed = tuple(
        (job_id, count)
        for job_id, count in db.session.execute(
            select(Task.array_job_id, func.count())
            .where(*unfinished)
            .group_by(Task.array_job_id)
            .order_by(Task.array_job_id)
        )
    )
    stats.tasks_followed = sum(count for _job, count in followed)
    job_ids = {job_id for job_id, _count in followed}
    since = min((row.submitted_at for row in active if row.submitted_at), default=None)
    rows = slurm.query(job_ids, since=since - timedelta(minutes=5) if since else None)
    stats.sacct_calls, stats.rows = (1 if job_ids else 0), len(rows)
    if keep_lease is not None and not keep_lease():
        log.warning("poll lease lost while Slurm answered; this cycle writes nothing")
        stats.lease_lost = True
        return stats
    if memory is not None and memory.followed == followed and memory.rows == rows:
        stats.seconds = time.perf_counter() - started
        return stats
    tasks = db.session.execute(
        select(
            Task.id,
            Task.submission_id,
            Task.index,
            Task.array_job_id,
            Task.array_index,
            Task.state,
            Task.exit_code,
            Task.signal,
            Task.node,
            Task.started_at,
            Task.ended_at,
            Task.elapsed_seconds,
            Task.pending_reason,
        ).where(*unfinished)
    ).all()
    latest = {(row.job_id, row.task_index): row for row in rows}
    changes, finished, touched = [], [], set()
    for task in tasks:
        row = latest.get((task[3], task[4]))
        if row is None:
            continue
        reason = pending_reason(row)
        # task[5:12] (state ... elapsed_seconds) and row[3:10] hold the same fields in order.
        if task[5:12] == row[3:10] and task.pending_reason == reason:
            continue
        new = {
            "_id": task.id,
            "state": row.state,
            "exit_code": row.exit_code,
            "signal": row.signal,
            "node": row.node,
            "started_at": row.start,
            "ended_at": row.end,
            "elapsed_seconds": row.elapsed_seconds,
            "pending_reason": reason,
        }
        if is_terminal(row.state):
            sub = by_id[task.submission_id]
            new["metrics"] = collect_task_metrics(
                sub.flow,
                sub.run_dir,
                task.index,
                started=row.start is not None,
                failed=row.state != COMPLETED,
            )
            finished.append(task.id)
        changes.append(new)
        touched.add(task.submission_id)
    _write_changes(changes)
    stats.tasks_changed = len(changes)
    stats.submissions_changed = update_submission_states(touched)
    db.session.commit()
    if memory is not None:
        memory.followed, memory.rows = followed, rows
    stats.seconds = time.perf_counter() - started
    return stats


_CHANGED_COLUMNS = ("state", "exit_code", "signal", "node", "started_at", "ended_at",
                    "elapsed_seconds", "pending_reason")  # fmt: skip


def _write_changes(changes: list[dict[str, Any]]) -> None:
    """Core executemany UPDATEs by primary key (finished tasks also get their metrics)."""
    table = Task.__table__
    for with_metrics in (False, True):
        batch = [c for c in changes if ("metrics" in c) is with_metrics]
        if not batch:
            continue
        columns = _CHANGED_COLUMNS + (("metrics",) if with_metrics else ())
        statement = (
            table.update()
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        db.session.execute(statement, batch)


class Poller:
    """One process's poller: lease, backoff, and the cycle."""

    def __init__(
        self,
        app: Flask,
        slurm: SlurmClient,
        *,
        holder: str | None = None,
        hand_over: Callable[[], object] | None = None,
    ) -> None:
        """``hand_over`` runs first in every cycle this poller holds the lease for: the
        processes that launch pass :class:`portal.submit.background.HandOver`, which starts due
        retries and relaunches in launcher threads (the poller itself never imports the
        launcher)."""
        self.app = app
        self.slurm = slurm
        self.holder = holder or leases.holder_id()
        self.hand_over = hand_over
        self.errors = 0
        self.resume_at = 0.0
        self.last_stats: CycleStats | None = None
        self.memory = PollMemory()

    @property
    def settings(self) -> Settings:
        return settings_of(self.app)

    def run_cycle(self) -> CycleStats | None:
        """One scheduled cycle: None when another process holds the lease, during backoff,
        or when Slurm or the database failed (logged; the next good cycle catches up)."""
        with self.app.app_context():
            lease_seconds = float(self.settings.POLL_LEASE_SECONDS)
            try:
                if not leases.acquire(LEASE_NAME, self.holder, lease_seconds):
                    self.memory.forget()  # another poller may write while this one waits
                    return None
                if time.monotonic() < self.resume_at:
                    return None
                if self.hand_over is not None:
                    self.hand_over()
                stats = poll_once(
                    self.slurm,
                    self.memory,
                    keep_lease=lambda: leases.acquire(LEASE_NAME, self.holder, lease_seconds),
                )
            except (SlurmError, TransportError, DBAPIError) as exc:
                # Slurm or the database away (a restart mid-cycle): nothing of this cycle is
                # committed, and the first cycle after it comes back catches up.
                db.session.rollback()
                self.memory.forget()
                self._back_off(exc)
                return None
            finally:
                db.session.remove()
            if stats.lease_lost:
                self.memory.forget()
                return None
            if self.errors:
                log.info("poll cycle recovered after %d failed cycles", self.errors)
            self.errors, self.resume_at, self.last_stats = 0, 0.0, stats
            return stats

    def _back_off(self, exc: Exception) -> None:
        self.errors += 1
        interval = float(self.settings.POLL_INTERVAL_SECONDS)
        delay = min(interval * 2**self.errors, 600.0)
        self.resume_at = time.monotonic() + delay
        log.error(
            "poll cycle failed (%d in a row, next try in %.0f s): %s",
            self.errors,
            delay,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )

    def stop(self) -> None:
        """Release the lease (clean shutdown)."""
        with self.app.app_context():
            leases.release(LEASE_NAME, self.holder)
