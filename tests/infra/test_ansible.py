"""The Ansible roles: lint-clean, idempotent on the local inventory (the portal included), the
NFS templates rendered for a three-host cluster in check mode, and bad settings refused."""

from __future__ import annotations

import filecmp
import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

ANSIBLE = REPO_ROOT / "ansible"
VENV_BIN = Path(sys.executable).parent
RECAP_RE = r"{host}\s*:\s*ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)"
WEB_PIDFILE = Path("/run/openlane-portal/web.pid")


def ansible_env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_CONFIG=str(ANSIBLE / "ansible.cfg"), ANSIBLE_NOCOLOR="1")


def playbook(*args: str, inventory: str = "inventories/local/hosts.yml", timeout: int = 900):
    return subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", inventory, *args],
        cwd=ANSIBLE,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ansible_env(),
    )


def changed_count(stdout: str, host: str = "localhost") -> int:
    recap = re.search(RECAP_RE.format(host=re.escape(host)), stdout)
    assert recap, stdout[-3000:]
    assert recap.group(2) == "0", stdout[-3000:]
    return int(recap.group(1))


def changed_tasks(stdout: str) -> str:
    """The tasks of a run that reported ``changed``, each with its result line."""
    found, task = [], ""
    for line in stdout.splitlines():
        if line.startswith("TASK ["):
            task = line.rstrip("* ")
        elif line.startswith("changed:"):
            found.append(f"{task}\n  {line}")
    return "\n".join(found)


