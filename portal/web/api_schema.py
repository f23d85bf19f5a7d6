"""Request parsing for the REST API and the OpenAPI 3.1 document describing it.

One declaration serves both: the :class:`Field` lists below check request bodies (unknown
fields, missing ones, wrong JSON types -> :class:`RequestInvalid`, answered 400) and are
turned into the request schemas of the OpenAPI document, so the document cannot drift from
what the API accepts. Whether a well-formed value is *allowed* (URL policy, parameter catalog,
sweep size, partition limits) is decided by the submission service (answered 422).

:func:`build_openapi` walks the app's ``/api/v1`` rules and describes each with its entry in
:data:`OPERATIONS`; a rule without an entry is an error, so every endpoint is documented.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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


class RequestInvalid(ValueError):
    """A request the API cannot read: bad JSON, unknown or missing fields, wrong types."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


# --------------------------------------------------------------------------- JSON types


@dataclass(frozen=True)
class JsonType:
    """A JSON type: its schema, a check and how to name it in an error."""

    schema: dict[str, Any]
    check: Callable[[Any], bool]
    label: str

    def nullable(self) -> JsonType:
        """The same type, or ``null``."""
        schema = dict(self.schema)
        kind = schema.get("type")
        if kind is not None:
            schema["type"] = [kind, "null"] if isinstance(kind, str) else [*kind, "null"]
        return JsonType(schema, lambda v: v is None or self.check(v), f"{self.label} or null")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


STRING = JsonType({"type": "string"}, lambda v: isinstance(v, str), "a string")
INTEGER = JsonType({"type": "integer"}, _is_int, "an integer")
BOOLEAN = JsonType({"type": "boolean"}, lambda v: isinstance(v, bool), "true or false")
OBJECT = JsonType({"type": "object"}, lambda v: isinstance(v, dict), "an object")
STRING_LIST = JsonType(
    {"type": "array", "items": {"type": "string"}},
    lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
    "a list of strings",
)
INTEGER_LIST = JsonType(
    {"type": "array", "items": {"type": "integer", "minimum": 0}},
    lambda v: isinstance(v, list) and all(_is_int(i) for i in v),
    "a list of integers",
)
PARAMS = JsonType(
    {
        "type": "object",
        "additionalProperties": {"type": ["string", "number", "boolean"]},
        "description": "Catalog parameter -> value (see the parameter catalog).",
    },
    lambda v: (
        isinstance(v, dict)
        and all(isinstance(x, str | int | float) and x is not None for x in v.values())
    ),
    "an object of parameter values (strings, numbers or booleans)",
)


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


# --------------------------------------------------------------------------- bodies


@dataclass(frozen=True)
class Field:
    """One member of a JSON request body."""

    name: str
    type: JsonType
    description: str
    default: Any = None
    required: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    nested: tuple[Field, ...] = ()

    def schema(self) -> dict[str, Any]:
        """This field's JSON schema."""
        schema = object_schema(self.nested) if self.nested else {**self.type.schema, **self.extra}
        schema["description"] = self.description
        if not self.required and self.default is not None:
            schema["default"] = self.default
        return schema


RESOURCE_FIELDS: tuple[Field, ...] = (
    Field("cpus", INTEGER, "CPUs per array task.", 1, extra={"minimum": 1}),
    Field("mem_mb", INTEGER, "Memory per task in MB.", 4096, extra={"minimum": 1}),
    Field("time_minutes", INTEGER, "Time limit per task in minutes.", 60, extra={"minimum": 1}),
    Field("partition", STRING.nullable(), "Partition (default: the site's or the cluster's)."),
    Field("account", STRING.nullable(), "Slurm account (default: yours, else the site's)."),
    Field("qos", STRING.nullable(), "Quality of service."),
    Field(
        "throttle", INTEGER, "Most tasks running at once; 0 = no limit.", 0, extra={"minimum": 0}
    ),
)

