"""What the portal's emails say: subject, plain text and HTML for submissions, decisions and tests.

Everything here is computed from the database rows and the run directory; nothing is sent.
Templates live in ``portal/templates/email/`` and are rendered with a Jinja environment of their
own (HTML autoescaped, undefined names are errors), so this module works without a Flask app.

The submission email carries a table of the sweep's results with the Pareto members (minimize
die area and total power, maximize setup WNS; objectives no completed task measured are left
out) and the best task per objective marked, the failed tasks with the tails of their Slurm
logs, and, when the best-area task's GDS exists, a layout thumbnail. The thumbnail is *not*
stored: the HTML refers to it as ``cid:`` + :func:`thumbnail_cid`, between the markers
:data:`THUMBNAIL_START` / :data:`THUMBNAIL_END`, and the sender re-renders it with
:func:`render_thumbnail` (or removes the block with :func:`strip_thumbnail` when the GDS has
gone or cannot be drawn).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2

from portal import rundir
from portal.models import Submission, Task
from portal.results import pareto
from portal.results.thumbnail import LayoutError, render_gds_png
from portal.runfolder import RunFolder
from portal.slurm import commands
from portal.slurm.states import CANCELLATIONS, COMPLETED, FAILURES

TEMPLATE_DIR = Path(__file__).parents[1] / "templates" / "email"
SUBJECT_PREFIX = "[OpenLane Portal]"
#: Submission states that end a job array (and trigger the completion email).
TERMINAL_STATES = ("COMPLETED", "FAILED", "PARTIAL", "CANCELLED")
#: Pareto objectives of the results table.
OBJECTIVES: dict[str, pareto.Direction] = {
    "die_area_um2": "min",
    "cell_area_um2": "min",
    "power_total_w": "min",
    "setup_wns_ns": "max",
}
OBJECTIVE_LABELS = {
    "die_area_um2": "area",
    "cell_area_um2": "cell area",
    "power_total_w": "power",
    "setup_wns_ns": "WNS",
}
MAX_ROWS = 50
MAX_PARAM_COLUMNS = 6
MAX_LOG_TAILS = 10
LOG_TAIL_LINES = 15
THUMBNAIL_SIZE = (480, 480)
THUMBNAIL_MAX_BYTES = 300 * 1024 * 1024
THUMBNAIL_START = "<!--layout-thumbnail-->"
THUMBNAIL_END = "<!--/layout-thumbnail-->"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


# --------------------------------------------------------------------------- formatting


def _fmt_area(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _fmt_int(value: float) -> str:
    return f"{int(value):,}"


def _fmt_ns(value: float) -> str:
    return f"{value:.3f}"


def _fmt_mw(value: float) -> str:
    return f"{value * 1e3:#.4g}".rstrip(".")


def format_duration(seconds: float | None) -> str:
    """``3723`` -> ``"1:02:03"``; None -> ``"-"``."""
    if seconds is None:
        return "-"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def compress_indices(indices: Sequence[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (Slurm's range list, spaced for reading)."""
    return commands.compress_indices(indices).replace(",", ", ") if indices else ""


def _clean_line(text: str, limit: int = 300) -> str:
    text = _CONTROL.sub("", _ANSI.sub("", text)).rstrip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str, limit: int) -> str:
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if value != value else float(value)  # NaN


# --------------------------------------------------------------------------- table columns


def _drc_total(task: Task, metrics: Mapping[str, Any]) -> float | None:
    counts = [_number(metrics.get(k)) for k in ("drc_route", "drc_magic", "drc_klayout")]
    measured = [c for c in counts if c is not None]
    return sum(measured) if measured else None


def _runtime(task: Task, metrics: Mapping[str, Any]) -> float | None:
    value = _number(metrics.get("runtime_seconds"))
    return value if value is not None else _number(task.elapsed_seconds)


def _field(name: str) -> Callable[[Task, Mapping[str, Any]], float | None]:
    return lambda task, metrics: _number(metrics.get(name))


def _cells(task: Task, metrics: Mapping[str, Any]) -> float | None:
    """Cells in the final layout, else after synthesis (a flow that stopped there)."""
    final = _number(metrics.get("cell_count_final"))
    return final if final is not None else _number(metrics.get("cell_count_synth"))


