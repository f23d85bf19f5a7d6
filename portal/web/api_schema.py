"""Request and response models of the REST API (pydantic v2) and the OpenAPI 3.1 document.

Each body, query string and answer is declared once, as a pydantic model: the request models
check what arrives (unknown fields, missing ones, wrong JSON types -> :class:`RequestInvalid`,
answered 400 with the portal's own messages) and every model's ``model_json_schema()`` is a
component of the OpenAPI document, so the document cannot drift from what the API accepts.
Whether a well-formed value is *allowed* (URL policy, parameter catalog, sweep size, partition
limits) is decided by the submission service (answered 422); the ``minimum`` and ``enum`` hints
below only document those rules.

:func:`build_openapi` walks the app's ``/api/v1`` rules and describes each with its entry in
:data:`OPERATIONS`; a rule without an entry is an error, so every endpoint is documented.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from werkzeug.routing import Rule

from portal.models import SubmissionState

#: Stable error codes by HTTP status (the ``error.code`` of every failure).
ERROR_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "slurm_unavailable",
}
#: Codes beyond the one per status: a dry run whose repository is still being fetched (503,
#: Retry-After; ask again).
EXTRA_ERROR_CODES = ("repository_fetching",)
MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
DEFAULT_TASKS_PER_PAGE = 1000
MAX_TASKS_PER_PAGE = 10000
UUID_PREFIX_RE = re.compile(r"[0-9a-f-]{4,36}")
FLOWS = ("openlane1", "openlane2", "librelane")


class RequestInvalid(ValueError):
    """A request the API cannot read: bad JSON, unknown or missing fields, wrong types."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Closed(BaseModel):
    """A JSON object with exactly these members (``additionalProperties: false``)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# --------------------------------------------------------------------------- request bodies


def _at_least(low: int) -> dict[str, Any]:
    return {"minimum": low}


class Resources(Closed):
    """What each array task asks Slurm for."""

    cpus: int = Field(1, description="CPUs per array task.", json_schema_extra=_at_least(1))
    mem_mb: int = Field(4096, description="Memory per task in MB.", json_schema_extra=_at_least(1))
    time_minutes: int = Field(
        60, description="Time limit per task in minutes.", json_schema_extra=_at_least(1)
    )
    partition: str | None = Field(
        None, description="Partition (default: the site's or the cluster's)."
    )
    account: str | None = Field(
        None, description="Slurm account (default: yours, else the site's)."
    )
    qos: str | None = Field(None, description="Quality of service.")
    throttle: int = Field(
        0,
        description="Most tasks running at once; 0 = no limit.",
        json_schema_extra=_at_least(0),
    )


class SubmitRequest(Closed):
    """A submission: one Slurm job array, one task per sweep point."""

    repo_url: str = Field(description="Git URL of the design repository.")
    ref: str = Field("main", description="Branch, tag or commit.")
    design_path: str = Field("", description="Design folder inside the repository.")
    flow: str = Field("openlane1", description="Flow to run.", json_schema_extra={"enum": FLOWS})
    params: dict[str, str | bool | int | float] = Field(
        default_factory=dict,
        description="Fixed parameters of every task: catalog parameter -> value (see the "
        "parameter catalog).",
    )
    sweep: dict[str, Any] | None = Field(
        None,
        description="A sweep specification as in a sweep file (kind grid, zip, list, random, "
        "matrix).",
    )
    sweeps: list[str] = Field(
        default_factory=list,
        description="Sweeps like the CLI's --sweep: NAME=a,b,c or NAME=start:stop:step (a grid).",
    )
    resources: Resources = Field(default_factory=Resources)
    name: str = Field("", description="A name to recognise the submission by.")
    notify: bool = Field(True, description="Email when the array ends.")
    dry_run: bool = Field(
        False,
        description="Validate and render the sbatch script only; nothing is recorded or submitted.",
    )


class CancelRequest(Closed):
    """What to cancel."""

    tasks: list[int] | None = Field(
        None, description="Task indices to cancel; absent or null cancels the whole submission."
    )


class EmptyRequest(Closed):
    """No members (an empty body is fine too)."""


# --------------------------------------------------------------------------- query strings


def _single(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise ValueError(f"{name} given {len(values)} times")
    return values[0]


def _int_between(name: str, low: int, high: int) -> BeforeValidator:
    def parse(values: list[str]) -> int:
        text = _single(values, name).strip()
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise ValueError(f"{name} must be a whole number, got {text[:20]!r}")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {number}")
        return number

    return BeforeValidator(parse)


def _bool(values: list[str]) -> bool:
    text = _single(values, "mine").strip().lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise ValueError(f"mine must be true or false, got {text[:20]!r}")


def _states(values: list[str]) -> list[str]:
    known = [s.value for s in SubmissionState]
    wanted: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip().upper()
            if not item:
                continue
            if item not in known:
                raise ValueError(f"unknown state {item[:30]!r} (known: {', '.join(known)})")
            if item not in wanted:
                wanted.append(item)
    return wanted


def _text(name: str, limit: int) -> BeforeValidator:
    def parse(values: list[str]) -> str:
        text = _single(values, name).strip()
        if len(text) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        return text

    return BeforeValidator(parse)


def _uuid_prefix(values: list[str]) -> str:
    text = _single(values, "uuid").strip().lower()
    if not UUID_PREFIX_RE.fullmatch(text):
        raise ValueError(
            "uuid must be a submission uuid or a prefix of at least 4 of its characters"
        )
    return text


def _run_dir(values: list[str]) -> str:
    text = _single(values, "run_dir").strip()
    if not text.startswith("/") or "\x00" in text or len(text) > 1000:
        raise ValueError("run_dir must be an absolute path")
    return text


def _flow(values: list[str]) -> str:
    text = _single(values, "flow").strip()
    if text not in FLOWS:
        raise ValueError(f"unknown flow {text[:30]!r} (known: {', '.join(FLOWS)})")
    return text


Page = Annotated[
    int, _int_between("page", 1, 10**9), Field(ge=1, description="Page number, from 1.")
]


class Query(BaseModel):
    """A query string: each parameter arrives as the list of its values."""

    model_config = ConfigDict(extra="forbid")


class ListQuery(Query):
    """Filters and pagination of the submission list."""

    state: Annotated[list[SubmissionState], BeforeValidator(_states)] = Field(
        default_factory=list,
        description="Only these submission states (comma-separated, or the parameter repeated).",
    )
    flow: Annotated[str | None, BeforeValidator(_flow)] = Field(
        None, description="Only this flow.", json_schema_extra={"enum": FLOWS}
    )
    q: Annotated[str | None, _text("q", 200)] = Field(
        None,
        max_length=200,
        description="Text the name or the repository URL contains (any case).",
    )
    uuid: Annotated[str | None, BeforeValidator(_uuid_prefix)] = Field(
        None,
        min_length=4,
        description="Submissions whose uuid starts with this (at least 4 characters).",
    )
    mine: Annotated[bool, BeforeValidator(_bool)] = Field(
        False, description="Only your own submissions (admins see everybody's otherwise)."
    )
    page: Page = 1
    per_page: Annotated[int, _int_between("per_page", 1, MAX_PER_PAGE)] = Field(
        DEFAULT_PER_PAGE, ge=1, le=MAX_PER_PAGE, description="Submissions per page."
    )


class TasksQuery(Query):
    """Pagination of a submission's tasks."""

    page: Page = 1
    per_page: Annotated[int, _int_between("per_page", 1, MAX_TASKS_PER_PAGE)] = Field(
        DEFAULT_TASKS_PER_PAGE, ge=1, le=MAX_TASKS_PER_PAGE, description="Tasks per page."
    )


