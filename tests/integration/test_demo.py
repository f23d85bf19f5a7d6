"""The README's main command (scripts/demo) end to end on the real cluster."""

from __future__ import annotations

import os
import re
import subprocess
import urllib.request

import pytest

from tests.conftest import REPO_ROOT


@pytest.mark.cluster
@pytest.mark.slow
def test_demo_starts_the_portal_submits_the_sweep_and_prints_results(slurm_cluster, tmp_path):
    env = {
        **os.environ,
        "DEMO_SKIP_SETUP": "1",  # the suite already bootstrapped and brought the cluster up
        "DEMO_FOREGROUND": "0",
        "DEMO_PORT": "5093",
        "DEMO_GIT_PORT": "19493",
        "PORTAL_INSTANCE_PATH": str(tmp_path / "demo"),
    }
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts" / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
    assert "STAND-IN flow" in out
    login = re.search(r"Sign in as:\s+demo / (\S+)", out)
    assert login and len(login.group(1)) >= 12
    assert (tmp_path / "demo" / "demo-login.txt").stat().st_mode & 0o077 == 0
    uuid = re.search(r"submitted ([0-9a-f-]{36}) as one job array", out).group(1)
    assert f"{uuid}  COMPLETED" in out
    assert "Pareto front (*)" in out
    assert len(re.findall(r"^\d+\s+COMPLETED", out, flags=re.MULTILINE)) == 4
    # The portal ran while the sweep did (its access log shows the health checks) and is
    # stopped now that the demo exited.
    assert "GET /healthz" in (tmp_path / "demo" / "gunicorn.log").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen("http://127.0.0.1:5093/healthz", timeout=2)
