"""The JSON shapes of submissions and tasks, shared by the REST API and the CLI's ``--json``,
and the CLI's text forms of those shapes.

No Flask here: the functions take model objects (and, for counts, a SQLAlchemy session), so
the API, the local CLI and the remote CLI (``portal --server``, which only has the JSON) print
exactly the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.models import Submission, Task
from portal.results.table import ResultsTable
from portal.slurm.states import PENDING


def isotime(value: datetime | None) -> str | None:
    """A stored (naive UTC) time as ISO 8601 with a ``Z``; ``None`` stays ``None``."""
    return None if value is None else value.isoformat() + "Z"


def task_counts(session: Session, submission_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    """Tasks per state for each submission, from ONE grouped query."""
    ids = list(submission_ids)
    counts: dict[int, dict[str, int]] = {sid: {} for sid in ids}
    if not ids:
        return counts
    rows = session.execute(
        select(Task.submission_id, Task.state, func.count(Task.id))
        .where(Task.submission_id.in_(ids))
        .group_by(Task.submission_id, Task.state)
    )
    for sid, state, count in rows:
        counts[sid][state] = count
    return counts


def submission_url(site_url: str, uuid: str) -> str:
    """The submission's web page under ``site_url``."""
    return f"{site_url.rstrip('/')}/submissions/{uuid}"


def submission_dict(
    submission: Submission,
    counts: Mapping[str, int],
    *,
    site_url: str,
    local: bool = False,
) -> dict[str, Any]:
    """The JSON shape of a submission (see docs/api.md).

    ``counts`` is its tasks per state (:func:`task_counts`); ``local`` adds the run folder,
    which only matters on the portal host.
    """
    data: dict[str, Any] = {
        "id": submission.id,
        "uuid": submission.uuid,
        "name": submission.name,
        "owner": submission.owner.username,
        "state": submission.state,
        "repo_url": submission.repo_url,
        "ref": submission.ref,
        "commit": submission.commit,
        "design_path": submission.design_path,
        "flow": submission.flow,
        "flow_note": submission.flow_note,
        "params": submission.base_params or {},
        "sweep": submission.sweep_spec,
        "resources": submission.resources or {},
        "notify": submission.notify,
        "n_tasks": submission.n_tasks,
        "tasks_by_state": dict(sorted(counts.items())),
        "cost_core_hours": round(submission.cost_core_hours or 0.0, 3),
        "job_ids": list(submission.job_ids or []),
        "created_at": isotime(submission.created_at),
        "submitted_at": isotime(submission.submitted_at),
        "finished_at": isotime(submission.finished_at),
        "error": submission.error,
        "decision_reason": submission.decision_reason,
        "url": submission_url(site_url, submission.uuid),
    }
    if local:
        data["run_dir"] = submission.run_dir
    return data


def task_dict(task: Task) -> dict[str, Any]:
    """The JSON shape of one array task."""
    return {
        "index": task.index,
        "state": task.state,
        "pending_reason": task.pending_reason if task.state == PENDING else None,
        "exit_code": task.exit_code,
        "signal": task.signal,
        "job": f"{task.array_job_id}_{task.array_index}" if task.array_job_id else None,
        "node": task.node,
        "started_at": isotime(task.started_at),
        "ended_at": isotime(task.ended_at),
        "elapsed_seconds": task.elapsed_seconds,
        "params": task.params or {},
        "metrics": task.metrics,
    }


# --------------------------------------------------------------------------- terminal text


def submission_text(data: Mapping[str, Any], tasks: Iterable[Mapping[str, Any]] = ()) -> str:
    """The CLI's view of one submission (its JSON shape) and its tasks."""
    lines = [
        f"{data['uuid']}  {data['state']}  {data['name']}",
        f"  repo {data['repo_url']} @ {data['ref']} ({(data.get('commit') or '?')[:12]})",
        f"  flow {data['flow']}, {data['n_tasks']} task(s), jobs "
        f"{', '.join(data.get('job_ids') or []) or '-'}",
    ]
    if data.get("flow_note"):
        lines.append(f"  note: {data['flow_note']}")
    if data.get("error"):
        lines.append(f"  error: {data['error']}")
    if data.get("decision_reason"):
        lines.append(f"  approval: {data['decision_reason']}")
    for task in tasks:
        job = task.get("job") or "-"
        code = "" if task.get("exit_code") is None else f" exit {task['exit_code']}"
        if task.get("exit_code") is None and task.get("signal"):
            code = f" signal {task['signal']}"
        params = " ".join(f"{k}={v}" for k, v in (task.get("params") or {}).items())
        lines.append(f"  [{task['index']:>4}] {task['state']:<13} {job:<12}{code}  {params}")
    return "\n".join(lines)


def submission_row(data: Mapping[str, Any]) -> str:
    """One line of the CLI's submission list."""
    return f"{data['uuid'][:8]}  {data['state']:<17} {data['n_tasks']:>5} tasks  {data['name']}"


def results_from_dict(data: Mapping[str, Any]) -> ResultsTable:
    """A :class:`~portal.results.table.ResultsTable` back from its JSON shape (the API's answer)."""
    rows = [
        {key: row.get(key) for key in ("index", "state", "exit_code", "params", "metrics")}
        for row in data["rows"]
    ]
    params: list[str] = []
    for row in rows:
        row["params"] = row["params"] or {}
        params.extend(p for p in row["params"] if p not in params)
    return ResultsTable(
        params,
        rows,
        dict(data["objectives"]),
        [int(i) for i in data["pareto"]],
        {name: int(i) for name, i in data["best"].items()},
    )
