"""The ``portal`` command line: database, users, tokens, submissions, polling, reports.

Commands run against the portal's own database and settings (PORTAL_INSTANCE_PATH,
PORTAL_* variables). With ``--server URL`` (or PORTAL_SERVER) the submission commands --
submit, status, cancel, resubmit, results, export -- go through the REST API instead
(:mod:`portal.apiclient`, token from PORTAL_TOKEN or the config file) and print the same thing.
Bad input exits with status 2 and a one-line error; nothing is written.

One module per command group: :mod:`~portal.cli.accounts` (db, user, token),
:mod:`~portal.cli.submit`, :mod:`~portal.cli.manage` (status, cancel, resubmit, retry, approve,
reject, export, results), :mod:`~portal.cli.site` (poll, reports, config, mail);
:mod:`~portal.cli.common` holds what they share.
"""

from __future__ import annotations

import click

from portal.cli import accounts, manage, site, submit
from portal.cli.common import Context, pass_ctx


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


for command in (
    accounts.db,
    accounts.user,
    accounts.token,
    submit.submit,
    manage.status,
    manage.cancel,
    manage.resubmit,
    manage.retry,
    manage.approve,
    manage.reject,
    manage.export,
    manage.results,
    site.poll,
    site.reports,
    site.config,
    site.mail,
    site.settings,
):
    main.add_command(command)
