"""Blueprint ``detail``: the submission page and its partials, and the actions on it.

The page costs a handful of SQL statements whatever the array size: the submission with its
owner, ONE grouped count of its tasks by state, one page of tasks (LIMIT/OFFSET on the
``(submission_id, index)`` key) and the selected task. Metrics (every task) are drawn inline
only for arrays up to :data:`INLINE_RESULTS_MAX` tasks; bigger arrays load them on demand
from ``/results``. While the submission can change, the status and tasks table are an htmx
partial polled every :data:`POLL_SECONDS` seconds; each answer also swaps in, out of band, every
other region that can change (state, alerts, facts, actions, the open task panel's parts), and
the answer that finds the submission final polls no more and loads the metrics. The partials
answer a request without ``HX-Request`` (somebody opened their address) with the full page
(the task panel: a redirect to it).

Read-only views are registered twice by :func:`portal.web.sharing.dual_route` (owner and
share link). Actions (cancel, resubmit, export, revoking a share link) are POST forms with CSRF
for the signed-in owner or an admin; they flash their outcome and return to the page.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from flask_login import current_user, login_required
from sqlalchemy import not_, select

from portal import rundir
from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.flows.features import FIELDS
from portal.flows.types import FlowError
from portal.models import FINAL_STATES, ShareLink, Submission, SubmissionState, Task, audit
from portal.results.table import SUMMARY_FIELDS, ResultsError, ResultsTable, results_table
from portal.runfolder import RunFolder, find_final_gds, log_name
from portal.serialize import task_counts as count_tasks
from portal.slurm.client import SlurmError
from portal.slurm.states import ACTIVE, CANCELLATIONS, COMPLETED, FAILURES, TERMINAL
from portal.slurm.transports import TransportError
from portal.submit import background
from portal.submit.sbatch import RenderError
from portal.submit.taskconfigs import read_task_config
from portal.web import sharing
from portal.web.bundles import ExportError, bundle_download
from portal.web.progress import Counts
from portal.web.sharing import Viewer, dual_route, owner_viewer
from portal.web.task_access import (
    LAYOUT_MAX_BYTES,
    SHARE_SESSION_KEY,
    file_owners,
    find_task,
    get_task,
    share_choices,
    task_is_final,
)

bp = Blueprint("detail", __name__)

TASKS_PER_PAGE = 50
POLL_SECONDS = 4
#: Arrays up to this many tasks get their metrics table and plot with the page.
INLINE_RESULTS_MAX = 300
#: Rows drawn in the metrics table (the CSV and JSON have all).
RESULTS_TABLE_MAX = 1000
#: Task state filters of the tasks table: key -> (label, states, negate).
TASK_FILTERS: dict[str, tuple[str, frozenset[str], bool]] = {
    "running": ("Running", ACTIVE, False),
    "pending": ("Waiting", ACTIVE | TERMINAL, True),
    "completed": ("Completed", frozenset({COMPLETED}), False),
    "failed": ("Failed", FAILURES, False),
    "cancelled": ("Cancelled", CANCELLATIONS, False),
}
RESUBMITTABLE = (SubmissionState.FAILED, SubmissionState.PARTIAL, SubmissionState.CANCELLED)
#: Submission states in which cancelling still means something.
CANCELLABLE = frozenset(SubmissionState) - FINAL_STATES


# --------------------------------------------------------------------------- tasks


def task_counts(submission_id: int) -> Counts:
    """Counts of a submission's tasks by state (one query)."""
    return Counts(count_tasks(db.session, [submission_id])[submission_id])


@dataclass(frozen=True)
class TaskPage:
    """One page of the tasks table."""

    tasks: list[Task]
    total: int
    page: int
    pages: int
    state: str


def _state_condition(key: str) -> Any:
    _label, states, negate = TASK_FILTERS[key]
    condition = Task.state.in_(sorted(states))
    return not_(condition) if negate else condition


def task_page(submission_id: int, counts: Counts, page: int, state: str = "") -> TaskPage:
    """A page of tasks in index order, optionally of one state group (one query)."""
    if state in TASK_FILTERS:
        _label, states, negate = TASK_FILTERS[state]
        total = counts.count(states, negate)
    else:
        state, total = "", counts.total
    pages = max(1, math.ceil(total / TASKS_PER_PAGE))
    page = min(max(page, 1), pages)
    stmt = select(Task).where(Task.submission_id == submission_id)
    if state:
        stmt = stmt.where(_state_condition(state))
    stmt = stmt.order_by(Task.index).limit(TASKS_PER_PAGE).offset((page - 1) * TASKS_PER_PAGE)
    return TaskPage(list(db.session.scalars(stmt)), total, page, pages, state)


