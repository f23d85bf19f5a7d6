"""The ``portal`` command line: database, users, submissions, polling, reports.

Every command runs against the portal's own database and settings (PORTAL_INSTANCE_PATH,
PORTAL_* variables). Bad input exits with status 2 and a one-line error; nothing is written.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask
from sqlalchemy import or_, select

from portal.models import Submission, User

ID_HELP = "submission uuid (or a unique prefix of at least 4 characters) or number"


class Context:
    """Lazily built application for the commands that need one."""

    def __init__(self) -> None:
        self._app: Flask | None = None

    @property
    def app(self) -> Flask:
        if self._app is None:
            from portal import create_app

            self._app = create_app()
        return self._app


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def fail(message: str) -> None:
    """Print a one-line error and exit 2."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def with_app(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command inside an application context."""

    @pass_ctx
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        with ctx.app.app_context():
            return func(ctx.app, *args, **kwargs)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


@click.group()
def main() -> None:
    """OpenLane Portal: run OpenLane sweeps as Slurm job arrays."""


# -- database and users ------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_app
def db_upgrade(app: Flask) -> None:
    """Create or migrate the database schema to the newest version."""
    from flask_migrate import upgrade

    upgrade()
    click.echo(f"database at {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]} is up to date")


@main.group()
def user() -> None:
    """Portal users."""


@user.command("add")
@click.argument("username")
@click.option("--email", required=True)
@click.option("--admin", is_flag=True, help="give the admin role")
@click.option("--account", "slurm_account", help="Slurm account charged for this user's jobs")
@click.option("--unix-user", help="Unix account jobs run as when SLURM_RUN_AS=user")
@click.option("--password-stdin", is_flag=True, help="read a password from standard input")
@with_app
def user_add(
    app: Flask,
    username: str,
    email: str,
    admin: bool,
    slurm_account: str | None,
    unix_user: str | None,
    password_stdin: bool,
) -> None:
    """Create a user (the email address is checked)."""
    from portal.accounts import AccountError, create_user
    from portal.extensions import db as database

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    try:
        created = create_user(
            username,
            email,
            password=password,
            role="admin" if admin else "user",
            slurm_account=slurm_account,
        )
    except AccountError as exc:
        fail(str(exc))
    if unix_user:
        created.unix_user = unix_user
    database.session.commit()
    click.echo(f"created {created.role} {created.username} <{created.email}>")


def acting_user(name: str | None, *, admin: bool = False) -> User:
    """The user a command acts as: --user, $PORTAL_USER, or the login name."""
    import os

    from portal.extensions import db as database

    wanted = name or os.environ.get("PORTAL_USER") or getpass.getuser()
    found = database.session.scalar(select(User).where(User.username == wanted))
    if found is None:
        fail(f"no portal user {wanted!r} (create one with `portal user add`)")
    if admin and not found.is_admin:
        fail(f"{wanted} is not an admin")
    return found


def find_submission(ident: str) -> Submission:
    """Resolve a submission by number, uuid or uuid prefix."""
    from portal.extensions import db as database

    ident = ident.strip()
    if ident.isdigit():
        found = database.session.get(Submission, int(ident))
        if found is not None:
            return found
    if len(ident) < 4 or not re.fullmatch(r"[0-9a-f-]+", ident):
        fail(f"no submission {ident!r}")
    matches = database.session.scalars(
        select(Submission).where(or_(Submission.uuid == ident, Submission.uuid.startswith(ident)))
    ).all()
    if len(matches) != 1:
        fail(f"no submission {ident!r}" if not matches else f"{ident!r} is ambiguous")
    return matches[0]


