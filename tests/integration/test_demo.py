"""The README's main command (scripts/demo) end to end on the real cluster, with the REAL
LibreLane flow (stopped after synthesis: no OpenROAD on this machine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def run_demo(tmp_path, port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "demo")],
        env={
            **os.environ,
            "DEMO_SKIP_SETUP": "1",  # the suite already bootstrapped and brought the cluster up
            "DEMO_FOREGROUND": "0",
            "DEMO_PORT": str(port),
            "DEMO_GIT_PORT": str(port + 14400),
            "PORTAL_INSTANCE_PATH": str(tmp_path / "demo"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_runs_real_librelane_and_prints_real_results(slurm_cluster, tmp_path):
    done = run_demo(tmp_path, 5093)
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "running REAL LibreLane v3.0.17, stopped after synthesis" in out
    assert "STAND-IN" not in out
    login = re.search(r"Sign in as:\s+demo / (\S+)", out)
    assert login and len(login.group(1)) >= 12
    assert (tmp_path / "demo" / "demo-login.txt").stat().st_mode & 0o077 == 0
    uuid = re.search(r"submitted ([0-9a-f-]{36}) as one job array", out).group(1)
    assert f"{uuid}  COMPLETED" in out
    assert "note: LibreLane stops after synthesis on this cluster" in out
    # The results table carries what synthesis and OpenSTA measured: cell area, cell count,
    # slack and power, different for the two strategies; nothing from a layout.
    header = next(line for line in out.splitlines() if line.startswith("index  state"))
    for column in ("cell_area_um2", "cell_count_synth", "setup_ws_ns", "power_total_w"):
        assert column in header
    assert "die_area_um2" not in header and "wirelength_um" not in header
    rows = re.findall(r"^\d+\s+COMPLETED\s+(\S+)\s+(AREA 0|DELAY 0)\s+([\d.]+)", out, re.M)
    assert len(rows) == 4
    areas = {strategy: float(area) for _period, strategy, area in rows}
    assert areas["AREA 0"] != areas["DELAY 0"]
    assert "Pareto front (*) over: cell_area_um2 min" in out
    # The portal ran while the sweep did (its access log shows the health checks) and is
    # stopped now that the demo exited.
    assert "GET /healthz" in (tmp_path / "demo" / "gunicorn.log").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:5093/healthz", timeout=2)


def test_demo_fails_naming_the_failed_tasks_and_their_logs(slurm_cluster, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(REPO_ROOT / "examples" / "counter", broken)
    verilog = broken / "src" / "counter.v"
    verilog.write_text(verilog.read_text().replace("count + 1'b1;", "count + ;"))
    done = run_demo(tmp_path, 5094, DEMO_DESIGN=str(broken))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the example sweep ended FAILED, not COMPLETED:" in done.stderr
    named = re.findall(r"^  task (\d) FAILED: logs (\S+)\.out and \S+\.err$", done.stderr, re.M)
    assert sorted(index for index, _ in named) == ["0", "1", "2", "3"]
    assert all(os.path.isfile(stem + ".out") for _, stem in named)
    assert "%Error:" in done.stderr and "syntax error" in done.stderr
