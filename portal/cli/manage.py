"""``portal status``, ``cancel``, ``resubmit``, ``retry``, ``approve``, ``reject``, ``export``
and ``results``: what happens to a submission after it was made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask
from sqlalchemy import select

from portal.cli.common import (
    acting_user,
    fail,
    find_remote,
    find_submission,
    print_list,
    print_submission,
    remote_or_local,
    show_submission,
    with_app,
)
from portal.models import Submission, User

if TYPE_CHECKING:
    from portal.apiclient import PortalClient


def _status_remote(client: PortalClient, ident: str | None, as_json: bool, show_all: bool) -> None:
    if ident:
        uuid = find_remote(client, ident)
        print_submission(client.get(uuid), client.tasks(uuid), as_json)
        return
    if show_all:
        me = client.me()["user"]
        if me["role"] != "admin":
            fail(f"{me['username']} is not an admin")
    print_list(list(client.iter_submissions(limit=200, mine=not show_all)), as_json)


@click.command()
@click.argument("ident", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="every user's submissions (admins)")
@click.option("--user", "username")
@remote_or_local(_status_remote)
def status(
    app: Flask, ident: str | None, as_json: bool, show_all: bool, username: str | None
) -> None:
    """Show one submission with its tasks, or list submissions."""
    from portal.extensions import db as database
    from portal.serialize import submission_dict, task_counts

    if ident:
        show_submission(app, find_submission(ident), as_json)
        return
    owner = acting_user(username, admin=show_all)
    query = select(Submission).order_by(Submission.id.desc()).limit(200)
    if not show_all:
        query = query.where(Submission.owner_id == owner.id)
    rows = database.session.scalars(query).all()
    counts = task_counts(database.session, [s.id for s in rows])
    site = app.config["SITE_URL"]
    print_list([submission_dict(s, counts[s.id], site_url=site, local=True) for s in rows], as_json)


def parse_indices(text: str) -> list[int]:
    """``1,3-5`` -> [1, 3, 4, 5]."""
    indices: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise click.BadParameter(f"{text!r} is not a list like 1,3-5")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise click.BadParameter(f"range {part.strip()!r} runs backwards")
        if last - first > 1_000_000:
            raise click.BadParameter(f"range {part.strip()!r} is too long")
        indices.extend(range(first, last + 1))
    return sorted(set(indices))


def _run_service(func: Callable[[], Any]) -> Any:
    from portal.slurm.client import SlurmError
    from portal.slurm.transports import TransportError
    from portal.submit import SubmissionError

    try:
        return func()
    except SubmissionError as exc:
        fail(str(exc))
    except (SlurmError, TransportError) as exc:
        fail(f"Slurm: {exc}", 1)


def _task_list(task_list: str | None) -> list[int] | None:
    try:
        return parse_indices(task_list) if task_list else None
    except click.BadParameter as exc:
        fail(exc.message)


def _cancel_message(uuid: str, task_list: str | None) -> str:
    return f"cancel requested for {uuid}" + (f" tasks {task_list}" if task_list else "")


def _cancel_remote(client: PortalClient, ident: str, task_list: str | None) -> None:
    indices = _task_list(task_list)
    uuid = find_remote(client, ident)
    client.cancel(uuid, indices)
    click.echo(_cancel_message(uuid, task_list))


@click.command()
@click.argument("ident")
@click.option("--tasks", "task_list", help="only these task indices, e.g. 1,3-5")
@click.option("--user", "username")
@remote_or_local(_cancel_remote)
def cancel(app: Flask, ident: str, task_list: str | None, username: str | None) -> None:
    """Cancel a submission's array(s), or some of its tasks."""
    from portal import submit as svc
    from portal.cluster.connect import slurm_client

    submission = find_submission(ident)
    actor = acting_user(username)
    _check_owner(actor, submission)
    indices = _task_list(task_list)
    _run_service(
        lambda: svc.cancel(
            submission, slurm_client(app.config, submission.owner), indices, actor=actor
        )
    )
    click.echo(_cancel_message(submission.uuid, task_list))


def _check_owner(actor: User, submission: Submission) -> None:
    if submission.owner_id != actor.id and not actor.is_admin:
        fail(f"{actor.username} may not change {submission.owner.username}'s submission")


def _resubmit_message(indices: list[int], job_ids: list[str]) -> str:
    return f"resubmitted tasks {','.join(map(str, indices))} as job {job_ids[-1]}"


def _resubmit_remote(client: PortalClient, ident: str, failed: bool) -> None:
    answer = client.resubmit(find_remote(client, ident))
    click.echo(_resubmit_message(answer["resubmitted"], answer["submission"]["job_ids"]))


