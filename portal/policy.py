"""Approval rules: a submission whose cost is over a site threshold waits for an admin."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
    n_tasks: int, cpus_per_task: int, time_limit_minutes: int, settings: Mapping[str, Any]
) -> PolicyDecision:
    """Apply the site's thresholds (APPROVAL_CORE_HOURS, APPROVAL_ARRAY_SIZE)."""
    cost = core_hours(n_tasks, cpus_per_task, time_limit_minutes)
    reasons = []
    max_cost = float(settings["APPROVAL_CORE_HOURS"])
    max_tasks = int(settings["APPROVAL_ARRAY_SIZE"])
    if cost > max_cost:
        reasons.append(f"{cost:.1f} core-hours is over the {max_cost:g} core-hour threshold")
    if n_tasks > max_tasks:
        reasons.append(f"{n_tasks} tasks is over the {max_tasks} task threshold")
    return PolicyDecision(core_hours=cost, needs_approval=bool(reasons), reasons=tuple(reasons))
