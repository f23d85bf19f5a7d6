"""The Slurm client the portal uses, built from settings (transport, run-as, timeout)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portal.models import User
from portal.slurm.client import SlurmClient
from portal.slurm.transports import transport_from_settings


def slurm_client(settings: Mapping[str, Any], user: User | None = None) -> SlurmClient:
    """A client for ``settings``; with SLURM_RUN_AS=user, sbatch/scancel run as the user."""
    run_as = None
    if settings.get("SLURM_RUN_AS") == "user" and user is not None:
        run_as = user.unix_user or user.username
    transport = transport_from_settings(settings, run_as=run_as)
    return SlurmClient(transport, timeout=float(settings.get("SLURM_COMMAND_TIMEOUT") or 60))
