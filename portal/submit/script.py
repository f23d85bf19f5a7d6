"""The sbatch script(s) of a submission, rendered from a checkout of its design.

:func:`render_for` is the one way to get them: the launch (from the run folder's checkout),
the submit form's and CLI's preview (from the preview cache's checkout) and the approval
queue's preview (from a scratch clone) all call it. Nothing here writes except
:func:`write_scripts`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from portal.config import SettingsLike, as_settings
from portal.errors import SubmissionError, without_server_paths
from portal.flows.registry import get_flow, run_note
from portal.flows.types import FlowError
from portal.models import Submission, User
from portal.runfolder import RunFolder
from portal.submit.checkout import StagingError
from portal.submit.gitpolicy import GitPolicy
from portal.submit.plan import Plan, Resources
from portal.submit.previews import checkout_cache
from portal.submit.sbatch import ArrayScript, chunk_scripts, render_array_script


@dataclass(frozen=True)
class RenderedScript:
    """One array's script: its context, file name in the run dir, and text."""

    script: ArrayScript
    file_name: str
    text: str


def render_for(
    submission: Submission,
    checkout: Path,
    settings: SettingsLike,
    *,
    design: Any = None,
    tasks: Sequence[int] | None = None,
    owner: User | None = None,
    max_array_size: int = 1001,
    round_number: int = 0,
) -> list[RenderedScript]:
    """The array script(s) of ``submission`` (one per MaxArraySize chunk), nothing written.

    ``checkout`` holds the design's repository at the commit that will run (the run folder's
    ``design/``, a preview checkout or a scratch clone); the scripts refer to it as the run
    folder's ``design/``. ``design`` is the design found in it when the caller has it already;
    ``tasks`` the task indices (all of the submission's by default); ``owner`` the user named
    in the job comment (the submission's owner by default). Round 0 is the first submission
    (``job.sbatch``); a resubmission of failed tasks is round n > 0: its arrays are named
    ``...-r<n>`` and go to ``resubmit-<n>.sbatch``, so the job-name lookup that keeps
    submission idempotent tells the rounds apart.
    """
    settings = as_settings(settings)
    flow = get_flow(submission.flow)
    if design is None:
        design = flow.find_design(checkout, submission.design_path, pdk_root=settings.PDK_ROOT)
    indices = [t.index for t in submission.tasks] if tasks is None else list(tasks)
    owner = owner or submission.owner
    folder = RunFolder.of(submission, settings)
    res = Resources(**submission.resources)
    ctx = ArrayScript(
        submission_uuid=submission.uuid,
        job_name=submission.job_name,
        run_dir=str(folder.root),
        design_dir=str(folder.design / design.design_dir.relative_to(checkout)),
        array_indices=indices,
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


def joined(rendered: Sequence[RenderedScript]) -> str:
    """The scripts as one text, each under a ``# ---- <file name>`` line (what previews show)."""
    return "\n".join(f"# ---- {item.file_name}\n{item.text}" for item in rendered)


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


def preview_script(
    plan: Plan, settings: SettingsLike, owner: User, *, wait_s: float | None = None
) -> str:
    """The exact script(s) this plan will submit, from the checkout of its commit
    (:mod:`portal.submit.previews`: fetched off the caller's thread, kept by commit).
    ``wait_s`` None waits for the clone (the CLI); else
    :class:`~portal.submit.previews.PreviewPending` is raised after ``wait_s`` seconds (web and
    API requests answer "still fetching")."""
    settings = as_settings(settings)
    url = GitPolicy.from_settings(settings).check_url(plan.repo_url)
    checkout: Path | None = None
    cache = checkout_cache(settings)
    unsaved = Submission(
        uuid=plan.uuid,
        flow=plan.flow.name,
        design_path=plan.design_path,
        resources=asdict(plan.resources),
    )
    try:
        checkout = cache.checkout(url, plan.ref, owner.id, settings, wait_s=wait_s)
        rendered = render_for(
            unsaved, checkout, settings, tasks=range(len(plan.points)), owner=owner
        )
    except (StagingError, FlowError) as exc:  # a step this site cannot run, too
        raise SubmissionError(without_server_paths(str(exc), checkout, cache.root)) from None
    return joined(rendered)


def dry_run(
    plan: Plan, settings: SettingsLike, owner: User, *, wait_s: float | None = None
) -> dict[str, Any]:
    """What submitting ``plan`` would do, nothing written: the script(s), the sweep's points,
    the task count, the cost and whether an admin must approve (the API's and CLI's answer)."""
    return {
        "script": preview_script(plan, settings, owner, wait_s=wait_s),
        "points": plan.points,
        "tasks": len(plan.points),
        "core_hours": round(plan.decision.core_hours, 3),
        "needs_approval": plan.decision.needs_approval,
        "reasons": list(plan.decision.reasons),
    }
