"""The `portal` command line against the real cluster and a real git daemon: a 4-point sweep
from a git:// URL, polled to the end, with the Pareto front checked by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import OPENLANE_DATA, REPO_ROOT
from tests.integration.engine_helpers import STANDIN

PORTAL = [sys.executable, "-m", "portal.cli"]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PORTAL_INSTANCE_PATH=str(tmp_path / "instance"),
        PORTAL_FLOW_EXECUTABLE_OVERRIDE=str(STANDIN),
        PORTAL_SLURM_PARTITION="debug",
        PORTAL_USER="ada",
    )
    return env


def portal(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([*PORTAL, *args], env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert run.returncode == 0, run.stdout + run.stderr
    return run


def dominated(a: dict, b: dict, objectives: dict[str, str]) -> bool:
    """b dominates a: no worse in every objective, better in one."""
    pairs = [(a[k], b[k]) if d == "min" else (-a[k], -b[k]) for k, d in objectives.items()]
    return all(y <= x for x, y in pairs) and any(y < x for x, y in pairs)


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_cli_sweep_from_git_daemon_to_pareto_results(cli_env, example_repo):
    portal(cli_env, "db", "upgrade")
    portal(cli_env, "user", "add", "ada", "--email", "ada@example.org", "--account", "openlane")
    bad = portal(cli_env, "user", "add", "eve", "--email", "not-an-email", check=False)
    assert bad.returncode == 2 and "error:" in bad.stderr
    dry = portal(
        cli_env,
        "submit",
        "--repo",
        example_repo,
        "--design",
        "designs/counter",
        "--sweep",
        "CLOCK_PERIOD=10,20",
        "--sweep",
        "FP_CORE_UTIL=30,50",
        "--dry-run",
    )
    assert "#SBATCH --array=0-3" in dry.stdout and "4 task(s)" in dry.stdout
    assert json.loads(portal(cli_env, "status", "--json").stdout) == []  # dry run wrote nothing
    out = portal(
        cli_env,
        "submit",
        "--repo",
        example_repo,
        "--design",
        "designs/counter",
        "--sweep-file",
        str(REPO_ROOT / "examples" / "sweep.yaml"),
        "--time",
        "10",
        "--mem",
        "512M",
        "--json",
    )
    sub = json.loads(out.stdout)
    assert sub["state"] == "QUEUED" and len(sub["job_ids"]) == 1
    for _ in range(120):
        portal(cli_env, "poll", "--once", check=False)
        state = json.loads(portal(cli_env, "status", sub["uuid"], "--json").stdout)["state"]
        if state in ("COMPLETED", "FAILED", "PARTIAL", "CANCELLED"):
            break
        time.sleep(1)
    assert state == "COMPLETED"
    results = json.loads(portal(cli_env, "results", sub["uuid"][:8], "--json").stdout)
    rows, objectives = results["rows"], results["objectives"]
    assert len(rows) == 4 and all(r["metrics"]["die_area_um2"] > 0 for r in rows)
    assert "die_area_um2" in objectives and "wirelength_um" in objectives
    by_hand = sorted(
        r["index"]
        for r in rows
        if not any(dominated(r["metrics"], o["metrics"], objectives) for o in rows if o is not r)
    )
    assert results["pareto"] == by_hand
    smallest = min(rows, key=lambda r: r["metrics"]["die_area_um2"])["index"]
    assert results["best"]["die_area_um2"] == smallest
    csv_text = portal(cli_env, "results", sub["uuid"], "--csv").stdout
    assert csv_text.splitlines()[0].startswith("index,state,CLOCK_PERIOD,SYNTH_STRATEGY")


def test_config_check_passes_every_reference_config(cli_env):
    configs = sorted((OPENLANE_DATA / "openlane1" / "configs").iterdir())
    assert len(configs) >= 14
    for config in configs:
        run = portal(cli_env, "config", "check", str(config), "--json", check=False)
        assert run.returncode == 0, f"{config.name}: {run.stdout}{run.stderr}"
        assert json.loads(run.stdout)["errors"] == []


def test_reports_parse_gives_one_record_per_csv_row(cli_env):
    for csv_file in sorted((OPENLANE_DATA / "openlane1" / "metrics").glob("*.csv")):
        rows = len(csv_file.read_text().splitlines()) - 1
        records = json.loads(portal(cli_env, "reports", "parse", str(csv_file), "--json").stdout)
        assert len(records) == rows
    spm = json.loads(
        portal(
            cli_env,
            "reports",
            "parse",
            str(OPENLANE_DATA / "openlane2" / "spm_metrics.json"),
            "--json",
        ).stdout
    )
    assert spm[0]["flow"] == "openlane2" and spm[0]["die_area_um2"] > 0
    missing = portal(cli_env, "reports", "parse", "/nonexistent", check=False)
    assert missing.returncode == 2
