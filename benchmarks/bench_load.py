"""Benchmark 6: many concurrent clients browsing and submitting through gunicorn.

Setup: a database seeded with ``--submissions`` / ``--tasks`` over 10 users (benchmarks/seed.py),
``gunicorn 'portal.wsgi:app'`` on it behind a pretend proxy (``TRUSTED_PROXIES=1``: every
client sends its own ``X-Forwarded-For`` address, as real clients behind nginx would have, so
per-address rate limits apply per client). The gunicorn process finds an ``sbatch`` on its PATH
that adds ``--hold``: every job the portal submits stays held and is cancelled at the end.

``--clients`` threads, each a ``requests.Session`` signed in through the login form as one of
the users (and holding that user's API token), loop without think time for ``--seconds``:
dashboard ``/`` (30 %), one of the user's submission pages (30 %), the API list (30 %), and
(10 %) ``POST /api/v1/submissions`` of a 1-point sweep of the example design (stand-in flow, a
test double) with ``dry_run`` false.

Recorded: requests, throughput, p50/p95 per action and overall, status counts, 5xx, client
errors, server tracebacks, and whether every submission answered 201 exists in the database
at the end (and in which state once the background launches settled). Targets: zero 5xx,
no lost submission.

Usage: ``.venv/bin/python -m benchmarks.bench_load --clients 50 --seconds 60``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import (
    JobJanitor,
    base_parser,
    create_pg_database,
    emit,
    example_repo,
    exit_on_sigterm,
    gunicorn,
    hold_shim,
    log,
    login_session,
    make_portal_app,
    portal_env,
    portal_settings,
    postgres_server,
    record,
    require_cluster,
    status_counts,
    summary,
    workdir,
)
from benchmarks.seed import Seeded, seed

ACTIONS = (("dashboard", 0.3), ("submission", 0.3), ("api_list", 0.3), ("submit", 0.1))


class Results:
    """Thread-safe collection of (action, seconds, status)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[str, float, int]] = []
        self.errors: Counter[str] = Counter()
        self.created: list[str] = []

    def add(self, action: str, seconds: float, status: int) -> None:
        with self.lock:
            self.samples.append((action, seconds, status))

    def error(self, action: str, exc: BaseException) -> None:
        with self.lock:
            self.errors[f"{action}: {type(exc).__name__}"] += 1


def client(
    number: int,
    base_url: str,
    seeded: Seeded,
    repo_url: str,
    stop_at: float,
    results: Results,
) -> None:
    """One simulated user session until ``stop_at``."""
    users = sorted(seeded.tokens)
    username = users[number % len(users)]
    address = f"10.1.{number // 250}.{number % 250 + 1}"
    rng = random.Random(number)
    try:
        session = login_session(base_url, username, **{"X-Forwarded-For": address})
    except Exception as exc:  # a failed login is a result, not a crash
        results.error("login", exc)
        return
    api_headers = {"Authorization": f"Bearer {seeded.tokens[username]}"}
    own = seeded.uuids.get(username) or [seeded.small_uuid]
    names, weights = zip(*ACTIONS, strict=True)
    while time.monotonic() < stop_at:
        action = rng.choices(names, weights)[0]
        started = time.perf_counter()
        try:
            if action == "dashboard":
                answer = session.get(base_url + "/", timeout=60)
            elif action == "submission":
                answer = session.get(f"{base_url}/submissions/{rng.choice(own)}", timeout=60)
            elif action == "api_list":
                answer = session.get(
                    base_url + "/api/v1/submissions", headers=api_headers, timeout=60
                )
            else:
                answer = session.post(
                    base_url + "/api/v1/submissions",
                    headers=api_headers,
                    json={
                        "repo_url": repo_url,
                        "ref": "main",
                        "design_path": "designs/counter",
                        "flow": "openlane1",
                        "params": {"CLOCK_PERIOD": round(10 + rng.random(), 3)},
                        "resources": {
                            "cpus": 1,
                            "mem_mb": 256,
                            "time_minutes": 10,
                            "partition": "debug",
                        },  # fmt: skip
                        "name": f"load client {number}",
                        "notify": False,
                        "dry_run": False,
                    },
                    timeout=60,
                )
            _ = answer.content
        except Exception as exc:
            results.error(action, exc)
            continue
        results.add(action, time.perf_counter() - started, answer.status_code)
        if action == "submit" and answer.status_code == 201:
            with results.lock:
                results.created.append(answer.json()["submission"]["uuid"])