def default_task(submission: Submission) -> Task | None:
    """The task shown when none is chosen: the first running one, else the first."""
    base = select(Task).where(Task.submission_id == submission.id).order_by(Task.index).limit(1)
    running = db.session.scalar(base.where(Task.state.in_(sorted(ACTIVE))))
    return running or db.session.scalar(base)


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name, "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else default


# --------------------------------------------------------------------------- task panel


@dataclass(frozen=True)
class TaskFiles:
    """What the task panel offers for one task."""

    exists: bool
    gds: str | None = None
    gds_size: int = 0
    key_files: list[rundir.FileEntry] = field(default_factory=list)
    all_files: list[rundir.FileEntry] = field(default_factory=list)
    truncated: bool = False
    #: file name of the task's staged flow config (None when the run has none)
    staged: str | None = None


_KEY_SUFFIXES = (".gds", ".csv", ".json", ".rpt", ".log")


def _is_key_file(relpath: str) -> bool:
    parts = relpath.split("/")
    if relpath.endswith(".gds"):
        return True
    if "reports" in parts[:-1] and relpath.endswith((".rpt", ".csv", ".json", ".txt")):
        return True
    return parts[-1] in ("metrics.csv", "metrics.json", "flow.log", "openlane.log", "exit_code")


def task_files(submission: Submission, index: int) -> TaskFiles:
    """Files of a task's folder (listing capped), its final GDS and the key reports."""
    if not submission.run_dir:
        return TaskFiles(False)
    config = read_task_config(submission.run_dir, index)
    staged = config.name if config else None
    try:
        folder = RunFolder(submission.run_dir).task(index)
    except rundir.PathRefused:
        return TaskFiles(False, staged=staged)
    if not folder.is_dir():
        return TaskFiles(False, staged=staged)
    owners = file_owners(submission)
    entries, truncated = rundir.list_files(folder, limit=2000, owners=owners)
    gds = find_final_gds(folder, owners)
    gds_rel = gds.relative_to(folder).as_posix() if gds else None
    gds_size = gds.stat().st_size if gds else 0
    key = [e for e in entries if _is_key_file(e.relpath)][:60]
    return TaskFiles(True, gds_rel, gds_size, key, entries, truncated, staged)


def log_tail(submission: Submission, task: Task, stream: str) -> rundir.LogChunk | None:
    """The last bytes of a task's Slurm log (None when it has none yet)."""
    if not submission.run_dir:
        return None
    try:
        name = log_name(task.array_job_id, task.array_index, stream)
        return rundir.read_chunk(submission.run_dir, name, None, owners=file_owners(submission))
    except (rundir.PathRefused, OSError):
        return None


def panel_context(viewer: Viewer, task: Task | None, stream: str = "out") -> dict[str, Any]:
    """Template values of the task panel (console, layout preview, downloads)."""
    if task is None:
        return {"task": None}
    submission = viewer.submission
    stream = stream if stream in ("out", "err") else "out"
    tail = log_tail(submission, task, stream)
    try:
        log_file = log_name(task.array_job_id, task.array_index, stream)
    except rundir.PathRefused:
        log_file = ""
    return {
        "log_file": log_file.rsplit("/", 1)[-1],
        "task": task,
        "stream": stream,
        "tail": tail,
        "tail_text": tail.data.decode("utf-8", "replace") if tail else "",
        "log_final": task_is_final(submission, task),
        "files": task_files(submission, task.index),
        "layout_max": LAYOUT_MAX_BYTES,
    }


# --------------------------------------------------------------------------- results


