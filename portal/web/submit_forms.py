"""The submit form: its fields, the parameter editor, the sweep builder, and their translation
into a :class:`~portal.submit.SubmissionRequest`.

The translation (:func:`build_request`) is a plain function of the form's data, so it can be
tested without a request. Field problems come back as :class:`FormInvalid` keyed by field, to be
shown next to the field; so do the URL rules, the sweep's size and the partition limits
(:func:`field_problems`). What has no field of its own comes from
:func:`portal.submit.plan_submission` as a :class:`~portal.submit.SubmissionError`.

Readiness (:func:`check_source`): the form is ready only once the ref resolves on the repository
and the design folder exists in its checkout (:mod:`portal.submit.previews`: fetched off the
request, kept by commit); meanwhile it says "still fetching".

Parameter editor: one input ``param-<NAME>`` per catalog parameter (empty = the design's own
value). Sweep builder: rows ``sweep-<i>-parameter`` with either ``values`` (a comma list) or a
range ``start``/``stop``/``step`` (inclusive), combined as a grid or a zip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.config import SettingsLike, as_settings
from portal.flows.registry import DEFAULT_FLOW, FLOW_CLASSES, get_flow
from portal.flows.types import DesignNotFound, FlowError
from portal.models import Submission, User
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import Partition
from portal.slurm.transports import TransportError
from portal.submit import (
    Resources,
    SubmissionError,
    SubmissionRequest,
    approval,
    check_resources,
    plan_submission,
    without_server_paths,
)
from portal.submit.catalog import FLOWS as CATALOG_FLOWS
from portal.submit.catalog import Catalog, Parameter, ParameterError, Value, load_catalog
from portal.submit.checkout import StagingError
from portal.submit.gitpolicy import (
    GitPolicy,
    GitURLError,
    check_design_path,
    check_ref,
)
from portal.submit.previews import PreviewPending, checkout_cache
from portal.submit.sweeps import (
    SweepError,
    SweepSpec,
    axis_count,
    count_points,
    expand_sweep,
    parse_axis,
    parse_cli_sweeps,
    parse_sweep,
)

PARAM_PREFIX = "param-"
SWEEP_ROWS = 4
MAX_SWEEP_ROWS = 16
SWEEP_MODES = [
    ("grid", "Grid: every combination of the values"),
    ("zip", "Zip: the i-th values of every row together"),
]
_DEFAULTS = Resources()
FLOW_TITLES = {name: cls.title for name, cls in FLOW_CLASSES.items()}
#: The fields naming the design; the repository check reports at them.
SOURCE_FIELDS = ("repo_url", "ref", "design_path")
#: The resource fields of the form: a refusal of :func:`portal.submit.check_resources` naming
#: one of them (``SubmissionError.field``) is shown there, any other at the top of the form.
RESOURCE_FIELDS = ("cpus", "mem_mb", "time_minutes", "throttle", "partition")


class FormInvalid(ValueError):
    """Field problems: ``errors`` maps a field key to its messages.

    Keys: ``param-<NAME>`` (parameter editor), ``sweep-<i>`` (a sweep row), ``sweep`` (the
    sweep as a whole) and ``form`` (anything without a field of its own).
    """

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = {key: list(messages) for key, messages in errors.items()}
        super().__init__("; ".join(m for messages in self.errors.values() for m in messages))


# --------------------------------------------------------------------------- the form


class SweepRowForm(Form):
    """One swept parameter: values (comma list) or a range (start, stop, step)."""

    # Choices are the catalog's names; an unknown name is refused by build_request with the
    # catalog's own message (and suggestions), so WTForms does not check the choice.
    parameter = SelectField("Parameter", choices=[], validate_choice=False)
    values = StringField("Values", validators=[Length(max=2000)])
    start = StringField("Start", validators=[Length(max=40)])
    stop = StringField("Stop", validators=[Length(max=40)])
    step = StringField("Step", validators=[Length(max=40)])


class SubmitForm(FlaskForm):
    """Repository, flow, resources, notification and the sweep rows (parameters are separate)."""

    repo_url = StringField(
        "Repository URL",
        validators=[DataRequired("Give the Git repository to clone."), Length(max=2048)],
        description="https://, ssh:// or git:// (plain http:// and URLs with passwords are "
        "refused).",
        render_kw={"placeholder": "https://github.com/you/your-design.git", "spellcheck": "false"},
    )
    ref = StringField(
        "Branch, tag or commit",
        default="main",
        validators=[DataRequired("Give a branch, tag or commit."), Length(max=255)],
        render_kw={"spellcheck": "false"},
    )
    design_path = StringField(
        "Design folder",
        validators=[Length(max=1024)],
        description="Folder inside the repository holding config.json (or config.tcl); empty "
        "means the top.",
        render_kw={"placeholder": "designs/counter", "spellcheck": "false"},
    )
    flow = SelectField(
        "Flow",
        choices=[SelectChoice(name, title) for name, title in FLOW_TITLES.items()],
        default=DEFAULT_FLOW,
    )
    name = StringField(
        "Name",
        validators=[Length(max=200)],
        description="Shown on the dashboard; empty gives the design folder and point count.",
    )
    notify = BooleanField(
        "Email me when this submission finishes",
        default=True,
        description="Follows your account's notification setting; untick to stay silent for "
        "this submission only.",
    )
    cpus = IntegerField(
        "CPUs per task",
        default=_DEFAULTS.cpus,
        validators=[InputRequired("Give a whole number of CPUs."), NumberRange(min=1, max=1024)],
    )
    mem_mb = IntegerField(
        "Memory per task (MB)",
        default=_DEFAULTS.mem_mb,
        validators=[InputRequired("Give the memory in MB."), NumberRange(min=1, max=16_777_216)],
    )
    time_minutes = IntegerField(
        "Time limit per task (minutes)",
        default=_DEFAULTS.time_minutes,
        validators=[
            InputRequired("Give a time limit in minutes."),
            NumberRange(min=1, max=525_600),
        ],
    )
    partition = SelectField("Partition", choices=[SelectChoice("", "Cluster default")], default="")
    throttle = IntegerField(
        "Tasks at once",
        default=0,
        validators=[Optional(), NumberRange(min=0, max=100_000)],
        description="How many tasks of the array may run at the same time; 0 = no limit.",
    )
    sweep_mode = RadioField(
        "Combine the swept values",
        choices=[SelectChoice(value, label) for value, label in SWEEP_MODES],
        default="grid",
    )
    sweep = FieldList(FormField(SweepRowForm), min_entries=SWEEP_ROWS, max_entries=MAX_SWEEP_ROWS)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Messages from build_request / plan_submission, keyed as in FormInvalid.
        self.extra_errors: dict[str, list[str]] = {}

    def add_errors(self, errors: Mapping[str, list[str]]) -> None:
        """Merge field problems found outside WTForms (parameters, sweep rows, the plan)."""
        for key, messages in errors.items():
            known = self.extra_errors.setdefault(key, [])
            known.extend(m for m in messages if m not in known)

    def errors_for(self, key: str) -> list[str]:
        """Problems of one field (``repo_url``...), parameter (``param-NAME``), sweep row
        (``sweep-<i>``), the sweep (``sweep``) or the request (``form``); a field's WTForms
        problems, when it has some, stand for the others (one message for one mistake)."""
        return self.all_errors().get(key, [])

    def all_errors(self) -> dict[str, list[str]]:
        """Every problem by key: WTForms' first, then those found outside it."""
        found: dict[str, list[str]] = {}
        for name, errors in self.errors.items():
            if name == "sweep":
                for index, row in enumerate(errors):
                    for messages in (row or {}).values():
                        found.setdefault(f"sweep-{index}", []).extend(messages)
            elif name in self._fields and name != "csrf_token":
                found[name] = [e for e in errors if isinstance(e, str)]
            else:  # the form's own (None) and the CSRF token
                found.setdefault("form", []).extend(e for e in errors if isinstance(e, str))
        for key, messages in self.extra_errors.items():
            if key not in found or key == "form":
                found.setdefault(key, []).extend(m for m in messages if m not in found[key])
        return {key: messages for key, messages in found.items() if messages}

    def label_for(self, key: str) -> tuple[str, str]:
        """What a problem's key is called on the page, and the id of its control."""
        if key in self._fields and key != "sweep":
            target = "sweep-rows" if key == "sweep_mode" else self._fields[key].id
            return str(self._fields[key].label.text), target
        if key.startswith(PARAM_PREFIX):
            return key[len(PARAM_PREFIX) :], key
        if key.startswith("sweep-"):
            return f"Sweep row {int(key.split('-', 1)[1]) + 1}", f"{key}-parameter"
        return "Sweep", "sweep-rows"


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class PartitionChoices:
    """The partitions offered by the form, with their limits, or why Slurm did not say."""

    choices: list[SelectChoice]
    partitions: list[Partition] = field(default_factory=list)
    default: str = ""
    error: str | None = None


