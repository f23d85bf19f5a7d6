"""The REAL LibreLane flow (stopped after synthesis, then OpenSTA) through the portal.

Two measurements, each against a baseline taken in the same run:

1. **Per-task overhead of the array script.** One submission is staged by the portal (clone,
   packed configs, ``job.sbatch``); then, round by round and in alternating order, task ``i``
   runs (a) as the portal's array script does it (``bash job.sbatch`` with
   ``SLURM_ARRAY_TASK_ID=i``: config unpacked from the pack, ``started``/``exit_code``
   bookkeeping, then LibreLane) and (b) by hand: the same LibreLane command on the same config
   in a folder of its own. Overhead = script wall time / hand wall time - 1 (target <= 5 %).
2. **Makespan of a real sweep on the cluster.** ``--points`` points (default 50) are submitted
   as one array and run to the end; the makespan (first ``started`` to last ``exit_code``, file
   times in ns) is compared with the ideal on this machine's cores, ``points x median solo task
   time / cores`` (solo times from part 1's hand runs), and with the sum of the tasks' own wall
   times / cores (target <= 1.15). Run once without a throttle (Slurm starts as many tasks as
   the node advertises CPUs) and once throttled to the core count.

Run: ``.venv/bin/python -m benchmarks.bench_librelane`` (``--smoke``: 2 rounds, 4 points).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    JOB_PREFIX,
    REPO_ROOT,
    JobJanitor,
    add_user,
    base_parser,
    emit,
    example_repo,
    log,
    make_portal_app,
    portal_settings,
    ratio,
    record,
    require_cluster,
    summary,
    workdir,
)

LIBRELANE = REPO_ROOT / ".venv-librelane" / "bin" / "librelane"
YOSYS = REPO_ROOT / ".venv-librelane" / "bin" / "yosys-pyosys"
PDK_ROOT = REPO_ROOT / ".pdk"
PERIODS = (2, 3, 4, 5, 6, 7, 8, 9, 10, 12)
STRATEGIES = ("AREA 0", "AREA 1", "DELAY 0", "DELAY 1", "DELAY 2")


def native_settings(root: Path, throttle: int = 0) -> dict[str, Any]:
    return portal_settings(
        root,
        FLOW_EXECUTABLE_OVERRIDE=None,
        CONTAINER_RUNTIME="native",
        LIBRELANE_EXECUTABLE=str(LIBRELANE),
        LIBRELANE_YOSYS=str(YOSYS),
        LIBRELANE_STEPS="synthesis",
        PDK_ROOT=str(PDK_ROOT),
        SLURM_ARRAY_THROTTLE=throttle,
    )


def sweep(points: int) -> dict[str, Any]:
    """``points`` (CLOCK_PERIOD, SYNTH_STRATEGY) pairs, as a list sweep."""
    pairs = [(p, s) for s in STRATEGIES for p in PERIODS][:points]
    if len(pairs) < points:
        raise SystemExit(f"at most {len(PERIODS) * len(STRATEGIES)} points")
    return {
        "kind": "list",
        "points": [{"CLOCK_PERIOD": p, "SYNTH_STRATEGY": s} for p, s in pairs],
    }


def create(app: Any, url: str, points: int, throttle: int = 0) -> Any:
    from sqlalchemy import select

    from portal import submit as svc
    from portal.cluster.connect import slurm_client
    from portal.extensions import db
    from portal.models import User

    request = svc.SubmissionRequest(
        repo_url=url,
        ref="main",
        design_path="designs/counter",
        flow="librelane",
        sweep=sweep(points),
        resources=svc.Resources(time_minutes=10, mem_mb=1024, throttle=throttle),
        name=f"{JOB_PREFIX} librelane {points}",
        notify=False,
    )
    owner = db.session.scalar(select(User).where(User.username == "bench"))
    plan = svc.plan_submission(request, app.config, slurm_client(app.config), owner=owner)
    return svc.create_submission(plan, owner)


def flow_env() -> dict[str, str]:
    return {**os.environ, "_LLN_OVERRIDE_YOSYS": str(YOSYS)}


def run_script(run_dir: Path, index: int) -> float:
    """Task ``index`` as the array script runs it (no Slurm: the script itself)."""
    env = {**flow_env(), "SLURM_ARRAY_TASK_ID": str(index), "SLURM_ARRAY_JOB_ID": "0"}
    shutil.rmtree(run_dir / "tasks" / str(index), ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run(
        ["bash", str(run_dir / "job.sbatch")],
        cwd=run_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"array script task {index}: {done.stdout[-2000:]}{done.stderr}")
    return seconds


def run_by_hand(run_dir: Path, index: int, hand_root: Path) -> float:
    """The same LibreLane command on the same config, typed by a designer."""
    from portal.submit.taskconfigs import read_task_config

    folder = hand_root / str(index)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    staged = read_task_config(run_dir, index)
    (folder / "config.json").write_text(staged.text)
    (folder / "design").symlink_to(run_dir / "design" / "designs" / "counter")
    argv = [
        str(LIBRELANE),
        "--manual-pdk",
        "--pdk-root",
        str(PDK_ROOT),
        "--pdk",
        "sky130A",
        "--scl",
        "sky130_fd_sc_hd",
        "--run-tag",
        f"task-{index:04d}",
        "--overwrite",
        "--hide-progress-bar",
        "--design-dir",
        str(folder),
        str(folder / "config.json"),
    ]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=folder, env=flow_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"by hand, task {index}: {done.stdout[-2000:]}")
    return seconds


def overhead(app: Any, url: str, root: Path, rounds: int) -> dict[str, Any]:
    from portal import submit as svc

    submission = create(app, url, rounds)
    svc.stage(submission, app.config)
    run_dir = Path(submission.run_dir)
    script, hand = [], []
    for index in range(rounds):
        order = ("script", "hand") if index % 2 == 0 else ("hand", "script")
        for kind in order:
            if kind == "script":
                script.append(run_script(run_dir, index))
            else:
                hand.append(run_by_hand(run_dir, index, root / "hand"))
        log(f"round {index + 1}/{rounds}: script {script[-1]:.3f} s, by hand {hand[-1]:.3f} s")
    per_round = [s / h - 1 for s, h in zip(script, hand, strict=True)]
    return {
        "rounds": rounds,
        "array_script": summary(script),
        "by_hand": summary(hand),
        "overhead_median": round(statistics.median(per_round), 4),
        "overhead_per_round": [round(x, 4) for x in per_round],
        "solo_task_median": statistics.median(hand),
    }


def makespan(app: Any, url: str, points: int, throttle: int, solo: float) -> dict[str, Any]:
    from portal import submit as svc
    from portal.cluster.connect import slurm_client
    from portal.extensions import db
    from portal.track.poller import poll_once

    slurm = slurm_client(app.config)
    submission = create(app, url, points, throttle)
    with JobJanitor() as janitor:
        janitor.names.add(submission.job_name)
        svc.launch(submission, app.config, slurm)
        if submission.state != "QUEUED":
            raise RuntimeError(f"launch ended {submission.state}: {submission.error}")
        deadline = time.monotonic() + 60 + 10 * points
        while submission.state not in ("COMPLETED", "FAILED", "PARTIAL", "CANCELLED"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"sweep still {submission.state}")
            time.sleep(1)
            poll_once(slurm)
            db.session.refresh(submission)
    if submission.state != "COMPLETED":
        raise RuntimeError(f"sweep ended {submission.state}")
    tasks = Path(submission.run_dir) / "tasks"
    spans = [
        (
            (tasks / str(i) / "started").stat().st_mtime_ns,
            (tasks / str(i) / "exit_code").stat().st_mtime_ns,
        )
        for i in range(points)
    ]
    wall = (max(end for _, end in spans) - min(start for start, _ in spans)) / 1e9
    task_seconds = [(end - start) / 1e9 for start, end in spans]
    cores = os.cpu_count() or 1
    ideal = points * solo / cores
    return {
        "points": points,
        "throttle": throttle,
        "arrays": len(submission.job_ids),
        "makespan_s": round(wall, 3),
        "task_seconds": summary(task_seconds),
        "ideal_s": round(ideal, 3),
        "makespan_over_ideal": ratio(wall, ideal),
        "makespan_over_sum_per_core": ratio(wall, sum(task_seconds) / cores),
    }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=10, help="overhead rounds (default 10)")
    parser.add_argument("--points", type=int, default=50, help="sweep size (default 50)")
    args = parser.parse_args()
    rounds, points = (2, 4) if args.smoke else (args.rounds, args.points)
    require_cluster()
    if not LIBRELANE.exists() or not (PDK_ROOT / "sky130A").is_dir():
        raise SystemExit("LibreLane or the PDK is missing: run scripts/install-librelane")
    cores = os.cpu_count() or 1
    with workdir("librelane", args.keep) as root:
        url = example_repo(root)
        app = make_portal_app(native_settings(root))
        with app.app_context():
            add_user()
            from portal.extensions import db

            db.session.commit()
            log(f"overhead: {rounds} rounds of the array script against LibreLane by hand")
            part1 = overhead(app, url, root, rounds)
            runs = []
            for throttle in (0, cores):
                log(f"makespan: {points} points, throttle {throttle or 'none'}")
                runs.append(makespan(app, url, points, throttle, part1["solo_task_median"]))
    emit(record("librelane", points, cores=cores, overhead=part1, makespan=runs))


if __name__ == "__main__":
    main()