@dataclass(frozen=True)
class Column:
    """A results-table column: HTML header, shorter plain-text header, value and format."""

    header: str
    short: str
    value: Callable[[Task, Mapping[str, Any]], float | None]
    fmt: Callable[[float], str]


COLUMNS: tuple[Column, ...] = (
    Column("Die area (µm²)", "Area (µm²)", _field("die_area_um2"), _fmt_area),
    Column("Cell area (µm²)", "Cell area (µm²)", _field("cell_area_um2"), _fmt_area),
    Column("Cells", "Cells", _cells, _fmt_int),
    Column("Setup WNS (ns)", "WNS (ns)", _field("setup_wns_ns"), _fmt_ns),
    Column("Total power (mW)", "Power (mW)", _field("power_total_w"), _fmt_mw),
    Column("DRC errors", "DRC", _drc_total, _fmt_int),
    Column("Runtime (h:mm:ss)", "Runtime", _runtime, format_duration),
)


# --------------------------------------------------------------------------- report model


@dataclass(frozen=True)
class ResultRow:
    """One task in the results table; ``cells`` are formatted, ``None`` for "not measured"."""

    index: int
    state: str
    params: list[str]
    cells: list[str | None]
    pareto: bool
    best: list[str]

    @property
    def notes(self) -> str:
        words = (["Pareto"] if self.pareto else []) + [f"best {b}" for b in self.best]
        return ", ".join(words)


@dataclass(frozen=True)
class FailedTask:
    """A failed task with the tail of its Slurm log (``log`` is None when no log was found)."""

    index: int
    state: str
    exit_code: int | None
    log: str | None
    tail: list[str]
    #: the flow's own error messages (see :func:`portal.flows.reports.run_errors`)
    errors: list[str] = field(default_factory=list)
    #: what the Slurm state means for the designer ("" for a plain FAILED)
    hint: str = ""


@dataclass
class SubmissionReport:
    """Everything the submission templates show."""

    subject: str
    name: str
    uuid: str
    url: str
    repo_url: str
    ref: str
    commit: str
    state: str
    flow_note: str | None
    n_tasks: int
    n_completed: int
    state_counts: list[tuple[str, int]]
    wall_time: str
    first_start: datetime | None
    last_end: datetime | None
    param_names: list[str]
    headers: list[str]
    rows: list[ResultRow]
    rows_hidden: int
    objectives: list[str]
    failed: list[FailedTask]
    failed_indices: str
    failed_hidden: int
    cancelled_indices: str
    thumbnail_cid: str | None = None
    thumbnail_task: int | None = None
    text_table: list[str] = field(default_factory=list)


def _metrics(task: Task) -> Mapping[str, Any]:
    return task.metrics if isinstance(task.metrics, Mapping) else {}


def _swept_params(tasks: Sequence[Task]) -> list[str]:
    """Parameter names whose value differs between tasks (all of them for a single point)."""
    names: list[str] = []
    for task in tasks:
        for name in task.params or {}:
            if name not in names:
                names.append(name)
    varying = [n for n in names if len({repr((t.params or {}).get(n)) for t in tasks}) > 1]
    return (varying or names)[:MAX_PARAM_COLUMNS]


def _objectives(rows: Sequence[Mapping[str, Any]]) -> dict[str, pareto.Direction]:
    """:data:`OBJECTIVES` less those no row has a number for; cell area only where no die
    area was measured (a flow that stopped after synthesis)."""
    found = {
        name: direction
        for name, direction in OBJECTIVES.items()
        if any(_number(row.get(name)) is not None for row in rows)
    }
    if "die_area_um2" in found:
        found.pop("cell_area_um2", None)
    return found


def _marks(tasks: Sequence[Task]) -> tuple[set[int], dict[int, list[str]], list[str]]:
    """Pareto members and per-objective bests among completed tasks (by task index)."""
    completed = [t for t in tasks if t.state == COMPLETED and _metrics(t)]
    rows = [_metrics(t) for t in completed]
    objectives = _objectives(rows)
    if not objectives:
        return set(), {}, []
    front = {completed[i].index for i in pareto.pareto_front(rows, objectives)}
    best: dict[int, list[str]] = {}
    for name, position in pareto.best_per_objective(rows, objectives).items():
        best.setdefault(completed[position].index, []).append(OBJECTIVE_LABELS[name])
    labels = [f"{OBJECTIVE_LABELS[n]} ({d})" for n, d in objectives.items()]
    return front, best, labels