def partition_choices(settings: SettingsLike, slurm: SlurmClient | None) -> PartitionChoices:
    """Partitions from ``sinfo`` (one call); the configured default alone if Slurm is silent."""
    configured = as_settings(settings).SLURM_PARTITION or ""
    error = None
    partitions: list[Partition] = []
    if slurm is None:
        error = "no Slurm client is configured"
    else:
        try:
            partitions = list(slurm.sinfo().partitions)
        except (SlurmError, TransportError, OSError) as exc:
            error = str(exc) or type(exc).__name__
    if not partitions:
        choices = [SelectChoice("", "Cluster default")]
        if configured:
            choices = [SelectChoice(configured, f"{configured} (portal default)"), *choices]
        return PartitionChoices(choices, default=configured, error=error)
    choices = [SelectChoice(p.name, partition_label(p)) for p in partitions]
    names = [p.name for p in partitions]
    default = (
        configured
        if configured in names
        else next((p.name for p in partitions if p.default), names[0])
    )
    return PartitionChoices(choices, partitions, default)


def partition_label(partition: Partition) -> str:
    """``debug (default) · up to 2 h · 8 CPUs · 21,694 MB per node``."""
    limit = partition.time_limit_minutes
    parts = [
        f"{partition.name}{' (default)' if partition.default else ''}",
        "no time limit" if limit is None else f"up to {format_minutes(limit)}",
        f"{partition.cpus} CPUs",
        f"{partition.max_node_memory_mb:,} MB per node",
    ]
    if partition.available != "up":
        parts.append(partition.available)
    return " · ".join(parts)


