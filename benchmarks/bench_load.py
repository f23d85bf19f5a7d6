"""Benchmark 6: many concurrent clients browsing, submitting and dry-running through gunicorn.

Setup: a database (``--database``: SQLite, or a throwaway PostgreSQL server) seeded with
``--submissions`` / ``--tasks`` over 10 users (benchmarks/seed.py), ``gunicorn 'portal.wsgi:app'``
on it behind a pretend proxy (``TRUSTED_PROXIES=1``: every client sends its own
``X-Forwarded-For`` address, as real clients behind nginx would have, so per-address rate limits
apply per client). The gunicorn process finds an ``sbatch`` on its PATH that adds ``--hold``:
every job the portal submits stays held and is cancelled at the end. A silent Git host (a
loopback TCP server that accepts and never answers, allowed by ``GIT_ALLOWED_PRIVATE_HOSTS``)
stands for a remote that hangs.

``--clients`` threads, each a ``requests.Session`` signed in through the login form as one of
the users (and holding that user's API token), sign in a few at a time; then all of them loop
without think time for ``--seconds``: dashboard ``/`` (28 %), one of the user's submission pages
(28 %), the API list (28 %), ``POST /api/v1/submissions`` of a 1-point sweep of the example
design (stand-in flow, a test double) with ``dry_run`` false (10 %), and the same as a dry run
on the silent host (6 %): half with ref ``main`` (the ``git ls-remote`` that resolves it times
out: 422), half with a full commit id, the same one each time for a user (no ls-remote; the
clone goes to the preview pool: 503 ``repository_fetching``, the answer the portal is built to
give). Probe threads ask ``/healthz`` every 100 ms meanwhile, twice: the health answer of
gunicorn's master (``PORTAL_HEALTH_BIND``, what nginx and a load balancer ask: "healthz") and the
app's own route, which queues behind the pages ("healthz_app", reported only).

Recorded: requests, throughput, p50/p95/p99 per action (healthz among them) and overall, status
counts, 5xx apart from the expected 503 ``repository_fetching`` of the dry runs, client errors,
server tracebacks, the machine's CPU during the load (gunicorn, this load generator, the rest),
and whether every submission answered 201 exists in the database at the end (and in which state
once the background launches settled). Targets: zero 5xx, ``/healthz`` (the master's) p99
under 1 s, no lost submission.

Usage: ``.venv/bin/python -m benchmarks.bench_load --clients 200 --seconds 120 --database
postgres``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import resource
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import (
    JobJanitor,
    base_parser,
    create_pg_database,
    emit,
    example_repo,
    exit_on_sigterm,
    free_port,
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
from tests.fixtures.gitdaemon import stalled_server

ACTIONS = (
    ("dashboard", 0.28),
    ("submission", 0.28),
    ("api_list", 0.28),
    ("submit", 0.1),
    ("dry_run_branch", 0.03),
    ("dry_run_commit", 0.03),
)
HEALTHZ_INTERVAL_S = 0.1
TARGET_HEALTHZ_P99_S = 1.0
#: Sign-ins under way at once (each is an Argon2 verification, ~0.2 s of two cores).
LOGINS_AT_ONCE = 4


@dataclass
class Run:
    """What the threads share: sign-ins a few at a time, then the load starts (``go``) once
    every client has signed in (``signed_in`` counts them) and stops at ``stop_at``."""

    logins: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(LOGINS_AT_ONCE))
    signed_in: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    go: threading.Event = field(default_factory=threading.Event)
    stop_at: float = 0.0


class Results:
    """Thread-safe: the clients' (action, seconds, status, API error code of a 5xx answer),
    the probe's (seconds, status), client errors (with one message each) and created uuids."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[str, float, int, str]] = []
        self.probe: list[tuple[float, int]] = []
        self.probe_app: list[tuple[float, int]] = []
        self.errors: Counter[str] = Counter()
        self.error_examples: dict[str, str] = {}
        self.created: list[str] = []

    def add(self, action: str, seconds: float, status: int, code: str) -> None:
        with self.lock:
            self.samples.append((action, seconds, status, code))

    def error(self, action: str, exc: BaseException) -> None:
        with self.lock:
            key = f"{action}: {type(exc).__name__}"
            self.errors[key] += 1
            self.error_examples.setdefault(key, str(exc)[:300])


def submit_body(
    repo_url: str, ref: str, number: int, rng: random.Random, dry_run: bool
) -> dict[str, Any]:
    """``POST /api/v1/submissions`` of a 1-point sweep of the example design."""
    return {
        "repo_url": repo_url,
        "ref": ref,
        "design_path": "designs/counter",
        "flow": "openlane1",
        "params": {"CLOCK_PERIOD": round(10 + rng.random(), 3)},
        "resources": {"cpus": 1, "mem_mb": 256, "time_minutes": 10, "partition": "debug"},
        "name": f"load client {number}",
        "notify": False,
        "dry_run": dry_run,
    }