def _columns(tasks: Sequence[Task]) -> list[Column]:
    """:data:`COLUMNS` less those no task has a value for (die area and DRC for a flow that
    stopped after synthesis)."""
    measured = [(t, _metrics(t)) for t in tasks if _metrics(t)]
    return [c for c in COLUMNS if any(c.value(t, m) is not None for t, m in measured)]


def _result_rows(
    tasks: Sequence[Task],
    params: list[str],
    pareto: set[int],
    best: dict[int, list[str]],
    columns: Sequence[Column] = COLUMNS,
) -> tuple[list[ResultRow], int]:
    """Rows of tasks that have metrics: marked ones first, then by index, at most MAX_ROWS."""
    with_metrics = [t for t in tasks if _metrics(t)]
    marked = [t for t in with_metrics if t.index in pareto or t.index in best]
    others = [t for t in with_metrics if not (t.index in pareto or t.index in best)]
    shown = sorted((marked + others)[:MAX_ROWS], key=lambda t: t.index)
    rows = []
    for task in shown:
        metrics = _metrics(task)
        cells = []
        for column in columns:
            value = column.value(task, metrics)
            cells.append(None if value is None else column.fmt(value))
        rows.append(
            ResultRow(
                index=task.index,
                state=task.state,
                params=[_one_line(str((task.params or {}).get(p, "")), 24) for p in params],
                cells=cells,
                pareto=task.index in pareto,
                best=best.get(task.index, []),
            )
        )
    return rows, len(with_metrics) - len(shown)


