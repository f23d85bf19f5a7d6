"""The submit form: its fields, the parameter editor, the sweep builder, and their translation
into a :class:`~portal.submissions.SubmissionRequest`.

The translation (:func:`build_request`) is a plain function of the form's data, so it can be
tested without a request. Field problems come back as :class:`FormInvalid` keyed by field, to be
shown next to the field; whole-request problems (URL policy, partition limits...) come from
:func:`portal.submissions.plan_submission` as a :class:`~portal.submissions.SubmissionError`.

Parameter editor: one input ``param-<NAME>`` per catalog parameter (empty = the design's own
value). Sweep builder: rows ``sweep-<i>-parameter`` with either ``values`` (a comma list) or a
range ``start``/``stop``/``step`` (inclusive), combined as a grid or a zip.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
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

from portal import policy
from portal.catalog import FLOWS as CATALOG_FLOWS
from portal.catalog import Catalog, Parameter, ParameterError, Value, load_catalog
from portal.flows.registry import DEFAULT_FLOW, FLOW_CLASSES
from portal.models import User
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import Partition
from portal.slurm.transports import TransportError
from portal.submissions import (
    Resources,
    SubmissionError,
    SubmissionRequest,
    plan_submission,
)
from portal.sweeps import (
    SweepError,
    axis_count,
    count_points,
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
            self.extra_errors.setdefault(key, []).extend(messages)

    def errors_for(self, key: str) -> list[str]:
        """Problems of one parameter (``param-NAME``), sweep row (``sweep-<i>``) or ``sweep``."""
        return self.extra_errors.get(key, [])

    @property
    def general_errors(self) -> list[str]:
        """Problems of the request as a whole (shown above the form)."""
        return [*self.form_errors, *self.extra_errors.get("form", [])]

    @property
    def has_errors(self) -> bool:
        """True when WTForms or the translation found a problem."""
        return bool(self.errors or self.extra_errors)


# --------------------------------------------------------------------------- partitions


@dataclass(frozen=True)
class PartitionChoices:
    """The partitions offered by the form, with their limits, or why Slurm did not say."""

    choices: list[SelectChoice]
    partitions: list[Partition] = field(default_factory=list)
    default: str = ""
    error: str | None = None


def partition_choices(settings: Mapping[str, Any], slurm: SlurmClient | None) -> PartitionChoices:
    """Partitions from ``sinfo`` (one call); the configured default alone if Slurm is silent."""
    configured = str(settings.get("SLURM_PARTITION") or "")
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
    """A row's raw axis for :func:`portal.sweeps.parse_axis`; raise SweepError if unclear."""
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
    """The sweep document for :func:`portal.sweeps.parse_sweep`, or None when no row is used.

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


# --------------------------------------------------------------------------- the estimate


@dataclass(frozen=True)
class Estimate:
    """What the live estimate shows: points, worst-case cost, approval, or what is wrong."""

    points: int | None = None
    shape: str = ""
    cpus: int | None = None
    time_minutes: int | None = None
    core_hours: float | None = None
    needs_approval: bool = False
    reasons: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """True when the request would be accepted as it is."""
        return self.points is not None and not self.errors


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
    settings: Mapping[str, Any],
    slurm: SlurmClient | None,
    owner: User,
) -> Estimate:
    """Plan the request (no clone, nothing written) and summarise it for the form.

    When the plan fails, the points and cost are still counted from the sweep, so the number
    follows the sweep builder even before the repository URL is filled in.
    """
    try:
        plan = plan_submission(request, settings, slurm, owner=owner)
    except SubmissionError as exc:
        return _rough_estimate(request, settings, (str(exc),))
    return Estimate(
        points=len(plan.points),
        shape=_safe_shape(request.sweep),
        cpus=plan.resources.cpus,
        time_minutes=plan.resources.time_minutes,
        core_hours=plan.decision.core_hours,
        needs_approval=plan.decision.needs_approval,
        reasons=plan.decision.reasons,
    )


def _safe_shape(sweep: Mapping[str, Any] | None) -> str:
    try:
        return sweep_shape(sweep)
    except SweepError:
        return ""


def _rough_estimate(
    request: SubmissionRequest, settings: Mapping[str, Any], errors: Iterable[str]
) -> Estimate:
    try:
        if request.sweep is not None:
            spec = parse_sweep(request.sweep).with_base(request.params)
        else:
            spec = parse_cli_sweeps((), base=dict(request.params))
        points: int | None = count_points(spec)
    except (SweepError, ParameterError):
        points = None
    res = request.resources
    sizes_ok = all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0
        for v in (res.cpus, res.time_minutes)
    )
    if points is None or not sizes_ok:
        return Estimate(points=points, errors=tuple(errors))
    decision = policy.decide(points, res.cpus, res.time_minutes, settings)
    return Estimate(
        points=points,
        shape=_safe_shape(request.sweep),
        cpus=res.cpus,
        time_minutes=res.time_minutes,
        core_hours=decision.core_hours,
        needs_approval=decision.needs_approval,
        reasons=decision.reasons,
        errors=tuple(errors),
    )


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