SUBMIT_FIELDS: tuple[Field, ...] = (
    Field("repo_url", STRING, "Git URL of the design repository.", required=True),
    Field("ref", STRING, "Branch, tag or commit.", "main"),
    Field("design_path", STRING, "Design folder inside the repository.", ""),
    Field(
        "flow",
        STRING,
        "Flow to run.",
        "openlane1",
        extra={"enum": ["openlane1", "openlane2", "librelane"]},
    ),
    Field("params", PARAMS, "Fixed parameters of every task.", {}),
    Field(
        "sweep",
        OBJECT.nullable(),
        "A sweep specification as in a sweep file (kind grid, zip, list, random, matrix).",
    ),
    Field(
        "sweeps",
        STRING_LIST,
        "Sweeps like the CLI's --sweep: NAME=a,b,c or NAME=start:stop:step (a grid).",
        [],
    ),
    Field("resources", OBJECT, "What each array task asks Slurm for.", nested=RESOURCE_FIELDS),
    Field("name", STRING, "A name to recognise the submission by.", ""),
    Field("notify", BOOLEAN, "Email when the array ends.", True),
    Field(
        "dry_run",
        BOOLEAN,
        "Validate and render the sbatch script only; nothing is recorded or submitted.",
        False,
    ),
)

CANCEL_FIELDS: tuple[Field, ...] = (
    Field(
        "tasks",
        INTEGER_LIST.nullable(),
        "Task indices to cancel; absent or null cancels the whole submission.",
    ),
)


def object_schema(fields: Iterable[Field]) -> dict[str, Any]:
    """A closed object schema (``additionalProperties: false``) of ``fields``."""
    fields = list(fields)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: f.schema() for f in fields},
        "additionalProperties": False,
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def parse_object(data: Any, fields: Iterable[Field], where: str = "body") -> dict[str, Any]:
    """Check ``data`` against ``fields``; return every field (defaults filled in)."""
    fields = list(fields)
    if not isinstance(data, dict):
        raise RequestInvalid(
            f"{where} must be a JSON object, got {_json_type_name(data)}",
            {"field": where, "expected": "an object"},
        )
    known = {f.name: f for f in fields}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise RequestInvalid(
            f"unknown field{'s' * (len(unknown) > 1)} in {where}: {', '.join(unknown)} "
            f"(known: {', '.join(known)})",
            {"field": where, "unknown": unknown},
        )
    out: dict[str, Any] = {}
    for spec in fields:
        path = f"{where}.{spec.name}" if where != "body" else spec.name
        if spec.name not in data:
            if spec.required:
                raise RequestInvalid(f"{path} is required", {"field": path})
            value = spec.default
            if spec.nested:
                value = parse_object({}, spec.nested, path)
            out[spec.name] = _copy(value)
            continue
        value = data[spec.name]
        if spec.nested:
            out[spec.name] = parse_object(value, spec.nested, path)
            continue
        if not spec.type.check(value):
            raise RequestInvalid(
                f"{path} must be {spec.type.label}, got {_json_type_name(value)}",
                {"field": path, "expected": spec.type.label},
            )
        out[spec.name] = value
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# --------------------------------------------------------------------------- query strings


@dataclass(frozen=True)
class QueryParam:
    """One query-string parameter: its schema and a parser (raises ``ValueError``)."""

    name: str
    schema: dict[str, Any]
    description: str
    parse: Callable[[list[str]], Any]
    in_path: bool = False

    def openapi(self) -> dict[str, Any]:
        """The parameter object of the OpenAPI document."""
        return {
            "name": self.name,
            "in": "path" if self.in_path else "query",
            "required": self.in_path,
            "description": self.description,
            "schema": self.schema,
        }


def _single(values: list[str], name: str) -> str:
    if len(values) != 1:
        raise ValueError(f"{name} given {len(values)} times")
    return values[0]


def _int_between(name: str, low: int, high: int) -> Callable[[list[str]], int]:
    def parse(values: list[str]) -> int:
        text = _single(values, name).strip()
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise ValueError(f"{name} must be a whole number, got {text[:20]!r}")
        number = int(text)
        if not low <= number <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {number}")
        return number

    return parse


def _bool(name: str) -> Callable[[list[str]], bool]:
    def parse(values: list[str]) -> bool:
        text = _single(values, name).strip().lower()
        if text in ("1", "true", "yes"):
            return True
        if text in ("0", "false", "no", ""):
            return False
        raise ValueError(f"{name} must be true or false, got {text[:20]!r}")

    return parse


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


def _text(name: str, limit: int) -> Callable[[list[str]], str]:
    def parse(values: list[str]) -> str:
        text = _single(values, name).strip()
        if len(text) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        return text

    return parse


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
    if text not in ("openlane1", "openlane2", "librelane"):
        raise ValueError(f"unknown flow {text[:30]!r} (known: openlane1, openlane2, librelane)")
    return text


