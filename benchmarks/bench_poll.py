"""Benchmark 2: one poll cycle over many live array tasks, against submitit's watcher.

Setup: ``--submissions`` portal submissions with ``--size`` tasks in all go through the real
submit path with every ``sbatch`` held (they stay PENDING and never run); all are cancelled at
the end, also on failure.

Measured, per cycle of ``portal.track.poller.poll_once``: sacct/squeue calls, wall seconds, CPU
seconds of this process (and of the Slurm commands it waited for), task rows written (the
poller's count, and independently every INSERT/UPDATE/DELETE the database saw with its row
count). Cycles:

* ``fresh``: right after submitting (the rows are already PENDING: nothing to write);
* ``all_changed`` (``--repeats``/2 times, medians): every task row first set to a stale state
  (RUNNING) behind the poller's back and the poller's memory of Slurm's last answer dropped
  (what a changed answer does), so the cycle must read and write every row back to PENDING
  (the most a cycle can write here);
* ``unchanged`` (``--repeats`` times): nothing changed, so nothing may be written (with the
  memory the scheduled poller keeps, such a cycle also reads no task rows).

Baseline: submitit's ``SlurmInfoWatcher.update()`` with every task id (``<job>_<i>``)
registered, i.e. its sacct call and parsing over the same job ids, ``--repeats`` times,
interleaved with the unchanged portal cycles (so a busy machine slows both alike).

Usage: ``.venv/bin/python -m benchmarks.bench_poll --size 10000``.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.common import (
    CountingTransport,
    JobJanitor,
    add_user,
    base_parser,
    emit,
    example_repo,
    exit_on_sigterm,
    log,
    make_portal_app,
    portal_once,
    portal_settings,
    pyinstrument_profile,
    ratio,
    record,
    require_cluster,
    summary,
    timed,
    wait_for_job_room,
    wait_sacct_knows,
    workdir,
)


class WriteCounter:
    """Counts the data-changing statements the database executes, and their rows."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = 0
        self.rows = 0
        event.listen(engine, "after_cursor_execute", self._after)

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            self.statements += 1
            self.rows += max(cursor.rowcount, 0)

    def take(self) -> tuple[int, int]:
        """(statements, rows) since the last take."""
        taken = (self.statements, self.rows)
        self.statements = self.rows = 0
        return taken


def portal_cycle(
    slurm: Any, transport: CountingTransport, writes: WriteCounter, memory: Any
) -> dict[str, Any]:
    """One poll_once in a fresh session, with the Slurm client and the poller's memory kept
    across cycles as the scheduled :class:`portal.track.poller.Poller` keeps them; what it did and
    cost."""
    from portal.extensions import db
    from portal.track.poller import poll_once

    transport.reset()
    writes.take()
    with timed() as t:
        stats = poll_once(slurm, memory)
    db.session.remove()
    statements, rows = writes.take()
    return {
        "wall": round(t.wall, 4),
        "cpu": round(t.cpu, 4),
        "slurm_cpu": round(t.child_cpu, 4),
        "sacct_calls": transport.calls.get("sacct", 0),
        "squeue_calls": transport.calls.get("squeue", 0),
        "tasks_followed": stats.tasks_followed,
        "sacct_rows": stats.rows,
        "tasks_changed": stats.tasks_changed,
        "submissions_changed": stats.submissions_changed,
        "db_write_statements": statements,
        "db_rows_written": rows,
    }


