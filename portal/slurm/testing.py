"""Test double of a transport: answers Slurm commands from recorded output, without a cluster.

Used by the Slurm layer's unit tests (with the recordings in ``tests/data/slurm``) and usable
by any test that needs a :class:`~portal.slurm.client.SlurmClient` whose answers are fixed.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from portal.slurm.client import program_name
from portal.slurm.transports import CommandResult


class ScriptedTransport:
    """Answer each command with the next scripted result for its program (``sacct``...).

    ``script`` maps a program name to one result (reused for every call) or to a sequence
    of results (consumed in order). Every call is kept in :attr:`calls` as
    ``(argv, stdin)``. A program with no script left raises ``AssertionError``.
    """

    def __init__(self, script: Mapping[str, CommandResult | Iterable[CommandResult]]) -> None:
        self._fixed: dict[str, CommandResult] = {}
        self._queued: dict[str, deque[CommandResult]] = {}
        for program, answer in script.items():
            if isinstance(answer, CommandResult):
                self._fixed[program] = answer
            else:
                self._queued[program] = deque(answer)
        self.calls: list[tuple[list[str], str | None]] = []

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 60
    ) -> CommandResult:
        """Record the call and return the scripted result for its program."""
        self.calls.append((list(argv), stdin))
        program = program_name(argv)
        if program in self._fixed:
            return self._fixed[program]
        queue = self._queued.get(program)
        if not queue:
            raise AssertionError(f"no scripted answer left for {program}: {list(argv)}")
        return queue.popleft()

    def programs(self) -> list[str]:
        """The program of every call so far, in order."""
        return [program_name(argv) for argv, _ in self.calls]


def recorded_result(folder: Path, name: str) -> CommandResult:
    """The result recorded as ``name`` in ``folder`` (``manifest.json`` gives the exit status,
    ``<name>.stdout`` / ``<name>.stderr`` the output; a missing file is an empty stream)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if name not in manifest:
        raise KeyError(f"no recording named {name!r} in {folder}")
    return CommandResult(
        returncode=int(manifest[name]["returncode"]),
        stdout=_read_optional(folder / f"{name}.stdout"),
        stderr=_read_optional(folder / f"{name}.stderr"),
    )


def _read_optional(path: Path) -> str:
    return path.read_text() if path.exists() else ""
