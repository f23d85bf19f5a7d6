"""Shared test fixtures. Cluster-dependent tests FAIL (never skip) when Slurm does not answer."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# The portal refuses repository hosts on loopback and private networks unless an admin lists
# them in GIT_ALLOWED_PRIVATE_HOSTS; the tests' git daemons listen on 127.0.0.1. Set here, at
# import, so every app and every `portal` subprocess of the session inherits it. The example.org
# names are RFC 2606 placeholders that tests plan submissions for but never clone: listed
# names are not looked up, and this machine may have no DNS.
os.environ.setdefault(
    "PORTAL_GIT_ALLOWED_PRIVATE_HOSTS",
    '["127.0.0.1", "localhost", "example.org", "*.example.org"]',
)

pytest_plugins = [
    "tests.fixtures.gitdaemon",
    "tests.fixtures.smtp",
    "tests.fixtures.terraform",
    "tests.integration.engine_helpers",
    "tests.integration.web_helpers",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
OPENLANE_DATA = REPO_ROOT / "tests" / "data" / "openlane"


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The real local cluster (scripts/cluster-up). Fails the test when it is not reachable."""
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30)
    if "is UP" not in ping.stdout:
        pytest.fail(
            "Slurm is not reachable (scontrol ping: "
            f"{(ping.stdout + ping.stderr).strip()!r}); run scripts/cluster-up first",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def openlane_data() -> Path:
    """The real OpenLane report files and configs kept in tests/data/openlane (see its README)."""
    if not OPENLANE_DATA.is_dir():
        pytest.fail(f"reference data not found at {OPENLANE_DATA}", pytrace=False)
    return OPENLANE_DATA
