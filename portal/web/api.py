"""Blueprint ``api``: the REST API ``/api/v1`` (JSON, personal API tokens).

Every endpoint but ``openapi.json`` needs ``Authorization: Bearer <token>``; a session cookie
is not enough (and no cookie is ever set in an answer). Another user's submission answers 404,
exactly like one that does not exist. Every failure is
``{"error": {"code", "message", "details"?}}`` with a stable code (see
:data:`portal.web.api_schema.ERROR_CODES`): 400 for a request the API cannot read, 422 for one
the portal refuses, 409 for an action the submission's state does not allow, 503 when Slurm
does not answer. Requests are parsed into the pydantic models of :mod:`portal.web.api_schema`,
which the OpenAPI document is generated from.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, request, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from limits import parse_many
from sqlalchemy import func, or_, select
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import HTTPException

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.config import settings_of
from portal.extensions import db
from portal.flows.types import FlowError
from portal.models import FINAL_STATES, Submission, SubmissionState, Task, User
from portal.results.table import ResultsError, results_table
from portal.serialize import isotime, submission_dict, task_counts, task_dict
from portal.slurm.client import SlurmError
from portal.slurm.transports import SlurmConfigError, TransportError
from portal.submit import background
from portal.submit.previews import PreviewPending
from portal.submit.sbatch import RenderError
from portal.web import bearer_token, error_response, limiter, portal_version
from portal.web.access import can_view, visible_submissions
from portal.web.api_schema import (
    ERROR_CODES,
    MAX_BODY_BYTES,
    CancelRequest,
    EmptyRequest,
    ExportQuery,
    ListQuery,
    M,
    RequestInvalid,
    ResultsQuery,
    SubmitRequest,
    TasksQuery,
    build_openapi,
    parse_body,
    parse_query,
)
from portal.web.bundles import ExportError, bundle_download

bp = Blueprint("api", __name__, url_prefix="/api/v1")

DEFAULT_RATE_LIMIT = "600 per minute"
#: Per-user limits shared with the web form (same settings, keys and buckets: Flask-Limiter's
#: bucket of a route limit is the route's endpoint), so form and API posts count together:
#: dry_run -> (setting, default, bucket).
SHARED_LIMITS: dict[bool, tuple[str, str, str]] = {
    False: ("SUBMIT_RATE_LIMIT", "30 per minute", "submissions.new"),
    True: ("PREVIEW_RATE_LIMIT", "10 per minute", "submissions.preview"),
}
#: Submission states in which cancelling still means something.
CANCELLABLE = frozenset(SubmissionState) - FINAL_STATES


class APIError(Exception):
    """A failure answered as ``{"error": {...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        details: Any = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code or ERROR_CODES.get(status, "error")
        self.message = message
        self.details = details
        self.headers = headers or {}


# --------------------------------------------------------------------------- answers


def json_response(data: Any, status: int = 200) -> Response:
    """``data`` as JSON, keys in their own order (parameters keep the sweep's order)."""
    text = current_app.json.dumps(data, sort_keys=False, separators=(",", ":"))
    return current_app.response_class(text + "\n", status=status, mimetype="application/json")


# --------------------------------------------------------------------------- errors


def error_json(
    status: int, message: str, *, code: str | None = None, details: Any = None
) -> Response:
    """The API's error answer."""
    body: dict[str, Any] = {"code": code or ERROR_CODES.get(status, "error"), "message": message}
    if details is not None:
        body["details"] = details
    response = json_response({"error": body}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="openlane-portal"'
    return response


@bp.errorhandler(APIError)
def _api_error(exc: APIError) -> Response:
    response = error_json(exc.status, exc.message, code=exc.code, details=exc.details)
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(RequestInvalid)
def _request_invalid(exc: RequestInvalid) -> Response:
    return error_json(400, exc.message, details=exc.details)


def _http_error_json(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status >= 500:
        db.session.rollback()
    if isinstance(exc, CSRFError):  # a cookie-authenticated POST: the API wants a token
        return error_json(401, "Send a personal API token: Authorization: Bearer <token>.")
    code = ERROR_CODES.get(status, (exc.name or "error").lower().replace(" ", "_"))
    message = exc.description or exc.name
    if status == 429:
        message = f"Too many requests: {exc.description}. Try again later."
    response = error_json(status, str(message), code=code)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc
    return _http_error_json(exc)


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _routing_error(exc: HTTPException) -> Any:
    """URLs under /api/ that match no endpoint (or method) answer in the API's shape; every
    other path keeps the portal's generic handling."""
    if request.path.startswith("/api/"):
        return _http_error_json(exc)
    return error_response(exc)


@bp.errorhandler(Exception)
def _unexpected(exc: Exception) -> Response:
    db.session.rollback()
    current_app.logger.exception("API request %s %s failed", request.method, request.path)
    return error_json(500, "The portal failed to answer; the error was logged.")


# --------------------------------------------------------------------------- auth and limits


def _rate_key() -> str:
    token = bearer_token()
    if token:
        return "api-token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "api-ip:" + (get_remote_address() or "?")


limiter.limit(
    lambda: str(current_app.config.get("API_RATE_LIMIT") or DEFAULT_RATE_LIMIT),
    key_func=_rate_key,
    scope="api",
    exempt_when=lambda: request.endpoint == "api.openapi",
)(bp)


@bp.before_request
def _authenticate() -> None:
    if request.endpoint == "api.openapi":
        return
    if bearer_token() is None:
        raise APIError(401, "Send a personal API token: Authorization: Bearer <token>.")
    if not current_user.is_authenticated or g.get("api_token") is None:
        raise APIError(401, "The API token is unknown, revoked, or its account is disabled.")


def _charge(dry_run: bool) -> None:
    """Count one submission (or preview) against the user's limit; 429 beyond it."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    setting, default, bucket = SHARED_LIMITS[dry_run]
    key = f"user:{current_user.id}"
    for item in parse_many(str(current_app.config.get(setting) or default)):
        if not limiter.limiter.hit(item, key, bucket):
            reset = limiter.limiter.get_window_stats(item, key, bucket).reset_time
            wait = max(1, int(reset - time.time()) + 1)
            what = "previews (dry runs)" if dry_run else "submissions"
            raise APIError(
                429,
                f"Too many {what}: at most {item}; try again in {wait} s.",
                headers={"Retry-After": str(wait)},
            )


def _user() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _site_url() -> str:
    return request.url_root


def _body(model: type[M], *, optional: bool = False) -> M:
    """The JSON body parsed into ``model`` (an empty body is ``{}`` when ``optional``)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise APIError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY_BYTES:
        raise APIError(413, f"The request body is larger than {MAX_BODY_BYTES} bytes.")
    if not raw.strip():
        if optional:
            return parse_body({}, model)
        raise RequestInvalid("The request body must be a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid(f"The request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestInvalid("The request body is nested too deeply.") from None
    return parse_body(data, model)


def _submission(uuid: str) -> Submission:
    """The submission ``uuid`` if the token's user may see it, else 404 (no existence leak)."""
    found = db.session.scalar(
        select(Submission).options(joinedload(Submission.owner)).where(Submission.uuid == uuid)
    )
    if found is None or not can_view(current_user, found):
        raise APIError(404, f"No submission {uuid[:40]!r}.")
    return found


def _submission_json(submission: Submission) -> dict[str, Any]:
    counts = task_counts(db.session, [submission.id])[submission.id]
    return submission_dict(submission, counts, site_url=_site_url())


def _envelope(submission: Submission, status: int = 200) -> Response:
    return json_response({"submission": _submission_json(submission)}, status)


def _slurm_unavailable(exc: Exception) -> APIError:
    db.session.rollback()
    return APIError(503, f"Slurm did not answer: {exc}")


# --------------------------------------------------------------------------- endpoints


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.1 document of this API (public)."""
    rules = [r for r in current_app.url_map.iter_rules() if r.endpoint.startswith("api.")]
    return json_response(
        build_openapi(rules, version=portal_version(), server_url=request.url_root)
    )


@bp.get("/me")
def me() -> Any:
    """The token's user and the token."""
    user, token = _user(), g.api_token
    return json_response(
        {
            "user": {
                "username": user.username,
                "email": user.email,
                "role": user.role,
                "slurm_account": user.slurm_account,
                "notify": user.notify,
                "created_at": isotime(user.created_at),
            },
            "token": {
                "name": token.name,
                "prefix": token.prefix,
                "created_at": isotime(token.created_at),
                "last_used_at": isotime(token.last_used_at),
            },
        }
    )


@bp.get("/submissions")
def list_submissions() -> Any:
    """Visible submissions, newest first; filters and pagination in SQL."""
    query = parse_query(request.args, ListQuery)
    user = _user()
    stmt = visible_submissions(user)
    if query.mine:
        stmt = stmt.where(Submission.owner_id == user.id)
    if query.state:
        stmt = stmt.where(Submission.state.in_(query.state))
    if query.flow:
        stmt = stmt.where(Submission.flow == query.flow)
    if query.q:
        stmt = stmt.where(
            or_(
                Submission.name.icontains(query.q, autoescape=True),
                Submission.repo_url.icontains(query.q, autoescape=True),
            )
        )
    if query.uuid:
        stmt = stmt.where(Submission.uuid.startswith(query.uuid, autoescape=True))
    page, per_page = query.page, query.per_page
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = db.session.scalars(
        stmt.options(joinedload(Submission.owner))
        .order_by(Submission.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    counts = task_counts(db.session, [s.id for s in rows])
    site = _site_url()
    items = [submission_dict(s, counts[s.id], site_url=site) for s in rows]
    return json_response({"items": items, "page": page, "per_page": per_page, "total": total})


@bp.post("/submissions")
def create_submission() -> Any:
    """Submit (201), or with ``dry_run`` show what would be submitted (200, nothing written)."""
    body = _body(SubmitRequest)
    user = _user()
    _charge(body.dry_run)
    if body.sweep is not None and body.sweeps:
        raise APIError(422, "Give either sweep (a sweep specification) or sweeps, not both.")
    res = body.resources
    built = svc.SubmissionRequest(
        repo_url=body.repo_url,
        ref=body.ref,
        design_path=body.design_path,
        flow=body.flow,
        params=dict(body.params),
        sweep=body.sweep,
        cli_sweeps=tuple(body.sweeps),
        resources=svc.Resources(
            cpus=res.cpus,
            mem_mb=res.mem_mb,
            time_minutes=res.time_minutes,
            partition=res.partition or None,
            account=res.account or user.slurm_account,
            qos=res.qos or None,
            throttle=res.throttle,
        ),
        name=body.name,
        notify=body.notify,
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        if body.dry_run:
            return json_response(_dry_run(built, user))
        submission = background.submit_request(app, built, user)
    except svc.SubmissionError as exc:
        db.session.rollback()
        raise APIError(422, str(exc)) from None
    except (SlurmError, TransportError, SlurmConfigError) as exc:
        raise _slurm_unavailable(exc) from None
    response = _envelope(submission, 201)
    response.headers["Location"] = url_for("api.get_submission", uuid=submission.uuid)
    return response


def _dry_run(built: svc.SubmissionRequest, user: User) -> dict[str, Any]:
    settings = current_app.config
    slurm = background.planning_client(current_app._get_current_object(), user)  # type: ignore[attr-defined]
    plan = svc.plan_submission(built, settings, slurm, owner=user)
    try:
        return svc.dry_run(
            plan, settings, user, wait_s=float(settings_of(current_app).PREVIEW_WAIT_SECONDS)
        )
    except PreviewPending as exc:  # the clone goes on off this thread: ask again
        raise APIError(
            503, str(exc), code="repository_fetching", headers={"Retry-After": "2"}
        ) from None


@bp.get("/submissions/<uuid>")
def get_submission(uuid: str) -> Any:
    """One submission."""
    return _envelope(_submission(uuid))


@bp.get("/submissions/<uuid>/tasks")
def list_tasks(uuid: str) -> Any:
    """The submission's array tasks in index order (paginated)."""
    submission = _submission(uuid)
    query = parse_query(request.args, TasksQuery)
    page, per_page = query.page, query.per_page
    total = db.session.scalar(
        select(func.count(Task.id)).where(Task.submission_id == submission.id)
    )
    tasks = db.session.scalars(
        select(Task)
        .where(Task.submission_id == submission.id)
        .order_by(Task.index)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return json_response(
        {
            "items": [task_dict(t) for t in tasks],
            "page": page,
            "per_page": per_page,
            "total": total or 0,
        }
    )


@bp.get("/submissions/<uuid>/results")
def results(uuid: str) -> Any:
    """Design features per task, the Pareto front and the best task per objective."""
    submission = _submission(uuid)
    query = parse_query(request.args, ResultsQuery)
    try:
        table = results_table(submission, query.objectives or None)
    except ResultsError as exc:
        raise APIError(422, str(exc)) from None
    return json_response(table.to_dict())


@bp.post("/submissions/<uuid>/cancel")
def cancel(uuid: str) -> Any:
    """scancel the submission, or the task indices in ``tasks``."""
    submission = _submission(uuid)
    body = _body(CancelRequest, optional=True)
    indices = sorted(set(body.tasks)) if body.tasks is not None else None
    if indices is not None and not indices:
        raise APIError(422, "tasks is empty: name at least one task index, or leave it out.")
    if submission.state not in CANCELLABLE:
        raise APIError(409, f"The submission is already {submission.state}.")
    try:
        slurm = slurm_client(current_app.config, submission.owner)
        svc.cancel(submission, slurm, indices, actor=_user())
    except svc.SubmissionError as exc:
        db.session.rollback()
        raise APIError(422, str(exc)) from None
    except (SlurmError, TransportError, SlurmConfigError) as exc:
        raise _slurm_unavailable(exc) from None
    return _envelope(submission)


@bp.post("/submissions/<uuid>/resubmit")
def resubmit(uuid: str) -> Any:
    """ONE new array over the failed and cancelled tasks of a finished submission."""
    submission = _submission(uuid)
    _body(EmptyRequest, optional=True)
    try:
        slurm = slurm_client(current_app.config, submission.owner)
        indices = svc.resubmit_failed(submission, current_app.config, slurm, actor=_user())
    except svc.SubmissionError as exc:
        db.session.rollback()
        raise APIError(409, str(exc)) from None
    except (FlowError, RenderError) as exc:
        db.session.rollback()
        raise APIError(422, str(exc)) from None
    except (SlurmError, TransportError, SlurmConfigError) as exc:
        raise _slurm_unavailable(exc) from None
    return json_response({"submission": _submission_json(submission), "resubmitted": indices})


@bp.post("/submissions/<uuid>/retry")
def retry(uuid: str) -> Any:
    """Launch a SUBMIT_FAILED submission again: the same submission, ONE array (202)."""
    submission = _submission(uuid)
    _body(EmptyRequest, optional=True)
    try:
        svc.retry_launch(submission)
    except svc.SubmissionError as exc:
        db.session.rollback()
        raise APIError(409, str(exc)) from None
    background.start_launch(current_app._get_current_object(), submission)  # type: ignore[attr-defined]
    return _envelope(submission, 202)


@bp.get("/submissions/<uuid>/export")
def export(uuid: str) -> Any:
    """The export bundle (tar.gz runnable with plain sbatch)."""
    submission = _submission(uuid)
    query = parse_query(request.args, ExportQuery)
    try:
        response, target = bundle_download(
            submission, Path(query.run_dir) if query.run_dir else None
        )
    except (ExportError, OSError) as exc:
        raise APIError(409, f"Cannot export: {exc}") from None
    response.headers["X-Unpack-Dir"] = str(target)
    return response
