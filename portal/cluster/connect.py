"""The Slurm client the portal uses, built from settings (transport, run-as, timeout).

With ``SLURM_RUN_AS='user'`` sbatch and scancel run as the owner's Unix account
(``User.unix_user``) through ``sudo -n -u``; queries keep running as the portal's account. A
user without a valid Unix account gets a :class:`RunAsError` and nothing is submitted.
"""

from __future__ import annotations

import re

from portal.config import SettingsLike, as_settings
from portal.errors import SubmissionError
from portal.models import User
from portal.slurm.client import SlurmClient
from portal.slurm.transports import run_as_mode, transport_from_settings

#: A portable Unix login name: no leading ``-`` (an option to sudo) or ``#`` (a uid to sudo).
UNIX_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")


class RunAsError(SubmissionError):
    """With SLURM_RUN_AS='user', the user has no Unix account jobs could run as."""


def run_as_user(settings: SettingsLike, user: User | None) -> str | None:
    """The Unix account ``user``'s jobs run as: None in service mode, else ``user.unix_user``.

    Raises :class:`RunAsError` in user mode when the account is missing, not a plain login
    name, or ``root``; :class:`~portal.slurm.transports.SlurmConfigError` for bad settings.
    """
    if run_as_mode(settings) != "user" or user is None:
        return None
    name = user.unix_user
    if not name:
        raise RunAsError(
            f"portal user {user.username!r} has no Unix account: this site runs jobs as the "
            f"designer's own account (SLURM_RUN_AS='user'), so an admin must set one for "
            f"{user.username!r} before anything can be submitted or cancelled"
        )
    if not UNIX_NAME_RE.match(name) or name == "root":
        raise RunAsError(
            f"portal user {user.username!r} has an unusable Unix account {name!r} "
            f"(a plain login name other than root is needed)"
        )
    return name


def slurm_client(settings: SettingsLike, user: User | None = None) -> SlurmClient:
    """A client for ``settings``; with SLURM_RUN_AS=user, sbatch/scancel run as ``user``."""
    transport = transport_from_settings(settings, run_as=run_as_user(settings, user))
    return SlurmClient(transport, timeout=float(as_settings(settings).SLURM_COMMAND_TIMEOUT or 60))


def client_for_owner(slurm: SlurmClient, settings: SettingsLike, owner: User) -> SlurmClient:
    """``slurm`` itself, unless jobs must run as ``owner`` and it does not: then a client that
    does (the poller's service client relaunching a stuck submission, for instance)."""
    wanted = run_as_user(settings, owner)
    if wanted is None or getattr(slurm.transport, "run_as", None) == wanted:
        return slurm
    return slurm_client(settings, owner)
