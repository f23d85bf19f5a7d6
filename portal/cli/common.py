"""What every ``portal`` command shares: the lazy app or API client, errors, --server handling,
finding users and submissions, printing a submission.
"""

from __future__ import annotations

import getpass
import json
import re
import sys
from collections.abc import Callable
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
            from portal.config import SettingsError

            try:
                self._app = create_app()
            except SettingsError as exc:
                fail(str(exc))
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
                return remote_call(lambda: remote(ctx.client, *args, **kwargs))
            with ctx.app.app_context():
                return func(ctx.app, *args, **kwargs)

        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper

    return decorate


def remote_call(call: Callable[[], Any]) -> Any:
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


def local_submission_dict(app: Flask, submission: Submission) -> dict[str, Any]:
    """The submission's JSON shape (as the API gives it, plus the run folder)."""
    from portal.extensions import db as database
    from portal.serialize import submission_dict, task_counts

    counts = task_counts(database.session, [submission.id])[submission.id]
    return submission_dict(submission, counts, site_url=app.config["SITE_URL"], local=True)


def print_submission(data: dict[str, Any], tasks: list[dict[str, Any]], as_json: bool) -> None:
    from portal.serialize import submission_text

    if as_json:
        click.echo(json.dumps({**data, "tasks": tasks}, indent=2, default=str))
    else:
        click.echo(submission_text(data, tasks))


def show_submission(app: Flask, submission: Submission, as_json: bool) -> None:
    from portal.serialize import task_dict

    data = local_submission_dict(app, submission)
    print_submission(data, [task_dict(t) for t in submission.tasks], as_json)


def print_list(items: list[dict[str, Any]], as_json: bool) -> None:
    from portal.serialize import submission_row

    if as_json:
        click.echo(json.dumps(items, indent=2, default=str))
        return
    for item in items:
        click.echo(submission_row(item))