@click.command()
@click.argument("ident")
@click.option("--failed", is_flag=True, required=True, help="resubmit the failed tasks")
@click.option("--user", "username")
@remote_or_local(_resubmit_remote)
def resubmit(app: Flask, ident: str, failed: bool, username: str | None) -> None:
    """Submit ONE new array over only the failed task indices."""
    from portal import submit as svc
    from portal.cluster.connect import slurm_client

    submission = find_submission(ident)
    actor = acting_user(username)
    _check_owner(actor, submission)
    indices = _run_service(
        lambda: svc.resubmit_failed(
            submission, app.config, slurm_client(app.config, submission.owner), actor=actor
        )
    )
    click.echo(_resubmit_message(indices, submission.job_ids))


def _retry_remote(client: PortalClient, ident: str) -> None:
    answer = client.retry(find_remote(client, ident))
    click.echo(f"{answer['submission']['uuid']}: launching again ({answer['submission']['state']})")


@click.command()
@click.argument("ident")
@click.option("--user", "username")
@remote_or_local(_retry_remote)
def retry(app: Flask, ident: str, username: str | None) -> None:
    """Launch a SUBMIT_FAILED submission again: the same submission, ONE array."""
    from portal import submit as svc
    from portal.cluster.connect import slurm_client

    submission = find_submission(ident)
    _check_owner(acting_user(username), submission)
    _run_service(lambda: svc.retry_launch(submission))
    svc.launch(submission, app.config, slurm_client(app.config))
    click.echo(f"{submission.uuid}: {submission.state}")
    if submission.state == "SUBMIT_FAILED":
        fail(submission.error or "the launch failed again")


@click.command()
@click.argument("ident")
@click.option("--user", "username")
@with_app
def approve(app: Flask, ident: str, username: str | None) -> None:
    """Approve a submission waiting for an admin (it is then submitted)."""
    from portal import submit as svc
    from portal.cluster.connect import slurm_client

    admin = acting_user(username, admin=True)
    submission = find_submission(ident)
    _run_service(
        lambda: svc.approve(
            submission, admin, app.config, slurm_client(app.config, submission.owner)
        )
    )
    show_submission(app, submission, False)


@click.command()
@click.argument("ident")
@click.option("--reason", required=True)
@click.option("--user", "username")
@with_app
def reject(app: Flask, ident: str, reason: str, username: str | None) -> None:
    """Reject a submission waiting for an admin, with a reason for its owner."""
    from portal import submit as svc

    admin = acting_user(username, admin=True)
    submission = find_submission(ident)
    _run_service(lambda: svc.reject(submission, admin, reason))
    click.echo(f"rejected {submission.uuid}: {reason}")


def _export_message(output: Path, target: str | Path) -> str:
    return f"wrote {output} (unpack it as {target}, then: cd {target} && sbatch job.sbatch)"


def _export_remote(client: PortalClient, ident: str, output: Path, run_dir: Path | None) -> None:
    if run_dir is not None and not run_dir.is_absolute():
        fail(f"--run-dir must be an absolute path, got {str(run_dir)!r}")
    target = client.export(find_remote(client, ident), output, str(run_dir) if run_dir else None)
    click.echo(_export_message(output, target))


@click.command()
@click.argument("ident")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    help="absolute folder the bundle will be unpacked as (default: the run folder)",
)
@remote_or_local(_export_remote)
def export(app: Flask, ident: str, output: Path, run_dir: Path | None) -> None:
    """Write a tarball (script, per-task configs, design, README) runnable with plain sbatch."""
    from portal.submit.export import ExportError, build_bundle

    submission = find_submission(ident)
    try:
        target = build_bundle(submission, app.config, output, run_dir=run_dir)
    except ExportError as exc:
        fail(str(exc))
    click.echo(_export_message(output, target))


def _print_results(table: Any, as_csv: bool, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(table.to_dict(), indent=2, default=str))
    elif as_csv:
        click.echo(table.to_csv(), nl=False)
    else:
        click.echo(table.to_text())


def _results_remote(
    client: PortalClient, ident: str, objectives: str | None, as_csv: bool, as_json: bool
) -> None:
    from portal.serialize import results_from_dict

    data = client.results(find_remote(client, ident), objectives)
    _print_results(results_from_dict(data), as_csv, as_json)


@click.command()
@click.argument("ident")
@click.option(
    "--objectives",
    help="e.g. area:min,setup_ws:max (default: area, power, setup slack and wirelength, "
    "those the tasks measured)",
)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@remote_or_local(_results_remote)
def results(app: Flask, ident: str, objectives: str | None, as_csv: bool, as_json: bool) -> None:
    """The sweep's design features with the Pareto front and the best point per objective."""
    from portal.results.table import ResultsError, results_table

    submission = find_submission(ident)
    try:
        table = results_table(submission, objectives)
    except ResultsError as exc:
        fail(str(exc))
    _print_results(table, as_csv, as_json)
