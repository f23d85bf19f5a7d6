"""Launch a recorded submission: stage, render, submit ONE array (per MaxArraySize chunk).

The repository is cloned at a pinned commit into the run folder
(:class:`~portal.runfolder.RunFolder`), every task's config is packed, the script(s) rendered
and submitted with one ``sbatch --parsable`` each. Each array's job name carries the
submission uuid and every job id is committed right after its sbatch; a submission found in
SUBMITTING later (a crash between sbatch and commit) is reconciled by
:func:`reconcile_submitting`, which looks the job name up before it submits anything, so no
array is ever submitted twice. Failures end in SUBMIT_FAILED, retried later when the cause
passes.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import shutil
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from portal.cluster.connect import client_for_owner, run_as_user
from portal.config import Settings, SettingsLike, as_settings
from portal.errors import SubmissionError, without_server_paths
from portal.extensions import db
from portal.flows.registry import get_flow, run_note
from portal.flows.types import FlowError
from portal.mail.outbox import queue_launch_failed_mail
from portal.models import Submission, SubmissionState, Task, audit, utcnow
from portal.runfolder import RunFolder
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.states import PENDING
from portal.slurm.transports import TransportError
from portal.submit import claims
from portal.submit.checkout import NO_SPACE, StagingError, share_run_dir, stage_repository
from portal.submit.gitpolicy import GitPolicy
from portal.submit.plan import Progress, check_job_room
from portal.submit.sbatch import ArrayScript, RenderError
from portal.submit.script import render_for, write_scripts
from portal.submit.sweeps import (
    sweep_table,
)
from portal.submit.taskconfigs import write_task_configs

log = logging.getLogger(__name__)


def require_state(submission: Submission, *states: SubmissionState) -> None:
    """Raise :class:`SubmissionError` unless ``submission`` is in one of ``states``."""
    if submission.state not in states:
        wanted = " or ".join(states)
        raise SubmissionError(f"submission is {submission.state}, not {wanted}")


def launch(
    submission: Submission,
    settings: SettingsLike,
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
    require_state(
        submission,
        SubmissionState.STAGING,
        SubmissionState.SUBMITTING,
        SubmissionState.SUBMIT_FAILED,
    )
    settings = as_settings(settings)
    seconds = float(settings.LAUNCH_CLAIM_SECONDS)
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
    settings: Settings,
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
        slurm = client_for_owner(slurm, settings, submission.owner)
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


def retry_delay(attempts: int, settings: SettingsLike) -> float | None:
    """Seconds before launch attempt ``attempts + 1`` (doubling from LAUNCH_RETRY_BASE_SECONDS),
    or None once LAUNCH_MAX_ATTEMPTS were made."""
    settings = as_settings(settings)
    if attempts >= settings.LAUNCH_MAX_ATTEMPTS:
        return None
    base = float(settings.LAUNCH_RETRY_BASE_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), 600.0)


def _launch_failed(
    submission: Submission, settings: Settings, message: str, *, passing: bool
) -> Submission:
    """SUBMIT_FAILED with the reason: retried later when the cause passes and attempts are
    left (the reason says when), else final: the owner is told by email and may retry."""
    message = without_server_paths(
        message, submission.run_dir, settings.RUN_ROOT, settings.PDK_ROOT
    )
    attempts = submission.launch_attempts or 1
    delay = retry_delay(attempts, settings) if passing else None
    if delay is not None:
        retry_at = utcnow() + timedelta(seconds=delay)
        message = (
            f"{message} (a passing cause: the portal tries again at "
            f"{retry_at:%H:%M:%S} UTC, attempt {attempts + 1} of "
            f"{settings.LAUNCH_MAX_ATTEMPTS})"
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
    require_state(submission, SubmissionState.SUBMIT_FAILED)
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
    settings: SettingsLike,
    progress: Progress | None = None,
    *,
    max_array_size: int = 1001,
) -> list[tuple[ArrayScript, Path]]:
    """Clone, pack every task's config (:mod:`portal.submit.taskconfigs`), write sweep.tsv, render
    the array script(s) to files."""
    settings = as_settings(settings)
    report = progress or (lambda stage, fraction: None)
    folder = RunFolder.of(submission, settings)
    run_dir = folder.root
    submission.run_dir = str(run_dir)
    db.session.commit()  # no write lock held through the clone (the claim's heartbeat writes)
    fresh = not (folder.design / ".git").exists()
    if fresh:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        git_policy = GitPolicy.from_settings(settings)
        staged = stage_repository(
            git_policy.check_url(submission.repo_url),
            submission.ref,
            folder.design,
            timeout_s=float(settings.GIT_CLONE_TIMEOUT),
            max_mb=settings.GIT_MAX_REPO_MB,
            progress=lambda text, fraction: report(f"clone: {text}", fraction),
            allowed_private=git_policy.allowed_private,
        )
        submission.commit = staged.commit
    flow = get_flow(submission.flow)
    design = flow.find_design(folder.design, submission.design_path, pdk_root=settings.PDK_ROOT)
    if design.errors:
        problems = "; ".join(f"line {line}: {msg}" if line else msg for line, msg in design.errors)
        raise SubmissionError(f"the design config {design.path.name} has errors: {problems}")
    flow.check_site(settings, design)
    steps = flow.task_steps(design, settings)
    submission.flow_note = run_note(flow, settings, steps)
    report("writing task configs", None)
    folder.logs.mkdir(exist_ok=True)
    folder.tasks.mkdir(exist_ok=True)
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
    folder.sweep_table.write_text(sweep_table([t.params for t in submission.tasks]))
    _write_manifest(submission, folder)
    rendered = render_for(
        submission, folder.design, settings, design=design, max_array_size=max_array_size
    )
    report("rendered", 1.0)
    written = write_scripts(run_dir, rendered)
    share_with_job_user(submission, settings, folder)
    return written


def share_with_job_user(submission: Submission, settings: SettingsLike, folder: RunFolder) -> None:
    """With SLURM_RUN_AS='user', let the owner's jobs write logs/ and tasks/ (each task makes
    its own folder there; see :func:`portal.submit.checkout.share_run_dir`)."""
    job_user = run_as_user(settings, submission.owner)
    if job_user is not None:
        try:
            share_run_dir(folder.root, job_user, [folder.logs, folder.tasks])
        except StagingError as exc:
            raise SubmissionError(str(exc)) from None


def _write_manifest(submission: Submission, folder: RunFolder) -> None:
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
    folder.manifest.write_text(json.dumps(manifest, indent=2) + "\n")


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


def reconcile_submitting(settings: SettingsLike, slurm: SlurmClient) -> list[Submission]:
    """Finish submissions left in SUBMITTING (a crash mid-submit) without resubmitting twice."""
    stuck = db.session.scalars(
        select(Submission).where(Submission.state == SubmissionState.SUBMITTING)
    ).all()
    for submission in stuck:
        log.info("reconciling submission %s left in SUBMITTING", submission.uuid)
        launch(submission, settings, slurm)
    return list(stuck)