def axis_fields(table: ResultsTable) -> list[str]:
    """Numeric features some completed task measured and that have a better direction."""
    seen: set[str] = set()
    for row in table.rows:
        if row["state"] == COMPLETED and row["metrics"]:
            seen.update(k for k, v in row["metrics"].items() if _is_number(v))
    return [
        name
        for name, spec in FIELDS.items()
        if name in seen and spec.numeric and spec.better is not None
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def default_axes(table: ResultsTable, fields: list[str]) -> tuple[str, str] | None:
    """Two distinct axes: the measured default objectives first, then any measured field."""
    ordered = [name for name in table.objectives if name in fields]
    ordered += [name for name in fields if name not in ordered]
    return (ordered[0], ordered[1]) if len(ordered) >= 2 else None


def objectives_for(x: str, y: str) -> str:
    """The objectives spec of a plot: each axis in its catalogued better direction."""
    return f"{x}:{FIELDS[x].better or 'min'},{y}:{FIELDS[y].better or 'min'}"


def chart_payload(
    submission: Submission,
    x: str | None = None,
    y: str | None = None,
    base: ResultsTable | None = None,
) -> dict[str, Any]:
    """The plot's data: every task with numeric metrics, the Pareto front and the best task per
    objective over the two axes (:func:`portal.results.table.results_table`), and the axis fields.

    ``base`` is the submission's default results table when the caller has it already.
    """
    base = base or results_table(submission)
    fields = axis_fields(base)
    if x is None or y is None:
        axes = default_axes(base, fields)
        if axes is None:
            return {"fields": {}, "rows": [], "pareto": [], "best": {}, "objectives": {}}
        x, y = axes
    if x not in fields or y not in fields or x == y:
        raise ResultsError("choose two different measured metrics")
    table = results_table(submission, objectives_for(x, y)).to_dict()
    rows = [
        {
            "index": row["index"],
            "params": row["params"],
            "metrics": {k: v for k, v in (row["metrics"] or {}).items() if _is_number(v)},
            "pareto": row["pareto"],
            "best_for": row["best_for"],
        }
        for row in table["rows"]
        if row["state"] == COMPLETED and row["metrics"]
    ]
    return {
        "x": x,
        "y": y,
        "objectives": table["objectives"],
        "pareto": table["pareto"],
        "best": table["best"],
        "fields": {
            name: {"label": FIELDS[name].label, "unit": FIELDS[name].unit or ""} for name in fields
        },
        "rows": rows,
    }


def results_context(viewer: Viewer) -> dict[str, Any]:
    """Template values of the metrics table and plot."""
    submission = viewer.submission
    table = results_table(submission)
    shown = [row for row in table.to_dict()["rows"] if row["metrics"]]
    return {
        "results": table,
        "result_rows": shown[:RESULTS_TABLE_MAX],
        "result_total": len(shown),
        "summary_fields": [f for f in SUMMARY_FIELDS if any(f in r["metrics"] for r in shown)],
        "fields": FIELDS,
        "chart": chart_payload(submission, base=table),
    }


# --------------------------------------------------------------------------- page


def _args(**values: Any) -> dict[str, Any]:
    """Query arguments without the empty ones (and without page 1)."""
    if values.get("page") == 1:
        values["page"] = None
    return {key: value for key, value in values.items() if value not in ("", None, 0)}


def _page_context(viewer: Viewer, counts: Counts | None = None) -> dict[str, Any]:
    submission = viewer.submission
    counts = counts or task_counts(submission.id)
    state = request.args.get("state", "")
    tasks = task_page(submission.id, counts, _int_arg("page", 1), state)
    final = submission.state in FINAL_STATES
    selected = _int_arg("task", -1)

    def tasks_url(page: int, state: str, live: int = 0) -> str:
        return viewer.url("detail.tasks", **_args(page=page, state=state, live=live))

    def show_url(**values: Any) -> str:
        return viewer.url("detail.show", **_args(**values))

    return {
        "viewer": viewer,
        "submission": submission,
        "counts": counts,
        "tasks": tasks,
        "task_filters": TASK_FILTERS,
        "terminal_states": TERMINAL,
        "per_page": TASKS_PER_PAGE,
        "final": final,
        "poll_seconds": POLL_SECONDS,
        "can_cancel": viewer.can_act and submission.state in CANCELLABLE,
        "can_retry": viewer.can_act and submission.state == SubmissionState.SUBMIT_FAILED,
        "can_resubmit": viewer.can_act
        and submission.state in RESUBMITTABLE
        and counts.unsuccessful > 0,
        "selected": selected,
        "tasks_url": tasks_url,
        "show_url": show_url,
        "show_base": viewer.url("detail.show"),
    }


@dual_route(bp, "", "show", methods=["GET"])
def show(viewer: Viewer) -> Any:
    """The submission page."""
    submission = viewer.submission
    context = _page_context(viewer)
    task = find_task(submission, _int_arg("task", -1)) or default_task(submission)
    context["selected"] = task.index if task else -1
    context.update(panel_context(viewer, task, request.args.get("stream", "out")))
    inline = submission.n_tasks <= INLINE_RESULTS_MAX
    context["results_inline"] = inline
    if inline:
        context.update(results_context(viewer))
    context["share_choices"] = share_choices() if viewer.can_act else []
    context["share_link"] = _pop_share_link(submission)
    context["share_links"] = (
        [(link, sharing.link_state(link)) for link in sharing.links_of(submission)]
        if viewer.can_act
        else []
    )
    context["has_dashboard"] = "dashboard.index" in current_app.view_functions
    return render_template("detail/show.html", **context)


def _pop_share_link(submission: Submission) -> dict[str, str] | None:
    """The share link just created for this submission (shown once)."""
    link = session.get(SHARE_SESSION_KEY)
    if not isinstance(link, dict) or link.get("uuid") != submission.uuid:
        return None
    session.pop(SHARE_SESSION_KEY, None)
    return link


def is_htmx() -> bool:
    """The request comes from htmx (a partial is wanted), not from somebody opening the URL."""
    return bool(request.headers.get("HX-Request"))


@dual_route(bp, "/tasks", "tasks", methods=["GET"])
def tasks(viewer: Viewer) -> Any:
    """Status and tasks table (the polled htmx partial); the full page without htmx."""
    if not is_htmx():
        return show(viewer)
    context = _page_context(viewer)
    live = request.args.get("live") == "1"
    context["live_poll"] = live
    # When it has just finished, the metrics section is swapped in out of band (it then loads
    # itself), so the open page shows the results without a reload.
    context["results_oob"] = context["final"] and live
    task = find_task(viewer.submission, _int_arg("task", -1)) if live else None
    context["live_task"] = task
    if task is not None:
        context["live_files"] = task_files(viewer.submission, task.index)
        context["layout_max"] = LAYOUT_MAX_BYTES
    return render_template("detail/_live.html", **context)


@dual_route(bp, "/tasks/<int:index>", "task", methods=["GET"])
def task(viewer: Viewer, index: int) -> Any:
    """The task panel (console, layout, downloads); a full page without htmx."""
    if not is_htmx():
        return redirect(viewer.url("detail.show", task=index) + "#task-panel")
    found = get_task(viewer.submission, index)
    context = {"viewer": viewer, "submission": viewer.submission}
    context.update(panel_context(viewer, found, request.args.get("stream", "out")))
    return render_template("detail/_task_panel.html", **context)


@dual_route(bp, "/results", "results", methods=["GET"])
def results(viewer: Viewer) -> Any:
    """The metrics table and plot (htmx partial; big arrays load it on demand); the full page
    without htmx."""
    if not is_htmx():
        return show(viewer)
    context = {"viewer": viewer, "submission": viewer.submission, "results_inline": True}
    context.update(results_context(viewer))
    return render_template("detail/_results.html", **context)


@dual_route(bp, "/results.json", "results_json", methods=["GET"])
def results_json(viewer: Viewer) -> Any:
    """Plot data over two metrics: ``?x=<field>&y=<field>`` (default: the first objectives)."""
    x, y = request.args.get("x"), request.args.get("y")
    try:
        payload = chart_payload(viewer.submission, x or None, y or None)
    except ResultsError as exc:
        return jsonify(error={"code": "invalid_request", "message": str(exc)}), 400
    return jsonify(payload)


@dual_route(bp, "/results.csv", "results_csv", methods=["GET"])
def results_csv(viewer: Viewer) -> Any:
    """Every task's parameters and metrics as CSV (units in the headers)."""
    text = results_table(viewer.submission).to_csv()
    response = current_app.make_response(text)
    response.mimetype = "text/csv"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="results-{viewer.submission.uuid[:8]}.csv"'
    )
    return response


