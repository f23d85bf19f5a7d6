"""Approval rules: a submission whose cost is over a site threshold waits for an admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portal.config import SettingsLike, as_settings


@dataclass(frozen=True)
class PolicyDecision:
    """The cost of a submission and whether (and why) it needs an admin's approval."""

    core_hours: float
    needs_approval: bool
    reasons: tuple[str, ...]


def core_hours(n_tasks: int, cpus_per_task: int, time_limit_minutes: int) -> float:
    """Worst-case cost: tasks x cpus x walltime hours."""
    return n_tasks * cpus_per_task * time_limit_minutes / 60.0


def decide(
    n_tasks: int, cpus_per_task: int, time_limit_minutes: int, settings: SettingsLike
) -> PolicyDecision:
    """Apply the site's thresholds (APPROVAL_CORE_HOURS, APPROVAL_ARRAY_SIZE)."""
    cost = core_hours(n_tasks, cpus_per_task, time_limit_minutes)
    reasons = []
    settings = as_settings(settings)
    max_cost = float(settings.APPROVAL_CORE_HOURS)
    max_tasks = settings.APPROVAL_ARRAY_SIZE
    if cost > max_cost:
        reasons.append(f"{cost:.1f} core-hours is over the {max_cost:g} core-hour threshold")
    if n_tasks > max_tasks:
        reasons.append(f"{n_tasks} tasks is over the {max_tasks} task threshold")
    return PolicyDecision(core_hours=cost, needs_approval=bool(reasons), reasons=tuple(reasons))


@dataclass(frozen=True)
class ChargeGrant:
    """The Slurm accounts and QOS one designer may put on their jobs.

    ``accounts`` empty means only the cluster's default for the job's user; ``qos`` empty
    means only the account's default QOS.
    """

    accounts: tuple[str, ...]
    qos: tuple[str, ...]


def charge_grant(
    portal_account: str | None,
    settings: SettingsLike,
    associations: Mapping[str, tuple[str, ...]] | None = None,
) -> ChargeGrant:
    """What the portal grants (the user's account, else SLURM_DEFAULT_ACCOUNT; the site's
    SLURM_ALLOWED_QOS) plus, when jobs run as the designer's own Unix user, what Slurm's
    associations of that user grant (``associations``: account -> QOS)."""
    settings = as_settings(settings)
    granted = portal_account or settings.SLURM_DEFAULT_ACCOUNT or None
    accounts = {granted} if granted else set()
    qos = set(settings.SLURM_ALLOWED_QOS)
    for account, account_qos in (associations or {}).items():
        accounts.add(account)
        qos.update(account_qos)
    return ChargeGrant(tuple(sorted(accounts)), tuple(sorted(qos)))


def check_charge(account: str | None, qos: str | None, grant: ChargeGrant) -> None:
    """Raise ``ValueError`` (a sentence with the allowed names) unless ``grant`` covers the
    account and QOS asked for (None asks for the default)."""
    if account is not None and account not in grant.accounts:
        allowed = ", ".join(grant.accounts) or "none: only the cluster's default"
        raise ValueError(f"you may not charge Slurm account {account!r} (yours: {allowed})")
    if qos is not None and qos not in grant.qos:
        allowed = ", ".join(grant.qos) or "none: only your account's default"
        raise ValueError(f"you may not use Slurm QOS {qos!r} (yours: {allowed})")
