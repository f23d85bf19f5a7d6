"""The Ansible roles: lint-clean, and idempotent on the local inventory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ANSIBLE = REPO_ROOT / "ansible"
VENV_BIN = Path(sys.executable).parent


def test_ansible_lint_passes():
    lint = subprocess.run(
        [str(VENV_BIN / "ansible-lint"), "--offline", "-q", "."],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_second_playbook_run_changes_nothing():
    env = dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    play = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "inventories/local/hosts.yml", "site.yml"],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr
    recap = re.search(
        r"localhost\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", play.stdout
    )
    assert recap, play.stdout[-2000:]
    assert recap.group(1) == "0", play.stdout[-6000:]
