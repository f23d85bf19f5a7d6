"""Run-as settings: SSH + run-as-user is refused up front, every user needs a usable Unix
account, sudo refusals read clearly, and the run-directory hand-over refuses what cannot work.

Real parts only: the transports are the portal's own, sudo and the accounts are this host's
(the tests run as root, which sudo lets run anything as any existing account)."""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.cluster.connect import RunAsError, client_for_owner, run_as_user, slurm_client
from portal.models import User
from portal.slurm.transports import (
    LocalTransport,
    SlurmConfigError,
    SSHTransport,
    TransportError,
    check_settings,
    transport_from_settings,
)
from portal.submit import SubmissionError
from portal.submit.checkout import StagingError, share_run_dir

SSH = {"SLURM_TRANSPORT": "ssh", "SLURM_SSH_HOST": "login.example.org"}


def user(unix_user: str | None = "olp_alice") -> User:
    return User(username="alice", email="alice@example.org", unix_user=unix_user)


# --------------------------------------------------------------------------- settings


def test_ssh_transport_with_run_as_user_is_a_configuration_error() -> None:
    settings = {**SSH, "SLURM_RUN_AS": "user"}
    with pytest.raises(SlurmConfigError, match="SLURM_RUN_AS='user' is not supported with"):
        check_settings(settings)
    # Refused whenever a client is built, even the poller's (no user) and a service query.
    with pytest.raises(SlurmConfigError, match="SLURM_TRANSPORT='local'"):
        slurm_client(settings)
    with pytest.raises(SlurmConfigError):
        slurm_client(settings, user())
    with pytest.raises(SlurmConfigError):
        transport_from_settings(settings)


def test_supported_combinations_pass_the_check() -> None:
    check_settings({})
    check_settings({"SLURM_TRANSPORT": "local", "SLURM_RUN_AS": "user"})
    check_settings({**SSH, "SLURM_RUN_AS": "service"})
    assert isinstance(slurm_client({**SSH, "SLURM_RUN_AS": "service"}).transport, SSHTransport)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SLURM_RUN_AS": "designer"}, "SLURM_RUN_AS must be 'service' or 'user'"),
        ({"SLURM_TRANSPORT": "rsh"}, "SLURM_TRANSPORT must be 'local' or 'ssh'"),
        ({"SLURM_TRANSPORT": "ssh"}, "SLURM_SSH_HOST is not set"),
    ],
)
def test_unknown_modes_are_refused(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SlurmConfigError, match=message):
        check_settings(settings)
    with pytest.raises(ValueError, match=message):  # what the web's client builder catches
        slurm_client(settings)


def test_mode_names_are_read_case_insensitively() -> None:
    transport = slurm_client({"SLURM_RUN_AS": " User "}, user()).transport
    assert isinstance(transport, LocalTransport) and transport.run_as == "olp_alice"


# --------------------------------------------------------------------------- the user's account


def test_service_mode_ignores_the_unix_account() -> None:
    assert run_as_user({"SLURM_RUN_AS": "service"}, user()) is None
    transport = slurm_client({}, user()).transport
    assert isinstance(transport, LocalTransport) and transport.run_as is None


def test_user_mode_runs_sbatch_and_scancel_as_the_unix_account() -> None:
    transport = slurm_client({"SLURM_RUN_AS": "user"}, user("olp_alice")).transport
    assert isinstance(transport, LocalTransport) and transport.run_as == "olp_alice"
    assert transport.command(["sbatch", "job.sbatch"])[:5] == [
        "sudo",
        "-n",
        "-u",
        "olp_alice",
        "--",
    ]
    assert transport.command(["sacct", "-j", "1"]) == ["sacct", "-j", "1"]


def test_user_without_unix_account_gets_a_clear_error() -> None:
    with pytest.raises(RunAsError, match="'alice' has no Unix account") as refused:
        slurm_client({"SLURM_RUN_AS": "user"}, user(None))
    assert "SLURM_RUN_AS='user'" in str(refused.value)
    assert isinstance(refused.value, SubmissionError)  # shown by the web form and the CLI
    with pytest.raises(RunAsError):
        run_as_user({"SLURM_RUN_AS": "user"}, user(""))


@pytest.mark.parametrize("name", ["#0", "-u", "root", "alice smith", "a;id", "x" * 33, "../x"])
def test_unusable_unix_accounts_are_refused(name: str) -> None:
    with pytest.raises(RunAsError, match="unusable Unix account"):
        slurm_client({"SLURM_RUN_AS": "user"}, user(name))