def format_minutes(minutes: int) -> str:
    """``90`` -> ``1 h 30 min``; ``2880`` -> ``2 d``."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    words = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    return " ".join(w for w in words if w) or "0 min"


# --------------------------------------------------------------------------- translation


def raw_params(formdata: Mapping[str, str]) -> dict[str, str]:
    """The parameter editor's non-empty inputs: ``{NAME: text}`` (any ``param-*`` key)."""
    out: dict[str, str] = {}
    for key in formdata:
        if key.startswith(PARAM_PREFIX):
            text = str(formdata.get(key) or "").strip()
            if text:
                out[key[len(PARAM_PREFIX) :]] = text
    return out


def check_flow(param: Parameter, flow: str | None) -> None:
    """Refuse a parameter the chosen flow does not understand (e.g. an OpenLane 2-only one)."""
    if flow in CATALOG_FLOWS and flow not in param.flows:
        understood = " and ".join(FLOW_TITLES.get(f, f) for f in param.flows)
        raise ParameterError(
            f"{param.name} is only understood by {understood}, not {FLOW_TITLES.get(flow, flow)}"
        )


def params_from_fields(
    raw: Mapping[str, str], catalog: Catalog | None = None, *, flow: str | None = None
) -> tuple[dict[str, Value], dict[str, list[str]]]:
    """Validate the editor's values one by one through the catalog: (values, errors by key)."""
    catalog = catalog or load_catalog()
    values: dict[str, Value] = {}
    errors: dict[str, list[str]] = {}
    for name, text in raw.items():
        key = f"{PARAM_PREFIX}{name}" if name in catalog else "form"
        try:
            values.update(catalog.coerce_mapping({name: text}))
            check_flow(catalog.get(name), flow)
        except ParameterError as exc:
            errors.setdefault(key, []).append(str(exc))
    return values, errors


def _row_value(row: Mapping[str, Any], key: str) -> str:
    return str(row.get(key) or "").strip()