def _text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    numeric = [all(_looks_numeric(r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    return [line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def _looks_numeric(text: str) -> bool:
    return bool(re.fullmatch(r"-|[-+]?[0-9][0-9,.:eE+-]*", text))


def _state_counts(tasks: Sequence[Task]) -> list[tuple[str, int]]:
    counts = Counter(t.state for t in tasks)
    order = [COMPLETED, *sorted(FAILURES), *sorted(CANCELLATIONS)]
    ordered = [(s, counts.pop(s)) for s in order if s in counts]
    return ordered + sorted(counts.items())


def build_report(submission: Submission, site_url: str) -> SubmissionReport:
    """Collect what the submission email shows (see the module docstring)."""
    tasks = sorted(submission.tasks, key=lambda t: t.index)
    params = _swept_params(tasks)
    pareto, best, objective_labels = _marks(tasks)
    columns = _columns(tasks)
    rows, hidden = _result_rows(tasks, params, pareto, best, columns)
    starts = [t.started_at for t in tasks if t.started_at]
    ends = [t.ended_at for t in tasks if t.ended_at]
    first, last = (min(starts) if starts else None), (max(ends) if ends else None)
    wall = format_duration((last - first).total_seconds()) if first and last else "-"

    failed_tasks = [t for t in tasks if t.state in FAILURES]
    failed = [
        _failed_task(submission.run_dir, t, submission.resources)
        for t in failed_tasks[:MAX_LOG_TAILS]
    ]
    cancelled = [t.index for t in tasks if t.state in CANCELLATIONS]
    n_completed = sum(t.state == COMPLETED for t in tasks)

    name = _one_line(submission.name or "", 120) or f"submission {submission.uuid[:8]}"
    state = str(submission.state)
    subject = _one_line(
        f"{SUBJECT_PREFIX} {state}: {name} ({n_completed} of {len(tasks)} tasks completed)", 300
    )
    headers = ["#", *params, "State", *[c.short for c in columns], "Notes"]
    text_rows = [
        [str(r.index), *r.params, r.state, *[c or "-" for c in r.cells], r.notes] for r in rows
    ]
    thumb = best_layout(submission)
    return SubmissionReport(
        subject=subject,
        name=name,
        uuid=submission.uuid,
        url=submission_url(site_url, submission.uuid),
        repo_url=_one_line(submission.repo_url or "", 300),
        ref=_one_line(submission.ref or "", 120),
        commit=(submission.commit or "")[:12] or "-",
        state=state,
        flow_note=_one_line(submission.flow_note, 300) if submission.flow_note else None,
        n_tasks=len(tasks),
        n_completed=n_completed,
        state_counts=_state_counts(tasks),
        wall_time=wall,
        first_start=first,
        last_end=last,
        param_names=[_one_line(p, 24) for p in params],
        headers=[c.header for c in columns],
        rows=rows,
        rows_hidden=hidden,
        objectives=objective_labels,
        failed=failed,
        failed_indices=compress_indices([t.index for t in failed_tasks]),
        failed_hidden=len(failed_tasks) - len(failed),
        cancelled_indices=compress_indices(cancelled),
        thumbnail_cid=thumbnail_cid(submission.uuid) if thumb else None,
        thumbnail_task=thumb[0].index if thumb else None,
        text_table=_text_table(headers, text_rows) if rows else [],
    )


def submission_url(site_url: str, uuid: str) -> str:
    """The submission's page in the portal."""
    return f"{site_url.rstrip('/')}/submissions/{uuid}"


# --------------------------------------------------------------------------- Slurm logs


def task_log_path(
    run_dir: str | os.PathLike[str] | None, task: Task, suffix: str = "out"
) -> Path | None:
    """The Slurm log ``<run_dir>/logs/<array job id>_<array index>.<suffix>`` of ``task``.

    The array index defaults to the task index. Without a job id the newest
    ``logs/<digits>_<index>.<suffix>`` is taken. None when no such file exists.
    """
    if not run_dir:
        return None
    array_index = task.array_index if task.array_index is not None else task.index
    try:
        path = RunFolder(run_dir).log(task.array_job_id, array_index, suffix)
        return path if path.is_file() else None
    except rundir.PathRefused:
        pass  # no job id, or one that is no number: the newest <digits>_<index> log below
    logs = RunFolder(run_dir).logs
    pattern = re.compile(rf"[0-9]+_{array_index}\.{re.escape(suffix)}")
    try:
        found = [p for p in logs.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    except OSError:
        return None
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def read_log_tail(path: str | os.PathLike[str], lines: int = LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines of a log, colour codes and control characters removed."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    cleaned = [_clean_line(line) for line in text.split("\n")]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return cleaned[-lines:]


#: What a designer should know about each Slurm failure state other than FAILED.
STATE_HINTS = {
    "TIMEOUT": "Slurm stopped it at its time limit ({time}): resubmit it with a longer time",
    "OUT_OF_MEMORY": "Slurm stopped it for using more than its memory ({mem}): resubmit it "
    "with more memory",
    "NODE_FAIL": "the node it ran on failed, not the design: resubmit it",
    "PREEMPTED": "Slurm gave its node to a job of higher priority: resubmit it",
    "BOOT_FAIL": "its node failed to start: resubmit it",
    "DEADLINE": "it did not end before its deadline",
}


def state_hint(state: str, resources: Mapping[str, Any] | None) -> str:
    """The line a failure email gives a task that ended in ``state`` (empty for FAILED)."""
    resources = resources or {}
    minutes, mem_mb = resources.get("time_minutes"), resources.get("mem_mb")
    return STATE_HINTS.get(state, "").format(
        time=format_duration(minutes * 60) if minutes else "the partition's limit",
        mem=f"{mem_mb} MB" if mem_mb else "the partition's default",
    )


def _failed_task(run_dir: str | None, task: Task, resources: Mapping[str, Any]) -> FailedTask:
    log = task_log_path(run_dir, task)
    tail = read_log_tail(log) if log else []
    err = task_log_path(run_dir, task, "err")
    err_tail = read_log_tail(err) if err else []
    if err_tail:
        tail = [*tail, f"--- {err.name} ---" if err else "---", *err_tail]
    errors = [_clean_line(str(e)) for e in (_metrics(task).get("errors") or [])]
    return FailedTask(
        task.index,
        task.state,
        task.exit_code,
        log.name if log else None,
        tail,
        errors,
        state_hint(task.state, resources),
    )


# --------------------------------------------------------------------------- thumbnail


def thumbnail_cid(uuid: str) -> str:
    """The Content-ID (without angle brackets) of a submission's layout thumbnail."""
    return f"layout-{uuid}@openlane-portal"


def find_layout_gds(run_dir: str | os.PathLike[str] | None, index: int) -> Path | None:
    """The final GDS of task ``index`` by the pages' own rule
    (:func:`portal.runfolder.find_final_gds`: the newest OpenLane 1 or 2 final GDS, a regular
    file with one link inside the task folder), or None."""
    if not run_dir:
        return None
    try:
        return RunFolder(run_dir).final_gds(index)
    except rundir.PathRefused:
        return None


def best_layout(submission: Submission) -> tuple[Task, Path] | None:
    """The completed task with the smallest die area and its GDS, if that GDS exists."""
    candidates = [
        (area, t.index, t)
        for t in submission.tasks
        if t.state == COMPLETED and (area := _number(_metrics(t).get("die_area_um2"))) is not None
    ]
    if not candidates:
        return None
    task = min(candidates, key=lambda c: (c[0], c[1]))[2]
    gds = find_layout_gds(submission.run_dir, task.index)
    return (task, gds) if gds else None


def render_thumbnail(submission: Submission) -> tuple[str, bytes] | None:
    """(Content-ID, PNG) of the best-area task's layout, or None when there is nothing to draw
    (no GDS, a GDS larger than :data:`THUMBNAIL_MAX_BYTES`, or one that cannot be read)."""
    found = best_layout(submission)
    if found is None:
        return None
    gds = found[1]
    try:
        if gds.stat().st_size > THUMBNAIL_MAX_BYTES:
            return None
        png = render_gds_png(gds, size=THUMBNAIL_SIZE)
    except (LayoutError, OSError):
        return None
    return thumbnail_cid(submission.uuid), png


def strip_thumbnail(html: str) -> str:
    """Remove the thumbnail block (used when the image cannot be attached)."""
    pattern = re.escape(THUMBNAIL_START) + ".*?" + re.escape(THUMBNAIL_END)
    return re.sub(pattern, "", html, flags=re.DOTALL)


# --------------------------------------------------------------------------- rendering

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _render(template: str, context: Mapping[str, Any]) -> str:
    return _env.get_template(template).render(**context)


def build_submission_mail(submission: Submission, site_url: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the email sent when a submission's array has ended."""
    report = build_report(submission, site_url)
    context = {
        "r": report,
        "thumbnail_start": THUMBNAIL_START,
        "thumbnail_end": THUMBNAIL_END,
    }
    return (
        report.subject,
        _render("submission.txt", context),
        _render("submission.html", context),
    )


def build_decision_mail(
    submission: Submission, approved: bool, site_url: str
) -> tuple[str, str, str]:
    """(subject, plain text, HTML) telling the owner an admin approved or rejected a submission."""
    verdict = "approved" if approved else "rejected"
    context = {
        **_submission_context(submission, site_url),
        "approved": approved,
        "verdict": verdict,
        "core_hours": submission.cost_core_hours or 0.0,
        "reason": (submission.decision_reason or "").strip(),
    }
    subject = _one_line(f"{SUBJECT_PREFIX} Submission {verdict}: {context['name']}", 300)
    return subject, _render("decision.txt", context), _render("decision.html", context)


def build_launch_failed_mail(submission: Submission, site_url: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) telling the owner a submission could not be launched."""
    context = {
        **_submission_context(submission, site_url),
        "attempts": submission.launch_attempts or 1,
        "reason": (submission.error or "No reason was recorded.").strip(),
    }
    subject = _one_line(f"{SUBJECT_PREFIX} SUBMIT_FAILED: {context['name']}", 300)
    return subject, _render("launch_failed.txt", context), _render("launch_failed.html", context)


def _submission_context(submission: Submission, site_url: str) -> dict[str, Any]:
    """What every short mail about one submission names: name, uuid, link, repository, size."""
    return {
        "name": _one_line(submission.name or "", 120) or f"submission {submission.uuid[:8]}",
        "uuid": submission.uuid,
        "url": submission_url(site_url, submission.uuid),
        "repo_url": submission.repo_url or "",
        "ref": submission.ref or "",
        "n_tasks": submission.n_tasks or len(submission.tasks),
    }


def build_test_mail(site_url: str, server: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of the administrator's "send test email"."""
    context = {"site_url": site_url, "server": server}
    subject = f"{SUBJECT_PREFIX} Test email"
    return subject, _render("test.txt", context), _render("test.html", context)