PAGE = QueryParam(
    "page",
    {"type": "integer", "minimum": 1, "default": 1},
    "Page number, from 1.",
    _int_between("page", 1, 10**9),
)
LIST_QUERY: tuple[QueryParam, ...] = (
    QueryParam(
        "state",
        {"type": "string"},
        "Only these submission states (comma-separated, or the parameter repeated).",
        _states,
    ),
    QueryParam("flow", {"type": "string"}, "Only this flow.", _flow),
    QueryParam(
        "q",
        {"type": "string", "maxLength": 200},
        "Text the name or the repository URL contains (any case).",
        _text("q", 200),
    ),
    QueryParam(
        "uuid",
        {"type": "string", "minLength": 4},
        "Submissions whose uuid starts with this (at least 4 characters).",
        _uuid_prefix,
    ),
    QueryParam(
        "mine",
        {"type": "boolean", "default": False},
        "Only your own submissions (admins see everybody's otherwise).",
        _bool("mine"),
    ),
    PAGE,
    QueryParam(
        "per_page",
        {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": DEFAULT_PER_PAGE},
        "Submissions per page.",
        _int_between("per_page", 1, MAX_PER_PAGE),
    ),
)
TASKS_QUERY: tuple[QueryParam, ...] = (
    PAGE,
    QueryParam(
        "per_page",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TASKS_PER_PAGE,
            "default": DEFAULT_TASKS_PER_PAGE,
        },
        "Tasks per page.",
        _int_between("per_page", 1, MAX_TASKS_PER_PAGE),
    ),
)
RESULTS_QUERY: tuple[QueryParam, ...] = (
    QueryParam(
        "objectives",
        {"type": "string"},
        "Objectives like area:min,setup_ws:max (default: area, power, setup slack and "
        "wirelength, those the tasks measured).",
        _text("objectives", 500),
    ),
)
EXPORT_QUERY: tuple[QueryParam, ...] = (
    QueryParam(
        "run_dir",
        {"type": "string"},
        "Absolute folder the bundle will be unpacked as (default: the run folder).",
        _run_dir,
    ),
)
UUID_PATH = QueryParam(
    "uuid", {"type": "string"}, "The submission's uuid.", lambda v: v[0], in_path=True
)


def parse_query(args: Any, params: Iterable[QueryParam]) -> dict[str, Any]:
    """Parse a query string (a werkzeug MultiDict) against ``params``; unknown names refused.

    Absent parameters are left out of the result.
    """
    params = [p for p in params if not p.in_path]
    known = {p.name: p for p in params}
    unknown = sorted(name for name in args if name not in known)
    if unknown:
        allowed = ", ".join(known) or "none"
        raise RequestInvalid(
            f"unknown query parameter{'s' * (len(unknown) > 1)}: {', '.join(unknown)} "
            f"(allowed: {allowed})",
            {"unknown": unknown},
        )
    out: dict[str, Any] = {}
    for name, spec in known.items():
        if name in args:
            try:
                out[name] = spec.parse(args.getlist(name))
            except ValueError as exc:
                raise RequestInvalid(str(exc), {"field": name}) from None
    return out


# --------------------------------------------------------------------------- response schemas


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}