class ResultsQuery(Query):
    """The objectives of the Pareto front."""

    objectives: Annotated[str | None, _text("objectives", 500)] = Field(
        None,
        description="Objectives like area:min,setup_ws:max (default: area, power, setup slack "
        "and wirelength, those the tasks measured).",
    )


class ExportQuery(Query):
    """Where the bundle will be unpacked."""

    run_dir: Annotated[str | None, BeforeValidator(_run_dir)] = Field(
        None,
        description="Absolute folder the bundle will be unpacked as (default: the run folder).",
    )


class NoQuery(Query):
    """No query parameters."""


# --------------------------------------------------------------------------- parsing

M = TypeVar("M", bound=BaseModel)
Q = TypeVar("Q", bound=Query)


def _json_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


_LABELS = {
    "string": ("a string", "strings"),
    "integer": ("an integer", "integers"),
    "number": ("a number", "numbers"),
    "boolean": ("true or false", "booleans"),
    "object": ("an object", "objects"),
}


def _label(schema: Mapping[str, Any], plural: bool = False) -> str:
    """How an error names the JSON type of ``schema`` ("a list of strings", ...)."""
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        words = [_label(s, plural) for s in kinds]
        label = ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
        return f"{label} or null" if len(kinds) < len(schema["anyOf"]) else label
    kind = schema.get("type", "object")
    if kind == "array":
        return ("lists of " if plural else "a list of ") + _label(schema["items"], True)
    values = schema.get("additionalProperties")
    if kind == "object" and isinstance(values, dict):
        return "an object of " + _label(values, True)
    return _LABELS[kind][plural]


