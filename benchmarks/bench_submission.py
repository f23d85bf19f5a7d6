"""Benchmark 1: sweep submission through the portal's whole submit path, against baselines.

Portal: ``plan_submission`` (validate, sinfo) -> ``create_submission`` (submission + one row per
point, one commit) -> ``launch`` (clone of a local bare repository of examples/counter, one
config per task, sweep.tsv, render, ONE ``sbatch``, commits). A fresh SlurmClient per
submission, as the launcher makes one. Every ``sbatch`` gets ``--hold`` (CountingTransport), so
nothing runs; everything is cancelled right after it is measured.

Baselines, on the same cluster in the same run:
(a) a naive loop of one ``sbatch --hold --wrap true`` per point (cheaper per point than any real
    per-point submitter, which would also write a script per point). Above ``--loop-sample``
    points a sample is measured and the total extrapolated from its mean (said in the record).
(b) submitit's ``AutoExecutor.map_array`` over as many trivial tasks
    (``slurm_additional_parameters={"hold": True}``): it pickles each task and runs one sbatch.

Usage: ``.venv/bin/python -m benchmarks.bench_submission --size 1000 [--size 10000]``.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    JOB_PREFIX,
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
    workdir,
)


def trivial(x: int) -> int:
    """The task submitit is asked to run (it never does: the array is held, then cancelled)."""
    return x


def naive_loop(points: int, janitor: JobJanitor, name: str) -> tuple[list[float], float]:
    """One sbatch per point; (per-call seconds, total seconds)."""
    argv = [
        "sbatch", "--parsable", "--hold", "--job-name", name, "--partition", "debug",
        "--time", "10", "--mem", "256M", "--output", "/dev/null", "--wrap", "true",
    ]  # fmt: skip
    per_call = []
    started = time.perf_counter()
    for _ in range(points):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        per_call.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise RuntimeError(f"sbatch failed: {done.stderr.strip()}")
        janitor.add(done.stdout.strip().split(";", 1)[0])
    return per_call, time.perf_counter() - started


def submitit_once(folder: Path, points: int, janitor: JobJanitor, name: str) -> dict[str, float]:
    """submitit's map_array over ``points`` trivial tasks (held); wall and CPU seconds."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    executor.update_parameters(
        name=name,
        timeout_min=10,
        mem_gb=0.25,
        cpus_per_task=1,
        slurm_partition="debug",
        slurm_additional_parameters={"hold": True},
    )
    try:
        with timed() as t:
            jobs = executor.map_array(trivial, range(points))
    finally:
        janitor.names.add(name)
    janitor.add(*(job.job_id for job in jobs[:1]))
    return {"seconds": t.wall, "cpu_seconds": t.cpu}


