"""How Slurm commands are run: a local subprocess or an SSH session to a login node.

Both transports take an argv list and never go through a local shell. Over SSH the remote side
always has a shell, so the command line is built with :func:`shlex.join` (every word quoted).

Running jobs as the designer's own Unix account (``SLURM_RUN_AS='user'``) works through
``sudo`` on the portal host, so it needs the local transport; :func:`check_settings` refuses
it together with the SSH transport (and any unknown mode) before a client is built.

:class:`TransportError` means the command could not be run or finished (connection refused,
unknown host key, command not found, timeout). A command that ran and exited non-zero is *not*
an error here: it is a :class:`CommandResult` with its return code and stderr.
"""

from __future__ import annotations

import logging
import select
import shlex
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import paramiko

log = logging.getLogger(__name__)

#: Exit status a POSIX shell uses for "command not found".
COMMAND_NOT_FOUND = 127


class TransportError(Exception):
    """The command could not be run to completion (not a non-zero exit)."""


class SlurmConfigError(ValueError):
    """The Slurm settings name an unknown mode or a combination the portal cannot run."""


@dataclass(frozen=True)
class CommandResult:
    """What a finished command returned."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        """True when the command exited 0."""
        return self.returncode == 0


class Transport(Protocol):
    """Anything that runs an argv and returns its :class:`CommandResult`."""

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        """Run ``argv`` (optionally feeding ``stdin``); raise :class:`TransportError` if it
        cannot be run or does not finish within ``timeout`` seconds."""
        ...


#: Programs a ``run_as`` transport runs through sudo: the ones that act for the user.
SUDO_PROGRAMS: frozenset[str] = frozenset({"sbatch", "scancel"})


class LocalTransport:
    """Run commands on this host with :mod:`subprocess` (no shell).

    With ``run_as``, the programs in ``sudo_programs`` (sbatch and scancel) are prefixed with
    ``sudo -n -u <user> --``, so the job belongs to that user and a sudoers rule naming just
    those two programs suffices; ``-n`` makes sudo fail at once instead of prompting. Read-only
    queries (sacct, squeue, sinfo, scontrol) keep running as the portal's own account.
    """

    def __init__(
        self, run_as: str | None = None, sudo_programs: frozenset[str] = SUDO_PROGRAMS
    ) -> None:
        self.run_as = run_as
        self.sudo_programs = sudo_programs

    def command(self, argv: Sequence[str]) -> list[str]:
        """The argv actually executed (with the sudo prefix where it applies)."""
        if not argv:
            raise ValueError("empty command")
        if self.run_as is None or argv[0] not in self.sudo_programs:
            return list(argv)
        return ["sudo", "-n", "-u", self.run_as, "--", *argv]

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        """Run ``argv`` locally; see :class:`Transport`."""
        command = self.command(argv)
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise TransportError(f"command not found: {command[0]}") from exc
        except subprocess.TimeoutExpired as exc:
            raise TransportError(f"{argv[0]} did not finish within {timeout:g} s") from exc
        except OSError as exc:
            raise TransportError(f"cannot run {command[0]}: {exc}") from exc
        if command[0] == "sudo" and _sudo_command_not_found(done.returncode, done.stderr):
            raise TransportError(f"command not found through sudo: {argv[0]}")
        if command[0] == "sudo" and _sudo_refused(done.returncode, done.stderr):
            programs = " and ".join(sorted(self.sudo_programs))
            raise TransportError(
                f"sudo refused to run {argv[0]} as {self.run_as}: {done.stderr.strip()} "
                f"(a sudoers rule must let the portal's account run {programs} as "
                f"{self.run_as} without a password)"
            )
        return CommandResult(done.returncode, done.stdout, done.stderr)


def _sudo_command_not_found(returncode: int, stderr: str) -> bool:
    return returncode == 1 and stderr.startswith("sudo:") and "command not found" in stderr


def _sudo_refused(returncode: int, stderr: str) -> bool:
    """sudo itself said no (no rule, password needed, unknown user): the program never ran.

    Slurm's own errors start with the program's name (``sbatch: error: ...``), never ``sudo:``.
    """
    return returncode == 1 and stderr.lstrip().startswith("sudo:")


class SSHTransport:
    """Run commands on a login node over SSH (Paramiko), with key authentication only.

    Host keys are checked against ``known_hosts`` (or the user's ``~/.ssh/known_hosts``)
    and an unknown host is refused. One connection is kept and shared by threads; if it has
    dropped, it is re-opened once before a command starts. A command is never re-sent after
    it may have started, so an ``sbatch`` cannot run twice.
    """

    def __init__(
        self,
        host: str,
        port: int = 22,
        user: str | None = None,
        key_file: str | None = None,
        known_hosts: str | None = None,
        connect_timeout: float = 10,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        """Run ``argv`` on the remote host; see :class:`Transport`."""
        if not argv:
            raise ValueError("empty command")
        channel = self._open_channel()
        try:
            return self._execute(channel, shlex.join(argv), stdin, timeout, argv[0])
        finally:
            channel.close()

    def close(self) -> None:
        """Close the connection (a later :meth:`run` reconnects)."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- connection ------------------------------------------------------------------------

    def _open_channel(self) -> paramiko.Channel:
        """A new session channel, reconnecting once if the kept connection has dropped."""
        try:
            return self._session(self._connected())
        except (paramiko.SSHException, OSError, EOFError) as first_error:
            log.info("ssh connection to %s dropped (%s); reconnecting", self.host, first_error)
            self.close()
        try:
            return self._session(self._connected())
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise TransportError(f"ssh to {self.host}:{self.port} failed: {exc}") from exc

    def _session(self, client: paramiko.SSHClient) -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("connection is closed")
        return transport.open_session(timeout=self.connect_timeout)

    def _connected(self) -> paramiko.SSHClient:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts is not None:
            if not Path(self.known_hosts).is_file():
                raise TransportError(f"known_hosts file not found: {self.known_hosts}")
            client.load_host_keys(self.known_hosts)
        else:
            client.load_system_host_keys()
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                key_filename=self.key_file,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                allow_agent=self.key_file is None,
                look_for_keys=self.key_file is None,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise TransportError(f"host key of {self.host} does not match known_hosts") from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise TransportError(f"ssh key authentication to {self.host} failed") from exc
        except paramiko.SSHException as exc:
            client.close()
            raise TransportError(f"ssh to {self.host}:{self.port} refused: {exc}") from exc
        except OSError as exc:
            client.close()
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return client

    # -- one command -----------------------------------------------------------------------

    def _execute(
        self,
        channel: paramiko.Channel,
        command: str,
        stdin: str | None,
        timeout: float,
        program: str,
    ) -> CommandResult:
        deadline = time.monotonic() + timeout
        try:
            channel.exec_command(command)
            if stdin is not None:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            stdout, stderr = _drain(channel, deadline)
            if not channel.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise TransportError(f"{program} did not finish within {timeout:g} s")
            returncode = channel.recv_exit_status()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"ssh command {program} failed: {exc}") from exc
        if returncode == COMMAND_NOT_FOUND:
            raise TransportError(f"command not found on {self.host}: {program}")
        return CommandResult(returncode, stdout, stderr)


