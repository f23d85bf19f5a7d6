"""Shared pieces of the benchmarks.

* the JSON record every benchmark prints (one line on stdout; progress goes to stderr) with the
  machine it ran on;
* statistics (median, percentiles) and timing;
* a portal app on a temporary database running the stand-in flow (a test double), with the
  example design in a local bare Git repository (``file://``);
* :class:`CountingTransport`, a Slurm transport that counts every command by program and adds
  ``--hold`` to every ``sbatch``, so nothing a benchmark submits ever runs;
* :class:`JobJanitor`, which cancels every job a benchmark created, also on failure;
* a throwaway PostgreSQL server and a gunicorn server.

Run a benchmark from the repository root: ``.venv/bin/python -m benchmarks.bench_reports``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.slurm.client import SlurmClient, program_name
from portal.slurm.transports import CommandResult, LocalTransport

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = REPO_ROOT / ".venv" / "bin"
EXAMPLE = REPO_ROOT / "examples" / "counter"
STANDIN = REPO_ROOT / "tests" / "standin" / "openlane_standin.py"
#: Real recorded OpenLane report files kept in the repository (see its README.md).
OPENLANE_DATA = REPO_ROOT / "tests" / "data" / "openlane"
#: Every job a benchmark submits outside the portal carries this name prefix.
JOB_PREFIX = "olp-bench"
PASSWORD = "benchmark horse battery"


# --------------------------------------------------------------------------- output


def log(message: str) -> None:
    """Progress for humans: stderr, so stdout stays one JSON record."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def emit(record: Mapping[str, Any]) -> None:
    """Print THE record of this run: one line of JSON on stdout."""
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


