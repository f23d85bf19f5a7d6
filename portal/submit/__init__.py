"""Submitting: a designer's request becomes ONE Slurm job array per sweep.

The service, in the order a request meets it (each step its own module)::

    plan       validate the request into a Plan (reads only: Git policy, catalog, sweep,
               partition limits, account and QOS, approval rules)
    record     the submission and its task rows, one commit
    launch     stage the repository into the run folder, pack the task configs, render,
               sbatch once per array; idempotent, retried when the cause passes
    script     render_for: the array script(s) from a checkout (launch, previews, export)
    decisions  approve, reject, cancel, resubmit failed tasks

Helpers the service uses: ``checkout`` (git into the run folder), ``previews`` (checkouts kept
by commit for previews), ``background`` (launch off the request thread), ``claims`` (one
launch at a time), ``approval`` (cost rules), ``gitpolicy``, ``catalog``, ``sweeps``,
``taskconfigs``, ``sbatch`` (the template) and ``export`` (a bundle for plain sbatch).

The form, the API and the CLI import the service from here::

    from portal import submit as svc
    plan = svc.plan_submission(request, settings, slurm, owner=user)
"""

from portal.errors import SubmissionError, without_server_paths
from portal.submit.decisions import (
    approve,
    cancel,
    record_approval,
    reject,
    resubmit_failed,
)
from portal.submit.launch import (
    due_retries,
    is_passing,
    launch,
    reconcile_submitting,
    retry_delay,
    retry_launch,
    stage,
)
from portal.submit.plan import (
    Plan,
    Resources,
    SubmissionRequest,
    check_job_room,
    check_resources,
    plan_submission,
    require_cluster,
)
from portal.submit.record import create_submission
from portal.submit.script import dry_run, preview_script, render_for

__all__ = [
    "Plan",
    "Resources",
    "SubmissionError",
    "SubmissionRequest",
    "approve",
    "cancel",
    "check_job_room",
    "check_resources",
    "create_submission",
    "dry_run",
    "due_retries",
    "is_passing",
    "launch",
    "plan_submission",
    "preview_script",
    "reconcile_submitting",
    "record_approval",
    "reject",
    "render_for",
    "require_cluster",
    "resubmit_failed",
    "retry_delay",
    "retry_launch",
    "stage",
    "without_server_paths",
]