def _field_path(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[str], type[BaseModel]]:
    """The part of ``loc`` naming model fields, and the model holding the last of them."""
    names: list[str] = []
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            break
        names.append(part)
        inner = field.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel) and len(names) < len(loc):
            model = inner
    return names, model


def _order(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[int, ...]:
    """Sort key: unknown fields of an object first, then its fields in declared order."""
    key: list[int] = []
    for part in loc:
        fields = list(model.model_fields)
        if part not in fields:
            key.append(-1)
            break
        key.append(fields.index(part))
        inner = model.model_fields[part].annotation
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            break
        model = inner
    return tuple(key)


def _dig(data: Any, names: Iterable[str]) -> Any:
    for name in names:
        data = data[name]
    return data


def _translate(model: type[BaseModel], data: Any, exc: ValidationError) -> RequestInvalid:
    """The first of pydantic's errors, worded as the API words it."""
    errors = sorted(exc.errors(), key=lambda e: _order(model, e["loc"]))
    first = errors[0]
    loc = first["loc"]
    if first["type"] == "extra_forbidden":
        where = ".".join(str(p) for p in loc[:-1]) or "body"
        unknown = sorted(
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"][:-1] == loc[:-1]
        )
        known = ", ".join(_field_path(model, (*loc[:-1], ""))[1].model_fields)
        return RequestInvalid(
            f"unknown field{'s' * (len(unknown) > 1)} in {where}: {', '.join(unknown)} "
            f"(known: {known})",
            {"field": where, "unknown": unknown},
        )
    names, holder = _field_path(model, loc)
    path = ".".join(names)
    if first["type"] == "missing":
        return RequestInvalid(f"{path} is required", {"field": path})
    value = _dig(data, names)
    inner = holder.model_fields[names[-1]].annotation
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return RequestInvalid(
            f"{path} must be a JSON object, got {_json_type_name(value)}",
            {"field": path, "expected": "an object"},
        )
    label = _label(holder.model_json_schema()["properties"][names[-1]])
    return RequestInvalid(
        f"{path} must be {label}, got {_json_type_name(value)}",
        {"field": path, "expected": label},
    )


def parse_body(data: Any, model: type[M]) -> M:
    """``data`` (decoded JSON) checked against ``model``; :class:`RequestInvalid` if not."""
    if not isinstance(data, dict):
        raise RequestInvalid(
            f"body must be a JSON object, got {_json_type_name(data)}",
            {"field": "body", "expected": "an object"},
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _translate(model, data, exc) from None


def parse_query(args: Any, model: type[Q]) -> Q:
    """A query string (a werkzeug MultiDict) parsed into ``model``; unknown names refused."""
    known = list(model.model_fields)
    unknown = sorted(name for name in args if name not in known)
    if unknown:
        raise RequestInvalid(
            f"unknown query parameter{'s' * (len(unknown) > 1)}: {', '.join(unknown)} "
            f"(allowed: {', '.join(known) or 'none'})",
            {"unknown": unknown},
        )
    try:
        return model.model_validate({name: args.getlist(name) for name in args})
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error.get("ctx", {}).get("error") or error["msg"])
        raise RequestInvalid(message, {"field": error["loc"][0]}) from None


# --------------------------------------------------------------------------- answers

Time = datetime | None
NullableText = str | None


class ErrorBody(Closed):
    """The failure itself."""

    code: str = Field(
        json_schema_extra={"enum": sorted(set(ERROR_CODES.values()) | set(EXTRA_ERROR_CODES))}
    )
    message: str
    details: Any = Field(None, description="More about the failure, when useful.")


class Error(Closed):
    """Every failure: a stable snake_case code and a message for people."""

    error: ErrorBody


class Submission(Closed):
    """One submission: its request, state and task counts."""

    id: int
    uuid: str
    name: str
    owner: str = Field(description="Username of the owner.")
    state: SubmissionState
    repo_url: str
    ref: str
    commit: NullableText
    design_path: str
    flow: str
    flow_note: NullableText = Field(
        description="What the tasks run when it is less than the whole real flow (a flow cut "
        "to this cluster's steps, or the stand-in test double)."
    )
    params: dict[str, Any]
    sweep: dict[str, Any] | None
    resources: dict[str, Any]
    notify: bool
    n_tasks: int
    tasks_by_state: dict[str, int]
    cost_core_hours: float
    job_ids: list[str]
    created_at: Time
    submitted_at: Time
    finished_at: Time
    error: NullableText
    decision_reason: NullableText
    url: str = Field(description="The submission's web page.")


class SubmissionEnvelope(Closed):
    """One submission."""

    submission: Submission


class SubmissionPage(Closed):
    """One page of submissions."""

    items: list[Submission]
    page: int
    per_page: int
    total: int


class Task(Closed):
    """One array task."""

    index: int
    state: str = Field(description="Slurm's state of the array task.")
    pending_reason: NullableText = Field(
        description="Why Slurm keeps a PENDING task waiting (squeue's reason: Priority, "
        "Resources, JobHeldUser, QOSMaxJobsPerUserLimit...); null otherwise."
    )
    exit_code: int | None
    signal: int | None
    job: NullableText = Field(description="<array job id>_<array index>")
    node: NullableText
    started_at: Time
    ended_at: Time
    elapsed_seconds: int | None
    params: dict[str, Any]
    metrics: dict[str, Any] | None = Field(description="Design features.")


class TaskPage(Closed):
    """One page of tasks."""

    items: list[Task]
    page: int
    per_page: int
    total: int


class DryRun(Closed):
    """What a submission would do; nothing was recorded or submitted."""

    script: str = Field(description="The exact sbatch script(s).")
    points: list[dict[str, Any]]
    tasks: int
    core_hours: float
    needs_approval: bool
    reasons: list[str]


class ResultRow(Closed):
    """One task's design features."""

    index: int
    state: str
    exit_code: int | None
    params: dict[str, Any]
    metrics: dict[str, Any] | None
    pareto: bool
    best_for: list[str]


class Results(Closed):
    """Design features per task, the Pareto front and the best task per objective."""

    objectives: dict[str, Literal["min", "max"]]
    pareto: list[int]
    best: dict[str, int]
    rows: list[ResultRow]


class Resubmitted(Closed):
    """The submission and the task indices run again."""

    submission: Submission
    resubmitted: list[int]


class MeUser(Closed):
    """The token's user."""

    username: str
    email: str
    role: Literal["user", "admin"]
    slurm_account: NullableText
    notify: str
    created_at: Time


class MeToken(Closed):
    """The token itself."""

    name: str
    prefix: str
    created_at: Time
    last_used_at: Time


class Me(Closed):
    """The token's user and the token."""

    user: MeUser
    token: MeToken


# --------------------------------------------------------------------------- the document


@dataclass(frozen=True)
class Operation:
    """What the document says about one endpoint (beyond its models)."""

    summary: str
    description: str
    ok: int
    answer: type[BaseModel] | None
    errors: tuple[int, ...]
    query: type[Query] = NoQuery
    body: type[BaseModel] | None = None
    body_required: bool = False
    public: bool = False
    ok_media: str = "application/json"


_READ = (401, 404, 429)
OPERATIONS: dict[str, Operation] = {
    "api.list_submissions": Operation(
        "List submissions",
        "Your submissions (admins: everybody's), newest first, filtered and paginated in SQL.",
        200,
        SubmissionPage,
        (400, 401, 429),
        ListQuery,
    ),
    "api.create_submission": Operation(
        "Submit a design",
        "Validate, record and launch ONE Slurm job array (one task per sweep point). A "
        "submission over the approval thresholds is recorded as AWAITING_APPROVAL. With "
        "dry_run the answer is the exact script and the points, and nothing is written.",
        201,
        SubmissionEnvelope,
        (400, 401, 413, 422, 429, 503),
        body=SubmitRequest,
        body_required=True,
    ),
    "api.get_submission": Operation(
        "One submission", "Its state and task counts.", 200, SubmissionEnvelope, _READ
    ),
    "api.list_tasks": Operation(
        "A submission's tasks",
        "Array tasks in index order with Slurm state, exit code, node, runtime and metrics.",
        200,
        TaskPage,
        (400, *_READ),
        TasksQuery,
    ),
    "api.results": Operation(
        "Results",
        "Design features per task with the Pareto front over the objectives.",
        200,
        Results,
        (400, 401, 404, 422, 429),
        ResultsQuery,
    ),
    "api.cancel": Operation(
        "Cancel",
        "scancel the whole submission or some task indices (ONE scancel per array).",
        200,
        SubmissionEnvelope,
        (400, 401, 404, 409, 413, 422, 429, 503),
        body=CancelRequest,
    ),
    "api.resubmit": Operation(
        "Resubmit failed tasks",
        "ONE new array over the failed and cancelled task indices of a finished submission.",
        200,
        Resubmitted,
        (401, 404, 409, 422, 429, 503),
    ),
    "api.retry": Operation(
        "Retry a failed launch",
        "Launch a SUBMIT_FAILED submission again (the same submission, ONE array), in the "
        "background: poll it for the new state.",
        202,
        SubmissionEnvelope,
        (401, 404, 409, 429),
    ),
    "api.export": Operation(
        "Export bundle",
        "A tar.gz runnable with plain sbatch: script, per-task configs, design, README. The "
        "X-Unpack-Dir header names the folder it must be unpacked as.",
        200,
        None,
        (400, 401, 404, 409, 429),
        ExportQuery,
        ok_media="application/gzip",
    ),
    "api.me": Operation("Who am I", "The token's user and the token itself.", 200, Me, (401, 429)),
    "api.openapi": Operation(
        "This document", "The OpenAPI 3.1 description of the API.", 200, None, (), public=True
    ),
}
#: Answers beyond an operation's own: what a dry run answers.
DOCUMENTED = (Error, DryRun)
_REF = "#/components/schemas/{model}"


class _Schema(GenerateJsonSchema):
    """pydantic's JSON schema without the ``title`` of every member."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def component_schemas() -> dict[str, Any]:
    """Every model's JSON schema by name, nested models lifted out of ``$defs``."""
    models = [*DOCUMENTED]
    for op in OPERATIONS.values():
        models += [m for m in (op.answer, op.body) if m is not None]
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF, schema_generator=_Schema)
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    for op in OPERATIONS.values():  # what the query strings refer to (SubmissionState)
        out.update(op.query.model_json_schema(ref_template=_REF).get("$defs", {}))
    return dict(sorted(out.items()))


