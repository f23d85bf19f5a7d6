"""The ``portal`` command line: database, users, tokens, submissions, polling, reports.

Commands run against the portal's own database and settings (PORTAL_INSTANCE_PATH,
PORTAL_* variables). With ``--server URL`` (or PORTAL_SERVER) the submission commands --
submit, status, cancel, resubmit, results, export -- go through the REST API instead
(:mod:`portal.apiclient`, token from PORTAL_TOKEN or the config file) and print the same thing.
Bad input exits with status 2 and a one-line error; nothing is written.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from flask import Flask
from sqlalchemy import or_, select

from portal.models import Submission, User

if TYPE_CHECKING:
    from portal.apiclient import PortalClient

ID_HELP = "submission uuid (or a unique prefix of at least 4 characters) or number"
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Commands that also work against a remote portal (``--server``).
REMOTE_COMMANDS = ("submit", "status", "cancel", "resubmit", "retry", "results", "export")
MAX_SWEEP_FILE_BYTES = 5 * 1024 * 1024


class Context:
    """Lazily built application (local) or API client (``--server``) for the commands."""

    def __init__(self) -> None:
        self._app: Flask | None = None
        self._client: PortalClient | None = None
        self.server: str | None = None

    @property
    def app(self) -> Flask:
        if self._app is None:
            from portal import create_app

            self._app = create_app()
        return self._app

    @property
    def client(self) -> PortalClient:
        """The API client for ``--server`` (fails clearly without a token)."""
        if self._client is None:
            from portal.apiclient import PortalClient, PortalConfigError, load_token

            try:
                self._client = PortalClient(str(self.server), load_token())
            except PortalConfigError as exc:
                fail(str(exc))
        return self._client


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def fail(message: str, status: int = 2) -> NoReturn:
    """Print a one-line error and exit (2: refused input)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def with_app(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command inside an application context (on the portal host only)."""

    @pass_ctx
    def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        if ctx.server:
            name = click.get_current_context().command_path
            fail(
                f"`{name}` runs on the portal host only; with --server use one of: "
                f"{', '.join(REMOTE_COMMANDS)}"
            )
        with ctx.app.app_context():
            return func(ctx.app, *args, **kwargs)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def remote_or_local(
    remote: Callable[..., Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run ``remote(client, **options)`` with ``--server``, else the local command."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @pass_ctx
        def wrapper(ctx: Context, *args: Any, **kwargs: Any) -> Any:
            if ctx.server:
                if kwargs.get("username"):
                    fail("--user does not apply with --server: your API token says who you are")
                kwargs.pop("username", None)
                return _remote_call(lambda: remote(ctx.client, *args, **kwargs))
            with ctx.app.app_context():
                return func(ctx.app, *args, **kwargs)

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate


def _remote_call(call: Callable[[], Any]) -> Any:
    """Turn API errors into the CLI's errors (exit 1 when Slurm or the server is down)."""
    from portal.apiclient import PortalAPIError

    try:
        return call()
    except PortalAPIError as exc:
        if exc.code == "slurm_unavailable":
            fail(f"Slurm: {exc.message}", 1)
        if exc.code in ("unreachable", "internal_error", "http_error", "bad_response"):
            fail(exc.message, 1)
        fail(exc.message)


@click.group()
@click.option(
    "--server",
    envvar="PORTAL_SERVER",
    metavar="URL",
    help="a portal to use through its REST API (submit, status, cancel, resubmit, results, "
    "export); the token comes from PORTAL_TOKEN or ~/.config/openlane-portal/config.toml",
)
@pass_ctx
def main(ctx: Context, server: str | None) -> None:
    """OpenLane Portal: run OpenLane sweeps as Slurm job arrays."""
    ctx.server = server.strip() if server and server.strip() else None


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


def find_remote(client: PortalClient, ident: str) -> str:
    """The uuid of a remote submission named by its uuid or a unique prefix of it."""
    ident = ident.strip().lower()
    if UUID_RE.fullmatch(ident):
        return ident
    if len(ident) < 4 or not re.fullmatch(r"[0-9a-f-]+", ident):
        hint = " (submission numbers work on the portal host only)" if ident.isdigit() else ""
        fail(f"no submission {ident!r}{hint}")
    page = client.list(uuid=ident, per_page=2)
    if page["total"] != 1:
        fail(f"no submission {ident!r}" if not page["total"] else f"{ident!r} is ambiguous")
    return str(page["items"][0]["uuid"])


# -- API tokens ----------------------------------------------------------------------------------
@main.group()
def token() -> None:
    """Personal API tokens (for the REST API and `portal --server`)."""


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="what the token is for, e.g. the laptop using it")
@with_app
def token_create(app: Flask, username: str, name: str) -> None:
    """Create an API token for USERNAME and print it (shown this once only)."""
    from portal.accounts import AccountError, create_api_token
    from portal.extensions import db as database

    owner = database.session.scalar(select(User).where(User.username == username))
    if owner is None:
        fail(f"no portal user {username!r}")
    if not owner.active:
        fail(f"{username} is not active")
    try:
        plaintext, row = create_api_token(owner, name)
    except AccountError as exc:
        fail(str(exc))
    click.echo(
        f"created token {row.id} {row.name!r} for {owner.username}; it is shown only now:",
        err=True,
    )
    click.echo(plaintext)


