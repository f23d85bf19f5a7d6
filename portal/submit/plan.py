"""Validate a designer's request into a :class:`Plan`: reads only, writes nothing.

URL, ref and design folder pass the Git policy, parameters the catalog, the sweep expands
within ``MAX_SWEEP_POINTS``, resources fit the partition (one ``sinfo``), the account and QOS
are the owner's, and the approval rules decide whether an admin must look first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from portal.config import SettingsLike, as_settings
from portal.errors import SubmissionError
from portal.flows.base import Flow
from portal.flows.registry import get_flow
from portal.flows.types import FlowError
from portal.models import User
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import SLURM_NAME_RE
from portal.slurm.transports import TransportError, run_as_mode
from portal.submit import approval
from portal.submit.catalog import ParameterError, load_catalog
from portal.submit.gitpolicy import (
    GitPolicy,
    GitURLError,
    check_design_path,
    check_ref,
)
from portal.submit.sweeps import (
    SweepError,
    expand_sweep,
    parse_cli_sweeps,
    parse_sweep,
)

log = logging.getLogger(__name__)


Progress = Callable[[str, float | None], None]


@dataclass(frozen=True)
class Resources:
    """What each array task asks Slurm for."""

    cpus: int = 1
    mem_mb: int = 4096
    time_minutes: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    throttle: int = 0


@dataclass
class SubmissionRequest:
    """A designer's request, as typed into the form, the CLI or the API."""

    repo_url: str
    ref: str = "main"
    design_path: str = ""
    flow: str = "openlane1"
    params: Mapping[str, object] = field(default_factory=dict)
    sweep: Mapping[str, Any] | None = None
    cli_sweeps: Sequence[str] = ()
    resources: Resources = field(default_factory=Resources)
    name: str = ""
    notify: bool = True


@dataclass
class Plan:
    """A validated request: everything needed to create and launch the submission."""

    request: SubmissionRequest
    repo_url: str
    ref: str
    design_path: str
    flow: Flow
    base_params: dict[str, Any]
    sweep_spec: dict[str, Any]
    points: list[dict[str, Any]]
    resources: Resources
    decision: approval.PolicyDecision
    #: the user whose request this plan checked (accounts, QOS): only they may record it
    owner_id: int | None = None
    #: why the partition limits could not be read (Slurm did not answer): a form may still
    #: show an estimate, but a submission is refused (:func:`require_cluster`)
    cluster_error: SlurmError | TransportError | None = None
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


def plan_submission(
    request: SubmissionRequest,
    settings: SettingsLike,
    slurm: SlurmClient | None = None,
    *,
    owner: User,
) -> Plan:
    """Validate ``owner``'s request completely; raise :class:`SubmissionError`. Writes nothing."""
    settings = as_settings(settings)
    try:
        git_policy = GitPolicy.from_settings(settings)
        url = git_policy.check_url(request.repo_url)
        ref = check_ref(request.ref)
        design_path = check_design_path(request.design_path) if request.design_path else ""
    except GitURLError as exc:
        raise SubmissionError(str(exc)) from None
    try:
        flow = get_flow(request.flow)
    except (KeyError, FlowError) as exc:
        raise SubmissionError(str(exc).strip("'\"")) from None
    catalog = load_catalog()
    try:
        base = catalog.coerce_mapping(request.params)
        if request.sweep is not None and request.cli_sweeps:
            raise SubmissionError("give a sweep file or --sweep values, not both")
        if request.sweep is not None:
            spec = parse_sweep(request.sweep).with_base(base)
        else:
            spec = parse_cli_sweeps(request.cli_sweeps, base=base)
        points = expand_sweep(spec, max_points=settings.MAX_SWEEP_POINTS)
    except (ParameterError, SweepError) as exc:
        raise SubmissionError(str(exc)) from None
    resources, cluster_error = check_resources(request.resources, settings, slurm)
    check_charge_for(owner, resources, settings, slurm)
    try:  # the designer's own mistakes first, then what this site lacks
        flow.check_site(settings)
        flow.site_steps(settings)
    except FlowError as exc:
        raise SubmissionError(str(exc)) from None
    try:  # last, as the one check that looks the host up (DNS): only for an otherwise good plan
        git_policy.check_host(url)
    except GitURLError as exc:
        raise SubmissionError(str(exc)) from None
    decision = approval.decide(len(points), resources.cpus, resources.time_minutes, settings)
    return Plan(
        request=request,
        repo_url=url.redacted,
        ref=ref,
        design_path=design_path,
        flow=flow,
        base_params=base,
        sweep_spec=spec.to_dict(),
        points=points,
        resources=resources,
        decision=decision,
        owner_id=owner.id,
        cluster_error=cluster_error,
    )


def require_cluster(plan: Plan) -> None:
    """Raise the Slurm error that kept ``plan`` from reading the cluster: a submission made
    while the controller does not answer is refused (API: 503), not recorded to fail later."""
    if plan.cluster_error is not None:
        raise plan.cluster_error


