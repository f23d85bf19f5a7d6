"""Benchmark 5: how soon a task's state change shows in the API, and the array-end email.

Setup: ``gunicorn 'portal.wsgi:app'`` with ``POLLER_ENABLED`` (the poll and mail jobs run in
the workers, one active through the database lease) at ``POLL_INTERVAL_SECONDS=--interval``
and ``MAIL_SEND_INTERVAL_SECONDS=--mail-interval``, mailing to a real aiosmtpd server
(tests/fixtures/smtp.py) on loopback. ``--arrays`` small REAL arrays (2 tasks, the stand-in
flow, a test double, busy ``--task-seconds`` each) are submitted one after the other through
the portal path on the same SQLite database, with notification on.

Measured, for every task: from the instant its state changed on the node (the modification
time of the ``started`` / ``exit_code`` file the array script writes as the task starts and
ends) until ``GET /api/v1/submissions/<uuid>/tasks`` shows RUNNING / COMPLETED (polled every
50 ms; while the API is not built, the database row the API reads is polled instead, and the
record says so). For every array: from its last task's end until the SMTP server accepted the
completion email, also counted from the moment sacct first reported the end (Slurm's own
accounting lag is measured apart by polling sacct, the poller's only source, every ~50 ms).
Targets: state <= interval + 1 s; email <= one poll cycle.

Usage: ``.venv/bin/python -m benchmarks.bench_latency --interval 2 --arrays 3``.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CountingTransport,
    JobJanitor,
    add_user,
    base_parser,
    emit,
    example_repo,
    exit_on_sigterm,
    gunicorn,
    log,
    make_portal_app,
    portal_env,
    portal_once,
    portal_settings,
    record,
    require_cluster,
    summary,
    workdir,
)

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL"}


class StampedMessages(list):
    """The SMTP server's message list, remembering when each message was accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def append(self, item: Any) -> None:
        self.times.append(time.time())
        super().append(item)


class StateReader:
    """Reads a submission's task states through the API, or the database while the API is
    not built (404)."""

    def __init__(self, base_url: str, token: str, database_url: str) -> None:
        import requests
        from sqlalchemy import create_engine

        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.engine = create_engine(database_url)
        self.source: str | None = None
        self.api_statuses: dict[int, int] = {}

    def states(self, uuid: str) -> dict[int, str]:
        if self.source != "database":
            answer = self.session.get(
                f"{self.base_url}/api/v1/submissions/{uuid}/tasks", timeout=30
            )
            self.api_statuses[answer.status_code] = self.api_statuses.get(answer.status_code, 0) + 1
            if answer.status_code == 200:
                self.source = "api"
                return _states_from_json(answer.json())
            if self.source is None and answer.status_code == 404:
                log(f"API answered 404 for the tasks of {uuid}: reading the database instead")
                self.source = "database"
            elif self.source == "api":
                return {}
        from sqlalchemy import text

        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    'SELECT t."index", t.state FROM tasks t JOIN submissions s '
                    "ON s.id = t.submission_id WHERE s.uuid = :uuid"
                ),
                {"uuid": uuid},
            ).all()
        return {int(index): state for index, state in rows}


def _states_from_json(data: Any) -> dict[int, str]:
    items = data
    if isinstance(data, dict):
        items = data.get("tasks") or data.get("items") or []
    return {int(item["index"]): str(item["state"]) for item in items}


def sacct_states(job_id: str) -> dict[int, str]:
    """What sacct (the poller's only source) says right now, with the portal's own parser."""
    import subprocess

    from portal.slurm import commands

    done = subprocess.run(
        commands.sacct_argv([job_id]), capture_output=True, text=True, timeout=60, check=False
    )
    rows = commands.parse_sacct(done.stdout) if done.returncode == 0 else []
    return {row.task_index: row.state for row in rows if row.task_index is not None}


