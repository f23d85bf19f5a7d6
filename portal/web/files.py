"""Blueprint ``files``: a task's files, its whole folder as tar.gz, the layout preview, the
console tail, the sbatch script(s) that ran, and the creation of share links.

Every path a request names is confined to the task folder by :mod:`portal.rundir` (no ``..``,
absolute paths, NUL or symlinks leading out); anything refused, missing or not a regular file
answers 404. Files are always sent as attachments (never rendered by the browser: an HTML
report from a design must not run on the portal's origin). Read-only routes are also open to
share-link holders (``/shared/<token>/...``, see :mod:`portal.web.sharing`).
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import InputRequired

from portal import rundir
from portal.extensions import db
from portal.models import Submission, SubmissionState, audit
from portal.results.thumbnail import LayoutError, render_gds_png
from portal.runfolder import RunFolder, find_final_gds, log_name
from portal.submit.taskconfigs import read_task_config
from portal.web.access import is_admin
from portal.web.sharing import Viewer, dual_route, make_token, owner_viewer, share_url
from portal.web.task_access import (
    LAYOUT_MAX_BYTES,
    SHARE_SESSION_KEY,
    file_owners,
    get_task,
    share_choices,
    task_is_final,
)

bp = Blueprint("files", __name__)

#: File name of the cached layout preview inside a task folder.
LAYOUT_CACHE = "portal-layout.png"
#: Size of the layout preview in pixels.
LAYOUT_SIZE = (800, 800)
_TEXT_SUFFIXES = frozenset(
    {".log", ".rpt", ".txt", ".csv", ".json", ".tcl", ".v", ".sv", ".def", ".lef", ".sdc"}
    | {".spef", ".out", ".err", ".yaml", ".yml", ".tsv", ".cfg", ".lib", ".spice", ".xml"}
)
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")


def _task_folder(submission: Submission, index: int) -> str:
    """The task's folder (404 if the run is not staged or the folder is missing)."""
    if not submission.run_dir:
        abort(404)
    try:
        folder = RunFolder(submission.run_dir).task(index)
    except rundir.PathRefused:
        abort(404)
    if not folder.is_dir():
        abort(404)
    return str(folder)


def _download_name(name: str) -> str:
    return _SAFE_NAME_RE.sub("_", name).strip("._") or "download"


def _mimetype(relpath: str) -> str:
    suffix = os.path.splitext(relpath)[1].lower()
    return "text/plain" if suffix in _TEXT_SUFFIXES else "application/octet-stream"


@dual_route(bp, "/tasks/<int:index>/files/<path:relpath>", "download", methods=["GET"])
def download(viewer: Viewer, index: int, relpath: str) -> Any:
    """One file of the task folder, as an attachment."""
    get_task(viewer.submission, index)
    folder = _task_folder(viewer.submission, index)
    try:
        handle = rundir.open_confined(folder, relpath, file_owners(viewer.submission))
    except rundir.PathRefused:
        abort(404)
    size = os.fstat(handle.fileno()).st_size
    response = send_file(
        handle,
        mimetype=_mimetype(relpath),
        as_attachment=True,
        download_name=_download_name(os.path.basename(relpath)),
    )
    response.content_length = size
    return response


@dual_route(bp, "/tasks/<int:index>/config", "config", methods=["GET"])
def config(viewer: Viewer, index: int) -> Any:
    """The task's flow config as staged (a pending task has no folder yet), as an attachment."""
    submission = viewer.submission
    get_task(submission, index)
    staged = read_task_config(submission.run_dir, index) if submission.run_dir else None
    if staged is None:
        abort(404)
    response = Response(staged.text, mimetype="text/plain")
    name = _download_name(f"task-{index}-{staged.name}")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@dual_route(bp, "/tasks/<int:index>/archive.tar.gz", "archive", methods=["GET"])