def _row_axis(row: Mapping[str, Any]) -> str | list[str] | dict[str, str]:
    """A row's raw axis for :func:`portal.submit.sweeps.parse_axis`; raise SweepError if unclear."""
    values = _row_value(row, "values")
    start, stop, step = (_row_value(row, k) for k in ("start", "stop", "step"))
    if values and (start or stop or step):
        raise SweepError("give either values or a range, not both")
    if values and ":" in values and "," not in values:
        return values  # start:stop[:step], as on the command line
    if values:
        items = [item.strip() for item in values.split(",")]
        if any(not item for item in items):
            raise SweepError("the values have an empty item (two commas, or one at an end)")
        return items
    if not (start or stop or step):
        raise SweepError("give values (a comma list) or a range (start, stop, step)")
    if not (start and stop):
        raise SweepError("a range needs a start and a stop (the step defaults to 1)")
    return {"start": start, "stop": stop, "step": step or "1"}


def sweep_from_rows(
    rows: Sequence[Mapping[str, Any]],
    mode: str,
    *,
    fixed: Collection[str] = (),
    catalog: Catalog | None = None,
    flow: str | None = None,
) -> dict[str, Any] | None:
    """The sweep document for :func:`portal.submit.sweeps.parse_sweep`, or None when no row is used.

    ``fixed`` names the parameters set in the editor (a parameter is fixed or swept, not both).
    Raises :class:`FormInvalid` keyed ``sweep-<i>`` (row i) or ``sweep``.
    """
    catalog = catalog or load_catalog()
    errors: dict[str, list[str]] = {}
    parameters: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    first_row: dict[str, int] = {}
    for i, row in enumerate(rows):
        name = _row_value(row, "parameter")
        used = any(_row_value(row, k) for k in ("values", "start", "stop", "step"))
        if not name and not used:
            continue
        key = f"sweep-{i}"
        try:
            if not name:
                raise SweepError("choose the parameter these values are for")
            param = catalog.get(name)
            check_flow(param, flow)
            if name in first_row:
                raise SweepError(f"{name} is already swept in row {first_row[name] + 1}")
            first_row[name] = i
            if name in fixed:
                raise SweepError(
                    f"{name} is also set in the parameter editor; clear one of the two"
                )
            raw = _row_axis(row)
            axis = parse_axis(param, raw)
        except (SweepError, ParameterError) as exc:
            errors.setdefault(key, []).append(str(exc))
            continue
        parameters[name] = raw
        lengths[name] = len(axis)
    if mode not in dict(SWEEP_MODES):
        errors.setdefault("sweep", []).append(f"unknown way to combine values: {mode!r}")
    if errors:
        raise FormInvalid(errors)
    if not parameters:
        return None
    if mode == "zip" and len(set(lengths.values())) > 1:
        shown = ", ".join(f"{n} has {count}" for n, count in lengths.items())
        raise FormInvalid({"sweep": [f"zip needs the same number of values in every row: {shown}"]})
    return {"kind": mode, "parameters": parameters}


def build_request(
    data: Mapping[str, Any],
    params: Mapping[str, str],
    *,
    account: str | None = None,
    catalog: Catalog | None = None,
) -> SubmissionRequest:
    """Translate the form's data (``SubmitForm.data``) and the editor's raw parameters.

    Raises :class:`FormInvalid` with every parameter and sweep-row problem at once. Whatever
    else is wrong (the URL, the partition's limits...) is for :func:`plan_submission` to say.
    """
    catalog = catalog or load_catalog()
    flow = str(data.get("flow") or DEFAULT_FLOW)
    base, errors = params_from_fields(params, catalog, flow=flow)
    sweep: dict[str, Any] | None = None
    try:
        sweep = sweep_from_rows(
            list(data.get("sweep") or []),
            str(data.get("sweep_mode") or "grid"),
            fixed=set(params),
            catalog=catalog,
            flow=flow,
        )
    except FormInvalid as exc:
        for key, messages in exc.errors.items():
            errors.setdefault(key, []).extend(messages)
    if errors:
        raise FormInvalid(errors)
    resources = Resources(
        cpus=data.get("cpus"),  # type: ignore[arg-type]  # checked by check_resources
        mem_mb=data.get("mem_mb"),  # type: ignore[arg-type]
        time_minutes=data.get("time_minutes"),  # type: ignore[arg-type]
        partition=str(data.get("partition") or "") or None,
        account=account,
        throttle=int(data.get("throttle") or 0),
    )
    return SubmissionRequest(
        repo_url=str(data.get("repo_url") or "").strip(),
        ref=str(data.get("ref") or "").strip(),
        design_path=str(data.get("design_path") or "").strip().strip("/"),
        flow=flow,
        params=base,
        sweep=sweep,
        resources=resources,
        name=" ".join(str(data.get("name") or "").split()),
        notify=bool(data.get("notify")),
    )


