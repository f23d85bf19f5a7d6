"""Every benchmark runs once in its smoke size (so none of them rots): it must print exactly one
valid JSON record with the expected keys and sane values. No timing thresholds here; the
numbers are recorded in benchmarks/README.md. Runs on the real cluster; everything the
benchmarks submit is held and cancelled by them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]

MACHINE_KEYS = {"uname", "cpus", "python", "slurm", "slurm_node_cpus", "loadavg", "commit"}


def run_benchmark(module: str, timeout: float = 240) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"want one JSON line on stdout, got {len(lines)}: {done.stdout[:2000]}"
    record = json.loads(lines[0])
    assert set(record["machine"]) >= MACHINE_KEYS, record["machine"]
    assert record["machine"]["cpus"] >= 1 and record["machine"]["slurm"]
    assert record["machine"]["slurm_node_cpus"] >= 1
    return record


def positive(summary: dict, n: int | None = None) -> None:
    assert summary["n"] >= 1 and summary["median"] > 0 and summary["max"] >= summary["min"]
    if n is not None:
        assert summary["n"] == n


def bench_jobs_left() -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%j"], capture_output=True, text=True, timeout=30
    ).stdout
    return [name for name in out.split() if name.startswith("olp-bench")]


def test_submission_benchmark():
    record = run_benchmark("bench_submission")
    assert record["name"] == "submission" and record["size"] == 20 and record["hold"] is True
    (result,) = record["results"]
    portal = result["portal"]
    assert portal["sbatch_calls"] == 1 and portal["arrays"] == 1 and portal["tasks"] == 20
    positive(portal, n=record["repeats"])
    assert set(portal["phases_median"]) == {"plan", "create", "launch"}
    loop = result["naive_loop"]
    assert loop["sbatch_calls"] == 20 and loop["measured_points"] == 5 and loop["extrapolated"]
    assert loop["seconds"] > loop["measured_seconds"] > 0
    positive(result["submitit"], n=record["repeats"])
    assert result["ratios"]["submitit_over_portal"] > 0
    assert result["ratios"]["loop_over_portal"] > 0
    assert set(result["targets"]) == {
        "one_sbatch_per_array",
        "at_least_as_fast_as_submitit",
        "at_least_25x_faster_than_loop",
    }
    assert result["targets"]["one_sbatch_per_array"] is True
    assert bench_jobs_left() == []


def test_poll_benchmark():
    record = run_benchmark("bench_poll")
    assert record["name"] == "poll" and record["size"] == 200 and record["arrays"] == 2
    portal = record["portal"]
    for cycle in (portal["fresh"], portal["all_changed"]):
        assert cycle["sacct_calls"] == 1 and cycle["tasks_followed"] == 200
        assert cycle["wall"] > 0 and cycle["cpu"] > 0
    assert portal["all_changed"]["tasks_changed"] == 200
    assert portal["all_changed"]["db_rows_written"] >= 200
    unchanged = portal["unchanged"]
    assert unchanged["sacct_calls"] == [1]
    assert unchanged["tasks_changed"] == [0] and unchanged["db_rows_written"] == [0]
    positive(unchanged["wall"], n=2)
    submitit = record["submitit"]
    assert submitit["sacct_calls_per_update"] == 1 and submitit["tasks_seen_pending"] == 200
    positive(submitit["wall"], n=2)
    assert record["targets"]["one_sacct_call_per_cycle"] is True
    assert record["targets"]["unchanged_cycle_writes_nothing"] is True


def test_pages_benchmark():
    record = run_benchmark("bench_pages")
    assert record["name"] == "pages"
    assert [r["database"] for r in record["results"]] == ["sqlite", "postgresql"]
    for result in record["results"]:
        assert result["submissions"] == 200 and result["tasks"] == 2000
        assert set(result["pages"]) == {"dashboard", "submission", "submission_large", "api_list"}
        for page in result["pages"].values():
            assert sum(page["status"].values()) == record["requests_per_page"]
            positive(page["all"], n=record["requests_per_page"])
            if page["p95"] is not None:
                assert page["p95"] >= page["p50"] > 0
    assert isinstance(record["pages_not_built"], list)


def test_reports_benchmark():
    record = run_benchmark("bench_reports")
    assert record["name"] == "reports" and record["size"] == 20
    assert record["flows"] == {"openlane1": 10, "openlane2": 10}
    assert record["records"] == 20 and record["targets"]["every_task_parsed"] is True
    assert 10 <= record["records_with_die_area"] <= 20
    positive(record["seconds"], n=2)


def test_librelane_benchmark():
    record = run_benchmark("bench_librelane")
    assert record["name"] == "librelane" and record["size"] == 4
    overhead = record["overhead"]
    positive(overhead["array_script"], n=2)
    positive(overhead["by_hand"], n=2)
    assert len(overhead["overhead_per_round"]) == 2
    assert [run["throttle"] for run in record["makespan"]] == [0, record["cores"]]
    for run in record["makespan"]:
        assert run["points"] == 4 and run["arrays"] == 1
        positive(run["task_seconds"], n=4)
        assert run["makespan_s"] > 0 and run["makespan_over_ideal"] > 0


def test_latency_benchmark():
    record = run_benchmark("bench_latency")
    assert record["name"] == "latency" and record["size"] == {"arrays": 1, "tasks_per_array": 2}
    assert record["source"] in ("api", "database")
    assert record["task_states"] == ["COMPLETED"]
    positive(record["state_start"], n=2)
    positive(record["state_end"], n=2)
    assert record["emails_received"] == 1
    positive(record["email"], n=1)
    assert isinstance(record["server_tracebacks"], int)


def test_load_benchmark():
    record = run_benchmark("bench_load")
    assert record["name"] == "load" and record["size"] == {"clients": 5, "seconds": 5}
    assert record["requests"] > 0 and record["throughput_per_s"] > 0
    assert sum(record["status"].values()) == record["requests"]
    actions = record["actions"]
    assert set(actions) - {"healthz", "healthz_app"} <= {
        "dashboard", "submission", "api_list", "submit", "dry_run_branch", "dry_run_commit"
    }  # fmt: skip
    assert record["submissions_lost"] == []
    fivexx = sum(v for k, v in record["status"].items() if k.startswith("5"))
    fivexx += sum(
        v
        for p in ("healthz", "healthz_app")
        for k, v in actions[p]["status"].items()
        if k[0] == "5"
    )
    assert record["fivexx"] + record["repository_fetching_503"] == fivexx
    assert sum(record["fivexx_by"].values()) == record["fivexx"]
    positive(record["latency"])
    for probe in ("healthz", "healthz_app"):  # the master's and the app's /healthz
        positive(actions[probe]["latency"])  # the probe ran the whole time: ~10 a second
        assert actions[probe]["latency"]["n"] >= record["size"]["seconds"]
    assert set(record["targets"]) == {"zero_5xx", "healthz_p99_under_1s", "no_lost_submission"}
    assert bench_jobs_left() == []
