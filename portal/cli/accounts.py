"""``portal db``, ``portal user`` and ``portal token``: the schema, accounts and API tokens."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click
from flask import Flask
from sqlalchemy import select

from portal.cli.common import fail, with_app
from portal.models import User

if TYPE_CHECKING:
    pass


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@with_app
def db_upgrade(app: Flask) -> None:
    """Create or migrate the database schema to the newest version."""
    from flask_migrate import upgrade

    upgrade()
    click.echo(f"database at {app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]} is up to date")


@click.group()
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


@click.group()
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