class SubmititWatcher:
    """submitit's own watcher over the same array tasks (every ``<job>_<i>`` registered)."""

    def __init__(self, job_ids: list[str], tasks_per_job: dict[str, int]) -> None:
        from submitit.slurm.slurm import SlurmInfoWatcher

        self.ids = [f"{job}_{i}" for job in job_ids for i in range(tasks_per_job[job])]
        self.watcher = SlurmInfoWatcher(delay_s=600)
        for task_id in self.ids:
            self.watcher.register_job(task_id)
        self.cycles: list[dict[str, float]] = []

    def cycle(self) -> dict[str, float]:
        """One forced update (what ``update_if_long_enough`` runs when its delay is up)."""
        calls = self.watcher.num_calls
        with timed() as t:
            self.watcher.update()
        result = {
            "wall": t.wall,
            "cpu": t.cpu,
            "slurm_cpu": t.child_cpu,
            "sacct_calls": self.watcher.num_calls - calls,
        }
        self.cycles.append(result)
        return result

    def summary(self) -> dict[str, Any]:
        pending = sum(1 for i in self.ids if self.watcher.get_state(i, mode="cache") == "PENDING")
        return {
            "wall": summary([c["wall"] for c in self.cycles]),
            "cpu_median": round(statistics.median(c["cpu"] for c in self.cycles), 4),
            "slurm_cpu_median": round(statistics.median(c["slurm_cpu"] for c in self.cycles), 4),
            "sacct_calls_per_update": statistics.fmean(c["sacct_calls"] for c in self.cycles),
            "tasks_seen_pending": pending,
        }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=10000, help="live array tasks in all")
    parser.add_argument("--submissions", type=int, default=10, help="arrays they are split in")
    parser.add_argument("--repeats", type=int, default=5, help="unchanged cycles / watcher calls")
    parser.add_argument("--profile", action="store_true", help="pyinstrument the big cycles")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.submissions, args.repeats = 200, 2, 2
    exit_on_sigterm()
    require_cluster()
    from sqlalchemy import update

    from portal.extensions import db
    from portal.models import Task
    from portal.slurm.client import SlurmClient
    from portal.track.poller import PollMemory

    per_submission = [args.size // args.submissions] * args.submissions
    per_submission[-1] += args.size - sum(per_submission)
    with workdir("poll", args.keep) as root, JobJanitor() as janitor:
        url = example_repo(root)
        app = make_portal_app(portal_settings(root))
        transport = CountingTransport(hold=True)
        job_ids: list[str] = []
        tasks_per_job: dict[str, int] = {}
        with app.app_context():
            add_user("bench")
            wait_for_job_room(args.size)
            for points in per_submission:
                run = portal_once(app, url, points, transport, janitor=janitor)
                janitor.add(*run["job_ids"])
                (job_id,) = run["job_ids"]
                job_ids.append(job_id)
                tasks_per_job[job_id] = points
            log(f"submitted {args.size} held tasks in {len(job_ids)} arrays")
            waited = wait_sacct_knows(job_ids)
            log(f"sacct knows every array after {waited:.1f} s")
            writes = WriteCounter(db.engine)
            memory = PollMemory()
            slurm = SlurmClient(transport, timeout=120)

            fresh = portal_cycle(slurm, transport, writes, memory)
            log(f"fresh cycle: {fresh}")

            def stale_then_cycle() -> dict[str, Any]:
                # Stands for Slurm changing every task: rows go stale behind the poller's back
                # and its memory of Slurm's last answer is dropped, as a new answer would.
                db.session.execute(update(Task).values(state="RUNNING"))
                db.session.commit()
                db.session.remove()
                memory.forget()
                return portal_cycle(slurm, transport, writes, memory)

            changed_runs = []
            for _ in range(max(1, args.repeats // 2)):
                changed_runs.append(stale_then_cycle())
                log(f"all-changed cycle: {changed_runs[-1]}")
            if args.profile:
                pyinstrument_profile(stale_then_cycle, root.parent / "poll-all.txt")
            all_changed = {
                **changed_runs[0],
                "runs": len(changed_runs),
                "wall": round(statistics.median(c["wall"] for c in changed_runs), 4),
                "cpu": round(statistics.median(c["cpu"] for c in changed_runs), 4),
                "slurm_cpu": round(statistics.median(c["slurm_cpu"] for c in changed_runs), 4),
            }
            watcher = SubmititWatcher(job_ids, tasks_per_job)
            unchanged = []
            for _ in range(args.repeats):  # interleaved: a busy machine slows both alike
                unchanged.append(portal_cycle(slurm, transport, writes, memory))
                theirs = watcher.cycle()
                log(f"unchanged cycle: {unchanged[-1]}; submitit update: {theirs}")
            if args.profile:
                pyinstrument_profile(
                    lambda: portal_cycle(slurm, transport, writes, memory),
                    root.parent / "poll-same.txt",
                )
            baseline = watcher.summary()
        log(f"submitit: {baseline}")

    unchanged_wall = statistics.median(c["wall"] for c in unchanged)
    pairwise = statistics.median(
        c["wall"] / w["wall"] for c, w in zip(unchanged, watcher.cycles, strict=True)
    )
    unchanged_cpu = statistics.median(c["cpu"] for c in unchanged)
    submitit_wall = baseline["wall"]["median"]
    emit(
        record(
            "poll",
            args.size,
            arrays=len(job_ids),
            hold=True,
            sacct_ready_after_seconds=round(waited, 2),
            portal={
                "fresh": fresh,
                "all_changed": all_changed,
                "unchanged": {
                    "wall": summary([c["wall"] for c in unchanged]),
                    "cpu_median": round(unchanged_cpu, 4),
                    "slurm_cpu_median": round(
                        statistics.median(c["slurm_cpu"] for c in unchanged), 4
                    ),
                    "sacct_calls": sorted({c["sacct_calls"] for c in unchanged}),
                    "squeue_calls": sorted({c["squeue_calls"] for c in unchanged}),
                    "tasks_changed": sorted({c["tasks_changed"] for c in unchanged}),
                    "db_rows_written": sorted({c["db_rows_written"] for c in unchanged}),
                    "db_write_statements": sorted({c["db_write_statements"] for c in unchanged}),
                },
            },
            submitit=baseline,
            ratios={
                "portal_unchanged_wall_over_submitit": ratio(unchanged_wall, submitit_wall),
                "portal_unchanged_wall_over_submitit_pairwise_median": round(pairwise, 2),
                "portal_all_changed_wall_over_submitit": ratio(all_changed["wall"], submitit_wall),
            },
            targets={
                "one_sacct_call_per_cycle": all(
                    c["sacct_calls"] == 1 for c in [fresh, all_changed, *unchanged]
                ),
                "unchanged_wall_not_worse_than_submitit": unchanged_wall <= submitit_wall,
                "cpu_at_most_0_5_s": max(unchanged_cpu, all_changed["cpu"]) <= 0.5,
                "unchanged_cycle_writes_nothing": all(
                    c["db_rows_written"] == 0 and c["tasks_changed"] == 0 for c in unchanged
                ),
                "all_changed_cycle_wrote_every_task": all_changed["tasks_changed"] == args.size,
            },
        )
    )


if __name__ == "__main__":
    main()