# -- submit --------------------------------------------------------------------------------------
def parse_mem(text: str) -> int:
    """``4096``, ``4096M``, ``4G`` -> MB."""
    match = re.fullmatch(r"(\d+)\s*([MmGgTt]?)[Bb]?", text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a memory size like 4096, 4096M or 4G")
    scale = {"": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * scale


def parse_time(text: str) -> int:
    """Slurm time formats (``60``, ``01:30:00``, ``1-00:00:00``) -> minutes."""
    from portal.slurm.commands import SlurmParseError, parse_time_limit

    try:
        minutes = parse_time_limit(text)
    except SlurmParseError:
        minutes = None
    if not minutes:
        raise click.BadParameter(f"{text!r} is not a time limit like 60, 01:30:00 or 1-00:00:00")
    return minutes


@main.command()
@click.option("--repo", required=True, help="Git URL of the design repository")
@click.option("--ref", default="main", show_default=True, help="branch, tag or commit")
@click.option("--design", "design_path", default="", help="design folder inside the repository")
@click.option(
    "--flow",
    default="openlane1",
    show_default=True,
    type=click.Choice(["openlane1", "openlane2", "librelane"]),
)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="fixed parameter")
@click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2|START:STOP:STEP")
@click.option("--zip", "zip_sweeps", is_flag=True, help="pair --sweep lists instead of a grid")
@click.option("--sweep-file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--cpus", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--mem", default="4G", show_default=True, help="memory per task (4096, 4G)")
@click.option("--time", "time_limit", default="01:00:00", show_default=True)
@click.option("--partition")
@click.option("--account")
@click.option("--qos")
@click.option("--throttle", default=0, type=click.IntRange(min=0), help="max tasks at once")
@click.option("--name", default="", help="a name to recognise the submission by")
@click.option("--no-notify", is_flag=True, help="no email when it finishes")
@click.option("--dry-run", is_flag=True, help="print the script and tasks; submit nothing")
@click.option("--user", "username", help="act as this portal user")
@click.option("--json", "as_json", is_flag=True)
@with_app
def submit(
    app: Flask,
    repo: str,
    ref: str,
    design_path: str,
    flow: str,
    sets: tuple[str, ...],
    sweeps: tuple[str, ...],
    zip_sweeps: bool,
    sweep_file: Path | None,
    cpus: int,
    mem: str,
    time_limit: str,
    partition: str | None,
    account: str | None,
    qos: str | None,
    throttle: int,
    name: str,
    no_notify: bool,
    dry_run: bool,
    username: str | None,
    as_json: bool,
) -> None:
    """Submit a design (optionally a sweep) as ONE Slurm job array."""
    from portal import submissions as svc
    from portal.cluster import slurm_client
    from portal.sweeps import SweepError, load_sweep_file, parse_cli_sets

    owner = acting_user(username)
    try:
        params = parse_cli_sets(sets)
        sweep = load_sweep_file(sweep_file).to_dict() if sweep_file else None
        if zip_sweeps and sweeps:
            sweep = {"kind": "zip", "parameters": dict(s.split("=", 1) for s in sweeps)}
            sweeps = ()
        resources = svc.Resources(
            cpus=cpus,
            mem_mb=parse_mem(mem),
            time_minutes=parse_time(time_limit),
            partition=partition,
            account=account or owner.slurm_account,
            qos=qos,
            throttle=throttle,
        )
    except (SweepError, click.BadParameter) as exc:
        fail(str(exc.message if isinstance(exc, click.BadParameter) else exc))
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref=ref,
        design_path=design_path,
        flow=flow,
        params=params,
        sweep=sweep,
        cli_sweeps=sweeps,
        resources=resources,
        name=name,
        notify=not no_notify,
    )
    slurm = slurm_client(app.config, owner)
    try:
        plan = svc.plan_submission(request, app.config, slurm)
    except svc.SubmissionError as exc:
        fail(str(exc))
    if dry_run:
        click.echo(svc.preview_script(plan, app.config, owner))
        click.echo(_points_table(plan.points))
        click.echo(
            f"{len(plan.points)} task(s), {plan.decision.core_hours:.1f} core-hours"
            + (
                "; needs admin approval: " + "; ".join(plan.decision.reasons)
                if plan.decision.needs_approval
                else ""
            )
        )
        return
    submission = svc.create_submission(plan, owner)
    if submission.state == "STAGING":
        svc.launch(submission, app.config, slurm, progress=_progress_printer(as_json))
    _show_submission(submission, as_json)
    if submission.state == "SUBMIT_FAILED":
        sys.exit(1)


def _progress_printer(quiet: bool) -> Callable[[str, float | None], None]:
    def show(stage: str, fraction: float | None) -> None:
        if not quiet:
            pct = f" {fraction:4.0%}" if fraction is not None else ""
            click.echo(f"  {stage}{pct}", err=True)

    return show


def _points_table(points: list[dict[str, Any]]) -> str:
    from portal.sweeps import sweep_table

    rows = [line.split("\t") for line in sweep_table(points).splitlines()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# -- status, cancel, resubmit, approve, reject -----------------------------------------------
def submission_dict(submission: Submission, *, tasks: bool = True) -> dict[str, Any]:
    """The JSON shape of a submission (the CLI's --json and the API share it)."""
    counts: dict[str, int] = {}
    for task in submission.tasks:
        counts[task.state] = counts.get(task.state, 0) + 1
    data: dict[str, Any] = {
        "id": submission.id,
        "uuid": submission.uuid,
        "name": submission.name,
        "owner": submission.owner.username,
        "state": submission.state,
        "flow": submission.flow,
        "repo_url": submission.repo_url,
        "ref": submission.ref,
        "commit": submission.commit,
        "design_path": submission.design_path,
        "job_ids": submission.job_ids,
        "n_tasks": submission.n_tasks,
        "task_states": counts,
        "cost_core_hours": round(submission.cost_core_hours, 3),
        "resources": submission.resources,
        "error": submission.error,
        "decision_reason": submission.decision_reason,
        "run_dir": submission.run_dir,
        "created_at": submission.created_at.isoformat() + "Z",
    }
    if tasks:
        data["tasks"] = [
            {
                "index": t.index,
                "state": t.state,
                "exit_code": t.exit_code,
                "job": f"{t.array_job_id}_{t.array_index}" if t.array_job_id else None,
                "node": t.node,
                "elapsed_seconds": t.elapsed_seconds,
                "params": t.params,
                "metrics": t.metrics,
            }
            for t in submission.tasks
        ]
    return data


def _show_submission(submission: Submission, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(submission_dict(submission), indent=2, default=str))
        return
    click.echo(f"{submission.uuid}  {submission.state}  {submission.name}")
    click.echo(
        f"  repo {submission.repo_url} @ {submission.ref} ({(submission.commit or '?')[:12]})"
    )
    click.echo(
        f"  flow {submission.flow}, {submission.n_tasks} task(s), jobs "
        f"{', '.join(submission.job_ids) or '-'}"
    )
    if submission.error:
        click.echo(f"  error: {submission.error}")
    if submission.decision_reason:
        click.echo(f"  approval: {submission.decision_reason}")
    for task in submission.tasks:
        job = f"{task.array_job_id}_{task.array_index}" if task.array_job_id else "-"
        code = "" if task.exit_code is None else f" exit {task.exit_code}"
        params = " ".join(f"{k}={v}" for k, v in task.params.items())
        click.echo(f"  [{task.index:>4}] {task.state:<13} {job:<12}{code}  {params}")


@main.command()
@click.argument("ident", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--all", "show_all", is_flag=True, help="every user's submissions (admins)")
@click.option("--user", "username")
@with_app
def status(
    app: Flask, ident: str | None, as_json: bool, show_all: bool, username: str | None
) -> None:
    """Show one submission with its tasks, or list submissions."""
    from portal.extensions import db as database

    if ident:
        _show_submission(find_submission(ident), as_json)
        return
    owner = acting_user(username, admin=show_all)
    query = select(Submission).order_by(Submission.id.desc()).limit(200)
    if not show_all:
        query = query.where(Submission.owner_id == owner.id)
    rows = database.session.scalars(query).all()
    if as_json:
        click.echo(
            json.dumps([submission_dict(s, tasks=False) for s in rows], indent=2, default=str)
        )
        return
    for sub in rows:
        click.echo(f"{sub.uuid[:8]}  {sub.state:<17} {sub.n_tasks:>5} tasks  {sub.name}")


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
        indices.extend(range(first, last + 1))
    return sorted(set(indices))


def _run_service(func: Callable[[], Any]) -> Any:
    from portal.slurm.client import SlurmError
    from portal.slurm.transports import TransportError
    from portal.submissions import SubmissionError

    try:
        return func()
    except SubmissionError as exc:
        fail(str(exc))
    except (SlurmError, TransportError) as exc:
        click.echo(f"error: Slurm: {exc}", err=True)
        sys.exit(1)


@main.command()
@click.argument("ident")
@click.option("--tasks", "task_list", help="only these task indices, e.g. 1,3-5")
@click.option("--user", "username")
@with_app
def cancel(app: Flask, ident: str, task_list: str | None, username: str | None) -> None:
    """Cancel a submission's array(s), or some of its tasks."""
    from portal import submissions as svc
    from portal.cluster import slurm_client

    submission = find_submission(ident)
    actor = acting_user(username)
    _check_owner(actor, submission)
    try:
        indices = parse_indices(task_list) if task_list else None
    except click.BadParameter as exc:
        fail(exc.message)
    _run_service(
        lambda: svc.cancel(
            submission, slurm_client(app.config, submission.owner), indices, actor=actor
        )
    )
    click.echo(
        f"cancel requested for {submission.uuid}" + (f" tasks {task_list}" if task_list else "")
    )


def _check_owner(actor: User, submission: Submission) -> None:
    if submission.owner_id != actor.id and not actor.is_admin:
        fail(f"{actor.username} may not change {submission.owner.username}'s submission")


@main.command()
@click.argument("ident")
@click.option("--failed", is_flag=True, required=True, help="resubmit the failed tasks")
@click.option("--user", "username")
@with_app
def resubmit(app: Flask, ident: str, failed: bool, username: str | None) -> None:
    """Submit ONE new array over only the failed task indices."""
    from portal import submissions as svc
    from portal.cluster import slurm_client

    submission = find_submission(ident)
    actor = acting_user(username)
    _check_owner(actor, submission)
    indices = _run_service(
        lambda: svc.resubmit_failed(
            submission, app.config, slurm_client(app.config, submission.owner), actor=actor
        )
    )
    click.echo(f"resubmitted tasks {','.join(map(str, indices))} as job {submission.job_ids[-1]}")


@main.command()
@click.argument("ident")
@click.option("--user", "username")
@with_app
def approve(app: Flask, ident: str, username: str | None) -> None:
    """Approve a submission waiting for an admin (it is then submitted)."""
    from portal import submissions as svc
    from portal.cluster import slurm_client

    admin = acting_user(username, admin=True)
    submission = find_submission(ident)
    _run_service(
        lambda: svc.approve(
            submission, admin, app.config, slurm_client(app.config, submission.owner)
        )
    )
    _show_submission(submission, False)


@main.command()
@click.argument("ident")
@click.option("--reason", required=True)
@click.option("--user", "username")
@with_app
def reject(app: Flask, ident: str, reason: str, username: str | None) -> None:
    """Reject a submission waiting for an admin, with a reason for its owner."""
    from portal import submissions as svc

    admin = acting_user(username, admin=True)
    submission = find_submission(ident)
    _run_service(lambda: svc.reject(submission, admin, reason))
    click.echo(f"rejected {submission.uuid}: {reason}")


@main.command()
@click.argument("ident")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--run-dir",
    type=click.Path(path_type=Path),
    help="absolute folder the bundle will be unpacked as (default: the run folder)",
)
@with_app
def export(app: Flask, ident: str, output: Path, run_dir: Path | None) -> None:
    """Write a tarball (script, per-task configs, design, README) runnable with plain sbatch."""
    from portal.export import ExportError, build_bundle

    submission = find_submission(ident)
    try:
        target = build_bundle(submission, app.config, output, run_dir=run_dir)
    except ExportError as exc:
        fail(str(exc))
    click.echo(f"wrote {output} (unpack it as {target}, then: cd {target} && sbatch job.sbatch)")


# -- poller --------------------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="run one cycle and exit")
@with_app
def poll(app: Flask, once: bool) -> None:
    """Follow Slurm: one sacct call per cycle for every unfinished task."""
    from portal.cluster import slurm_client
    from portal.poller import Poller

    poller = Poller(app, slurm_client(app.config))
    if once:
        stats = poller.run_cycle()
        if stats is None:
            click.echo("another poller holds the lease, or Slurm did not answer", err=True)
            sys.exit(1)
        click.echo(json.dumps(stats.__dict__))
        return
    from portal.scheduler import run_forever

    run_forever(app, poller)


# -- results and reports -------------------------------------------------------------------------
@main.command()
@click.argument("ident")
@click.option(
    "--objectives",
    help="e.g. area:min,setup_ws:max (default: area, power, setup slack and wirelength, "
    "those the tasks measured)",
)
@click.option("--csv", "as_csv", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@with_app
def results(app: Flask, ident: str, objectives: str | None, as_csv: bool, as_json: bool) -> None:
    """The sweep's design features with the Pareto front and the best point per objective."""
    from portal.results import ResultsError, results_table

    submission = find_submission(ident)
    try:
        table = results_table(submission, objectives)
    except ResultsError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(table.to_dict(), indent=2, default=str))
    elif as_csv:
        click.echo(table.to_csv(), nl=False)
    else:
        click.echo(table.to_text())


@main.group()
def reports() -> None:
    """OpenLane report files."""


@reports.command("parse")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def reports_parse(path: Path, as_json: bool) -> None:
    """Parse a metrics.csv, a metrics.json or a run folder into design features."""
    from portal.flows.reports import parse_path

    try:
        records = parse_path(path)
    except (ValueError, OSError) as exc:
        fail(f"{path}: {exc}")
    if not records:
        fail(f"{path}: no OpenLane reports found")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in records], indent=2, default=str))
        return
    for record in records:
        click.echo(_features_text(record.to_dict(include_raw=False)))