def bench_size(
    root: Path, app: Any, url: str, points: int, args: Any, janitor: JobJanitor
) -> dict[str, Any]:
    """All three ways for one size, interleaved (portal, submitit, a slice of the loop) so a
    busy machine slows every way alike; ratios are also taken pair by pair."""
    from portal.extensions import db

    transport = CountingTransport(hold=True)
    portal_runs: list[dict[str, Any]] = []
    submitit_runs: list[dict[str, float]] = []
    sample = min(points, args.loop_sample)
    slices = [sample // args.repeats + (i < sample % args.repeats) for i in range(args.repeats)]
    per_call: list[float] = []
    loop_total = 0.0
    loop_name = f"{JOB_PREFIX}-loop-{points}"
    with app.app_context():
        log(f"{points} points: warm-up (imports, first clone, submitit import)")
        warm = portal_once(app, url, min(points, 10), transport, janitor=janitor)
        janitor.add(*warm["job_ids"])
        janitor.cancel()
        waited = 0.0
        for number in range(args.repeats):
            waited += wait_for_job_room(points)
            try:
                run = portal_once(app, url, points, transport, janitor=janitor)
                janitor.add(*run["job_ids"])
            finally:
                janitor.cancel()  # held jobs never run; cancel before the next round
            portal_runs.append(run)
            name = f"{JOB_PREFIX}-submitit-{points}-{number}"
            waited += wait_for_job_room(points)
            try:
                folder = root / "submitit" / f"{points}-{number}"
                submitit_runs.append(submitit_once(folder, points, janitor, name))
            finally:
                janitor.cancel()
            janitor.names.add(loop_name)
            try:
                calls, total = naive_loop(slices[number], janitor, loop_name)
            finally:
                janitor.cancel()
            per_call += calls
            loop_total += total
            log(
                f"{points} points, round {number + 1}: portal {run['seconds']:.3f} s "
                f"{run['calls']}, submitit {submitit_runs[-1]['seconds']:.3f} s, "
                f"{slices[number]} loop sbatch calls {total:.3f} s"
            )
        if args.profile:
            out = root.parent / f"profile-submission-{points}.txt"
            try:
                wait_for_job_room(points)
                run = pyinstrument_profile(
                    lambda: portal_once(app, url, points, transport, janitor=janitor), out
                )
                janitor.add(*run["job_ids"])
            finally:
                janitor.cancel()
        db.session.remove()
    loop_estimate = loop_total if sample == points else statistics.fmean(per_call) * points
    portal_median = statistics.median(r["seconds"] for r in portal_runs)
    submitit_median = statistics.median(r["seconds"] for r in submitit_runs)
    pair_ratios = [
        s["seconds"] / p["seconds"] for p, s in zip(portal_runs, submitit_runs, strict=True)
    ]
    sbatch_calls = sorted({r["calls"].get("sbatch", 0) for r in portal_runs})
    return {
        "points": points,
        "waited_for_slurm_job_room_seconds": round(waited, 1),
        "portal": {
            **summary([r["seconds"] for r in portal_runs]),
            "cpu_median": round(statistics.median(r["cpu_seconds"] for r in portal_runs), 4),
            "phases_median": {
                phase: round(statistics.median(r[phase] for r in portal_runs), 4)
                for phase in ("plan", "create", "launch")
            },
            "sbatch_calls": sbatch_calls[0] if len(sbatch_calls) == 1 else sbatch_calls,
            "slurm_calls": portal_runs[-1]["calls"],
            "arrays": len(portal_runs[-1]["job_ids"]),
            "tasks": portal_runs[-1]["tasks"],
        },
        "naive_loop": {
            "measured_points": sample,
            "measured_seconds": round(loop_total, 4),
            "per_call": summary(per_call, digits=5),
            "extrapolated": sample != points,
            "seconds": round(loop_estimate, 4),
            "sbatch_calls": points,
        },
        "submitit": {
            **summary([r["seconds"] for r in submitit_runs]),
            "cpu_median": round(statistics.median(r["cpu_seconds"] for r in submitit_runs), 4),
            "sbatch_calls": 1,
        },
        "ratios": {
            "submitit_over_portal": ratio(submitit_median, portal_median),
            "submitit_over_portal_pairwise_median": round(statistics.median(pair_ratios), 2),
            "loop_over_portal": ratio(loop_estimate, portal_median),
        },
        "targets": {
            "one_sbatch_per_array": sbatch_calls == [len(portal_runs[-1]["job_ids"])] == [1],
            "at_least_as_fast_as_submitit": portal_median <= submitit_median,
            "at_least_25x_faster_than_loop": loop_estimate >= 25 * portal_median,
        },
    }


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, action="append", help="sweep points (repeatable)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per way (median)")
    parser.add_argument("--loop-sample", type=int, default=1000, help="naive loop: max points")
    parser.add_argument("--profile", action="store_true", help="pyinstrument one portal run")
    args = parser.parse_args()
    sizes = args.size or ([20] if args.smoke else [1000, 10000])
    if args.smoke:
        args.repeats, args.loop_sample = min(args.repeats, 2), min(args.loop_sample, 5)
    exit_on_sigterm()
    require_cluster()
    with workdir("submission", args.keep) as root, JobJanitor() as janitor:
        url = example_repo(root)
        app = make_portal_app(portal_settings(root))
        with app.app_context():
            add_user("bench")
        results = [bench_size(root, app, url, points, args, janitor) for points in sizes]
    emit(
        record(
            "submission",
            sizes if len(sizes) > 1 else sizes[0],
            repeats=args.repeats,
            hold=True,
            results=results,
        )
    )


if __name__ == "__main__":
    main()
