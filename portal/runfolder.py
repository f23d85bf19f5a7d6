"""Every path of a run folder, in one place: what staging writes, the array script uses, the
poller collects, and the pages, mails and export read.

::

    <RUN_ROOT>/<uuid>/
        design/                       the designer's repository at the pinned commit
        task-configs.txt, .index      every task's config (portal.submit.taskconfigs)
        sweep.tsv, submission.json    the sweep table and the submission's manifest
        job.sbatch, resubmit-1.sbatch the scripts sbatch ran (job-0.sbatch... when split)
        logs/<job>_<index>.out|err    Slurm's output of each array task
        tasks/<index>/                a task's own folder (its config, the flow's runs/)

Paths a request names go through :mod:`portal.rundir`'s confinement; this module only says
where things are. No Flask, no database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from portal import rundir
from portal.rundir import Owners, PathRefused

_JOB_ID_RE = re.compile(r"[0-9]{1,20}")

#: Names of the scripts launches write into a run folder: ``job.sbatch`` (``job-<n>.sbatch``
#: per array of a split sweep) for the first submission, ``resubmit-<r>.sbatch``
#: (``resubmit-<r>-<n>.sbatch``) for the r-th resubmission.
SCRIPT_NAME_RE = re.compile(r"(?:job|resubmit-([1-9][0-9]*))(?:-([0-9]+))?\.sbatch")


class HasRunFolder(Protocol):
    """What :meth:`RunFolder.of` needs of a submission."""

    uuid: str
    run_dir: str | None


def log_name(job_id: str | None, array_index: int | None, stream: str = "out") -> str:
    """``logs/<job>_<index>.<out|err>``, relative to the run folder: where the array script
    sends a task's output. Raises :class:`~portal.rundir.PathRefused` for a task not submitted."""
    if stream not in ("out", "err"):
        raise PathRefused(f"unknown log stream {stream!r}")
    if not job_id or not _JOB_ID_RE.fullmatch(str(job_id)) or array_index is None:
        raise PathRefused("the task has not been submitted")
    if isinstance(array_index, bool) or not isinstance(array_index, int) or array_index < 0:
        raise PathRefused(f"bad array index {array_index!r}")
    return f"logs/{job_id}_{array_index}.{stream}"


def find_final_gds(task_folder: str | os.PathLike[str], owners: Owners = None) -> Path | None:
    """The newest final GDS of a task (OpenLane 1 ``runs/*/results/final/gds/*.gds`` or
    OpenLane 2 ``runs/*/final/gds/*.gds``), confined to the task folder, or None."""
    root = Path(task_folder)
    if not root.is_dir():
        return None
    found = []
    for pattern in ("runs/*/results/final/gds/*.gds", "runs/*/final/gds/*.gds"):
        for path in root.glob(pattern):
            try:
                real = rundir.confine(root, path.relative_to(root).as_posix())
                info = path.lstat()
            except (PathRefused, OSError, ValueError):
                continue
            if rundir.servable(info, owners):
                found.append((info.st_mtime, str(real), real))
    return max(found)[2] if found else None


@dataclass(frozen=True)
class RunFolder:
    """One submission's run folder (like submitit's ``JobPaths``): every path in it."""

    root: Path

    def __init__(self, root: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "root", Path(root))

    @classmethod
    def of(cls, submission: HasRunFolder, settings: Mapping[str, Any]) -> RunFolder:
        """The submission's folder: where it was staged, else ``<RUN_ROOT>/<uuid>``."""
        return cls(submission.run_dir or Path(settings["RUN_ROOT"]) / submission.uuid)

    @property
    def design(self) -> Path:
        """The checkout of the designer's repository."""
        return self.root / "design"

    @property
    def logs(self) -> Path:
        """Slurm's output files (``--output``/``--error``) of every task."""
        return self.root / "logs"

    @property
    def tasks(self) -> Path:
        """The parent of every task's own folder."""
        return self.root / "tasks"

    @property
    def sweep_table(self) -> Path:
        return self.root / "sweep.tsv"

    @property
    def manifest(self) -> Path:
        return self.root / "submission.json"

    def task(self, index: int) -> Path:
        """``tasks/<index>``, confined to the run folder (a task folder swapped for a link that
        leads out is refused with :class:`~portal.rundir.PathRefused`)."""
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise PathRefused(f"bad task index {index!r}")
        return rundir.confine(self.root, f"tasks/{index}")

    def log(self, job_id: str | None, array_index: int | None, stream: str = "out") -> Path:
        """A task's Slurm output file (see :func:`log_name`)."""
        return self.root / log_name(job_id, array_index, stream)

    def final_gds(self, index: int, owners: Owners = None) -> Path | None:
        """Task ``index``'s newest final GDS (see :func:`find_final_gds`)."""
        return find_final_gds(self.task(index), owners)

    def script_names(self, *, first_round: bool = False) -> list[str]:
        """The sbatch scripts that ran, as the launches wrote them here (sbatch read these
        very files): the first submission's in array order, then each resubmission's; only the
        first submission's with ``first_round``. Empty when the folder holds none."""
        try:
            with os.scandir(self.root) as entries:
                names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
        except OSError:
            return []
        found = []
        for name in names:
            match = SCRIPT_NAME_RE.fullmatch(name)
            if match and not (first_round and match.group(1)):
                found.append((int(match.group(1) or 0), int(match.group(2) or -1), name))
        return [name for _round, _chunk, name in sorted(found)]

    def next_round(self) -> int:
        """The number of the next resubmission (1 for the first)."""
        rounds = [SCRIPT_NAME_RE.fullmatch(name).group(1) for name in self.script_names()]  # type: ignore[union-attr]
        return max((int(r) for r in rounds if r), default=0) + 1

    def read_script(self, name: str, owners: Owners = None) -> bytes:
        """The bytes of the stored script ``name`` (one of :meth:`script_names`), read
        confined to the folder; :class:`~portal.rundir.PathRefused` for any other name, a
        symlink or a missing file."""
        if not SCRIPT_NAME_RE.fullmatch(name):
            raise PathRefused(f"{name!r} is not an sbatch script of the portal")
        if os.path.islink(self.root / name):
            raise PathRefused(f"{name} is a symbolic link, not the script that ran")
        with rundir.open_confined(self.root, name, owners) as handle:
            return handle.read()


__all__ = ["SCRIPT_NAME_RE", "RunFolder", "find_final_gds", "log_name"]
