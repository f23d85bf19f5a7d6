"""Optional pyslurm backend: job records straight from slurmctld's API instead of squeue.

pyslurm is compiled against one Slurm release and only works with a cluster of the same
major.minor version, so :func:`available` checks both that it imports and that the versions
match; the CLI path (:mod:`portal.slurm.commands`) is the one that must always work.

Not installed here: PyPI has pyslurm builds for Slurm 25.11 only and Debian bookworm ships
Slurm 22.05. :func:`rows_from_pyslurm_job` is therefore unit-tested against recorded plain
dicts shaped like the records of pyslurm's classic ``pyslurm.job().get()`` API (one dict per
job: ``job_id``, ``array_job_id``, ``array_task_id``, ``array_task_str``, ``job_state``,
``exit_code`` as ``"3:0"``, ``nodes``, ``start_time``/``end_time`` as epoch seconds, ``run_time``,
``state_reason``, ``name``), not against pyslurm itself.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from portal.slurm.commands import (
    SlurmParseError,
    TaskRow,
    expand_indices,
    parse_exit_code,
    parse_version,
    version_argv,
)
from portal.slurm.states import PENDING, TERMINAL, normalize_state
from portal.slurm.transports import LocalTransport, Transport, TransportError

log = logging.getLogger(__name__)
_NO_EXIT: tuple[int | None, int | None] = (None, None)


def major_minor(version: str) -> tuple[int, int] | None:
    """``"22.05.8"`` and ``"22.5.1"`` -> ``(22, 5)``; None if there is no version in it."""
    match = re.search(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def pyslurm_version() -> str | None:
    """The importable pyslurm's version string, or None if pyslurm cannot be imported."""
    try:
        module = importlib.import_module("pyslurm")
    except ImportError:
        return None
    version = getattr(module, "__version__", None)
    if version is None and callable(getattr(module, "version", None)):
        version = module.version()
    return str(version) if version else None


def versions_match(pyslurm_version_text: str, slurm_version_text: str) -> bool:
    """True when both versions name the same Slurm major.minor release."""
    ours = major_minor(pyslurm_version_text)
    return ours is not None and ours == major_minor(slurm_version_text)


def available(cluster_version: str | None = None, transport: Transport | None = None) -> bool:
    """True only if pyslurm imports and was built for the cluster's major.minor release.

    ``cluster_version`` is e.g. ``SlurmClient.version()`` or scontrol's ``SLURM_VERSION``;
    when omitted, ``sinfo --version`` is asked through ``transport`` (default: local), and
    only after pyslurm has imported.
    """
    version = pyslurm_version()
    if version is None:
        return False
    if cluster_version is None:
        cluster_version = _cluster_version(transport or LocalTransport())
        if cluster_version is None:
            return False
    if not versions_match(version, cluster_version):
        log.info("pyslurm %s does not match Slurm %s; using the CLI", version, cluster_version)
        return False
    return True


def _cluster_version(transport: Transport) -> str | None:
    try:
        result = transport.run(version_argv(), timeout=30)
        return parse_version(result.stdout) if result.ok else None
    except (TransportError, SlurmParseError) as exc:
        log.info("cannot read the cluster's Slurm version: %s", exc)
        return None


def rows_from_pyslurm_jobs(
    jobs: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]],
) -> list[TaskRow]:
    """Convert pyslurm job records (a ``{job_id: record}`` dict or any iterable of records)."""
    records = jobs.values() if isinstance(jobs, Mapping) else jobs
    rows: list[TaskRow] = []
    for record in records:
        rows.extend(rows_from_pyslurm_job(record))
    return rows


def rows_from_pyslurm_job(job: Mapping[str, Any]) -> list[TaskRow]:
    """One pyslurm job record -> its task rows (a pending array record gives one per index)."""
    raw_id = str(job["job_id"])
    array_id = job.get("array_job_id")
    state = normalize_state(str(job.get("job_state") or ""))
    finished = state in TERMINAL
    exit_code, signal = parse_exit_code(str(job.get("exit_code") or "")) if finished else _NO_EXIT
    started = state != PENDING
    values = (
        state,
        exit_code,
        signal,
        job.get("nodes") or None,
        _epoch(job.get("start_time")) if started else None,
        _epoch(job.get("end_time")) if finished else None,
        int(job.get("run_time") or 0) if started else None,
        _reason(job.get("state_reason")),
        str(job.get("name") or ""),
    )
    if not array_id:
        return [TaskRow(raw_id, None, raw_id, *values)]
    if job.get("array_task_str"):
        indices = expand_indices(str(job["array_task_str"]))
    else:
        indices = [int(job["array_task_id"])]
    return [TaskRow(str(array_id), index, raw_id, *values) for index in indices]


def _epoch(value: Any) -> datetime | None:
    """Epoch seconds -> naive local time, like the timestamps sacct prints."""
    return datetime.fromtimestamp(int(value)) if value else None


def _reason(value: Any) -> str | None:
    return None if value in (None, "", "None") else str(value)