def code_fingerprint() -> str:
    """The last commit touching what the portal role installs (it reinstalls when it moves)."""
    return subprocess.run(
        ["git", "log", "-1", "--format=%H", "--", "portal", "pyproject.toml", "package-lock.json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def portal_running() -> bool:
    return WEB_PIDFILE.is_file() and (
        subprocess.run(["pkill", "-0", "-F", str(WEB_PIDFILE)], capture_output=True).returncode == 0
    )


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
@pytest.mark.slow
@pytest.mark.usefixtures("slurm_cluster")
def test_second_playbook_run_changes_nothing():
    """site.yml converges (cluster, shared storage, images layout, the portal), then a run
    changes nothing. One converging run may change things (the portal was stopped, say); so
    may a run after a commit to portal/ landed (the role reinstalls the new code): those are
    not verdicts, any other change is."""
    was_running = portal_running()
    try:
        converging_run_left = True
        last_seen = None
        for _attempt in range(4):
            run = playbook("site.yml")
            assert run.returncode == 0, run.stdout[-4000:] + run.stderr
            changed = changed_count(run.stdout)
            now = code_fingerprint()
            moved, last_seen = last_seen is not None and now != last_seen, now
            if changed == 0:
                break
            if moved:
                continue
            assert converging_run_left, f"a second run changed {changed}:\n" + changed_tasks(
                run.stdout
            )
            converging_run_left = False
        else:
            pytest.fail("site.yml never converged while commits kept landing")
        assert "TASK [portal : " in run.stdout, "site.yml must deploy the portal"
    finally:
        if not was_running:
            subprocess.run([str(REPO_ROOT / "scripts" / "portal-down")], check=False)

    # nfs on a single node: the folders, and nothing shared.
    assert Path("/apps").is_dir() and Path("/srv/openlane-portal/runs").is_dir()
    assert not Path("/etc/exports.d/openlane-portal.exports").exists()
    assert " /apps " not in Path("/etc/fstab").read_text()
    # openlane_image turned off: the layout and the definition files all the same.
    for name in ("openlane1.def", "openlane2.def"):
        installed = Path("/apps/openlane/defs") / name
        assert filecmp.cmp(installed, REPO_ROOT / "singularity" / name, shallow=False)
    assert Path("/apps/pdks").is_dir()
    assert not list(Path("/apps/openlane").glob("*.sif")), "images are off in the local inventory"


def test_nfs_templates_for_a_three_host_cluster(tmp_path):
    """Check mode on a controller with a shared disk and two nodes (all played by this machine
    through local connections): the exports, the fstab lines of the disk, of the bind mounts
    and of the clients are rendered, and nothing on the machine changes."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * 4096)
    (tmp_path / "hosts.yml").write_text(
        textwrap.dedent(
            f"""\
            all:
              vars:
                ansible_connection: local
                ansible_python_interpreter: {sys.executable}
                cluster_name: olp
              hosts:
                ctl: {{slurm_node_addr: 10.0.0.10, shared_storage_device: {disk}}}
                node-001: {{slurm_node_addr: 10.0.1.11}}
                node-002: {{ansible_host: 10.0.1.12}}
              children:
                nfs_server: {{hosts: {{ctl: {{}}}}}}
                nfs_clients: {{hosts: {{node-001: {{}}, node-002: {{}}}}}}
            """
        )
    )
    (tmp_path / "play.yml").write_text(
        "- name: Shared storage\n  hosts: nfs_server:nfs_clients\n"
        "  gather_facts: false\n  roles: [nfs]\n"
    )
    fstab_before = hashlib.sha256(Path("/etc/fstab").read_bytes()).hexdigest()
    play = playbook(
        str(tmp_path / "play.yml"), "--check", "--diff", inventory=str(tmp_path / "hosts.yml")
    )
    assert play.returncode == 0, play.stdout[-4000:] + play.stderr
    added = {line[1:].strip() for line in play.stdout.splitlines() if line.startswith("+")}
    opts = "(rw,sync,no_subtree_check,root_squash)"
    for path in ("/apps", "/srv/openlane-portal/runs"):
        assert f"{path} 10.0.1.11{opts} 10.0.1.12{opts}" in added
        assert f"10.0.0.10:{path} {path} nfs rw,hard,noatime,vers=4.2,_netdev 0 0" in added
    assert f"{disk} /srv/shared ext4 defaults,noatime,nofail 0 2" in added
    assert "/srv/shared/apps /apps none bind,nofail 0 0" in added
    assert (
        "/srv/shared/srv_openlane-portal_runs /srv/openlane-portal/runs none bind,nofail 0 0"
        in added
    )
    assert changed_count(play.stdout, "ctl") > 0 and changed_count(play.stdout, "node-001") > 0
    # Check mode: nothing written, nothing formatted.
    assert hashlib.sha256(Path("/etc/fstab").read_bytes()).hexdigest() == fstab_before
    assert not Path("/etc/exports.d/openlane-portal.exports").exists()
    assert disk.read_bytes() == b"\0" * 4096


@pytest.mark.parametrize(
    ("role", "extra_vars", "message"),
    [
        (
            "apptainer",
            "apptainer_enabled=true apptainer_install_method=file "
            "apptainer_deb_file=/nonexistent/apptainer.deb",
            "apptainer_deb_file /nonexistent/apptainer.deb is not a file",
        ),
        (
            "apptainer",
            "apptainer_enabled=true apptainer_install_method=url apptainer_deb_sha256=abc",
            "apptainer_deb_sha256 must be the sha256",
        ),
        (
            "portal",
            "portal_source=git portal_git_url=https://example.org/portal.git portal_git_ref=",
            "portal_source is git (with portal_git_url and a pinned portal_git_ref)",
        ),
        (
            "nfs",
            "{'nfs_exports': [{'path': 'apps'}]}",
            "nfs_exports: apps must be an absolute path",
        ),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(tmp_path, role, extra_vars, message):
    """A wrong setting stops the play at its check, in check mode, before anything changes."""
    (tmp_path / "play.yml").write_text(
        f"- name: Bad settings\n  hosts: localhost\n  roles: [{role}]\n"
    )
    play = playbook(
        str(tmp_path / "play.yml"), "--check", "-e", extra_vars, inventory="inventories/local"
    )
    assert play.returncode != 0
    assert message in play.stdout, play.stdout[-3000:]