def settle(database_url: str, uuids: list[str], timeout: float) -> dict[str, int]:
    """Wait until no created submission is still being launched; states of all of them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT uuid, state FROM submissions")).all()
            wanted = set(uuids)
            states = {u: s for u, s in rows if u in wanted}
            busy = [s for s in states.values() if s in ("STAGING", "SUBMITTING")]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        engine.dispose()
    return dict(Counter(states.values()))


def portal_jobs(database_url: str, since_id: int) -> tuple[list[str], list[str]]:
    """Job ids and job names of every submission created during the run."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT uuid, job_ids FROM submissions WHERE id > :since"), {"since": since_id}
            ).all()
    finally:
        engine.dispose()
    import json

    job_ids = []
    for _uuid, raw in rows:
        value = json.loads(raw) if isinstance(raw, str) else raw
        job_ids.extend(value or [])
    return job_ids, [f"olp-{uuid}" for uuid, _ in rows]


def run_load(root: Path, database_url: str, args: Any, janitor: JobJanitor) -> dict[str, Any]:
    """Seed, serve, load, settle, check."""
    from sqlalchemy import create_engine, func, select, text

    from portal.models import Submission

    repo_url = example_repo(root)
    settings = portal_settings(
        root,
        SQLALCHEMY_DATABASE_URI=database_url,
        SITE_URL="http://127.0.0.1",
        TRUSTED_PROXIES=1,
        LAUNCH_IN_BACKGROUND=True,
    )
    app = make_portal_app(settings)
    seeded = seed(app, args.submissions, args.tasks, users=10, main_share=0.1)
    with app.app_context():
        from portal.extensions import db

        last_seeded = db.session.scalar(select(func.max(Submission.id))) or 0
        db.session.remove()
        db.engine.dispose()
    env = portal_env(settings, root / "instance")
    env["PATH"] = f"{hold_shim(root / 'hold-bin')}:{env.get('PATH', '')}"
    log_path = root.parent / "olp-bench-load-gunicorn.log"
    results = Results()
    try:
        with gunicorn(env, log_path, workers=args.workers, threads=args.threads) as server:
            stop_at = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=client,
                    args=(n, server.url, seeded, repo_url, stop_at, results),
                    daemon=True,
                )
                for n in range(args.clients)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=args.seconds + 120)
            elapsed = time.perf_counter() - started
            log(f"{len(results.samples)} requests in {elapsed:.1f} s; settling launches")
            final_states = settle(database_url, results.created, timeout=args.settle)
            tracebacks = server.count_in_log(r"^Traceback")
    finally:
        job_ids, names = portal_jobs(database_url, last_seeded)
        janitor.add(*job_ids)
        janitor.names.update(names)
        janitor.cancel()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        present = {u for (u,) in conn.execute(text("SELECT uuid FROM submissions")).all()}
    engine.dispose()
    lost = [u for u in results.created if u not in present]
    by_action: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for action, seconds, status in results.samples:
        by_action[action].append((seconds, status))
    statuses = [s for _, _, s in results.samples]
    fivexx = sum(1 for s in statuses if s >= 500)
    return {
        "requests": len(results.samples),
        "seconds": round(elapsed, 2),
        "throughput_per_s": round(len(results.samples) / elapsed, 1) if elapsed else None,
        "status": status_counts(statuses),
        "fivexx": fivexx,
        "client_errors": dict(results.errors),
        "server_tracebacks": tracebacks,
        "latency": summary([s for _, s, _ in results.samples]),
        "actions": {
            action: {
                "status": status_counts(code for _, code in samples),
                "latency": summary([t for t, _ in samples]),
            }
            for action, samples in sorted(by_action.items())
        },
        "submissions_created": len(results.created),
        "submissions_lost": lost,
        "created_states": final_states,
        "jobs_cancelled": len(job_ids),
        "seeded": {"submissions": seeded.submissions, "tasks": seeded.tasks},
    }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--submissions", type=int, default=1000, help="seeded submissions")
    parser.add_argument("--tasks", type=int, default=10000, help="seeded tasks")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--settle", type=float, default=180, help="max wait for launches")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.submissions, args.tasks = 5, 5, 100, 1000
        args.settle = 60
    exit_on_sigterm()
    require_cluster()
    with workdir("load", args.keep) as root, JobJanitor() as janitor:
        if args.db == "sqlite":
            result = run_load(root, f"sqlite:///{root / 'portal.db'}", args, janitor)
        else:
            with postgres_server() as base:
                result = run_load(root, create_pg_database(base, "portal_load"), args, janitor)
    submit_statuses = result["actions"].get("submit", {}).get("status", {})
    emit(
        record(
            "load",
            {"clients": args.clients, "seconds": args.seconds},
            database=args.db,
            gunicorn={"workers": args.workers, "threads": args.threads, "class": "gthread"},
            hold=True,
            **result,
            api_submit_available=any(code in submit_statuses for code in ("201", "400", "422")),
            targets={
                "zero_5xx": result["fivexx"] == 0,
                "no_lost_submission": not result["submissions_lost"],
            },
        )
    )


if __name__ == "__main__":
    main()