def follow_array(
    reader: StateReader, uuid: str, job_id: str, run_dir: Path, tasks: int, timeout: float
) -> dict[int, dict[str, Any]]:
    """Poll the portal (API or database) and sacct until every task is terminal in the portal;
    first-seen times per task, and the instants the tasks really started and ended."""
    seen: dict[int, dict[str, Any]] = {i: {} for i in range(tasks)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        portal_now = reader.states(uuid)
        now = time.time()
        for index, state in portal_now.items():
            if state != "PENDING":
                seen[index].setdefault("running_seen", now)  # RUNNING, or already past it
            if state in TERMINAL:
                seen[index].setdefault("end_seen", now)
                seen[index]["state"] = state
        slurm_now = sacct_states(job_id)
        now = time.time()
        for index, state in slurm_now.items():
            if index in seen and state != "PENDING":
                seen[index].setdefault("sacct_running", now)
            if index in seen and state in TERMINAL:
                seen[index].setdefault("sacct_end", now)
        if all("end_seen" in s for s in seen.values()):
            break
        time.sleep(0.05)
    else:
        raise RuntimeError(f"array {uuid} did not finish within {timeout} s: {seen}")
    for index, times in seen.items():
        task = run_dir / "tasks" / str(index)
        times["started"] = (task / "started").stat().st_mtime
        times["ended"] = (task / "exit_code").stat().st_mtime
    return seen


def task_record(t: dict[str, Any]) -> dict[str, Any]:
    """Latencies of one task: portal (end to end), sacct's own lag, the portal's share."""

    def lag(later: str, earlier: str) -> float | None:
        return round(t[later] - t[earlier], 3) if later in t and earlier in t else None

    return {
        "state": t.get("state"),
        "start_latency": lag("running_seen", "started"),
        "end_latency": lag("end_seen", "ended"),
        "sacct_start_lag": lag("sacct_running", "started"),
        "sacct_end_lag": lag("sacct_end", "ended"),
        "portal_after_sacct_start": lag("running_seen", "sacct_running"),
        "portal_after_sacct_end": lag("end_seen", "sacct_end"),
    }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--interval", type=float, default=2.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--mail-interval", type=float, help="default: the poll interval")
    parser.add_argument("--arrays", type=int, default=3, help="arrays, one after the other")
    parser.add_argument("--tasks", type=int, default=2, help="tasks per array")
    parser.add_argument("--task-seconds", type=float, default=5.0, help="stand-in busy time")
    args = parser.parse_args()
    if args.smoke:
        args.arrays, args.task_seconds = 1, 3.0
    mail_interval = args.mail_interval or args.interval
    exit_on_sigterm()
    require_cluster()
    from tests.fixtures.smtp import SmtpServer

    os.environ["OPENLANE_STANDIN_SECONDS"] = str(args.task_seconds)  # sbatch exports it
    smtp = SmtpServer(messages=StampedMessages())
    smtp.start()
    arrays: list[dict[str, Any]] = []
    try:
        with workdir("latency", args.keep) as root, JobJanitor() as janitor:
            url = example_repo(root)
            settings = portal_settings(
                root,
                POLL_INTERVAL_SECONDS=args.interval,
                POLLER_ENABLED=True,
                MAIL_SERVER="127.0.0.1",
                MAIL_PORT=smtp.port,
                MAIL_SEND_INTERVAL_SECONDS=mail_interval,
                SITE_URL="http://127.0.0.1",
                RATELIMIT_ENABLED=False,  # this harness polls the API faster than any client
            )
            app = make_portal_app(settings)
            with app.app_context():
                from portal import accounts

                user = add_user("bench")
                token, _ = accounts.create_api_token(user, "latency")
            env = portal_env(settings, root / "instance")
            log_path = root.parent / "olp-bench-latency-gunicorn.log"
            with gunicorn(env, log_path, workers=2, threads=2) as server:
                reader = StateReader(server.url, token, settings["SQLALCHEMY_DATABASE_URI"])
                transport = CountingTransport(hold=False)
                for number in range(args.arrays):
                    mails_before = len(smtp.messages)
                    with app.app_context():
                        run = portal_once(
                            app, url, args.tasks, transport, notify=True, janitor=janitor
                        )
                    janitor.add(*run["job_ids"])
                    run_dir = Path(settings["RUN_ROOT"]) / run["uuid"]
                    log(f"array {number + 1}: job {run['job_ids'][0]} submitted")
                    seen = follow_array(
                        reader, run["uuid"], run["job_ids"][0], run_dir, args.tasks, timeout=300
                    )
                    array_end = max(t["ended"] for t in seen.values())
                    sacct_ends = [t.get("sacct_end") for t in seen.values()]
                    sacct_end = max(sacct_ends) if all(sacct_ends) else None
                    deadline = time.monotonic() + 10 * max(args.interval, mail_interval) + 30
                    while len(smtp.messages) <= mails_before and time.monotonic() < deadline:
                        time.sleep(0.02)
                    mail_at = (
                        smtp.messages.times[mails_before]
                        if len(smtp.messages) > mails_before
                        else None
                    )
                    arrays.append(
                        {
                            "job_id": run["job_ids"][0],
                            "tasks": {str(i): task_record(t) for i, t in seen.items()},
                            "email_latency": round(mail_at - array_end, 3) if mail_at else None,
                            "email_after_sacct_end": round(mail_at - sacct_end, 3)
                            if mail_at and sacct_end
                            else None,
                        }
                    )
                    log(f"array {number + 1}: {arrays[-1]}")
                tracebacks = server.count_in_log(r"^Traceback")
    finally:
        smtp.stop()

    def values(key: str) -> list[float]:
        found = [t[key] for a in arrays for t in a["tasks"].values()]
        return [v for v in found if v is not None]

    starts, ends = values("start_latency"), values("end_latency")
    mails = [a["email_latency"] for a in arrays if a["email_latency"] is not None]
    mails_after_sacct = [
        a["email_after_sacct_end"] for a in arrays if a["email_after_sacct_end"] is not None
    ]
    state_worst = max(starts + ends)
    emit(
        record(
            "latency",
            {"arrays": args.arrays, "tasks_per_array": args.tasks},
            poll_interval_seconds=args.interval,
            mail_interval_seconds=mail_interval,
            task_seconds=args.task_seconds,
            source=reader.source,
            api_statuses={str(k): v for k, v in sorted(reader.api_statuses.items())},
            server_tracebacks=tracebacks,
            state_start=summary(starts, 3),
            state_end=summary(ends, 3),
            sacct_lag={
                "start": summary(values("sacct_start_lag"), 3),
                "end": summary(values("sacct_end_lag"), 3),
            },  # fmt: skip
            portal_after_sacct={
                "start": summary(values("portal_after_sacct_start"), 3),
                "end": summary(values("portal_after_sacct_end"), 3),
            },
            email=summary(mails, 3),
            email_after_sacct_end=summary(mails_after_sacct, 3),
            emails_received=len(mails),
            arrays_detail=arrays,
            task_states=sorted({t["state"] for a in arrays for t in a["tasks"].values()}),
            targets={
                "state_within_interval_plus_1s": state_worst <= args.interval + 1,
                "portal_within_one_interval_of_sacct": max(
                    values("portal_after_sacct_start") + values("portal_after_sacct_end")
                )
                <= args.interval + 0.2,
                "email_within_one_interval_of_array_end": len(mails) == len(arrays)
                and max(mails) <= args.interval,
                "email_within_one_interval_of_sacct_reporting_the_end": bool(mails_after_sacct)
                and len(mails_after_sacct) == len(arrays)
                and max(mails_after_sacct) <= args.interval,
                "every_email_arrived": len(mails) == len(arrays),
            },
            medians={
                "state": round(statistics.median(starts + ends), 3),
                "email": round(statistics.median(mails), 3) if mails else None,
            },
        )
    )


if __name__ == "__main__":
    main()