def base_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--smoke`` (tiny sizes, for CI) and ``--keep`` (keep tmp)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder, removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=f"olp-bench-{prefix}-"))
    try:
        yield path
    finally:
        if keep:
            log(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so ``finally`` blocks (job cancelling) still run."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --------------------------------------------------------------------------- machine


def _run_text(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: host, CPUs, Python, Slurm, load, the commit measured."""
    slurm_cpus = _run_text(["sinfo", "-h", "-o", "%c"]).split()
    commit = _run_text(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"])
    dirty = bool(_run_text(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "portal"]))
    return {
        "uname": _run_text(["uname", "-a"]) or " ".join(platform.uname()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "slurm": _run_text(["sinfo", "--version"]).removeprefix("slurm "),
        "slurm_node_cpus": int(slurm_cpus[0]) if slurm_cpus and slurm_cpus[0].isdigit() else None,
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "commit": commit + ("+dirty" if dirty else ""),
    }


def record(name: str, size: Any, **fields: Any) -> dict[str, Any]:
    """The standard record layout: name, size, machine, then the benchmark's own fields."""
    return {"name": name, "size": size, "machine": machine_info(), **fields}


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """n, median, p95, p99, min, max of ``values`` (seconds), rounded."""
    if not values:
        return {"n": 0}

    def r(x: float | None) -> float | None:
        return None if x is None else round(x, digits)

    return {
        "n": len(values),
        "median": r(statistics.median(values)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "min": r(min(values)),
        "max": r(max(values)),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded, None when either is missing or zero."""
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


@dataclass
class Timed:
    """Wall, own-process CPU and child-process CPU seconds of a block."""

    wall: float = 0.0
    cpu: float = 0.0
    child_cpu: float = 0.0


@contextlib.contextmanager
def timed() -> Iterator[Timed]:
    """Measure the enclosed block (CPU of this process and of the children it waited for)."""
    result = Timed()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        yield result
    finally:
        result.wall = time.perf_counter() - wall
        result.cpu = time.process_time() - cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        result.child_cpu = (after.ru_utime + after.ru_stime) - (
            children.ru_utime + children.ru_stime
        )


# --------------------------------------------------------------------------- Slurm


class CountingTransport(LocalTransport):
    """The portal's local transport, counting commands by program; ``sbatch`` gets ``--hold``.

    Every job id sbatch prints is remembered in :attr:`job_ids` (for the janitor).
    """

    def __init__(self, hold: bool = True) -> None:
        super().__init__()
        self.hold = hold
        self.calls: Counter[str] = Counter()
        self.job_ids: list[str] = []

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        program = program_name(argv)
        self.calls[program] += 1
        if program == "sbatch" and self.hold:
            argv = [argv[0], "--hold", *argv[1:]]
        result = super().run(argv, stdin=stdin, timeout=timeout)
        if program == "sbatch" and result.ok:
            self.job_ids.append(result.stdout.strip().split(";", 1)[0])
        return result

    def reset(self) -> None:
        """Start counting from zero (job ids are kept)."""
        self.calls.clear()


@dataclass
class JobJanitor:
    """Cancels every job it was told about, and every job with one of its names.

    Use as a context manager around anything that submits: the ``finally`` cancels even when
    the benchmark fails or is interrupted (SIGTERM is turned into SystemExit).
    """

    job_ids: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)

    def add(self, *job_ids: str) -> None:
        self.job_ids.update(j.split("_", 1)[0] for j in job_ids if j)

    def cancel(self) -> None:
        ids = sorted(self.job_ids)
        for start in range(0, len(ids), 500):
            subprocess.run(["scancel", *ids[start : start + 500]], capture_output=True, timeout=120)
        names = sorted(self.names)
        for start in range(0, len(names), 100):
            chunk = ",".join(names[start : start + 100])
            subprocess.run(["scancel", "--name", chunk], capture_output=True, timeout=120)
        if ids or names:
            log(f"cancelled {len(ids)} job ids and the jobs named by {len(names)} names")
        self.job_ids.clear()
        self.names.clear()

    def __enter__(self) -> JobJanitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def hold_shim(folder: Path) -> Path:
    """A folder with an ``sbatch`` that runs the real one with ``--hold`` first: put it first
    on the PATH of a portal process (gunicorn) and nothing it submits ever runs."""
    real = shutil.which("sbatch")
    if real is None:
        raise SystemExit("sbatch not found")
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "sbatch"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(real)} --hold "$@"\n')
    shim.chmod(0o755)
    return folder


def wait_for_job_room(tasks: int, share: float = 0.4) -> float:
    """Wait until ``tasks`` more records keep this cluster under ``share`` of MaxJobCount.

    A held or cancelled 10,000-task array still counts 10,000 records for MinJobAge (300 s):
    without this, a few rounds of the 10,000-point benchmark fill MaxJobCount and every other
    user's sbatch blocks. Counts with the portal's own client (the check its launch makes with
    ``SLURM_JOB_COUNT_SHARE``, 0.8, is looser). Returns the seconds waited.
    """
    slurm = SlurmClient(LocalTransport())
    max_jobs, min_age = slurm.max_job_count(), slurm.min_job_age()
    limit = int(max_jobs * share)
    if tasks > limit:
        raise SystemExit(f"{tasks} tasks exceed {share:.0%} of MaxJobCount ({max_jobs})")
    started = time.monotonic()
    while (current := slurm.job_records()) + tasks > limit:
        if time.monotonic() - started > min_age + 300:
            raise RuntimeError(f"{current} job records still held after {min_age + 300} s")
        log(f"{current} job records + {tasks} would pass {limit}: waiting for Slurm to purge")
        time.sleep(15)
    return time.monotonic() - started


def squeue_count(name_prefix: str) -> int:
    """How many of this user's queued job records carry a name starting with the prefix."""
    out = _run_text(["squeue", "-h", "-r", "-o", "%j"])
    return sum(1 for line in out.splitlines() if line.startswith(name_prefix))


def wait_sacct_knows(job_ids: Iterable[str], timeout: float = 60) -> float:
    """Wait until slurmdbd has recorded every job (sacct answers for it); return the wait."""
    wanted = {j.split("_", 1)[0] for j in job_ids}
    started = time.monotonic()
    while wanted:
        out = _run_text(["sacct", "-n", "-X", "-P", "-o", "JobIDRaw", "-j", ",".join(wanted)])
        wanted -= {line.strip() for line in out.splitlines()}
        if not wanted:
            break
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"sacct still does not know jobs {sorted(wanted)[:5]}...")
        time.sleep(0.5)
    return time.monotonic() - started


def require_cluster() -> None:
    """Fail clearly when the local Slurm cluster is not up."""
    if "is UP" not in _run_text(["scontrol", "ping"]):
        raise SystemExit("Slurm is not reachable (scontrol ping); run scripts/cluster-up first")


# --------------------------------------------------------------------------- portal


def example_repo(root: Path) -> str:
    """A bare Git repository of examples/counter (at designs/counter); its file:// URL."""
    from tests.fixtures.gitdaemon import make_bare_repo

    src = root / "example-src"
    shutil.copytree(EXAMPLE, src / "designs" / "counter")
    repo = make_bare_repo(src, root / "counter.git")
    return repo.path.as_uri()


def portal_settings(root: Path, **overrides: Any) -> dict[str, Any]:
    """Settings like tests/integration/engine_helpers.make_app: stand-in flow, temp SQLite,
    partition debug, file:// repositories allowed, no approval for benchmark sizes."""
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'portal.db'}",
        "RUN_ROOT": str(root / "runs"),
        "FLOW_EXECUTABLE_OVERRIDE": str(STANDIN),
        "SLURM_PARTITION": "debug",
        "GIT_ALLOW_FILE_URLS": True,
        "APPROVAL_CORE_HOURS": 1e9,
        "APPROVAL_ARRAY_SIZE": 1_000_000,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 1,
        "SECRET_KEY": "benchmark-secret-key",
        **overrides,
    }


def make_portal_app(settings: Mapping[str, Any]) -> Any:
    """A portal app on ``settings`` with the database migrated to the newest schema."""
    from flask_migrate import upgrade

    from portal import create_app

    app = create_app(dict(settings))
    with app.app_context():
        upgrade()
    return app


def add_user(username: str = "bench", role: str = "user") -> Any:
    """A user with :data:`PASSWORD` (inside an app context)."""
    from portal import accounts

    return accounts.create_user(
        username, f"{username}@example.org", PASSWORD, role=role, slurm_account="openlane"
    )


def grid_sweep(points: int) -> dict[str, Any]:
    """A grid sweep of exactly ``points`` points (CLOCK_PERIOD x FP_CORE_UTIL, or a list)."""
    for utils in range(min(points, 90), 0, -1):  # FP_CORE_UTIL in 5..94
        if points % utils == 0:
            clocks = points // utils
            break
    return {
        "kind": "grid",
        "parameters": {
            "CLOCK_PERIOD": [round(5 + 0.01 * i, 2) for i in range(clocks)],
            "FP_CORE_UTIL": [5 + i for i in range(utils)],
        },
    }


def portal_once(
    app: Any,
    url: str,
    points: int,
    transport: CountingTransport,
    username: str = "bench",
    notify: bool = False,
    janitor: JobJanitor | None = None,
) -> dict[str, Any]:
    """One submission of ``points`` points through the whole portal path (inside an app
    context): plan, create, launch. Its timings, Slurm calls, job ids and uuid."""
    from sqlalchemy import select

    from portal import submit as svc
    from portal.extensions import db
    from portal.models import User
    from portal.slurm.client import SlurmClient

    transport.reset()
    owner = db.session.scalar(select(User).where(User.username == username))
    request = svc.SubmissionRequest(
        repo_url=url,
        ref="main",
        design_path="designs/counter",
        sweep=grid_sweep(points),
        resources=svc.Resources(time_minutes=10, mem_mb=256),
        name=f"{JOB_PREFIX} {points} points",
        notify=notify,
    )
    with timed() as total:
        slurm = SlurmClient(transport, timeout=120)
        with timed() as plan_t:
            plan = svc.plan_submission(request, app.config, slurm, owner=owner)
        with timed() as create_t:
            submission = svc.create_submission(plan, owner)
        if janitor is not None:  # cancelled by name even if launch fails after its sbatch
            janitor.names.add(submission.job_name)
        with timed() as launch_t:
            svc.launch(submission, app.config, slurm)
    if submission.state != "QUEUED":
        raise RuntimeError(f"portal submission ended {submission.state}: {submission.error}")
    result = {
        "seconds": total.wall,
        "cpu_seconds": total.cpu,
        "plan": plan_t.wall,
        "create": create_t.wall,
        "launch": launch_t.wall,
        "calls": dict(transport.calls),
        "job_ids": list(submission.job_ids),
        "uuid": submission.uuid,
        "tasks": len(plan.points),
    }
    db.session.remove()  # a web request would start from a fresh session too
    return result


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server (the code of tests/fixtures/postgres.py); yields the base
    URL ``postgresql+psycopg://postgres@127.0.0.1:<port>``."""
    from tests.fixtures import postgres as pg

    root = Path(tempfile.mkdtemp(prefix="olp-bench-pg-"))
    shutil.chown(root, "postgres", "postgres")
    data = root / "data"
    init = pg._as_postgres(pg._pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed: {init.stderr}")
    port = pg._free_port()
    opts = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
    start = pg._as_postgres(
        pg._pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log"), "start"
    )
    if start.returncode != 0:
        raise RuntimeError(f"PostgreSQL did not start: {start.stderr}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        pg._as_postgres(pg._pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def create_pg_database(base_url: str, name: str) -> str:
    """A fresh database on the throwaway server; its URL."""
    from tests.fixtures.postgres import create_database

    return create_database(base_url, name)


def portal_env(settings: Mapping[str, Any], instance: Path) -> dict[str, str]:
    """The environment that gives ``gunicorn portal.wsgi:app`` these settings."""
    env = dict(os.environ)
    env["PORTAL_INSTANCE_PATH"] = str(instance)
    for key, value in settings.items():
        env[f"PORTAL_{key}"] = value if isinstance(value, str) else json.dumps(value)
    return env


@dataclass
class Gunicorn:
    """A running ``gunicorn portal.wsgi:app`` on a loopback port."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def count_in_log(self, pattern: str) -> int:
        """How many log lines match ``pattern`` (e.g. tracebacks)."""
        if not self.log_path.exists():
            return 0
        regex = re.compile(pattern)
        return sum(1 for line in self.log_path.read_text(errors="replace").splitlines()
                   if regex.search(line))  # fmt: skip


@contextlib.contextmanager
def gunicorn(
    env: Mapping[str, str],
    log_path: Path,
    *,
    workers: int = 2,
    threads: int = 4,
    extra: Sequence[str] = (),
) -> Iterator[Gunicorn]:
    """Start gunicorn with ``env`` and wait until it answers; stop it (its pid only) after."""
    port = free_port()
    argv = [
        str(VENV_BIN / "gunicorn"),
        "--config", "python:portal.gunicorn_conf",  # the portal's own (tokens masked in logs)
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--worker-class", "gthread",
        "--timeout", "120",
        "--access-logfile", "-",
        "--access-logformat", '%(s)s %(m)s %(U)s %(L)s',
        *extra,
        "portal.wsgi:app",
    ]  # fmt: skip
    handle = log_path.open("wb")
    process = subprocess.Popen(
        argv, env=dict(env), cwd=REPO_ROOT, stdout=handle, stderr=subprocess.STDOUT
    )
    server = Gunicorn(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_http(server, timeout=60)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        handle.close()


def _wait_http(server: Gunicorn, timeout: float) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{server.log_tail()}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(server.url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout} s:\n{server.log_tail()}")


def login_session(base_url: str, username: str, password: str = PASSWORD, **headers: str) -> Any:
    """A requests.Session logged in through the real login form (CSRF token from the page)."""
    import requests

    from tests.integration.web_helpers import csrf

    session = requests.Session()
    session.headers.update(headers)
    page = session.get(base_url + "/auth/login", timeout=30)
    page.raise_for_status()
    answer = session.post(
        base_url + "/auth/login",
        data={"csrf_token": csrf(page.text), "login": username, "password": password},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"login of {username} failed: HTTP {answer.status_code}")
    return session


def timed_get(session: Any, url: str, **kwargs: Any) -> tuple[float, int]:
    """GET ``url``; (seconds until the whole body arrived, status)."""
    started = time.perf_counter()
    answer = session.get(url, timeout=60, **kwargs)
    _ = answer.content
    return time.perf_counter() - started, answer.status_code


def status_counts(statuses: Iterable[int]) -> dict[str, int]:
    """{"200": n, "404": m, ...}."""
    return {str(k): v for k, v in sorted(Counter(statuses).items())}


def pyinstrument_profile(func: Callable[[], Any], out: Path) -> Any:
    """Run ``func`` under pyinstrument; write the text report to ``out``; return its value."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    try:
        return func()
    finally:
        profiler.stop()
        out.write_text(profiler.output_text(unicode=False, color=False, show_all=False))
        log(f"profile written to {out}")