# --------------------------------------------------------------------------- field checks


def field_problems(
    request: SubmissionRequest,
    settings: SettingsLike,
    slurm: SlurmClient | None,
    *,
    skip: Collection[str] = (),
) -> tuple[dict[str, list[str]], str | None]:
    """The request's problems that belong to a field: the URL, ref and design path rules, the
    sweep's size and the partition limits (the service's own checks and words), and why the
    limits could not be read (the cluster does not answer). ``skip`` names fields whose
    WTForms problems are shown already (the same mistake, said once)."""
    errors: dict[str, list[str]] = {}
    silent = None

    def check(key: str, rule: Any, *args: Any, **kwargs: Any) -> None:
        if key in skip:
            return
        try:
            rule(*args, **kwargs)
        except (GitURLError, SweepError) as exc:
            errors.setdefault(key, []).append(str(exc))

    check("repo_url", GitPolicy.from_settings(settings).check_url, request.repo_url)
    check("ref", check_ref, request.ref)
    if request.design_path:
        check("design_path", check_design_path, request.design_path)
    spec = _spec(request)
    limit = as_settings(settings).MAX_SWEEP_POINTS
    if spec is not None and count_points(spec) > limit:
        check("sweep", expand_sweep, spec, max_points=limit)
    try:
        _, cluster_error = check_resources(request.resources, settings, slurm)
    except SubmissionError as exc:
        key = exc.field if exc.field in RESOURCE_FIELDS else "form"
        if key not in skip:
            errors.setdefault(key, []).append(str(exc))
    else:
        silent = None if cluster_error is None else str(cluster_error) or "no answer"
    return errors, silent


def _spec(request: SubmissionRequest) -> SweepSpec | None:
    """The request's sweep with its base values, or None when it does not parse."""
    try:
        if request.sweep is not None:
            return parse_sweep(request.sweep).with_base(request.params)
        return parse_cli_sweeps((), base=dict(request.params))
    except (SweepError, ParameterError):
        return None


@dataclass(frozen=True)
class SourceCheck:
    """Whether the design can be fetched: ``ok`` (the ref resolves and the design folder is
    there), ``fetching`` (the clone still runs; ``message`` says so) or ``failed`` (``errors``
    by field)."""

    state: str
    errors: Mapping[str, list[str]] = field(default_factory=dict)
    message: str = ""


def check_source(
    request: SubmissionRequest, settings: SettingsLike, owner: User, *, wait_s: float
) -> SourceCheck:
    """Resolve the ref (one ``git ls-remote``, a few seconds at most, remembered briefly), wait
    ``wait_s`` at most for the checkout (:mod:`portal.submit.previews`) and look for the design
    folder in it. Call it with a request whose URL, ref and design path passed their rules."""
    url = GitPolicy.from_settings(settings).check_url(request.repo_url)
    cache = checkout_cache(settings)
    try:
        commit = cache.resolve(url, request.ref, settings)
        checkout = cache.checkout(url, request.ref, owner.id, settings, wait_s=wait_s)
    except PreviewPending as exc:
        return SourceCheck("fetching", message=str(exc))
    except StagingError as exc:
        message = without_server_paths(str(exc), cache.root)
        key = "ref" if message.startswith(("branch or tag ", "commit ")) else "repo_url"
        return SourceCheck("failed", {key: [message]})
    at = request.ref if request.ref == commit else f"{request.ref} (commit {commit[:12]})"
    try:
        get_flow(request.flow).find_design(
            checkout, request.design_path, pdk_root=as_settings(settings).PDK_ROOT
        )
    except DesignNotFound as exc:
        return SourceCheck("failed", {"design_path": [_missing_design(exc, checkout, at)]})
    except FlowError as exc:
        message = without_server_paths(str(exc), checkout, cache.root)
        return SourceCheck("failed", {"design_path": [message]})
    return SourceCheck("ok")


