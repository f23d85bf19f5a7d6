"""LibreLane run natively: the Ansible role `librelane` installs it for real into a temporary
prefix and PDK root (then changes nothing on a second run), scripts/install-librelane is
idempotent, and the yosys-pyosys wrapper turns `yosys -y script.py ... -- args` into
`python script.py args` and refuses anything else."""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.infra.test_ansible import changed_count, playbook

WRAPPER = REPO_ROOT / "tools" / "librelane" / "yosys-pyosys"
PLUGIN = REPO_ROOT / "tools" / "librelane" / "librelane_plugin_portal.py"
INSTALL = REPO_ROOT / "scripts" / "install-librelane"
LIBRELANE_VERSION = "3.0.17"
TT_LIB = "sky130A/libs.ref/sky130_fd_sc_hd/lib/sky130_fd_sc_hd__tt_025C_1v80.lib"


def local_inventory(tmp_path: Path) -> Path:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        textwrap.dedent(
            f"""\
            all:
              hosts:
                localhost:
                  ansible_connection: local
                  ansible_python_interpreter: {sys.executable}
            """
        )
    )
    return inventory


def role_play(tmp_path: Path, **variables) -> subprocess.CompletedProcess:
    play = tmp_path / "play.yml"
    play.write_text("- name: LibreLane\n  hosts: localhost\n  roles: [librelane]\n")
    return playbook(
        str(play),
        "-e",
        json.dumps(variables),
        inventory=str(local_inventory(tmp_path)),
    )


@pytest.mark.slow
def test_role_installs_librelane_and_the_pdk_then_changes_nothing(tmp_path):
    prefix, pdk_root = tmp_path / "librelane", tmp_path / "pdks"
    settings = {
        "librelane_enabled": True,
        "librelane_prefix": str(prefix),
        "librelane_pdk_root": str(pdk_root),
    }
    first = role_play(tmp_path, **settings)
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr
    assert changed_count(first.stdout) > 0

    version = subprocess.run(
        [str(prefix / "bin" / "librelane"), "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0, version.stderr
    assert f"v{LIBRELANE_VERSION}" in version.stdout
    wrapper = prefix / "bin" / "yosys-pyosys"
    assert wrapper.is_file() and os.access(wrapper, os.X_OK)
    assert filecmp.cmp(wrapper, WRAPPER, shallow=False)
    plugins = list((prefix / "lib").glob("python3*/site-packages/librelane_plugin_portal.py"))
    assert len(plugins) == 1 and filecmp.cmp(plugins[0], PLUGIN, shallow=False)
    assert (pdk_root / TT_LIB).is_file()
    assert (pdk_root / "sky130A").is_symlink(), "the PDK is switched by one rename"

    second = role_play(tmp_path, **settings)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr
    assert changed_count(second.stdout) == 0, second.stdout[-6000:]


def test_role_refuses_a_relative_prefix(tmp_path):
    play = role_play(
        tmp_path,
        librelane_enabled=True,
        librelane_prefix="librelane",
        librelane_pdk_root=str(tmp_path / "pdks"),
    )
    assert play.returncode != 0
    assert "librelane_prefix and librelane_pdk_root must be absolute paths" in play.stdout
    assert not (tmp_path / "pdks").exists()


def test_install_script_is_idempotent():
    """scripts/bootstrap ran it already; a rerun only says it is ready."""
    ready = (
        f"install-librelane: librelane {LIBRELANE_VERSION} (pyosys 0.70) in .venv-librelane, "
        "PDK root .pdk"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIBRELANE_")}
    for _run in range(2):
        run = subprocess.run([str(INSTALL)], capture_output=True, text=True, env=env, timeout=900)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.splitlines()[-1] == ready, run.stdout
    assert run.stdout == ready + "\n", "a second run must only report"
    assert (REPO_ROOT / ".pdk" / TT_LIB).is_file()
    installed = REPO_ROOT / ".venv-librelane" / "bin" / "yosys-pyosys"
    version = subprocess.run([str(installed), "-V"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("Yosys 0.70"), version


@pytest.fixture
def venv_like(tmp_path) -> Path:
    """<tmp>/bin/python (this interpreter) with the wrapper beside it, as in a virtualenv."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "yosys-pyosys").write_bytes(WRAPPER.read_bytes())
    (bin_dir / "yosys-pyosys").chmod(0o755)
    return bin_dir


@pytest.fixture
def argv_script(tmp_path) -> Path:
    script = tmp_path / "print argv.py"
    script.write_text("import json, sys\nprint(json.dumps(sys.argv))\nsys.exit(3)\n")
    return script


def test_wrapper_runs_the_script_with_the_arguments_after_the_double_dash(venv_like, argv_script):
    run = subprocess.run(
        [str(venv_like / "yosys-pyosys"), "-y", str(argv_script), "-Q", "-q", "--"]
        + ["--config-in", "x y"],
        capture_output=True,
        text=True,
    )
    assert json.loads(run.stdout) == [str(argv_script), "--config-in", "x y"], run.stderr
    assert run.returncode == 3, "the script's exit status is the wrapper's"


def test_wrapper_finds_the_python_beside_its_real_path(tmp_path, venv_like, argv_script):
    link = tmp_path / "elsewhere" / "yosys"
    link.parent.mkdir()
    link.symlink_to(venv_like / "yosys-pyosys")
    run = subprocess.run(
        [str(link), "-y", str(argv_script), "-qq", "--", "a"], capture_output=True, text=True
    )
    assert json.loads(run.stdout) == [str(argv_script), "a"], run.stderr


def test_wrapper_python_can_be_overridden(argv_script):
    run = subprocess.run(
        [str(WRAPPER), "-y", str(argv_script)],
        capture_output=True,
        text=True,
        env=dict(os.environ, YOSYS_PYOSYS_PYTHON=sys.executable),
    )
    assert json.loads(run.stdout) == [str(argv_script)], run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-Q", "-q", "--", "--config-in", "x"], "no script given"),
        ([], "no script given"),
        (["-y"], "-y needs a Python script"),
        (["-p", "read_verilog x.v"], "unsupported argument '-p'"),
    ],
)
def test_wrapper_refuses_a_call_without_a_script(venv_like, args, message):
    run = subprocess.run([str(venv_like / "yosys-pyosys"), *args], capture_output=True, text=True)
    assert run.returncode == 2
    assert message in run.stderr
    assert "usage: yosys-pyosys -y script.py" in run.stderr
    assert run.stdout == ""


def test_wrapper_says_when_its_python_is_missing(tmp_path, argv_script):
    lone = tmp_path / "yosys-pyosys"
    lone.write_bytes(WRAPPER.read_bytes())
    lone.chmod(0o755)
    run = subprocess.run([str(lone), "-y", str(argv_script)], capture_output=True, text=True)
    assert run.returncode == 127
    assert f"no python at {tmp_path}/python" in run.stderr
