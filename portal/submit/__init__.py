"""The submission service: validate -> policy -> stage -> render -> submit.

Nothing is written before validation passes (:func:`plan_submission` only reads). A valid
request becomes a :class:`~portal.models.Submission` with one Task row per sweep point; it
either waits for an admin (AWAITING_APPROVAL) or is launched: the repository is cloned at a
pinned commit into ``<RUN_ROOT>/<uuid>/design``, every point's config is written to
``tasks/<i>/``, ONE sbatch script per array is rendered (a sweep above MaxArraySize is split)
and submitted with one ``sbatch --parsable`` call per array.

Idempotence: each array's job name carries the submission uuid. Every job id is committed right
after its sbatch; a submission found in SUBMITTING later (a crash between sbatch and commit) is
reconciled by :func:`reconcile_submitting`, which looks the job name up in squeue/sacct before it
submits anything, so no array is ever submitted twice.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from portal import rundir
from portal.cluster.connect import client_for_owner, run_as_user
from portal.errors import SubmissionError
from portal.extensions import db
from portal.flows.base import Flow
from portal.flows.registry import get_flow, run_note
from portal.flows.types import FlowError
from portal.mail.outbox import queue_decision_mail, queue_launch_failed_mail
from portal.models import Submission, SubmissionState, Task, User, audit, utcnow
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import SLURM_NAME_RE
from portal.slurm.states import PENDING, is_terminal
from portal.slurm.transports import TransportError, run_as_mode
from portal.submit import approval, claims
from portal.submit.catalog import ParameterError, load_catalog
from portal.submit.checkout import NO_SPACE, StagingError, share_run_dir, stage_repository
from portal.submit.gitpolicy import (
    GitURLError,
    check_design_path,
    check_host_address,
    check_ref,
    check_repo_url,
)
from portal.submit.previews import checkout_cache
from portal.submit.sbatch import ArrayScript, RenderError, chunk_scripts, render_array_script
from portal.submit.sweeps import (
    SweepError,
    expand_sweep,
    parse_cli_sweeps,
    parse_sweep,
    sweep_table,
)
from portal.submit.taskconfigs import write_task_configs
from portal.track.rollup import update_submission_states

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


# -- validation (reads only) -------------------------------------------------------------------
def plan_submission(
    request: SubmissionRequest,
    settings: Mapping[str, Any],
    slurm: SlurmClient | None = None,
    *,
    owner: User,
) -> Plan:
    """Validate ``owner``'s request completely; raise :class:`SubmissionError`. Writes nothing."""
    try:
        url = check_repo_url(
            request.repo_url,
            allow_file=bool(settings.get("GIT_ALLOW_FILE_URLS")),
            allowed_hosts=settings.get("GIT_ALLOWED_HOSTS") or (),
        )
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
        points = expand_sweep(spec, max_points=int(settings["MAX_SWEEP_POINTS"]))
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
        check_host_address(url, settings.get("GIT_ALLOWED_PRIVATE_HOSTS") or ())
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
    owner: User, resources: Resources, settings: Mapping[str, Any], slurm: SlurmClient | None
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
    res: Resources, settings: Mapping[str, Any], slurm: SlurmClient | None
) -> tuple[Resources, SlurmError | TransportError | None]:
    """Positive sizes within the partition's limits (read from the cluster when reachable),
    and the error that kept the limits from being read (None: they were checked)."""
    for name in ("cpus", "mem_mb", "time_minutes"):
        value = getattr(res, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SubmissionError(f"{name} must be a positive whole number, got {value!r}")
    if not isinstance(res.throttle, int) or res.throttle < 0:
        raise SubmissionError(
            f"throttle must be 0 (none) or a positive number, got {res.throttle!r}"
        )
    for name in ("partition", "account", "qos"):
        value = getattr(res, name)
        if value is not None and not (isinstance(value, str) and SLURM_NAME_RE.fullmatch(value)):
            raise SubmissionError(
                f"{name} must be a Slurm name (letters, digits, _ . @ -), got {str(value)[:40]!r}"
            )
    partition = res.partition or settings.get("SLURM_PARTITION") or None
    account = res.account or settings.get("SLURM_DEFAULT_ACCOUNT") or None
    res = Resources(
        res.cpus,
        res.mem_mb,
        res.time_minutes,
        partition,
        account,
        res.qos,
        res.throttle or int(settings.get("SLURM_ARRAY_THROTTLE") or 0),
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
        raise SubmissionError(f"unknown partition {partition!r} (the cluster has: {names})")
    nodes = [n for n in report.nodes if chosen.name in n.partitions]
    max_cpus = max((n.cpus for n in nodes), default=0)
    if chosen.time_limit_minutes is not None and res.time_minutes > chosen.time_limit_minutes:
        raise SubmissionError(
            f"time limit {res.time_minutes} min is above partition {chosen.name}'s maximum of "
            f"{chosen.time_limit_minutes} min"
        )
    if max_cpus and res.cpus > max_cpus:
        raise SubmissionError(
            f"{res.cpus} CPUs per task is more than any node of partition {chosen.name} has "
            f"({max_cpus})"
        )
    if chosen.max_node_memory_mb and res.mem_mb > chosen.max_node_memory_mb:
        raise SubmissionError(
            f"{res.mem_mb} MB per task is more than any node of partition {chosen.name} has "
            f"({chosen.max_node_memory_mb} MB)"
        )
    return res, None


def _find_partition(partitions: Sequence[Any], name: str | None) -> Any | None:
    for partition in partitions:
        if (name and partition.name == name) or (not name and partition.default):
            return partition
    return None


# -- creation ------------------------------------------------------------------------------------
def create_submission(plan: Plan, owner: User) -> Submission:
    """Record a validated plan: the submission, its tasks, the audit entry (one commit)."""
    if plan.owner_id != owner.id:
        raise SubmissionError("this plan was checked for another user; plan it again")
    needs_approval = plan.decision.needs_approval
    submission = Submission(
        uuid=plan.uuid,
        owner=owner,
        name=plan.request.name or _default_name(plan),
        repo_url=plan.repo_url,
        ref=plan.ref,
        design_path=plan.design_path,
        flow=plan.flow.name,
        base_params=plan.base_params,
        sweep_spec=plan.sweep_spec,
        resources=asdict(plan.resources),
        state=SubmissionState.AWAITING_APPROVAL if needs_approval else SubmissionState.STAGING,
        n_tasks=len(plan.points),
        cost_core_hours=plan.decision.core_hours,
        notify=plan.request.notify,
        decision_reason="; ".join(plan.decision.reasons) or None,
    )
    db.session.add(submission)
    db.session.flush()
    # One multi-row INSERT for the tasks (the unit of work would build one object per point).
    for start in range(0, len(plan.points), 5000):
        db.session.execute(
            insert(Task),
            [
                {"submission_id": submission.id, "index": i, "params": point}
                for i, point in enumerate(plan.points[start : start + 5000], start)
            ],
        )
    audit(
        "submission.create",
        actor=owner,
        submission=submission,
        tasks=len(plan.points),
        core_hours=round(plan.decision.core_hours, 2),
        approval=needs_approval,
    )
    db.session.commit()
    return submission


def _default_name(plan: Plan) -> str:
    design = plan.design_path.rsplit("/", 1)[-1] or plan.repo_url.rstrip("/").rsplit("/", 1)[-1]
    return (
        f"{design.removesuffix('.git')} ({len(plan.points)} point{'s' * (len(plan.points) != 1)})"
    )


def run_dir_of(submission: Submission, settings: Mapping[str, Any]) -> Path:
    """``<RUN_ROOT>/<uuid>``."""
    return Path(settings["RUN_ROOT"]) / submission.uuid


# -- launch: stage, render, submit ---------------------------------------------------------------
def launch(
    submission: Submission,
    settings: Mapping[str, Any],
    slurm: SlurmClient,
    progress: Progress | None = None,
    *,
    after_sbatch: Callable[[str], None] | None = None,
) -> Submission:
    """Stage, render and submit under the submission's launch claim (:mod:`portal.submit.claims`).
    Failures end in SUBMIT_FAILED (retryable) with the reason.

    Only a submission that may run is launched: never one waiting for (or refused by) an admin.
    When another launch holds a live claim on it, nothing is done and the submission is
    returned as that launch leaves it.
    """
    _require_state(
        submission,
        SubmissionState.STAGING,
        SubmissionState.SUBMITTING,
        SubmissionState.SUBMIT_FAILED,
    )
    seconds = float(settings.get("LAUNCH_CLAIM_SECONDS", 60))
    token = claims.new_token()
    if not claims.take(submission.id, token, seconds):
        log.info("submission %s: another launch is at work on it", submission.uuid)
        return submission
    try:
        with claims.Heartbeat(db.engine, submission.id, token, seconds) as heartbeat:
            return _launch_claimed(
                submission,
                settings,
                slurm,
                progress,
                after_sbatch=after_sbatch,
                keep_claim=lambda: (
                    not heartbeat.lost and claims.renew(submission.id, token, seconds)
                ),
            )
    finally:
        db.session.rollback()
        claims.release(submission.id, token)


def _launch_claimed(
    submission: Submission,
    settings: Mapping[str, Any],
    slurm: SlurmClient,
    progress: Progress | None,
    *,
    after_sbatch: Callable[[str], None] | None,
    keep_claim: Callable[[], bool],
) -> Submission:
    # Nothing can have been submitted for a submission still in STAGING (the state becomes
    # SUBMITTING, committed, before the first sbatch): only a retry looks job names up first.
    fresh = submission.state == SubmissionState.STAGING
    try:
        slurm = _client_for_owner(slurm, settings, submission)
        max_array_size = slurm.max_array_size()
        check_job_room(slurm, settings, len(submission.tasks))
        scripts = stage(submission, settings, progress, max_array_size=max_array_size)
        if not keep_claim():  # renewed in the transaction that makes it SUBMITTING
            log.warning("submission %s: launch claim lost before sbatch; stopping", submission.uuid)
            db.session.rollback()
            return submission
        submission.state = SubmissionState.SUBMITTING
        db.session.commit()
        submit_arrays(submission, scripts, slurm, after_sbatch=after_sbatch, lookup=not fresh)
    except (StagingError, FlowError, RenderError, SubmissionError) as exc:
        return _launch_failed(submission, settings, str(exc), passing=is_passing(exc))
    except (SlurmError, TransportError) as exc:
        message = f"Slurm refused the job: {exc}"
        return _launch_failed(submission, settings, message, passing=is_passing(exc))
    except OSError as exc:  # the run folder: full, read-only, not ours
        return _launch_failed(submission, settings, staging_os_error(exc), passing=is_passing(exc))
    return submission


def staging_os_error(exc: OSError) -> str:
    """A designer's reason for an OSError while the run folder was written."""
    if exc.errno == errno.ENOSPC:
        return NO_SPACE
    return f"the run folder could not be written: {exc.strerror or exc}"


#: What Slurm and Git say when the controller or the Git host cannot be reached for now, and a
#: full run folder (room is made by the admins, or finished runs are cleaned up).
_PASSING_CAUSES = re.compile(
    r"unable to contact slurm controller|slurm_load_|connection refused|timed? ?out|"
    r"socket|zero bytes were transmitted|temporarily unavailable|cannot reach the repository "
    r"host|no space left on device|"
    r"job submit/allocate failed: (?:resource temporarily|slurm temporarily)",
    re.IGNORECASE,
)


def is_passing(exc: BaseException) -> bool:
    """True when ``exc`` says the controller or the Git host is unreachable for now (worth a
    retry), not that the request itself is wrong."""
    if isinstance(exc, TransportError):
        return True
    if isinstance(exc, (SlurmError, StagingError, OSError)):
        return bool(_PASSING_CAUSES.search(str(exc)))
    return False


def retry_delay(attempts: int, settings: Mapping[str, Any]) -> float | None:
    """Seconds before launch attempt ``attempts + 1`` (doubling from LAUNCH_RETRY_BASE_SECONDS),
    or None once LAUNCH_MAX_ATTEMPTS were made."""
    if attempts >= int(settings.get("LAUNCH_MAX_ATTEMPTS", 6)):
        return None
    base = float(settings.get("LAUNCH_RETRY_BASE_SECONDS", 30))
    return min(base * 2 ** max(attempts - 1, 0), 600.0)


def without_server_paths(text: str, *roots: object) -> str:
    """``text`` for designers: each of ``roots`` (run folder, RUN_ROOT, PDK_ROOT, a scratch
    clone) left out, so ``<RUN_ROOT>/<uuid>/design/x/config.json`` reads ``design/x/config.json``
    and the server's layout is not shown."""
    for root in sorted({str(r).rstrip("/") for r in roots if r}, key=len, reverse=True):
        text = text.replace(root + "/", "").replace(root, "<site folder>")
    return text


def _launch_failed(
    submission: Submission, settings: Mapping[str, Any], message: str, *, passing: bool
) -> Submission:
    """SUBMIT_FAILED with the reason: retried later when the cause passes and attempts are
    left (the reason says when), else final: the owner is told by email and may retry."""
    message = without_server_paths(
        message, submission.run_dir, settings.get("RUN_ROOT"), settings.get("PDK_ROOT")
    )
    attempts = submission.launch_attempts or 1
    delay = retry_delay(attempts, settings) if passing else None
    if delay is not None:
        retry_at = utcnow() + timedelta(seconds=delay)
        message = (
            f"{message} (a passing cause: the portal tries again at "
            f"{retry_at:%H:%M:%S} UTC, attempt {attempts + 1} of "
            f"{int(settings.get('LAUNCH_MAX_ATTEMPTS', 6))})"
        )
        _fail(submission, SubmissionState.SUBMIT_FAILED, message)
        submission.launch_attempts, submission.retry_at = attempts, retry_at
    else:
        _fail(submission, SubmissionState.SUBMIT_FAILED, message)
        submission.launch_attempts = attempts
        queue_launch_failed_mail(submission)
    db.session.commit()
    return submission


def retry_launch(submission: Submission) -> Submission:
    """Make a SUBMIT_FAILED submission launchable again now (the page's, API's and CLI's
    "Retry": the same submission, ONE array); raise SubmissionError in any other state."""
    _require_state(submission, SubmissionState.SUBMIT_FAILED)
    submission.launch_attempts = 0
    submission.retry_at = None
    audit("submission.retry", submission=submission)
    db.session.commit()
    return submission


def due_retries() -> list[Submission]:
    """SUBMIT_FAILED submissions whose passing failure is due for another launch."""
    return list(
        db.session.scalars(
            select(Submission).where(
                Submission.state == SubmissionState.SUBMIT_FAILED,
                Submission.retry_at.is_not(None),
                Submission.retry_at <= utcnow(),
                claims.is_free(),
            )
        )
    )


def check_job_room(slurm: SlurmClient, settings: Mapping[str, Any], tasks: int) -> None:
    """Refuse (:class:`SubmissionError`) an array that would fill slurmctld's job records.

    Every array task is a job record and at MaxJobCount slurmctld makes every user's sbatch
    wait. Arrays up to 1 % of MaxJobCount pass without a query; a larger one is submitted only
    if the records squeue counts now plus ``tasks`` stay within ``SLURM_JOB_COUNT_SHARE`` of
    MaxJobCount (squeue sees only the jobs PrivateData lets the portal's account see).
    """
    max_jobs = slurm.max_job_count()
    if tasks * 100 <= max_jobs:
        return
    share = float(settings.get("SLURM_JOB_COUNT_SHARE", 0.8))
    held = slurm.job_records()
    if held + tasks > share * max_jobs:
        raise SubmissionError(
            f"the cluster holds {held:,} job records of its MaxJobCount {max_jobs:,} and this "
            f"sweep adds {tasks:,} (one per task): that is over the {share:.0%} the portal may "
            f"fill. Retry once jobs have left the queue (finished ones stay "
            f"{slurm.min_job_age()} s), or split the sweep"
        )


def _fail(submission: Submission, state: SubmissionState, message: str) -> Submission:
    db.session.rollback()
    submission.state = state
    submission.error = message
    audit("submission.error", submission=submission, state=str(state), error=message[:500])
    db.session.commit()
    log.warning("submission %s: %s: %s", submission.uuid, state, message)
    return submission


def stage(
    submission: Submission,
    settings: Mapping[str, Any],
    progress: Progress | None = None,
    *,
    max_array_size: int = 1001,
) -> list[tuple[ArrayScript, Path]]:
    """Clone, pack every task's config (:mod:`portal.submit.taskconfigs`), write sweep.tsv, render
    the array script(s) to files."""
    report = progress or (lambda stage, fraction: None)
    run_dir = run_dir_of(submission, settings)
    submission.run_dir = str(run_dir)
    db.session.commit()  # no write lock held through the clone (the claim's heartbeat writes)
    fresh = not (run_dir / "design" / ".git").exists()
    if fresh:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        url = check_repo_url(
            submission.repo_url,
            allow_file=bool(settings.get("GIT_ALLOW_FILE_URLS")),
            allowed_hosts=settings.get("GIT_ALLOWED_HOSTS") or (),
        )
        staged = stage_repository(
            url,
            submission.ref,
            run_dir / "design",
            timeout_s=float(settings["GIT_CLONE_TIMEOUT"]),
            max_mb=int(settings["GIT_MAX_REPO_MB"]),
            progress=lambda text, fraction: report(f"clone: {text}", fraction),
            allowed_private=settings.get("GIT_ALLOWED_PRIVATE_HOSTS") or (),
        )
        submission.commit = staged.commit
    flow = get_flow(submission.flow)
    design = flow.find_design(
        run_dir / "design", submission.design_path, pdk_root=str(settings["PDK_ROOT"])
    )
    if design.errors:
        problems = "; ".join(f"line {line}: {msg}" if line else msg for line, msg in design.errors)
        raise SubmissionError(f"the design config {design.path.name} has errors: {problems}")
    flow.check_site(settings, design)
    steps = flow.task_steps(design, settings)
    submission.flow_note = run_note(flow, settings, steps)
    report("writing task configs", None)
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "tasks").mkdir(exist_ok=True)
    # An OpenLane matrix's `preload` values sit beneath the design's own config.
    defaults = (submission.sweep_spec or {}).get("preload") or {}
    beneath = {k: v for k, v in defaults.items() if k not in design.assigned}
    write_task_configs(
        run_dir,
        flow.task_config_name(design),
        (
            (task.index, flow.task_config_text(design, {**beneath, **task.params}, steps=steps))
            for task in submission.tasks
        ),
    )
    (run_dir / "sweep.tsv").write_text(sweep_table([t.params for t in submission.tasks]))
    _write_manifest(submission, run_dir)
    rendered = render_scripts(
        submission,
        settings,
        flow,
        design,
        [t.index for t in submission.tasks],
        owner=submission.owner,
        checkout=run_dir / "design",
        run_dir=run_dir,
        max_array_size=max_array_size,
    )
    report("rendered", 1.0)
    written = write_scripts(run_dir, rendered)
    _share_with_job_user(submission, settings, run_dir)
    return written


@dataclass(frozen=True)
class RenderedScript:
    """One array's script: its context, file name in the run dir, and text."""

    script: ArrayScript
    file_name: str
    text: str


def render_scripts(
    submission: Submission,
    settings: Mapping[str, Any],
    flow: Flow,
    design: Any,
    task_indices: Sequence[int],
    *,
    owner: User,
    checkout: Path,
    run_dir: Path,
    max_array_size: int = 1001,
    round_number: int = 0,
) -> list[RenderedScript]:
    """Render one script per array chunk (nothing is written).

    ``design`` was read from the clone at ``checkout``; the scripts refer to it as
    ``<run_dir>/design/...``. Round 0 is the first submission (``job.sbatch``); a resubmission
    of failed tasks is round n > 0: its arrays are named ``...-r<n>`` and go to
    ``resubmit-<n>.sbatch``, so the job-name lookup that keeps submission idempotent tells the
    rounds apart.
    """
    res = Resources(**submission.resources)
    ctx = ArrayScript(
        submission_uuid=submission.uuid,
        job_name=submission.job_name,
        run_dir=str(run_dir),
        design_dir=str(run_dir / "design" / design.design_dir.relative_to(checkout)),
        array_indices=list(task_indices),
        flow_words=flow.command_words(settings, design, flow.task_config_name(design)),
        container_words=flow.container_words(settings, design=design),
        env=flow.task_env(settings),
        throttle=res.throttle,
        cpus_per_task=res.cpus,
        mem_mb=res.mem_mb,
        time_limit_minutes=res.time_minutes,
        partition=res.partition,
        account=res.account,
        qos=res.qos,
        comment=f"openlane-portal {submission.uuid} by {owner.username}",
        flow_name=flow.name,
        config_name=flow.task_config_name(design),
        design_link=flow.design_link,
        note=run_note(flow, settings, flow.task_steps(design, settings)),
    )
    chunks = chunk_scripts(ctx, max_array_size)
    stem = "job" if round_number == 0 else f"resubmit-{round_number}"
    rendered = []
    for number, chunk in enumerate(chunks):
        if round_number:
            chunk = dataclasses.replace(chunk, job_name=f"{chunk.job_name}-r{round_number}")
        name = f"{stem}.sbatch" if len(chunks) == 1 else f"{stem}-{number}.sbatch"
        rendered.append(RenderedScript(chunk, name, render_array_script(chunk)))
    return rendered


def write_scripts(
    run_dir: Path, rendered: Sequence[RenderedScript]
) -> list[tuple[ArrayScript, Path]]:
    """Write rendered scripts into the run dir; return (script, path) pairs to submit."""
    written = []
    for item in rendered:
        path = run_dir / item.file_name
        path.write_text(item.text)
        written.append((item.script, path))
    return written


#: Names of the scripts launches write into a run folder (see :func:`render_scripts`):
#: ``job.sbatch`` (``job-<n>.sbatch`` per array of a split sweep) for the first submission,
#: ``resubmit-<r>.sbatch`` (``resubmit-<r>-<n>.sbatch``) for the r-th resubmission.
SCRIPT_NAME_RE = re.compile(r"(?:job|resubmit-([1-9][0-9]*))(?:-([0-9]+))?\.sbatch")


def stored_script_names(run_dir: str | Path | None, *, first_round: bool = False) -> list[str]:
    """The sbatch scripts that ran, as the launches wrote them into ``run_dir`` (sbatch read
    these very files): the first submission's in array order, then each resubmission's; only
    the first submission's with ``first_round``. Empty when the run folder holds none."""
    if not run_dir:
        return []
    try:
        with os.scandir(run_dir) as entries:
            names = [entry.name for entry in entries if entry.is_file(follow_symlinks=False)]
    except OSError:
        return []
    found = []
    for name in names:
        match = SCRIPT_NAME_RE.fullmatch(name)
        if match and not (first_round and match.group(1)):
            found.append((int(match.group(1) or 0), int(match.group(2) or -1), name))
    return [name for _round, _chunk, name in sorted(found)]


def read_stored_script(run_dir: str | Path, name: str, owners: rundir.Owners = None) -> bytes:
    """The bytes of the stored script ``name`` (one of :func:`stored_script_names`), read
    confined to ``run_dir``; raises :class:`~portal.rundir.PathRefused` for any other name, a
    symlink or a missing file."""
    if not SCRIPT_NAME_RE.fullmatch(name):
        raise rundir.PathRefused(f"{name!r} is not an sbatch script of the portal")
    if os.path.islink(os.path.join(run_dir, name)):
        raise rundir.PathRefused(f"{name} is a symbolic link, not the script that ran")
    with rundir.open_confined(run_dir, name, owners) as handle:
        return handle.read()


def preview_script(
    plan: Plan, settings: Mapping[str, Any], owner: User, *, wait_s: float | None = None
) -> str:
    """The exact script(s) this plan will submit, from the checkout of its commit
    (:mod:`portal.submit.previews`: fetched off the caller's thread, kept by commit).
    ``wait_s`` None waits for the clone (the CLI); else
    :class:`~portal.submit.previews.PreviewPending` is raised after ``wait_s`` seconds (web and
    API requests answer "still fetching")."""
    url = check_repo_url(
        plan.repo_url,
        allow_file=bool(settings.get("GIT_ALLOW_FILE_URLS")),
        allowed_hosts=settings.get("GIT_ALLOWED_HOSTS") or (),
    )
    checkout: Path | None = None
    cache = checkout_cache(settings)
    try:
        checkout = cache.checkout(url, plan.ref, owner.id, settings, wait_s=wait_s)
        design = plan.flow.find_design(
            checkout, plan.design_path, pdk_root=str(settings["PDK_ROOT"])
        )
        rendered = render_scripts(
            Submission(uuid=plan.uuid, resources=asdict(plan.resources)),
            settings,
            plan.flow,
            design,
            range(len(plan.points)),
            owner=owner,
            checkout=checkout,
            run_dir=Path(settings["RUN_ROOT"]) / plan.uuid,
        )
    except (StagingError, FlowError) as exc:  # a step this site cannot run, too
        raise SubmissionError(without_server_paths(str(exc), checkout, cache.root)) from None
    return "\n".join(f"# ---- {item.file_name}\n{item.text}" for item in rendered)


def _client_for_owner(
    slurm: SlurmClient, settings: Mapping[str, Any], submission: Submission
) -> SlurmClient:
    """With SLURM_RUN_AS='user', a client whose sbatch runs as the owner (whoever called)."""
    return client_for_owner(slurm, settings, submission.owner)


def _share_with_job_user(
    submission: Submission, settings: Mapping[str, Any], run_dir: Path
) -> None:
    """With SLURM_RUN_AS='user', let the owner's jobs write logs/ and tasks/ (each task makes
    its own folder there; see :func:`portal.submit.checkout.share_run_dir`)."""
    job_user = run_as_user(settings, submission.owner)
    if job_user is not None:
        try:
            share_run_dir(run_dir, job_user, [run_dir / "logs", run_dir / "tasks"])
        except StagingError as exc:
            raise SubmissionError(str(exc)) from None


def _write_manifest(submission: Submission, run_dir: Path) -> None:
    manifest = {
        "uuid": submission.uuid,
        "name": submission.name,
        "repo_url": submission.repo_url,
        "ref": submission.ref,
        "commit": submission.commit,
        "design_path": submission.design_path,
        "flow": submission.flow,
        "base_params": submission.base_params,
        "sweep": submission.sweep_spec,
        "resources": submission.resources,
        "tasks": len(submission.tasks),
    }
    (run_dir / "submission.json").write_text(json.dumps(manifest, indent=2) + "\n")


def submit_arrays(
    submission: Submission,
    scripts: Sequence[tuple[ArrayScript, Path]],
    slurm: SlurmClient,
    *,
    after_sbatch: Callable[[str], None] | None = None,
    lookup: bool = True,
) -> None:
    """Submit each array not yet known to Slurm (looked up by job name first, unless
    ``lookup`` is off: a first launch); commit each id."""
    for script, path in scripts:
        existing = (
            slurm.find_by_name(script.job_name, since=submission.created_at) if lookup else []
        )
        if any(job in submission.job_ids for job in existing):
            continue
        if existing:
            job_id = existing[-1]
            log.info(
                "submission %s: found %s already queued as %s",
                submission.uuid,
                script.job_name,
                job_id,
            )
        else:
            job_id = slurm.submit(script_path=str(path))
            if after_sbatch is not None:
                after_sbatch(job_id)
        _record_job(submission, script, job_id)
    submission.state = SubmissionState.QUEUED
    submission.submitted_at = submission.submitted_at or utcnow()
    submission.error = None
    audit("submission.submitted", submission=submission, job_ids=list(submission.job_ids))
    db.session.commit()


def _record_job(submission: Submission, script: ArrayScript, job_id: str) -> None:
    """Record the array's job id on the submission and its tasks (bulk UPDATEs), commit."""
    submission.job_ids = [*submission.job_ids, job_id]
    offset = script.index_offset
    indices = sorted(i + offset for i in script.array_indices)
    values = {
        "array_job_id": job_id,
        "array_index": Task.index - offset,
        "state": PENDING,
        "exit_code": None,
        "signal": None,
        "node": None,
        "started_at": None,
        "ended_at": None,
        "elapsed_seconds": None,
        "metrics": None,
        "pending_reason": None,
    }
    mine = Task.submission_id == submission.id
    if indices and indices[-1] - indices[0] + 1 == len(indices):  # one contiguous range
        wheres = [Task.index.between(indices[0], indices[-1])]
    else:
        wheres = [Task.index.in_(indices[i : i + 500]) for i in range(0, len(indices), 500)]
    for where in wheres:
        db.session.execute(
            update(Task).where(mine, where).values(values),
            execution_options={"synchronize_session": False},
        )
    db.session.commit()
    db.session.expire_all()  # loaded tasks re-read their new values


def reconcile_submitting(settings: Mapping[str, Any], slurm: SlurmClient) -> list[Submission]:
    """Finish submissions left in SUBMITTING (a crash mid-submit) without resubmitting twice."""
    stuck = db.session.scalars(
        select(Submission).where(Submission.state == SubmissionState.SUBMITTING)
    ).all()
    for submission in stuck:
        log.info("reconciling submission %s left in SUBMITTING", submission.uuid)
        launch(submission, settings, slurm)
    return list(stuck)


# -- approval, cancel, resubmit --------------------------------------------------------------
def record_approval(submission: Submission, admin: User) -> Submission:
    """An admin lets a waiting submission run: state STAGING, decider, audit entry and the
    decision email in one commit. Nothing is launched here (see :func:`approve`).

    The state change is one conditional UPDATE, so of two admins approving at once exactly
    one wins; the other gets :class:`SubmissionError` and nothing changes.
    """
    claimed = db.session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.state == SubmissionState.AWAITING_APPROVAL,
        )
        .values(state=SubmissionState.STAGING, decided_by_id=admin.id, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        db.session.refresh(submission)
        raise SubmissionError(
            f"submission is {submission.state}, not {SubmissionState.AWAITING_APPROVAL}: "
            "it was decided meanwhile"
        )
    db.session.refresh(submission)
    audit("submission.approve", actor=admin, submission=submission)
    queue_decision_mail(submission, approved=True)
    db.session.commit()
    return submission


def approve(
    submission: Submission, admin: User, settings: Mapping[str, Any], slurm: SlurmClient
) -> Submission:
    """An admin lets a waiting submission run, and it is launched at once (the CLI's way)."""
    return launch(record_approval(submission, admin), settings, slurm)


def reject(submission: Submission, admin: User, reason: str) -> Submission:
    """An admin refuses a waiting submission, with a reason the owner will read."""
    _require_state(submission, SubmissionState.AWAITING_APPROVAL)
    if not reason.strip():
        raise SubmissionError("a rejection needs a reason")
    submission.state = SubmissionState.REJECTED
    submission.decided_by_id = admin.id
    submission.decision_reason = reason.strip()
    submission.finished_at = utcnow()
    audit("submission.reject", actor=admin, submission=submission, reason=reason.strip())
    queue_decision_mail(submission, approved=False)
    db.session.commit()
    return submission


def _require_state(submission: Submission, *states: SubmissionState) -> None:
    if submission.state not in states:
        wanted = " or ".join(states)
        raise SubmissionError(f"submission is {submission.state}, not {wanted}")


def cancel(
    submission: Submission,
    slurm: SlurmClient,
    indices: Sequence[int] | None = None,
    actor: User | None = None,
) -> None:
    """scancel the whole submission or some task indices (one scancel per array)."""
    if submission.state in (
        SubmissionState.AWAITING_APPROVAL,
        SubmissionState.SUBMIT_FAILED,
        SubmissionState.DRAFT,
    ):
        submission.state = SubmissionState.CANCELLED
        submission.finished_at = utcnow()
    else:
        by_job: dict[str, list[int]] = {}
        wanted = set(indices) if indices is not None else None
        unknown = wanted - {t.index for t in submission.tasks} if wanted else set()
        if unknown:
            raise SubmissionError(f"no such task index: {', '.join(map(str, sorted(unknown)))}")
        for task in submission.tasks:
            if task.array_job_id and (wanted is None or task.index in wanted):
                by_job.setdefault(task.array_job_id, []).append(task.array_index)
        for job_id, array_indices in by_job.items():
            slurm.cancel(job_id, None if wanted is None else sorted(array_indices))
        _mark_pending_cancelled(submission, wanted)
    audit("submission.cancel", actor=actor, submission=submission, tasks=indices)
    db.session.commit()


def _mark_pending_cancelled(submission: Submission, wanted: set[int] | None) -> None:
    """Slurm forgets array tasks cancelled while pending (neither sacct nor squeue shows them),
    so the canceller records them; running ones are left to the poller."""
    for task in submission.tasks:
        if task.state == PENDING and (wanted is None or task.index in wanted):
            task.state, task.pending_reason = "CANCELLED", None
            task.ended_at = utcnow()
    update_submission_states({submission.id})


def resubmit_failed(
    submission: Submission,
    settings: Mapping[str, Any],
    slurm: SlurmClient,
    actor: User | None = None,
) -> list[int]:
    """ONE new array over only the failed task indices (same run dir and configs)."""
    failed = [t.index for t in submission.tasks if is_terminal(t.state) and t.state != "COMPLETED"]
    if not failed:
        raise SubmissionError("no failed tasks to resubmit")
    if submission.state not in (
        SubmissionState.FAILED,
        SubmissionState.PARTIAL,
        SubmissionState.CANCELLED,
    ):
        raise SubmissionError(f"submission is {submission.state}; wait until it has finished")
    slurm = _client_for_owner(slurm, settings, submission)
    flow = get_flow(submission.flow)
    run_dir = Path(submission.run_dir or run_dir_of(submission, settings))
    design = flow.find_design(
        run_dir / "design", submission.design_path, pdk_root=str(settings["PDK_ROOT"])
    )
    check_job_room(slurm, settings, len(failed))
    round_number = len(list(run_dir.glob("resubmit-*.sbatch"))) + 1
    rendered = render_scripts(
        submission,
        settings,
        flow,
        design,
        failed,
        owner=submission.owner,
        checkout=run_dir / "design",
        run_dir=run_dir,
        max_array_size=slurm.max_array_size(),
        round_number=round_number,
    )
    scripts = write_scripts(run_dir, rendered)
    _share_with_job_user(submission, settings, run_dir)
    submission.state = SubmissionState.SUBMITTING
    submission.finished_at = None
    audit("submission.resubmit", actor=actor, submission=submission, tasks=failed)
    db.session.commit()
    submit_arrays(submission, scripts, slurm)
    return failed


__all__ = [
    "Plan",
    "Resources",
    "SubmissionError",
    "SubmissionRequest",
    "approve",
    "cancel",
    "create_submission",
    "launch",
    "plan_submission",
    "reconcile_submitting",
    "reject",
    "resubmit_failed",
]