def _features_text(features: dict[str, Any]) -> str:
    from portal.flows.features import FIELDS

    lines = [
        f"{features.get('design') or '?'} ({features.get('flow')}, {features.get('flow_status')})"
    ]
    for name, spec in FIELDS.items():
        value = features.get(name)
        if value is not None and name not in ("design", "flow", "flow_status"):
            unit = f" {spec.unit}" if spec.unit else ""
            lines.append(f"  {spec.label:<28} {value}{unit}")
    return "\n".join(lines)


@main.group()
def config() -> None:
    """Design configurations."""


@config.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pdk", default="sky130A", show_default=True)
@click.option("--scl", default="sky130_fd_sc_hd", show_default=True)
@click.option(
    "--flow",
    default="openlane1",
    show_default=True,
    type=click.Choice(["openlane1", "openlane2", "librelane"]),
)
@click.option("--json", "as_json", is_flag=True)
def config_check(path: Path, pdk: str, scl: str, flow: str, as_json: bool) -> None:
    """Validate a design config (config.json / config.tcl / config.yaml)."""
    from portal.flows.designconfig import check_config

    report = check_config(path, pdk=pdk, scl=scl, flow=flow)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(_report_text(path, report.to_dict()))
    sys.exit(1 if report.errors else 0)


def _report_text(path: Path, report: dict[str, Any]) -> str:
    lines = [
        f"{path}: {len(report.get('known', []))} known, {len(report.get('unknown', []))} "
        f"unknown, {len(report.get('deprecated', []))} deprecated variable(s)"
    ]
    for kind in ("errors", "warnings"):
        for item in report.get(kind, []):
            line, message = _issue(item)
            where = f"line {line}: " if line else ""
            lines.append(f"  {kind[:-1]}: {where}{message}")
    return "\n".join(lines)


def _issue(item: Any) -> tuple[Any, str]:
    if isinstance(item, dict):
        return item.get("line"), str(item.get("message"))
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], str(item[1])
    return None, str(item)


# -- mail ------------------------------------------------------------------------------------------
@main.group()
def mail() -> None:
    """Outgoing email."""


@mail.command("flush")
@with_app
def mail_flush(app: Flask) -> None:
    """Send every queued message now, ignoring backoff."""
    from portal.notify import flush_outbox

    click.echo(json.dumps(flush_outbox()))


if __name__ == "__main__":
    main()