def _closed(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def component_schemas() -> dict[str, Any]:
    """Every schema of the document, by name."""
    return {
        "Error": _closed(
            {
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {
                            "type": "string",
                            "enum": sorted(set(ERROR_CODES.values()) | set(EXTRA_ERROR_CODES)),
                        },
                        "message": {"type": "string"},
                        "details": {"description": "More about the failure, when useful."},
                    },
                    "required": ["code", "message"],
                    "additionalProperties": False,
                }
            },
            "Every failure: a stable snake_case code and a message for people.",
        ),
        "Submission": _closed(
            {
                "id": {"type": "integer"},
                "uuid": {"type": "string"},
                "name": {"type": "string"},
                "owner": {"type": "string", "description": "Username of the owner."},
                "state": {"type": "string", "enum": [s.value for s in SubmissionState]},
                "repo_url": {"type": "string"},
                "ref": {"type": "string"},
                "commit": _NULLABLE_STRING,
                "design_path": {"type": "string"},
                "flow": {"type": "string"},
                "flow_note": {
                    "type": ["string", "null"],
                    "description": "What the tasks run when it is less than the whole real "
                    "flow (a flow cut to this cluster's steps, or the stand-in test double).",
                },
                "params": {"type": "object"},
                "sweep": {"type": ["object", "null"]},
                "resources": {"type": "object"},
                "notify": {"type": "boolean"},
                "n_tasks": {"type": "integer"},
                "tasks_by_state": _COUNTS,
                "cost_core_hours": {"type": "number"},
                "job_ids": {"type": "array", "items": {"type": "string"}},
                "created_at": _TIME,
                "submitted_at": _TIME,
                "finished_at": _TIME,
                "error": _NULLABLE_STRING,
                "decision_reason": _NULLABLE_STRING,
                "url": {"type": "string", "description": "The submission's web page."},
            }
        ),
        "SubmissionEnvelope": _closed({"submission": _ref("Submission")}),
        "SubmissionPage": _closed(
            {
                "items": {"type": "array", "items": _ref("Submission")},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "total": {"type": "integer"},
            }
        ),
        "Task": _closed(
            {
                "index": {"type": "integer"},
                "state": {"type": "string", "description": "Slurm's state of the array task."},
                "pending_reason": {
                    **_NULLABLE_STRING,
                    "description": "Why Slurm keeps a PENDING task waiting (squeue's reason: "
                    "Priority, Resources, JobHeldUser, QOSMaxJobsPerUserLimit...); null "
                    "otherwise.",
                },
                "exit_code": {"type": ["integer", "null"]},
                "signal": {"type": ["integer", "null"]},
                "job": {**_NULLABLE_STRING, "description": "<array job id>_<array index>"},
                "node": _NULLABLE_STRING,
                "started_at": _TIME,
                "ended_at": _TIME,
                "elapsed_seconds": {"type": ["integer", "null"]},
                "params": {"type": "object"},
                "metrics": {"type": ["object", "null"], "description": "Design features."},
            }
        ),
        "TaskPage": _closed(
            {
                "items": {"type": "array", "items": _ref("Task")},
                "page": {"type": "integer"},
                "per_page": {"type": "integer"},
                "total": {"type": "integer"},
            }
        ),
        "DryRun": _closed(
            {
                "script": {"type": "string", "description": "The exact sbatch script(s)."},
                "points": {"type": "array", "items": {"type": "object"}},
                "tasks": {"type": "integer"},
                "core_hours": {"type": "number"},
                "needs_approval": {"type": "boolean"},
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
            "What a submission would do; nothing was recorded or submitted.",
        ),
        "Results": _closed(
            {
                "objectives": {
                    "type": "object",
                    "additionalProperties": {"type": "string", "enum": ["min", "max"]},
                },
                "pareto": {"type": "array", "items": {"type": "integer"}},
                "best": {"type": "object", "additionalProperties": {"type": "integer"}},
                "rows": {"type": "array", "items": _ref("ResultRow")},
            },
            "Design features per task, the Pareto front and the best task per objective.",
        ),
        "ResultRow": _closed(
            {
                "index": {"type": "integer"},
                "state": {"type": "string"},
                "exit_code": {"type": ["integer", "null"]},
                "params": {"type": "object"},
                "metrics": {"type": ["object", "null"]},
                "pareto": {"type": "boolean"},
                "best_for": {"type": "array", "items": {"type": "string"}},
            }
        ),
        "Resubmitted": _closed(
            {
                "submission": _ref("Submission"),
                "resubmitted": {"type": "array", "items": {"type": "integer"}},
            }
        ),
        "Me": _closed(
            {
                "user": _closed(
                    {
                        "username": {"type": "string"},
                        "email": {"type": "string"},
                        "role": {"type": "string", "enum": ["user", "admin"]},
                        "slurm_account": _NULLABLE_STRING,
                        "notify": {"type": "string"},
                        "created_at": _TIME,
                    }
                ),
                "token": _closed(
                    {
                        "name": {"type": "string"},
                        "prefix": {"type": "string"},
                        "created_at": _TIME,
                        "last_used_at": _TIME,
                    }
                ),
            }
        ),
        "SubmitRequest": object_schema(SUBMIT_FIELDS),
        "CancelRequest": object_schema(CANCEL_FIELDS),
    }


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class Operation:
    """What the document says about one endpoint."""

    summary: str
    description: str
    ok: int
    ok_schema: str | None
    errors: tuple[int, ...]
    params: tuple[QueryParam, ...] = ()
    body: str | None = None
    body_required: bool = False
    public: bool = False
    ok_media: str = "application/json"