def _missing_design(exc: DesignNotFound, checkout: Path, at: str) -> str:
    """``no folder 'x' in the repository at main (commit ...)``, or which config is missing."""
    try:
        folder = exc.design_dir.resolve().relative_to(checkout.resolve()).as_posix()
    except ValueError:
        return without_server_paths(str(exc), checkout)
    place = f"folder {folder!r}" if folder != "." else "the top of the repository"
    if not exc.design_dir.is_dir():
        return f"no {place} in the repository at {at}"
    names = " or ".join(path.name for path in exc.looked_for)
    return f"{place[0].upper()}{place[1:]} has no {names} at {at}"


# --------------------------------------------------------------------------- edit and resubmit


@dataclass(frozen=True)
class Prefill:
    """A submission copied into the form: the form's data, the parameter editor's values and
    what could not be copied (a sweep kind the form cannot show)."""

    data: dict[str, Any]
    params: dict[str, str]
    left_out: str = ""


def prefill(submission: Submission) -> Prefill:
    """The form as ``submission`` was asked for: repository, ref, design folder, flow,
    parameters, sweep (grid or zip rows) and resources (its name is chosen anew)."""
    res = submission.resources or {}
    spec = submission.sweep_spec or {}
    kind = str(spec.get("kind") or "single")
    rows: list[dict[str, str]] = []
    left_out = ""
    if kind in ("grid", "zip"):
        for name, axis in (spec.get("parameters") or {}).items():
            if isinstance(axis, Mapping):
                rows.append({part: _text(axis.get(part)) for part in ("start", "stop", "step")})
            else:
                rows.append({"values": ", ".join(_text(value) for value in axis)})
            rows[-1]["parameter"] = name
    elif kind != "single":
        left_out = (
            f"Its sweep (a {kind} sweep, {submission.n_tasks} points) cannot be edited in this "
            "form and was left out; the API and the command line take it as a file."
        )
    if len(rows) > MAX_SWEEP_ROWS:
        left_out = f"Only the first {MAX_SWEEP_ROWS} swept parameters were copied."
        rows = rows[:MAX_SWEEP_ROWS]
    data = {
        "repo_url": submission.repo_url,
        "ref": submission.ref,
        "design_path": "" if submission.design_path in ("", ".") else submission.design_path,
        "flow": submission.flow,
        "notify": submission.notify,
        "cpus": res.get("cpus", _DEFAULTS.cpus),
        "mem_mb": res.get("mem_mb", _DEFAULTS.mem_mb),
        "time_minutes": res.get("time_minutes", _DEFAULTS.time_minutes),
        "partition": res.get("partition") or "",
        "throttle": res.get("throttle") or 0,
        "sweep_mode": "zip" if kind == "zip" else "grid",
        "sweep": rows + [{}] * (SWEEP_ROWS - len(rows)),
    }
    params = {name: _text(value) for name, value in (submission.base_params or {}).items()}
    return Prefill(data, params, left_out)