# --------------------------------------------------------------------------- actions


def _back(viewer: Viewer) -> Any:
    return redirect(viewer.url("detail.show"))


def _selected_tasks(form: Mapping[str, Any]) -> list[int] | None:
    raw = form.getlist("tasks") if hasattr(form, "getlist") else []
    if not raw:
        return None
    indices = []
    for value in raw:
        if not str(value).isdigit() or len(str(value)) > 9:
            raise svc.SubmissionError(f"not a task index: {str(value)[:20]!r}")
        indices.append(int(value))
    return sorted(set(indices))


@bp.post("/submissions/<uuid>/cancel")
@login_required
def cancel(uuid: str) -> Any:
    """scancel the whole submission, or the tasks ticked in the tasks table."""
    viewer = owner_viewer(uuid)
    submission = viewer.submission
    try:
        indices = _selected_tasks(request.form)
        if indices is None and request.form.get("scope") == "selected":
            raise svc.SubmissionError("no task was selected")
        if submission.state not in CANCELLABLE:
            raise svc.SubmissionError(f"the submission is already {submission.state.lower()}")
        slurm = slurm_client(current_app.config, submission.owner)
        svc.cancel(submission, slurm, indices, actor=current_user)
    except svc.SubmissionError as exc:
        db.session.rollback()
        flash(f"Nothing was cancelled: {exc}", "error")
    except (SlurmError, TransportError) as exc:
        db.session.rollback()
        flash(f"Slurm refused to cancel: {exc}", "error")
    else:
        if indices is None:
            flash("Cancel requested for the whole submission.", "success")
        else:
            listed = ", ".join(map(str, indices[:20])) + (" ..." if len(indices) > 20 else "")
            flash(f"Cancel requested for task(s) {listed}.", "success")
    return _back(viewer)


