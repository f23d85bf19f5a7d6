"""LocalTransport with real processes (and real sudo), and the settings factory."""

from __future__ import annotations

import getpass
import time
from pathlib import Path

import pytest

from portal.slurm.transports import (
    CommandResult,
    LocalTransport,
    SSHTransport,
    TransportError,
    transport_from_settings,
)

HOSTILE = ["$(touch pwned)", "`touch pwned`", "a b;c", "x; touch pwned", "'\"", "*", ""]


def test_arguments_reach_the_program_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = LocalTransport().run(["printf", "%s\\n--\\n", *HOSTILE])
    assert result.stdout.split("\n--\n")[:-1] == HOSTILE
    assert not (tmp_path / "pwned").exists()


def test_stdin_is_passed() -> None:
    script = "#!/bin/bash\n#SBATCH --array=0-3\necho $SLURM_ARRAY_TASK_ID\n"
    assert LocalTransport().run(["cat"], stdin=script).stdout == script


def test_non_zero_exit_is_a_result_not_an_error() -> None:
    result = LocalTransport().run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == CommandResult(3, "out\n", "err\n")
    assert not result.ok


def test_missing_command_is_a_transport_error() -> None:
    with pytest.raises(TransportError, match="command not found: no-such-sbatch"):
        LocalTransport().run(["no-such-sbatch", "--parsable"])


def test_timeout_is_a_transport_error() -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match="did not finish within 0.5 s"):
        LocalTransport().run(["sleep", "10"], timeout=0.5)
    assert time.monotonic() - started < 5


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError):
        LocalTransport().run([])


def test_run_as_prefixes_sudo_for_sbatch_and_scancel_only() -> None:
    transport = LocalTransport(run_as="alice")
    sudo = ["sudo", "-n", "-u", "alice", "--"]
    assert transport.command(["sbatch", "--parsable"]) == [*sudo, "sbatch", "--parsable"]
    assert transport.command(["scancel", "7_[1-3]"]) == [*sudo, "scancel", "7_[1-3]"]
    query = ["env", "SLURM_BITSTR_LEN=0", "sacct", "-X"]
    assert transport.command(query) == query  # queries stay with the portal's account
    assert transport.command(["sinfo", "--version"]) == ["sinfo", "--version"]


def test_run_as_really_runs_as_that_user() -> None:
    # Runs as root here (root may sudo to anyone); elsewhere a sudoers rule is needed.
    assert getpass.getuser() == "root", "this test needs root (or a sudoers rule for nobody)"
    transport = LocalTransport(run_as="nobody", sudo_programs=frozenset({"id"}))
    assert transport.run(["id", "-un"]).stdout.strip() == "nobody"
    assert LocalTransport(run_as="nobody").run(["id", "-un"]).stdout.strip() == "root"


def test_run_as_missing_command_is_a_transport_error() -> None:
    transport = LocalTransport(run_as="nobody", sudo_programs=frozenset({"no-such-sbatch"}))
    with pytest.raises(TransportError, match="command not found through sudo"):
        transport.run(["no-such-sbatch"])


# --------------------------------------------------------------------------- settings


def test_local_transport_from_settings() -> None:
    transport = transport_from_settings({"SLURM_TRANSPORT": "local"})
    assert isinstance(transport, LocalTransport) and transport.run_as is None
    as_user = transport_from_settings({"SLURM_TRANSPORT": "local"}, run_as="alice")
    assert isinstance(as_user, LocalTransport) and as_user.run_as == "alice"
    assert isinstance(transport_from_settings({}), LocalTransport)


def test_ssh_transport_from_settings() -> None:
    transport = transport_from_settings(
        {
            "SLURM_TRANSPORT": "ssh",
            "SLURM_SSH_HOST": "login.example.org",
            "SLURM_SSH_PORT": "2222",
            "SLURM_SSH_USER": "portal",
            "SLURM_SSH_KEY_FILE": "/etc/portal/id_ed25519",
            "SLURM_SSH_KNOWN_HOSTS": "/etc/portal/known_hosts",
        }
    )
    assert isinstance(transport, SSHTransport)
    assert (transport.host, transport.port, transport.user) == ("login.example.org", 2222, "portal")
    assert transport.key_file == "/etc/portal/id_ed25519"
    assert transport.known_hosts == "/etc/portal/known_hosts"


@pytest.mark.parametrize(
    ("settings", "run_as"),
    [
        ({"SLURM_TRANSPORT": "ssh"}, None),
        ({"SLURM_TRANSPORT": "ssh", "SLURM_SSH_HOST": "h"}, "alice"),
        ({"SLURM_TRANSPORT": "telnet"}, None),
    ],
)
def test_bad_transport_settings_are_refused(settings: dict[str, str], run_as: str | None) -> None:
    with pytest.raises(ValueError):
        transport_from_settings(settings, run_as=run_as)


def test_ssh_known_hosts_file_must_exist(tmp_path: Path) -> None:
    transport = SSHTransport("127.0.0.1", known_hosts=str(tmp_path / "missing"))
    with pytest.raises(TransportError, match="known_hosts file not found"):
        transport.run(["true"])
