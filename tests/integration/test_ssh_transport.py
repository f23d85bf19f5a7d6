"""SSHTransport against a real sshd on loopback (tests/fixtures/sshd.py)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.slurm import commands
from portal.slurm.client import SlurmClient
from portal.slurm.states import is_terminal
from portal.slurm.transports import SSHTransport, TransportError
from tests.fixtures.sshd import SshServer, make_key, sshd  # noqa: F401

HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "a b;c",
    "x; touch {marker}",
    "| touch {marker}",
    "'\"",
    "*",
    "",
    "line\nbreak",
]


def transport_for(server: SshServer, **overrides: object) -> SSHTransport:
    settings: dict[str, object] = {
        "port": server.port,
        "user": server.user,
        "key_file": server.key_file,
        "known_hosts": server.known_hosts,
        "connect_timeout": 5,
    }
    settings.update(overrides)
    return SSHTransport(server.host, **settings)  # type: ignore[arg-type]


@pytest.fixture
def ssh(sshd: SshServer) -> Iterator[SSHTransport]:  # noqa: F811
    transport = transport_for(sshd)
    yield transport
    transport.close()


def test_hostile_arguments_arrive_literally_and_nothing_runs(
    ssh: SSHTransport, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    words = [word.format(marker=marker) for word in HOSTILE]
    result = ssh.run(["printf", "%s\\n--\\n", *words])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n--\n")[:-1] == words
    assert not marker.exists()


def test_stdin_reaches_the_remote_command(ssh: SSHTransport) -> None:
    script = "#!/bin/bash\n#SBATCH --job-name='a b'\necho \"$(hostname)\"\n"
    result = ssh.run(["cat"], stdin=script)
    assert result.stdout == script


def test_large_output_on_both_streams_does_not_stall(ssh: SSHTransport) -> None:
    payload = "x" * 1_000_000
    result = ssh.run(
        ["sh", "-c", "cat; cat >&2 </dev/null; head -c 300000 /dev/zero >&2"],
        stdin=payload,
        timeout=30,
    )
    assert result.stdout == payload
    assert len(result.stderr) == 300_000


def test_exit_status_and_streams_are_kept_apart(ssh: SSHTransport) -> None:
    result = ssh.run(["sh", "-c", "echo out; echo err >&2; exit 4"])
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")
    assert not result.ok


def test_missing_command_is_a_transport_error(ssh: SSHTransport) -> None:
    with pytest.raises(TransportError, match="command not found"):
        ssh.run(["no-such-slurm-command", "--version"])


def test_timeout_is_a_transport_error(ssh: SSHTransport) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match="did not finish|timed out"):
        ssh.run(["sleep", "10"], timeout=1)
    assert time.monotonic() - started < 5


def test_dropped_connection_is_reopened_once(ssh: SSHTransport) -> None:
    assert ssh.run(["true"]).ok
    ssh._client.get_transport().close()  # the login node dropped us
    assert ssh.run(["echo", "again"]).stdout == "again\n"


def test_one_connection_serves_threads(ssh: SSHTransport) -> None:
    outputs: list[str] = []

    def worker(number: int) -> None:
        outputs.append(ssh.run(["echo", str(number)]).stdout.strip())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outputs, key=int) == [str(n) for n in range(8)]


def test_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:  # noqa: F811
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(TransportError, match="not found in known_hosts"):
        transport_for(sshd, known_hosts=str(empty)).run(["true"])


def test_host_key_checking_is_on_by_default(sshd: SshServer) -> None:  # noqa: F811
    # known_hosts=None reads the user's ~/.ssh/known_hosts, which does not know this server.
    with pytest.raises(TransportError, match="not found in known_hosts"):
        transport_for(sshd, known_hosts=None).run(["true"])


def test_changed_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:  # noqa: F811
    other = make_key(tmp_path / "other_host")
    known_hosts = tmp_path / "known_hosts"
    key_type, key_data = other.split()[:2]
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {key_data}\n")
    with pytest.raises(TransportError, match="does not match"):
        transport_for(sshd, known_hosts=str(known_hosts)).run(["true"])


def test_key_not_in_authorized_keys_is_refused(sshd: SshServer, tmp_path: Path) -> None:  # noqa: F811
    make_key(tmp_path / "stranger")
    with pytest.raises(TransportError, match="authentication"):
        transport_for(sshd, key_file=str(tmp_path / "stranger")).run(["true"])


def test_nothing_listening_is_a_transport_error(sshd: SshServer) -> None:  # noqa: F811
    from tests.fixtures.sshd import free_port

    with pytest.raises(TransportError, match="cannot connect"):
        transport_for(sshd, port=free_port()).run(["true"])


@pytest.mark.cluster
def test_slurm_version_through_ssh(ssh: SSHTransport, slurm_cluster: None) -> None:
    local = subprocess.run(["sinfo", "--version"], capture_output=True, text=True, check=True)
    remote = ssh.run(commands.version_argv())
    assert remote.ok, remote.stderr
    assert commands.parse_version(remote.stdout) == commands.parse_version(local.stdout)


@pytest.mark.cluster
def test_client_submits_queries_and_finds_by_name_over_ssh(
    ssh: SSHTransport, slurm_cluster: None, tmp_path: Path
) -> None:
    name = f"olp-test-ssh-{time.time_ns()}"
    script = (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n"
        "#SBATCH --array=0-2\n#SBATCH --time=1\n#SBATCH --mem=32M\n"
        f"#SBATCH --output={tmp_path}/%A_%a.out\n"
        'exit "$SLURM_ARRAY_TASK_ID"\n'
    )
    client = SlurmClient(ssh, timeout=30)
    job_id = client.submit(script_text=script)
    assert client.find_by_name(name) == [job_id]
    deadline = time.monotonic() + 120
    rows = client.query([job_id])
    while not (len(rows) == 3 and all(is_terminal(row.state) for row in rows)):
        assert time.monotonic() < deadline, rows
        time.sleep(2)
        rows = client.query([job_id])
    by_index = {row.task_index: row for row in rows}
    assert by_index[0].state == "COMPLETED" and by_index[0].exit_code == 0
    assert by_index[2].state == "FAILED" and by_index[2].exit_code == 2