_READ = (401, 404, 429)
OPERATIONS: dict[str, Operation] = {
    "api.list_submissions": Operation(
        "List submissions",
        "Your submissions (admins: everybody's), newest first, filtered and paginated in SQL.",
        200,
        "SubmissionPage",
        (400, 401, 429),
        LIST_QUERY,
    ),
    "api.create_submission": Operation(
        "Submit a design",
        "Validate, record and launch ONE Slurm job array (one task per sweep point). A "
        "submission over the approval thresholds is recorded as AWAITING_APPROVAL. With "
        "dry_run the answer is the exact script and the points, and nothing is written.",
        201,
        "SubmissionEnvelope",
        (400, 401, 413, 422, 429, 503),
        body="SubmitRequest",
        body_required=True,
    ),
    "api.get_submission": Operation(
        "One submission", "Its state and task counts.", 200, "SubmissionEnvelope", _READ
    ),
    "api.list_tasks": Operation(
        "A submission's tasks",
        "Array tasks in index order with Slurm state, exit code, node, runtime and metrics.",
        200,
        "TaskPage",
        (400, *_READ),
        TASKS_QUERY,
    ),
    "api.results": Operation(
        "Results",
        "Design features per task with the Pareto front over the objectives.",
        200,
        "Results",
        (400, 401, 404, 422, 429),
        RESULTS_QUERY,
    ),
    "api.cancel": Operation(
        "Cancel",
        "scancel the whole submission or some task indices (ONE scancel per array).",
        200,
        "SubmissionEnvelope",
        (400, 401, 404, 409, 413, 422, 429, 503),
        body="CancelRequest",
    ),
    "api.resubmit": Operation(
        "Resubmit failed tasks",
        "ONE new array over the failed and cancelled task indices of a finished submission.",
        200,
        "Resubmitted",
        (401, 404, 409, 422, 429, 503),
    ),
    "api.retry": Operation(
        "Retry a failed launch",
        "Launch a SUBMIT_FAILED submission again (the same submission, ONE array), in the "
        "background: poll it for the new state.",
        202,
        "SubmissionEnvelope",
        (401, 404, 409, 429),
    ),
    "api.export": Operation(
        "Export bundle",
        "A tar.gz runnable with plain sbatch: script, per-task configs, design, README. The "
        "X-Unpack-Dir header names the folder it must be unpacked as.",
        200,
        None,
        (400, 401, 404, 409, 429),
        EXPORT_QUERY,
        ok_media="application/gzip",
    ),
    "api.me": Operation(
        "Who am I", "The token's user and the token itself.", 200, "Me", (401, 429)
    ),
    "api.openapi": Operation(
        "This document", "The OpenAPI 3.1 description of the API.", 200, None, (), public=True
    ),
}


def openapi_path(rule: Rule) -> str:
    """``/api/v1/submissions/<uuid>`` -> ``/api/v1/submissions/{uuid}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)


def _operation(endpoint: str, rule: Rule, method: str) -> dict[str, Any]:
    try:
        op = OPERATIONS[endpoint]
    except KeyError:
        raise KeyError(f"API endpoint {endpoint} has no entry in OPERATIONS") from None
    out: dict[str, Any] = {
        "operationId": endpoint.split(".", 1)[1],
        "summary": op.summary,
        "description": op.description,
    }
    params = [UUID_PATH.openapi()] if "<uuid>" in rule.rule else []
    params += [p.openapi() for p in op.params]
    if params:
        out["parameters"] = params
    if op.body:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    responses: dict[str, Any] = {}
    if op.ok_media == "application/json":
        schema = _ref(op.ok_schema) if op.ok_schema else {"type": "object"}
        responses[str(op.ok)] = {
            "description": "Success.",
            "content": {"application/json": {"schema": schema}},
        }
    else:
        responses[str(op.ok)] = {
            "description": "Success.",
            "content": {op.ok_media: {"schema": {"type": "string", "format": "binary"}}},
        }
    if endpoint == "api.create_submission":
        responses["200"] = {
            "description": "dry_run: what would be submitted (nothing was written).",
            "content": {"application/json": {"schema": _ref("DryRun")}},
        }
    for status in sorted(op.errors):
        responses[str(status)] = {
            "description": ERROR_CODES[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
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
            item[method.lower()] = _operation(rule.endpoint, rule, method)
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
