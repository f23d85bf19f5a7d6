"""Benchmark 4: parse the reports of many finished task directories.

Setup: two template runs are made by the stand-in flow (a test double; OpenLane 1 and
OpenLane 2 layouts: logs, resolved config, GDS, metrics). They are copied into ``--size`` task
folders ``<run>/tasks/<i>/runs/task-NNNN/`` (half OpenLane 1, half OpenLane 2), and each
metrics file is replaced by REAL recorded data from tests/data/openlane: OpenLane 1 tasks get the
header and one row of the recorded ``metrics.csv`` files (all three column vintages, every row
in turn), OpenLane 2 tasks get the recorded ``final/metrics.json`` of ``spm`` verbatim.

Measured: ``portal.track.collect.collect_task_metrics`` (what the poller runs for each task that
just finished: find the run, ``portal.flows.reports.parse_run_dir``, normalize) over every task,
``--repeats`` times; the first (coldest) pass is reported apart. Target: <= 2 s.

Usage: ``.venv/bin/python -m benchmarks.bench_reports --size 1000``.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import (
    EXAMPLE,
    OPENLANE_DATA,
    STANDIN,
    base_parser,
    emit,
    log,
    pyinstrument_profile,
    record,
    summary,
    timed,
    workdir,
)

FLOWS = ("openlane1", "openlane2")


def real_ol1_reports() -> list[str]:
    """Every recorded OpenLane 1 row as a one-row ``metrics.csv`` (its own header)."""
    files = sorted((OPENLANE_DATA / "openlane1" / "metrics").glob("*.csv"))
    if not files:
        raise SystemExit(f"no recorded metrics under {OPENLANE_DATA}")
    reports = []
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        rows = list(csv.reader(io.StringIO("".join(lines[1:]))))
        for row in rows:
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerow(row)
            reports.append(lines[0] + out.getvalue())
    return reports


def template_run(root: Path, flow: str) -> Path:
    """One run made by the stand-in flow (OPENLANE_STANDIN_SECONDS=0) in the given layout."""
    task = root / f"template-{flow}"
    task.mkdir(parents=True)
    config = task / "config.json"
    shutil.copy(EXAMPLE / "config.json", config)
    if flow == "openlane1":
        argv = ["-design", str(EXAMPLE), "-run_path", str(task / "runs"), "-tag", "template",
                "-config_file", str(config), "-overwrite"]  # fmt: skip
    else:
        argv = ["--run-tag", "template", "--overwrite", "--design-dir", str(task), str(config)]
    env = {**os.environ, "OPENLANE_STANDIN_SECONDS": "0", "OPENLANE_STANDIN_MIMIC": flow}
    done = subprocess.run(
        [sys.executable, str(STANDIN), *argv], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"stand-in failed: {done.stderr[-2000:]}")
    return task / "runs" / "template"


def build_tasks(root: Path, size: int) -> list[tuple[str, Path, int]]:
    """``size`` finished task folders; (flow, run dir, index) for each."""
    templates = {flow: template_run(root / "templates", flow) for flow in FLOWS}
    ol1_reports = real_ol1_reports()
    ol2_metrics = (OPENLANE_DATA / "openlane2" / "spm_metrics.json").read_bytes()
    tasks = []
    for index in range(size):
        flow = FLOWS[index % 2]
        run_dir = root / flow
        target = run_dir / "tasks" / str(index) / "runs" / f"task-{index:04d}"
        shutil.copytree(templates[flow], target)
        if flow == "openlane1":
            (target / "reports" / "metrics.csv").write_text(ol1_reports[index % len(ol1_reports)])
        else:
            (target / "final" / "metrics.json").write_bytes(ol2_metrics)
        tasks.append((flow, run_dir, index))
    return tasks


def collect_all(tasks: list[tuple[str, Path, int]]) -> tuple[int, int]:
    """Collect every task like the poller does; (records, records with a die area)."""
    from portal.track.collect import collect_task_metrics

    found = with_area = 0
    for flow, run_dir, index in tasks:
        metrics = collect_task_metrics(flow, run_dir, index)
        if metrics is not None:
            found += 1
            with_area += metrics.get("die_area_um2") is not None
    return found, with_area


def main() -> None:
    parser = base_parser(__doc__.split("\n", 1)[0])
    parser.add_argument("--size", type=int, default=1000, help="finished task folders")
    parser.add_argument("--repeats", type=int, default=5, help="passes (median)")
    parser.add_argument("--profile", action="store_true", help="pyinstrument one pass")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.repeats = 20, 2
    with workdir("reports", args.keep) as root:
        started = time.perf_counter()
        tasks = build_tasks(root, args.size)
        log(f"built {len(tasks)} task folders in {time.perf_counter() - started:.1f} s")
        subprocess.run(["sync"], check=False)
        passes, cpus = [], []
        for _ in range(args.repeats):
            with timed() as t:
                found, with_area = collect_all(tasks)
            passes.append(t.wall)
            cpus.append(t.cpu)
            log(f"pass: {t.wall:.3f} s, {found} records, {with_area} with a die area")
        if args.profile:
            pyinstrument_profile(lambda: collect_all(tasks), root.parent / "profile-reports.txt")
    median = statistics.median(passes)
    emit(
        record(
            "reports",
            args.size,
            flows={flow: sum(1 for t in tasks if t[0] == flow) for flow in FLOWS},
            first_pass_seconds=round(passes[0], 4),
            seconds=summary(passes),
            cpu_median=round(statistics.median(cpus), 4),
            per_task_ms=round(1000 * median / args.size, 3),
            records=found,
            records_with_die_area=with_area,
            targets={"at_most_2_s": median <= 2.0, "every_task_parsed": found == args.size},
        )
    )


if __name__ == "__main__":
    main()