def error_code(answer: Any) -> str:
    """The API error code of a 5xx answer ("" for other answers or a body without one)."""
    if answer.status_code < 500:
        return ""
    try:
        return str(answer.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def expected_503(action: str, status: int, code: str) -> bool:
    """A dry run's 503 ``repository_fetching``: the portal's answer while the clone runs."""
    return action.startswith("dry_run") and (status, code) == (503, "repository_fetching")


def client(
    number: int,
    base_url: str,
    seeded: Seeded,
    repos: tuple[str, str],
    run: Run,
    results: Results,
) -> None:
    """One simulated user session: sign in, wait for the start, loop until the stop."""
    users = sorted(seeded.tokens)
    username = users[number % len(users)]
    address = f"10.1.{number // 250}.{number % 250 + 1}"
    rng = random.Random(number)
    try:
        with run.logins:
            session = login_session(base_url, username, **{"X-Forwarded-For": address})
    except Exception as exc:  # a failed login is a result, not a crash
        results.error("login", exc)
        return
    finally:
        run.signed_in.release()
    repo_url, silent_url = repos
    # The same design commit each time the user asks again: the clone already under way.
    commit = hashlib.sha1(username.encode()).hexdigest()
    api_headers = {"Authorization": f"Bearer {seeded.tokens[username]}"}
    own = seeded.uuids.get(username) or [seeded.small_uuid]
    names, weights = zip(*ACTIONS, strict=True)
    run.go.wait()
    while time.monotonic() < run.stop_at:
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
                url, ref = {
                    "submit": (repo_url, "main"),
                    "dry_run_branch": (silent_url, "main"),
                    "dry_run_commit": (silent_url, commit),
                }[action]
                answer = session.post(
                    base_url + "/api/v1/submissions",
                    headers=api_headers,
                    json=submit_body(url, ref, number, rng, dry_run=action != "submit"),
                    timeout=60,
                )
            _ = answer.content
        except Exception as exc:
            results.error(action, exc)
            continue
        results.add(action, time.perf_counter() - started, answer.status_code, error_code(answer))
        if action == "submit" and answer.status_code == 201:
            with results.lock:
                results.created.append(answer.json()["submission"]["uuid"])


def probe(base_url: str, run: Run, results: Results, samples: list[tuple[float, int]]) -> None:
    """``GET <base_url>/healthz`` every :data:`HEALTHZ_INTERVAL_S` whether or not the previous
    one has answered (each in a thread of its own, on a fresh connection, as a load balancer
    checks), so a slow answer does not thin out the samples."""
    import requests

    def check() -> None:
        started = time.perf_counter()
        try:
            answer = requests.get(base_url + "/healthz", timeout=60)
        except requests.RequestException as exc:
            results.error("healthz", exc)
            return
        with results.lock:
            samples.append((time.perf_counter() - started, answer.status_code))

    run.go.wait()
    checks = []
    next_at = time.monotonic()
    while next_at < run.stop_at:
        checks.append(threading.Thread(target=check, daemon=True))
        checks[-1].start()
        next_at += HEALTHZ_INTERVAL_S
        time.sleep(max(0.0, next_at - time.monotonic()))
    for thread in checks:
        thread.join(timeout=90)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and of the children they waited for (a
    process that is gone counts nothing)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its children (gunicorn's master and its workers)."""
    return [pid, *map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]


def machine_cpu() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine since boot, over all CPUs (/proc/stat)."""
    # user nice system idle iowait irq softirq steal
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    every = sum(values) / os.sysconf("SC_CLK_TCK")
    return every - (values[3] + values[4]) / os.sysconf("SC_CLK_TCK"), every


def own_cpu() -> float:
    """CPU seconds of this process (every client thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


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
    """Seed, serve, sign every client in, load (health probe alongside), settle, check."""
    from sqlalchemy import create_engine, func, select, text

    from portal.models import Submission

    loadavg_before = [round(x, 2) for x in os.getloadavg()]  # anything else running?
    repo_url = example_repo(root)
    settings = portal_settings(
        root,
        SQLALCHEMY_DATABASE_URI=database_url,
        SITE_URL="http://127.0.0.1",
        TRUSTED_PROXIES=1,
        LAUNCH_IN_BACKGROUND=True,
        GIT_ALLOWED_PRIVATE_HOSTS=["127.0.0.1"],  # the silent host
        PREVIEW_CACHE_DIR=str(root / "previews"),
    )
    app = make_portal_app(settings)
    seeded = seed(app, args.submissions, args.tasks, users=10, main_share=0.1)
    with app.app_context():
        from portal.extensions import db

        last_seeded = db.session.scalar(select(func.max(Submission.id))) or 0
        db.session.remove()
        db.engine.dispose()
    env = portal_env(settings, root / "instance")
    health_url = f"http://127.0.0.1:{free_port()}"
    env["PORTAL_HEALTH_BIND"] = health_url.removeprefix("http://")
    env["PATH"] = f"{hold_shim(root / 'hold-bin')}:{env.get('PATH', '')}"
    log_path = root.parent / "olp-bench-load-gunicorn.log"
    results = Results()
    run = Run()
    silent_connections: list[Any] = []
    try:
        # The silent host closes first: its clones end (EOF), so the workers can stop at once.
        with (
            gunicorn(env, log_path, workers=args.workers, threads=args.threads) as server,
            stalled_server(silent_connections) as silent_port,
        ):
            repos = (repo_url, f"git://127.0.0.1:{silent_port}/design.git")
            threads = [
                threading.Thread(
                    target=client,
                    args=(n, server.url, seeded, repos, run, results),
                    daemon=True,
                )
                for n in range(args.clients)
            ]
            threads += [
                threading.Thread(target=probe, args=(url, run, results, into), daemon=True)
                for url, into in ((health_url, results.probe), (server.url, results.probe_app))
            ]
            login_started = time.perf_counter()
            for thread in threads:
                thread.start()
            for _ in range(args.clients):
                run.signed_in.acquire()
            login_seconds = time.perf_counter() - login_started
            log(f"{args.clients} clients signed in in {login_seconds:.1f} s; load starts")
            workers = process_tree(server.process.pid)
            cpu_before = (machine_cpu(), cpu_seconds(workers), own_cpu())
            run.stop_at = time.monotonic() + args.seconds
            started = time.perf_counter()
            run.go.set()
            for thread in threads:
                thread.join(timeout=args.seconds + 120)
            elapsed = time.perf_counter() - started
            (busy, every), served, own = machine_cpu(), cpu_seconds(workers), own_cpu()
            (busy0, every0), served0, own0 = cpu_before
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
    for action, seconds, status, _code in results.samples:
        by_action[action].append((seconds, status))
    by_action["healthz"] = results.probe
    by_action["healthz_app"] = results.probe_app
    statuses = [s for _, _, s, _ in results.samples]
    fetching = sum(1 for action, _, s, code in results.samples if expected_503(action, s, code))
    failures = Counter(
        f"{action} {s} {code}".rstrip()
        for action, _, s, code in results.samples
        if s >= 500 and not expected_503(action, s, code)
    )
    failures.update(f"healthz {s}" for _, s in results.probe if s >= 500)
    failures.update(f"healthz_app {s}" for _, s in results.probe_app if s >= 500)
    return {
        "requests": len(results.samples),
        "login_seconds": round(login_seconds, 1),
        "seconds": round(elapsed, 2),
        "loadavg_before": loadavg_before,
        "cpu": {
            "machine_busy_share": round((busy - busy0) / (every - every0), 3),
            "gunicorn_s": round(served - served0, 1),
            "load_generator_s": round(own - own0, 1),
            "other_s": round((busy - busy0) - (served - served0) - (own - own0), 1),
        },
        "throughput_per_s": round(len(results.samples) / elapsed, 1) if elapsed else None,
        "status": status_counts(statuses),
        "fivexx": failures.total(),
        "fivexx_by": dict(failures),
        "repository_fetching_503": fetching,
        "silent_host_connections": len(silent_connections),
        "client_errors": dict(results.errors),
        "client_error_examples": results.error_examples,
        "server_tracebacks": tracebacks,
        "latency": summary([s for _, s, _, _ in results.samples]),
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
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    if args.smoke:
        args.clients, args.seconds, args.submissions, args.tasks = 5, 5, 100, 1000
        args.settle = 60
    exit_on_sigterm()
    require_cluster()
    with workdir("load", args.keep) as root, JobJanitor() as janitor:
        if args.database == "sqlite":
            result = run_load(root, f"sqlite:///{root / 'portal.db'}", args, janitor)
        else:
            with postgres_server() as base:
                result = run_load(root, create_pg_database(base, "portal_load"), args, janitor)
    submit_statuses = result["actions"].get("submit", {}).get("status", {})
    healthz_p99 = result["actions"]["healthz"]["latency"].get("p99")
    healthz_ok = healthz_p99 is not None and healthz_p99 < TARGET_HEALTHZ_P99_S
    emit(
        record(
            "load",
            {"clients": args.clients, "seconds": args.seconds},
            database=args.database,
            gunicorn={"workers": args.workers, "threads": args.threads, "class": "gthread"},
            hold=True,
            healthz_interval_s=HEALTHZ_INTERVAL_S,
            **result,
            api_submit_available=any(code in submit_statuses for code in ("201", "400", "422")),
            targets={
                "zero_5xx": result["fivexx"] == 0,
                "healthz_p99_under_1s": healthz_ok,
                "no_lost_submission": not result["submissions_lost"],
            },
        )
    )


if __name__ == "__main__":
    main()