@token.command("list")
@click.argument("username", required=False)
@click.option("--json", "as_json", is_flag=True)
@with_app
def token_list(app: Flask, username: str | None, as_json: bool) -> None:
    """List API tokens (of USERNAME, or everybody's); never their secret."""
    from portal.extensions import db as database
    from portal.models import ApiToken
    from portal.serialize import isotime

    query = select(ApiToken).join(ApiToken.user).order_by(ApiToken.id)
    if username:
        if database.session.scalar(select(User.id).where(User.username == username)) is None:
            fail(f"no portal user {username!r}")
        query = query.where(User.username == username)
    rows = [
        {
            "id": t.id,
            "user": t.user.username,
            "name": t.name,
            "prefix": t.prefix,
            "created_at": isotime(t.created_at),
            "last_used_at": isotime(t.last_used_at),
            "revoked_at": isotime(t.revoked_at),
        }
        for t in database.session.scalars(query)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
        used = row["last_used_at"] or "never"
        click.echo(
            f"{row['id']:>5}  {row['prefix']}...  {row['user']:<16} {state:<30} "
            f"last used {used}  {row['name']}"
        )


@token.command("revoke")
@click.argument("ident")
@with_app
def token_revoke(app: Flask, ident: str) -> None:
    """Revoke a token by its number or its prefix (olp_...)."""
    from portal.accounts import revoke_api_token
    from portal.extensions import db as database
    from portal.models import ApiToken

    ident = ident.strip()
    if ident.isdigit():
        found = database.session.get(ApiToken, int(ident))
    else:
        matches = database.session.scalars(
            select(ApiToken).where(ApiToken.prefix == ident[:12])
        ).all()
        found = matches[0] if len(matches) == 1 and len(ident) >= 8 else None
    if found is None:
        fail(f"no token {ident!r} (see `portal token list`)")
    already = found.revoked_at is not None
    revoke_api_token(found)
    click.echo(
        f"token {found.id} {found.name!r} of {found.user.username} "
        + ("was already revoked" if already else "revoked")
    )


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


def _pairs(args: tuple[str, ...], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` words -> a mapping (the server checks names and values)."""
    out: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"{flag} expects NAME=VALUE, got {arg!r}")
        if name in out:
            fail(f"{flag} {name} given twice")
        out[name] = value
    return out


def _read_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep file (YAML or JSON) as a mapping, for the server to check."""
    import yaml

    if path.stat().st_size > MAX_SWEEP_FILE_BYTES:
        fail(f"{path} is larger than {MAX_SWEEP_FILE_BYTES // (1024 * 1024)} MB")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        fail(f"{path}: {exc}")
    if not isinstance(data, dict):
        fail(f"{path}: a sweep file holds a mapping (kind, parameters, ...)")
    return data


def _dry_run_text(summary: dict[str, Any]) -> str:
    """The CLI's form of a dry run's answer (:func:`portal.submit.dry_run`, local or remote)."""
    reasons = summary.get("reasons") or []
    line = f"{summary['tasks']} task(s), {summary['core_hours']:.1f} core-hours" + (
        "; needs admin approval: " + "; ".join(reasons) if summary["needs_approval"] else ""
    )
    return "\n".join([summary["script"], _points_table(summary["points"]), line])


def _points_table(points: list[dict[str, Any]]) -> str:
    from portal.submit.sweeps import sweep_table

    rows = [line.split("\t") for line in sweep_table(points).splitlines()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _submit_remote(
    client: PortalClient,
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
    as_json: bool,
) -> None:
    try:
        resources = {
            "cpus": cpus,
            "mem_mb": parse_mem(mem),
            "time_minutes": parse_time(time_limit),
            "partition": partition,
            "account": account,
            "qos": qos,
            "throttle": throttle,
        }
    except click.BadParameter as exc:
        fail(exc.message)
    sweep = _read_sweep_file(sweep_file) if sweep_file else None
    if zip_sweeps and sweeps:
        sweep = {"kind": "zip", "parameters": _pairs(sweeps, "--sweep")}
        sweeps = ()
    answer = client.submit(
        repo,
        ref=ref,
        design_path=design_path,
        flow=flow,
        params=_pairs(sets, "--set"),
        sweep=sweep,
        sweeps=sweeps,
        resources=resources,
        name=name,
        notify=not no_notify,
        dry_run=dry_run,
    )
    if dry_run:
        click.echo(_dry_run_text(answer))
        return
    tasks = client.tasks(answer["uuid"])
    _print_submission(answer, tasks, as_json)
    if answer["state"] == "SUBMIT_FAILED":
        sys.exit(1)


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
@remote_or_local(_submit_remote)
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
    from portal import submit as svc
    from portal.cluster.connect import slurm_client
    from portal.submit.sweeps import SweepError, load_sweep_file, parse_cli_sets

    owner = acting_user(username)
    try:
        params = parse_cli_sets(sets)
        sweep = load_sweep_file(sweep_file).to_dict() if sweep_file else None
        if zip_sweeps and sweeps:
            sweep = {"kind": "zip", "parameters": _pairs(sweeps, "--sweep")}
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
    try:
        slurm = slurm_client(app.config, owner)  # a missing Unix account is refused here
        plan = svc.plan_submission(request, app.config, slurm, owner=owner)
    except svc.SubmissionError as exc:
        fail(str(exc))
    if dry_run:
        try:
            click.echo(_dry_run_text(svc.dry_run(plan, app.config, owner)))
        except svc.SubmissionError as exc:
            fail(str(exc))
        return
    if plan.cluster_error is not None:
        fail(f"Slurm does not answer ({plan.cluster_error}); nothing was submitted")
    submission = svc.create_submission(plan, owner)
    if submission.state == "STAGING":
        svc.launch(submission, app.config, slurm, progress=_progress_printer(as_json))
    _show_submission(app, submission, as_json)
    if submission.state == "SUBMIT_FAILED":
        sys.exit(1)


def _progress_printer(quiet: bool) -> Callable[[str, float | None], None]:
    def show(stage: str, fraction: float | None) -> None:
        if not quiet:
            pct = f" {fraction:4.0%}" if fraction is not None else ""
            click.echo(f"  {stage}{pct}", err=True)

    return show


# -- status, cancel, resubmit, approve, reject -----------------------------------------------
def local_submission_dict(app: Flask, submission: Submission) -> dict[str, Any]:
    """The submission's JSON shape (as the API gives it, plus the run folder)."""
    from portal.extensions import db as database
    from portal.serialize import submission_dict, task_counts

    counts = task_counts(database.session, [submission.id])[submission.id]
    return submission_dict(submission, counts, site_url=app.config["SITE_URL"], local=True)


def _print_submission(data: dict[str, Any], tasks: list[dict[str, Any]], as_json: bool) -> None:
    from portal.serialize import submission_text

    if as_json:
        click.echo(json.dumps({**data, "tasks": tasks}, indent=2, default=str))
    else:
        click.echo(submission_text(data, tasks))


def _show_submission(app: Flask, submission: Submission, as_json: bool) -> None:
    from portal.serialize import task_dict

    data = local_submission_dict(app, submission)
    _print_submission(data, [task_dict(t) for t in submission.tasks], as_json)


def _print_list(items: list[dict[str, Any]], as_json: bool) -> None:
    from portal.serialize import submission_row

    if as_json:
        click.echo(json.dumps(items, indent=2, default=str))
        return
    for item in items:
        click.echo(submission_row(item))


def _status_remote(client: PortalClient, ident: str | None, as_json: bool, show_all: bool) -> None:
    if ident:
        uuid = find_remote(client, ident)
        _print_submission(client.get(uuid), client.tasks(uuid), as_json)
        return
    if show_all:
        me = client.me()["user"]
        if me["role"] != "admin":
            fail(f"{me['username']} is not an admin")
    _print_list(list(client.iter_submissions(limit=200, mine=not show_all)), as_json)


@main.command()
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
        _show_submission(app, find_submission(ident), as_json)
        return
    owner = acting_user(username, admin=show_all)
    query = select(Submission).order_by(Submission.id.desc()).limit(200)
    if not show_all:
        query = query.where(Submission.owner_id == owner.id)
    rows = database.session.scalars(query).all()
    counts = task_counts(database.session, [s.id for s in rows])
    site = app.config["SITE_URL"]
    _print_list(
        [submission_dict(s, counts[s.id], site_url=site, local=True) for s in rows], as_json
    )


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


@main.command()
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


@main.command()
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


@main.command()
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


@main.command()
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
    _show_submission(app, submission, False)


@main.command()
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


@main.command()
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


# -- poller --------------------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="run one cycle and exit")
@with_app
def poll(app: Flask, once: bool) -> None:
    """Follow Slurm: one sacct call per cycle for every unfinished task."""
    from portal.cluster.connect import slurm_client
    from portal.submit.background import HandOver
    from portal.track.pollstats import RecordingPoller

    poller = RecordingPoller(app, slurm_client(app.config), hand_over=HandOver(app))
    if once:
        try:
            stats = poller.run_cycle()
        finally:
            poller.stop()  # one cycle: leave the lease to the next poller at once
        if stats is None:
            click.echo("another poller holds the lease, or Slurm did not answer", err=True)
            sys.exit(1)
        click.echo(json.dumps(stats.__dict__))
        return
    from portal.track.scheduler import run_forever

    run_forever(app, poller)


# -- results and reports -------------------------------------------------------------------------
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


@main.command()
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
    from portal.mail.outbox import flush_outbox

    click.echo(json.dumps(flush_outbox()))


if __name__ == "__main__":
    main()
