"""Benchmark 3: page latency through gunicorn with a large seeded database, SQLite and PostgreSQL.

Setup per database: ``--submissions`` submissions and ``--tasks`` tasks seeded with SQLAlchemy
core bulk inserts (benchmarks/seed.py), then ``gunicorn 'portal.wsgi:app'`` (gthread workers)
on that database. A ``requests`` session signs in through the real login form (CSRF token from
the page); the API uses a personal API token.

Measured (after a warm-up), ``--requests`` sequential GETs each, time until the whole body
arrived: the dashboard ``/``, a typical submission page ``/submissions/<uuid>`` (a finished
submission of ~10 tasks), the page of the largest submission (10 % of all tasks) and the API
list ``/api/v1/submissions``. p50/p95 and the status counts are recorded; a page that is not
built yet answers 404 and is reported as such, not as a failure. Target: p95 <= 100 ms.

Usage: ``.venv/bin/python -m benchmarks.bench_pages [--db sqlite --db postgresql]``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    base_parser,
    create_pg_database,
    emit,
    gunicorn,
    log,
    login_session,
    make_portal_app,
    portal_env,
    portal_settings,
    postgres_server,
    record,
    status_counts,
    summary,
    timed_get,
    workdir,
)
from benchmarks.seed import Seeded, seed

TARGET_P95 = 0.100


def pages_of(seeded: Seeded) -> dict[str, tuple[str, bool]]:
    """name -> (path, uses the API token)."""
    return {
        "dashboard": ("/", False),
        "submission": (f"/submissions/{seeded.small_uuid}", False),
        "submission_large": (f"/submissions/{seeded.large_uuid}", False),
        "api_list": ("/api/v1/submissions", True),
    }


def measure(base_url: str, seeded: Seeded, requests_per_page: int, warmup: int) -> dict:
    """Sequential GETs of every page; latency summaries and status counts."""
    import requests

    browser = login_session(base_url, seeded.username)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {seeded.token}"
    results = {}
    for name, (path, uses_api) in pages_of(seeded).items():
        session = api if uses_api else browser
        for _ in range(warmup):
            timed_get(session, base_url + path)
        seconds, statuses, sizes = [], [], []
        for _ in range(requests_per_page):
            started = time.perf_counter()
            answer = session.get(base_url + path, timeout=60)
            body = answer.content
            seconds.append(time.perf_counter() - started)
            statuses.append(answer.status_code)
            sizes.append(len(body))
        ok = [s for s, code in zip(seconds, statuses, strict=True) if code == 200]
        p95 = summary(ok)["p95"] if ok else None
        results[name] = {
            "path": path.replace(seeded.small_uuid, "<uuid>").replace(seeded.large_uuid, "<uuid>"),
            "status": status_counts(statuses),
            "p50": round(statistics.median(ok), 4) if ok else None,
            "p95": p95,
            "all": summary(seconds),
            "bytes_median": int(statistics.median(sizes)),
            "target_p95_100ms": None if p95 is None else p95 <= TARGET_P95,
        }
        log(f"{name}: {results[name]['status']} p50={results[name]['p50']} p95={p95}")
    return results


def bench_database(root: Path, name: str, url: str, args: Any) -> dict[str, Any]:
    """Seed ``url``, serve it with gunicorn, measure every page."""
    settings = portal_settings(
        root,
        SQLALCHEMY_DATABASE_URI=url,
        RUN_ROOT=str(root / "runs"),
        SITE_URL="http://127.0.0.1",
        RATELIMIT_ENABLED=True,
    )
    app = make_portal_app(settings)
    started = time.perf_counter()
    seeded = seed(app, args.submissions, args.tasks)
    seed_seconds = time.perf_counter() - started
    with app.app_context():
        from portal.extensions import db

        db.engine.dispose()
    log(f"{name}: seeded {seeded.submissions} submissions, {seeded.tasks} tasks in "
        f"{seed_seconds:.1f} s")  # fmt: skip
    env = portal_env(settings, root / f"instance-{name}")
    log_path = root.parent / f"olp-bench-pages-{name}-gunicorn.log"
    with gunicorn(env, log_path, workers=args.workers, threads=args.threads) as server:
        pages = measure(server.url, seeded, args.requests, args.warmup)
        tracebacks = server.count_in_log(r"^Traceback")
    return {
        "database": name,
        "seed_seconds": round(seed_seconds, 1),
        "submissions": seeded.submissions,
        "tasks": seeded.tasks,
        "owned_by_user": seeded.owned,
        "large_submission_tasks": max(1, seeded.tasks // 10),
        "server_tracebacks": tracebacks,
        "pages": pages,
    }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--submissions", type=int, default=10000)
    parser.add_argument("--tasks", type=int, default=100000)
    parser.add_argument("--requests", type=int, default=200, help="measured GETs per page")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--db", action="append", choices=("sqlite", "postgresql"), help="default: both"
    )
    args = parser.parse_args()
    if args.smoke:
        args.submissions, args.tasks, args.requests, args.warmup = 200, 2000, 10, 2
    databases = args.db or ["sqlite", "postgresql"]
    results = []
    with workdir("pages", args.keep) as root:
        for name in databases:
            folder = root / name
            folder.mkdir()
            if name == "sqlite":
                url = f"sqlite:///{folder / 'portal.db'}"
                results.append(bench_database(folder, name, url, args))
            else:
                with postgres_server() as base:
                    url = create_pg_database(base, "portal_bench")
                    results.append(bench_database(folder, name, url, args))
    missing = sorted(
        {
            page
            for result in results
            for page, data in result["pages"].items()
            if "404" in data["status"] and data["p50"] is None
        }
    )
    p95s = [data["p95"] for r in results for data in r["pages"].values() if data["p95"]]
    emit(
        record(
            "pages",
            {"submissions": args.submissions, "tasks": args.tasks},
            requests_per_page=args.requests,
            gunicorn={"workers": args.workers, "threads": args.threads, "class": "gthread"},
            results=results,
            pages_not_built=missing,
            targets={
                "p95_at_most_100ms": bool(p95s) and max(p95s) <= TARGET_P95,
                "every_page_answers": not missing,
            },
        )
    )


if __name__ == "__main__":
    main()