def test_client_for_owner_switches_a_service_client_to_the_owner() -> None:
    settings = {"SLURM_RUN_AS": "user"}
    service = slurm_client(settings)  # the poller's client
    switched = client_for_owner(service, settings, user("olp_alice"))
    assert switched is not service and switched.transport.run_as == "olp_alice"
    assert client_for_owner(switched, settings, user("olp_alice")) is switched
    assert client_for_owner(service, {}, user("olp_alice")) is service  # service mode
    with pytest.raises(RunAsError):
        client_for_owner(service, settings, user(None))


# --------------------------------------------------------------------------- sudo refusals


def test_sudo_refusal_is_a_clear_transport_error() -> None:
    assert getpass.getuser() == "root", "root may sudo to any existing account"
    transport = LocalTransport(run_as="olp-no-such-account")
    with pytest.raises(TransportError, match="sudo refused to run sbatch as olp-no-such-account"):
        transport.run(["sbatch", "--version"])
    with pytest.raises(TransportError, match="sudoers rule must let the portal's account run"):
        transport.run(["scancel", "--version"])


# --------------------------------------------------------------------------- run directory


@pytest.fixture
def run_root() -> Iterator[Path]:
    """A run root any account can reach (pytest's own tmp_path is private to root)."""
    with tempfile.TemporaryDirectory(prefix="olp-share-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        root = Path(tmp) / "runs"
        root.mkdir(mode=0o755)
        yield root


def test_share_refuses_an_unknown_account(run_root: Path) -> None:
    (run_root / "r1").mkdir()
    with pytest.raises(StagingError, match="no Unix account 'olp-no-such-account'"):
        share_run_dir(run_root / "r1", "olp-no-such-account")


def test_share_refuses_a_job_user_outside_the_run_roots_group(run_root: Path) -> None:
    run_dir = run_root / "r1"
    run_dir.mkdir(mode=0o700)
    before = stat.S_IMODE(run_dir.stat().st_mode)
    with pytest.raises(StagingError, match="nobody is not a member of group root"):
        share_run_dir(run_dir, "nobody")
    assert stat.S_IMODE(run_dir.stat().st_mode) == before  # nothing changed


def test_share_refuses_a_run_root_the_job_user_cannot_reach(run_root: Path) -> None:
    nogroup = os.getgrouplist("nobody", 65534)[0]
    os.chown(run_root, 0, nogroup)
    os.chmod(run_root.parent, 0o700)
    (run_root / "r1").mkdir()
    with pytest.raises(StagingError, match=f"nobody cannot enter {run_root.parent} "):
        share_run_dir(run_root / "r1", "nobody")
    os.chmod(run_root.parent, 0o755)
    share_run_dir(run_root / "r1", "nobody")


def test_share_gives_group_read_and_write_only_where_the_job_writes(run_root: Path) -> None:
    nogroup = os.getgrouplist("nobody", 65534)[0]
    os.chown(run_root, 0, nogroup)
    run_dir = run_root / "r1"
    for folder in ("design/src", "logs", "tasks/0"):
        (run_dir / folder).mkdir(parents=True, mode=0o700)
    os.chmod(run_dir, 0o700)
    (run_dir / "design" / "src" / "top.v").write_text("module top; endmodule\n")
    os.chmod(run_dir / "design" / "src" / "top.v", 0o620)  # group write must go
    (run_dir / "job.sbatch").write_text("#!/bin/bash\n")
    os.chmod(run_dir / "job.sbatch", 0o700)
    (run_dir / "design" / "link").symlink_to("src/top.v")

    assert share_run_dir(run_dir, "nobody", [run_dir / "logs", run_dir / "tasks" / "0"]) == nogroup

    def mode(relative: str) -> int:
        return stat.S_IMODE((run_dir / relative).lstat().st_mode)

    assert mode(".") == 0o2750
    assert mode("design/src") == 0o2750
    assert mode("logs") == mode("tasks/0") == 0o2770
    assert mode("design/src/top.v") == 0o640
    assert mode("job.sbatch") == 0o750
    for path in [run_dir, *run_dir.rglob("*")]:
        assert path.lstat().st_gid == nogroup, path
    assert share_run_dir(run_dir, "nobody", [run_dir / "logs"]) == nogroup  # idempotent
    assert mode("tasks/0") == 0o2750  # no longer listed: write taken back


def test_the_app_factory_refuses_ssh_with_run_as_user(tmp_path: Path) -> None:
    from portal import create_app

    with pytest.raises(ValueError, match="SLURM_RUN_AS"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
                "SLURM_TRANSPORT": "ssh",
                "SLURM_SSH_HOST": "login.example.org",
                "SLURM_RUN_AS": "user",
            }
        )