def _parameter(name: str, schema: dict[str, Any], where: str = "query") -> dict[str, Any]:
    """An OpenAPI parameter; an absent query parameter is simply left out, never null."""
    kinds = [s for s in schema.pop("anyOf", ()) if s.get("type") != "null"]
    if kinds:
        schema = {**kinds[0], **schema}
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "description": schema.pop("description", ""),
        "schema": schema,
    }


def openapi_path(rule: Rule) -> str:
    """``/api/v1/submissions/<uuid>`` -> ``/api/v1/submissions/{uuid}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _operation(endpoint: str, rule: Rule) -> dict[str, Any]:
    try:
        op = OPERATIONS[endpoint]
    except KeyError:
        raise KeyError(f"API endpoint {endpoint} has no entry in OPERATIONS") from None
    out: dict[str, Any] = {
        "operationId": endpoint.split(".", 1)[1],
        "summary": op.summary,
        "description": op.description,
    }
    params = [
        _parameter(name, {"type": "string", "description": "The submission's uuid."}, "path")
        for name in rule.arguments
    ]
    query = op.query.model_json_schema(ref_template=_REF, schema_generator=_Schema)["properties"]
    params += [_parameter(name, schema) for name, schema in query.items()]
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {"required": op.body_required, **_json(_ref(op.body))}
    if op.ok_media == "application/json":
        ok = _json(_ref(op.answer) if op.answer else {"type": "object"})
    else:
        ok = {"content": {op.ok_media: {"schema": {"type": "string", "format": "binary"}}}}
    responses: dict[str, Any] = {str(op.ok): {"description": "Success.", **ok}}
    if op.body is SubmitRequest:
        responses["200"] = {
            "description": "dry_run: what would be submitted (nothing was written).",
            **_json(_ref(DryRun)),
        }
    for status in op.errors:
        responses[str(status)] = {"description": ERROR_CODES[status], **_json(_ref(Error))}
    out["responses"] = dict(sorted(responses.items()))
    if op.public:
        out["security"] = []
    return out


def build_openapi(rules: Iterable[Rule], *, version: str, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``rules`` (the app's rules of the ``api`` blueprint)."""
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(rules, key=lambda r: r.rule):
        item = paths.setdefault(openapi_path(rule), {})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            item[method.lower()] = _operation(rule.endpoint, rule)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "OpenLane Portal API",
            "version": version,
            "description": "Submit OpenLane sweeps as Slurm job arrays, follow them and fetch "
            "their results. Authenticate with a personal API token: "
            "`Authorization: Bearer olp_...` (create one on your account page or with "
            "`portal token create`). Errors are JSON with a stable code.",
        },
        "servers": [{"url": server_url.rstrip("/") or "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token (olp_...).",
                }
            },
            "schemas": component_schemas(),
        },
    }