def check_charge_for(
    owner: User, resources: Resources, settings: SettingsLike, slurm: SlurmClient | None
) -> None:
    """Refuse an account or QOS ``owner`` may not use (:func:`portal.submit.approval.check_charge`):
    the one the portal grants them, plus, when jobs run as their own Unix user, the accounts
    and QOS of their Slurm associations (one ``sacctmgr``; unreadable means none)."""
    associations = None
    if run_as_mode(settings) == "user" and owner.unix_user and slurm is not None:
        try:
            associations = slurm.associations(owner.unix_user)
        except (SlurmError, TransportError, ValueError) as exc:
            log.warning("associations of %s unavailable: %s", owner.unix_user, exc)
    grant = approval.charge_grant(owner.slurm_account, settings, associations)
    try:
        approval.check_charge(resources.account, resources.qos, grant)
    except ValueError as exc:
        raise SubmissionError(str(exc)) from None


def check_resources(
    res: Resources, settings: SettingsLike, slurm: SlurmClient | None
) -> tuple[Resources, SlurmError | TransportError | None]:
    """Positive sizes within the partition's limits (read from the cluster when reachable),
    and the error that kept the limits from being read (None: they were checked)."""
    settings = as_settings(settings)
    for name in ("cpus", "mem_mb", "time_minutes"):
        value = getattr(res, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SubmissionError(
                f"{name} must be a positive whole number, got {value!r}", field=name
            )
    if not isinstance(res.throttle, int) or res.throttle < 0:
        raise SubmissionError(
            f"throttle must be 0 (none) or a positive number, got {res.throttle!r}",
            field="throttle",
        )
    for name in ("partition", "account", "qos"):
        value = getattr(res, name)
        if value is not None and not (isinstance(value, str) and SLURM_NAME_RE.fullmatch(value)):
            raise SubmissionError(
                f"{name} must be a Slurm name (letters, digits, _ . @ -), got {str(value)[:40]!r}",
                field=name,
            )
    partition = res.partition or settings.SLURM_PARTITION or None
    account = res.account or settings.SLURM_DEFAULT_ACCOUNT or None
    res = Resources(
        res.cpus,
        res.mem_mb,
        res.time_minutes,
        partition,
        account,
        res.qos,
        res.throttle or settings.SLURM_ARRAY_THROTTLE,
    )
    if slurm is None:
        return res, None
    try:
        report = slurm.sinfo()
    except (SlurmError, TransportError) as exc:
        log.warning("partition limits unavailable: %s", exc)
        return res, exc
    chosen = _find_partition(report.partitions, partition)
    if chosen is None:
        names = ", ".join(p.name for p in report.partitions) or "none"
        raise SubmissionError(
            f"unknown partition {partition!r} (the cluster has: {names})", field="partition"
        )
    nodes = [n for n in report.nodes if chosen.name in n.partitions]
    max_cpus = max((n.cpus for n in nodes), default=0)
    if chosen.time_limit_minutes is not None and res.time_minutes > chosen.time_limit_minutes:
        raise SubmissionError(
            f"time limit {res.time_minutes} min is above partition {chosen.name}'s maximum of "
            f"{chosen.time_limit_minutes} min",
            field="time_minutes",
        )
    if max_cpus and res.cpus > max_cpus:
        raise SubmissionError(
            f"{res.cpus} CPUs per task is more than any node of partition {chosen.name} has "
            f"({max_cpus})",
            field="cpus",
        )
    if chosen.max_node_memory_mb and res.mem_mb > chosen.max_node_memory_mb:
        raise SubmissionError(
            f"{res.mem_mb} MB per task is more than any node of partition {chosen.name} has "
            f"({chosen.max_node_memory_mb} MB)",
            field="mem_mb",
        )
    return res, None


def _find_partition(partitions: Sequence[Any], name: str | None) -> Any | None:
    for partition in partitions:
        if (name and partition.name == name) or (not name and partition.default):
            return partition
    return None


def check_job_room(slurm: SlurmClient, settings: SettingsLike, tasks: int) -> None:
    """Refuse (:class:`SubmissionError`) an array that would fill slurmctld's job records.

    Every array task is a job record and at MaxJobCount slurmctld makes every user's sbatch
    wait. Arrays up to 1 % of MaxJobCount pass without a query; a larger one is submitted only
    if the records squeue counts now plus ``tasks`` stay within ``SLURM_JOB_COUNT_SHARE`` of
    MaxJobCount (squeue sees only the jobs PrivateData lets the portal's account see).
    """
    max_jobs = slurm.max_job_count()
    if tasks * 100 <= max_jobs:
        return
    share = as_settings(settings).SLURM_JOB_COUNT_SHARE
    held = slurm.job_records()
    if held + tasks > share * max_jobs:
        raise SubmissionError(
            f"the cluster holds {held:,} job records of its MaxJobCount {max_jobs:,} and this "
            f"sweep adds {tasks:,} (one per task): that is over the {share:.0%} the portal may "
            f"fill. Retry once jobs have left the queue (finished ones stay "
            f"{slurm.min_job_age()} s), or split the sweep"
        )
