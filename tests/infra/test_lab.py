"""The lab of namespaced hosts (``scripts/lab-up`` / ``lab-down``): separate hosts on this one
machine, reached over real SSH with host keys checked, on an address range that exists only
inside the lab, and removed without a trace."""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest
import yaml

from tests.fixtures.terraform import copy_tree, run_terraform

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB = REPO_ROOT / "scripts" / "lab"
_spec = importlib.util.spec_from_loader("lab", SourceFileLoader("lab", str(LAB)))
lab_script = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(lab_script)  # type: ignore[union-attr]
LAB_DIR = lab_script.LAB_DIR
HOSTS = {host: lab_script.address(host) for host in lab_script.HOSTS}
running = lab_script.running


def namespaces() -> set[str]:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in listed.splitlines() if line.strip()}


def lab(command: str) -> str:
    done = subprocess.run([str(LAB), command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def on(host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``host``'s network namespace."""
    done = subprocess.run(
        ["ip", "netns", "exec", f"olp-{host}", *argv], capture_output=True, text=True, timeout=60
    )
    assert not check or done.returncode == 0, done.stdout + done.stderr
    return done


def ssh(source: str, target: str, command: str, *options: str) -> subprocess.CompletedProcess[str]:
    return on(
        source, "ssh", "-F", str(LAB_DIR / "ssh_config"), *options, target, command, check=False
    )


@pytest.fixture
def lab_up() -> Iterator[dict[str, object]]:
    lab("down")  # a lab left by an interrupted run
    lab("up")
    try:
        yield json.loads((LAB_DIR / "state.json").read_text())
    finally:
        lab("down")


def test_every_host_is_its_own_machine_reached_over_ssh(lab_up: dict[str, object]) -> None:
    for source in ("login", "c2"):
        for host, address in HOSTS.items():
            done = ssh(source, host, "hostname; ip -4 -o addr show eth0; ip route")
            assert done.returncode == 0, done.stderr
            name, addr, route = done.stdout.splitlines()[:3]
            assert name == host  # its own hostname (UTS namespace)
            assert f"inet {address}/24" in addr
            assert route.startswith("10.231.0.0/24 dev eth0")  # the lab's subnet, no default route
    assert "already up" in lab("up")  # a second `up` changes nothing
    assert json.loads((LAB_DIR / "state.json").read_text()) == lab_up


def test_nothing_of_the_lab_is_in_the_machines_own_network(lab_up: dict[str, object]) -> None:
    net = ipaddress.ip_network(str(lab_up["net"]))
    addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    assert not any(
        ipaddress.ip_address(word.split("/")[0]) in net
        for word in addresses.split()
        if word.count(".") == 3 and "/" in word
    ), addresses
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "10.231." not in routes
    outside = on("c1", "ip", "route", "get", "192.0.2.1", check=False)  # an address outside
    assert outside.returncode != 0 and "Network is unreachable" in outside.stderr


def test_a_host_with_another_key_is_refused(lab_up: dict[str, object], tmp_path: Path) -> None:
    known = (LAB_DIR / "known_hosts").read_text().splitlines()
    c2_key = next(line for line in known if line.startswith("c2,")).split(" ", 1)[1]
    forged = tmp_path / "known_hosts"
    forged.write_text(f"c1,{HOSTS['c1']} {c2_key}\n")
    done = ssh("login", "c1", "true", "-o", f"UserKnownHostsFile={forged}")
    assert done.returncode != 0 and "Host key verification failed" in done.stderr


def test_down_removes_exactly_what_up_made() -> None:
    lab("down")
    before = namespaces()
    etc_netns_existed = Path("/etc/netns").exists()
    lab("up")
    state = json.loads((LAB_DIR / "state.json").read_text())
    pids = list(state["pids"].values())
    assert all(running(pid) for pid in pids)
    lab("down")
    assert {name for name in namespaces() if name.startswith("olp-")} == set()
    assert namespaces() == before  # the machine's other namespaces untouched
    assert not any(running(pid) for pid in pids)
    assert not LAB_DIR.exists()
    assert Path("/etc/netns").exists() == etc_netns_existed
    assert not list(Path("/etc/netns").glob("olp-*"))


def test_terraform_writes_the_labs_inventory_and_ansible_reaches_every_host(
    lab_up: dict[str, object], tf_env: dict[str, str], tmp_path: Path
) -> None:
    """The path a site follows, first steps: terraform/existing_hosts renders the inventory
    from the lab's hosts, and Ansible gathers facts from each of them over real SSH (host keys
    checked), run from the ``login`` host."""
    lab("tfvars")
    folder = copy_tree(tmp_path) / "existing_hosts"
    var_file = str(LAB_DIR / "lab.tfvars.json")
    for args in (["init", "-backend=false", "-no-color"], ["apply", "-auto-approve", "-no-color"]):
        done = run_terraform([*args, *(["-var-file", var_file] if args[0] == "apply" else [])],
                             folder, tf_env)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    output = run_terraform(["output", "-raw", "inventory_yaml"], folder, tf_env)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(output.stdout)
    hosts = yaml.safe_load(output.stdout)["all"]["hosts"]
    assert {name: hostvars["ansible_host"] for name, hostvars in hosts.items()} == HOSTS
    assert hosts["c1"]["slurm_node_cpus"] == os.cpu_count()
    answer = on(
        "login",
        "env", f"ANSIBLE_SSH_ARGS=-F {LAB_DIR / 'ssh_config'}", "ANSIBLE_HOST_KEY_CHECKING=True",
        str(REPO_ROOT / ".venv" / "bin" / "ansible"), "all", "-i", str(inventory),
        "-m", "ansible.builtin.command", "-a", "hostname",
        check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stdout + answer.stderr
    said = dict(re.findall(r"^(\S+) \| CHANGED \| rc=0 >>\n(\S+)$", answer.stdout, re.M))
    assert said == {host: host for host in HOSTS}  # each answer came from that very host