@bp.post("/submissions/<uuid>/resubmit")
@login_required
def resubmit(uuid: str) -> Any:
    """Run the failed and cancelled tasks again as ONE new array."""
    viewer = owner_viewer(uuid)
    submission = viewer.submission
    try:
        slurm = slurm_client(current_app.config, submission.owner)
        indices = svc.resubmit_failed(submission, current_app.config, slurm, actor=current_user)
    except (svc.SubmissionError, FlowError, RenderError) as exc:
        db.session.rollback()
        flash(f"Nothing was resubmitted: {exc}", "error")
    except (SlurmError, TransportError) as exc:
        db.session.rollback()
        flash(f"Slurm refused the resubmission: {exc}", "error")
    else:
        flash(f"Resubmitted {len(indices)} task(s) as one new array.", "success")
    return _back(viewer)


@bp.post("/submissions/<uuid>/retry")
@login_required
def retry(uuid: str) -> Any:
    """Launch a SUBMIT_FAILED submission again: the same submission, ONE array."""
    viewer = owner_viewer(uuid)
    try:
        svc.retry_launch(viewer.submission)
    except svc.SubmissionError as exc:
        db.session.rollback()
        flash(f"Nothing was retried: {exc}", "error")
    else:
        background.start_launch(current_app._get_current_object(), viewer.submission)  # type: ignore[attr-defined]
        flash("Launching again: the same submission, one job array.", "success")
    return _back(viewer)


@bp.route("/submissions/<uuid>/export", methods=["GET", "POST"])
@login_required
def export(uuid: str) -> Any:
    """The export bundle (tar.gz runnable with plain sbatch) as a download."""
    viewer = owner_viewer(uuid)
    submission = viewer.submission
    try:
        response, _ = bundle_download(submission)
    except (ExportError, OSError) as exc:
        if request.method == "GET":
            abort(409, description=f"Cannot export: {exc}")
        flash(f"Cannot export: {exc}", "error")
        return _back(viewer)
    return response


@bp.post("/submissions/<uuid>/share-links/<int:link_id>/revoke")
@login_required
def revoke_share_link(uuid: str, link_id: int) -> Any:
    """Revoke one share link of the submission (its owner or an admin); the others stay."""
    viewer = owner_viewer(uuid)
    link = db.session.get(ShareLink, link_id)
    if link is None or link.submission_id != viewer.submission.id:
        abort(404)
    if sharing.revoke(link):
        audit(
            "submission.share_revoke",
            actor=current_user,
            submission=viewer.submission,
            link_id=link.id,
        )
        db.session.commit()
        flash("Share link revoked: it no longer opens this submission.", "success")
    else:
        flash("That share link was revoked already.", "info")
    return redirect(viewer.url("detail.show") + "#share-links")


# --------------------------------------------------------------------------- template helpers


@bp.app_template_filter("detail_duration")
def duration_filter(seconds: int | None) -> str:
    """``3725`` -> ``1:02:05``; empty for None."""
    if seconds is None:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@bp.app_template_filter("detail_filesize")
def filesize_filter(size: int) -> str:
    """Bytes in a short human form."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@bp.app_template_filter("detail_metric")
def metric_filter(value: Any) -> str:
    """A metric value for a table cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


_CSRF_VALUE = re.compile(r'name="csrf_token" value="[^"]*"')


@bp.app_template_filter("detail_version")
def version_filter(markup: str) -> str:
    """A short digest of a live region's markup, its CSRF tokens left out (they change on every
    request while the region does not)."""
    text = _CSRF_VALUE.sub("", str(markup))
    return hashlib.blake2s(text.encode(), digest_size=8).hexdigest()


@bp.app_template_filter("detail_time")
def utc_filter(value: datetime | None) -> str:
    """A stored UTC timestamp for display."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""