def _drain(channel: paramiko.Channel, deadline: float) -> tuple[str, str]:
    """Read stdout and stderr together until the remote side closes both."""
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        while channel.recv_ready():
            out.append(channel.recv(65536))
        while channel.recv_stderr_ready():
            err.append(channel.recv_stderr(65536))
        finished = channel.eof_received or channel.closed
        if finished and not channel.recv_ready() and not channel.recv_stderr_ready():
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError("remote command timed out")
        select.select([channel], [], [], min(remaining, 1.0))
    return b"".join(out).decode(errors="replace"), b"".join(err).decode(errors="replace")


#: Values of ``SLURM_RUN_AS``: the portal's service account, or each designer's own account.
RUN_AS_MODES = ("service", "user")


def transport_kind(settings: Mapping[str, Any]) -> str:
    """``SLURM_TRANSPORT`` normalised: ``local`` (the default) or ``ssh``."""
    kind = str(settings.get("SLURM_TRANSPORT") or "local").strip().lower()
    if kind not in ("local", "ssh"):
        raise SlurmConfigError(f"SLURM_TRANSPORT must be 'local' or 'ssh', not {kind!r}")
    return kind


def run_as_mode(settings: Mapping[str, Any]) -> str:
    """``SLURM_RUN_AS`` normalised: ``service`` (the default) or ``user``."""
    mode = str(settings.get("SLURM_RUN_AS") or "service").strip().lower()
    if mode not in RUN_AS_MODES:
        raise SlurmConfigError(f"SLURM_RUN_AS must be 'service' or 'user', not {mode!r}")
    return mode


def check_settings(settings: Mapping[str, Any]) -> None:
    """Refuse Slurm settings the portal cannot run, with a message naming the setting.

    ``SLURM_RUN_AS='user'`` runs sbatch and scancel through ``sudo`` on the portal host, which
    the SSH transport cannot do: that combination is a :class:`SlurmConfigError`.
    """
    kind, mode = transport_kind(settings), run_as_mode(settings)
    if kind == "ssh" and mode == "user":
        raise SlurmConfigError(
            "SLURM_RUN_AS='user' is not supported with SLURM_TRANSPORT='ssh': jobs run as the "
            "designer through sudo on the portal host, so run the portal on a login node with "
            "SLURM_TRANSPORT='local', or set SLURM_RUN_AS='service'"
        )
    if kind == "ssh" and not settings.get("SLURM_SSH_HOST"):
        raise SlurmConfigError("SLURM_TRANSPORT is 'ssh' but SLURM_SSH_HOST is not set")


def transport_from_settings(settings: Mapping[str, Any], run_as: str | None = None) -> Transport:
    """Build the transport the portal settings ask for (checked by :func:`check_settings`).

    Keys: ``SLURM_TRANSPORT`` (``local`` | ``ssh``), ``SLURM_RUN_AS``, ``SLURM_SSH_HOST``,
    ``SLURM_SSH_PORT``, ``SLURM_SSH_USER``, ``SLURM_SSH_KEY_FILE``, ``SLURM_SSH_KNOWN_HOSTS``.
    ``run_as`` (local only) runs sbatch and scancel as that Unix user through ``sudo -n``.
    """
    check_settings(settings)
    if transport_kind(settings) == "local":
        return LocalTransport(run_as=run_as)
    if run_as is not None:
        raise SlurmConfigError("run_as is only supported by the local transport")
    host = settings["SLURM_SSH_HOST"]
    return SSHTransport(
        host,
        port=int(settings.get("SLURM_SSH_PORT") or 22),
        user=settings.get("SLURM_SSH_USER"),
        key_file=settings.get("SLURM_SSH_KEY_FILE"),
        known_hosts=settings.get("SLURM_SSH_KNOWN_HOSTS"),
    )