def archive(viewer: Viewer, index: int) -> Any:
    """The whole task folder (plus the task's Slurm logs) as a streamed tar.gz."""
    submission = viewer.submission
    task = get_task(submission, index)
    folder = _task_folder(submission, index)
    top = f"{submission.uuid[:8]}-task-{index}"
    extra = []
    for stream in ("out", "err"):
        try:
            name = log_name(task.array_job_id, task.array_index, stream)
        except rundir.PathRefused:
            continue
        extra.append((str(submission.run_dir), name, f"slurm-{os.path.basename(name)}"))
    owners = file_owners(submission)
    response = Response(
        rundir.stream_tar_gz(folder, top, extra, owners), mimetype="application/gzip"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{top}.tar.gz"'
    return response


@dual_route(bp, "/tasks/<int:index>/layout.png", "layout", methods=["GET"])
def layout(viewer: Viewer, index: int) -> Any:
    """The task's final GDS drawn as a PNG (rendered once, cached in the task folder)."""
    get_task(viewer.submission, index)
    folder = _task_folder(viewer.submission, index)
    gds = find_final_gds(folder, file_owners(viewer.submission))
    if gds is None:
        abort(404, description="This task has no final GDS (yet).")
    gds_info = gds.stat()
    if gds_info.st_size > LAYOUT_MAX_BYTES:
        abort(404, description="The GDS is too large to preview; download it instead.")
    png = _cached_png(folder, gds_info.st_mtime)
    if png is None:
        try:
            png = render_gds_png(gds, size=LAYOUT_SIZE)
        except LayoutError as exc:
            abort(404, description=f"The layout cannot be drawn: {exc}")
        rundir.cache_file(folder, LAYOUT_CACHE, png)
    return Response(png, mimetype="image/png")


def _cached_png(folder: str, gds_mtime: float) -> bytes | None:
    try:
        handle = rundir.open_confined(folder, LAYOUT_CACHE)
    except rundir.PathRefused:
        return None
    with handle:
        if os.fstat(handle.fileno()).st_mtime < gds_mtime:
            return None
        data = handle.read()
    return data if data.startswith(b"\x89PNG") else None


@dual_route(bp, "/tasks/<int:index>/log", "log", methods=["GET"])
def log(viewer: Viewer, index: int) -> Any:
    """New bytes of the task's Slurm log: ``?offset=N`` (no offset: the last bytes).

    ``stream=out|err`` picks stdout or stderr; ``download=1`` sends the whole file. Headers
    tell the reader where to continue: ``X-Log-Start`` (offset of the first byte sent),
    ``X-Log-Offset`` (ask from here next), ``X-Log-Size``, ``X-Log-Reset`` (1: the file was
    replaced, start over), ``X-Log-File`` and ``X-Log-Done`` (1: the task has finished).
    """
    submission = viewer.submission
    task = get_task(submission, index)
    stream = request.args.get("stream", "out")
    if stream not in ("out", "err"):
        abort(400, description="stream must be out or err")
    raw_offset = request.args.get("offset")
    if raw_offset not in (None, "") and (not raw_offset.isdigit() or len(raw_offset) > 15):
        abort(400, description="offset must be a non-negative integer")
    offset = int(raw_offset) if raw_offset else None
    try:
        name = log_name(task.array_job_id, task.array_index, stream)
    except rundir.PathRefused:
        name = None
    if request.args.get("download") == "1":
        return _download_log(submission, name)
    chunk = rundir.LogChunk(b"", 0, 0, 0)
    if name and submission.run_dir:
        try:
            chunk = rundir.read_chunk(
                submission.run_dir, name, offset, owners=file_owners(submission)
            )
        except (rundir.PathRefused, OSError):
            abort(404)
    response = Response(chunk.data, mimetype="text/plain")
    response.headers.update(
        {
            "X-Log-Start": str(chunk.start),
            "X-Log-Offset": str(chunk.offset),
            "X-Log-Size": str(chunk.size),
            "X-Log-Reset": "1" if chunk.reset else "0",
            "X-Log-File": os.path.basename(name) if name else "",
            "X-Log-Done": "1" if task_is_final(submission, task) else "0",
        }
    )
    return response


def _download_log(submission: Submission, name: str | None) -> Any:
    if not name or not submission.run_dir:
        abort(404)
    try:
        handle = rundir.open_confined(submission.run_dir, name, file_owners(submission))
    except rundir.PathRefused:
        abort(404)
    return send_file(
        handle,
        mimetype="text/plain",
        as_attachment=True,
        download_name=f"{submission.uuid[:8]}-{os.path.basename(name)}",
    )


# --------------------------------------------------------------------------- the script that ran


@bp.get("/submissions/<uuid>/script")
@login_required
def script(uuid: str) -> Any:
    """The sbatch script(s) that ran, exactly as the launch wrote them into the run folder and
    sbatch read them (owner and admins). Before a launch there is none; admins then get a link
    to the preview of a waiting submission, labelled as such."""
    submission = owner_viewer(uuid).submission
    owners = file_owners(submission)
    scripts = []
    folder = RunFolder(submission.run_dir) if submission.run_dir else None
    for name in folder.script_names() if folder else []:
        try:
            data = folder.read_script(name, owners)
        except rundir.PathRefused:
            continue
        scripts.append({"name": name, "size": len(data), "text": data.decode(errors="replace")})
    preview_url = None
    if (
        not scripts
        and submission.state == SubmissionState.AWAITING_APPROVAL
        and is_admin(current_user)
        and "admin.script" in current_app.view_functions
    ):
        preview_url = url_for("admin.script", uuid=submission.uuid)
    return render_template(
        "detail/script.html", submission=submission, scripts=scripts, preview_url=preview_url
    )


@bp.get("/submissions/<uuid>/script/<name>")
@login_required
def script_file(uuid: str, name: str) -> Any:
    """One script that ran, as an attachment, byte for byte the run folder's file."""
    submission = owner_viewer(uuid).submission
    if not submission.run_dir:
        abort(404)
    try:
        data = RunFolder(submission.run_dir).read_script(name, file_owners(submission))
    except rundir.PathRefused:
        abort(404)
    response = Response(data, mimetype="text/plain")
    download = _download_name(f"{submission.uuid[:8]}-{name}")
    response.headers["Content-Disposition"] = f'attachment; filename="{download}"'
    return response


# --------------------------------------------------------------------------- share links


class ShareForm(FlaskForm):
    """How long a new share link lives."""

    expires = SelectField("Link valid for", coerce=int, validators=[InputRequired()])


@bp.post("/submissions/<uuid>/share")
@login_required
def share(uuid: str) -> Any:
    """Create a signed, read-only share link of the submission (owner or admin)."""
    viewer = owner_viewer(uuid)
    form = ShareForm()
    form.expires.choices = share_choices()
    if not form.validate_on_submit():
        errors = "; ".join(e for errs in form.errors.values() for e in errs)
        flash(f"No share link was created: {errors or 'choose how long it stays valid'}.", "error")
        return redirect(viewer.url("detail.show"))
    token, expires = make_token(viewer.submission.uuid, form.expires.data)
    audit(
        "submission.share",
        actor=current_user,
        submission=viewer.submission,
        expires=expires.isoformat(),
    )
    db.session.commit()
    session[SHARE_SESSION_KEY] = {
        "uuid": viewer.submission.uuid,
        "url": share_url(token),
        "expires": _when(expires),
    }
    flash(f"Share link created; it is valid until {_when(expires)} UTC.", "success")
    return redirect(viewer.url("detail.show") + "#share")


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