def _text(value: Any) -> str:
    """A stored value as typed: ``true``, ``10`` (a whole float), ``20.5``, ``DELAY 2``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Estimate:
    """What the live estimate shows: points, worst-case cost, approval, readiness and what is
    wrong (``errors`` by field key, ``form`` for what has no field)."""

    points: int | None = None
    shape: str = ""
    cpus: int | None = None
    time_minutes: int | None = None
    core_hours: float | None = None
    needs_approval: bool = False
    reasons: tuple[str, ...] = ()
    #: the portal's largest sweep, when ``points`` is above it
    limit: int | None = None
    errors: Mapping[str, list[str]] = field(default_factory=dict)
    #: the repository check: ok, fetching, failed, or unchecked (other problems first)
    source: str = "unchecked"
    pending: str = ""
    #: why the cluster could not be read (a submission is refused until it answers)
    cluster_error: str | None = None

    @property
    def ready(self) -> bool:
        """True when the request would be accepted as it is."""
        return (
            self.points is not None
            and not self.errors
            and self.source == "ok"
            and self.cluster_error is None
        )

    @property
    def readiness(self) -> str:
        """``ready``, ``fetching`` (the repository check waits for its clone), ``invalid``
        or ``cluster`` (only the cluster is missing: it does not answer)."""
        if self.ready:
            return "ready"
        if self.source == "fetching":
            return "fetching"
        return "invalid" if self.errors else "cluster"

    @property
    def shows_approval(self) -> bool:
        """Say "needs approval" only for a request that is otherwise acceptable (or lacks only
        its repository): over a hard limit, the limit is all there is to say."""
        return self.needs_approval and all(key in SOURCE_FIELDS for key in self.errors)


def sweep_shape(sweep: Mapping[str, Any] | None, catalog: Catalog | None = None) -> str:
    """``"3 × 2"`` (grid), ``"zip of 3"`` or ``""`` (one point); for the estimate."""
    if not sweep:
        return ""
    spec = parse_sweep(sweep, catalog=catalog)
    sizes = [axis_count(axis) for axis in spec.axes.values()]
    if spec.kind == "zip":
        return f"zip of {sizes[0]}" if sizes else ""
    return " × ".join(str(size) for size in sizes)


def estimate(
    request: SubmissionRequest,
    settings: SettingsLike,
    slurm: SlurmClient | None,
    owner: User,
    *,
    errors: Mapping[str, list[str]],
    wait_s: float,
    partial: bool = False,
) -> Estimate:
    """Check the request field by field (``errors``: what the form found already), plan it
    when nothing is wrong (no clone, nothing written), check its repository and summarise.
    A ``partial`` request lacks its parameters and sweep (they did not translate): its other
    fields are checked, nothing is counted.

    The points and cost are counted from the sweep even when something is wrong, so the
    number follows the sweep builder before the repository URL is filled in.
    """
    found = {key: list(messages) for key, messages in errors.items()}
    problems, cluster_error = field_problems(request, settings, slurm, skip=set(found))
    for key, messages in problems.items():
        found.setdefault(key, []).extend(messages)
    if not found:
        try:
            plan_submission(request, settings, slurm, owner=owner)
        except SubmissionError as exc:
            found["form"] = [str(exc)]
    source = SourceCheck("unchecked")
    if not any(key in found for key in (*SOURCE_FIELDS, "flow")):
        source = check_source(request, settings, owner, wait_s=wait_s)
        for key, messages in source.errors.items():
            found.setdefault(key, []).extend(messages)
    rough = {} if partial else _rough_estimate(request, settings)
    return Estimate(
        **rough,
        errors=found,
        source=source.state,
        pending=source.message,
        cluster_error=cluster_error,
    )


def _safe_shape(sweep: Mapping[str, Any] | None) -> str:
    try:
        return sweep_shape(sweep)
    except SweepError:
        return ""


def _rough_estimate(request: SubmissionRequest, settings: SettingsLike) -> dict[str, Any]:
    """Points, shape and cost of the request as far as they can be counted."""
    spec = _spec(request)
    points = count_points(spec) if spec is not None else None
    limit = as_settings(settings).MAX_SWEEP_POINTS
    if points is None:
        return {}
    if points > limit:
        return {"points": points, "shape": _safe_shape(request.sweep), "limit": limit}
    res = request.resources
    sizes_ok = all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0
        for v in (res.cpus, res.time_minutes)
    )
    if not sizes_ok:
        return {"points": points, "shape": _safe_shape(request.sweep)}
    decision = approval.decide(points, res.cpus, res.time_minutes, settings)
    return {
        "points": points,
        "shape": _safe_shape(request.sweep),
        "cpus": res.cpus,
        "time_minutes": res.time_minutes,
        "core_hours": decision.core_hours,
        "needs_approval": decision.needs_approval,
        "reasons": decision.reasons,
    }


# --------------------------------------------------------------------------- the editor


def parameter_groups(catalog: Catalog | None = None) -> list[tuple[str, list[Parameter]]]:
    """Catalog parameters grouped by flow stage, in catalog order."""
    groups: dict[str, list[Parameter]] = {}
    for param in catalog or load_catalog():
        groups.setdefault(param.stage, []).append(param)
    return list(groups.items())


STAGE_TITLES = {
    "general": "General",
    "synthesis": "Synthesis",
    "floorplan": "Floorplan",
    "placement": "Placement",
    "cts": "Clock tree synthesis",
    "routing": "Routing",
}
