"""The approval queue's service side: preview a waiting submission's script, approve it once.

:func:`preview_stored` renders the exact sbatch script(s) of a *recorded* submission (the
submit form's preview works from a Plan instead), from a throwaway clone of its repository.

:func:`approve_and_launch` records the admin's approval and starts the launch with
:func:`portal.submit.background.start_launch`: in the background by default, so the admin's
request does not wait for the clone and sbatch, inside the request with ``LAUNCH_IN_BACKGROUND``
false.
The approval itself is :func:`portal.submit.record_approval` (one conditional UPDATE, so
of two admins approving at once exactly one launches it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import SettingsLike, as_settings
from portal.flows.types import FlowError
from portal.models import Submission, User
from portal.submit import SubmissionError, record_approval, render_for
from portal.submit.background import start_launch
from portal.submit.checkout import StagingError, stage_repository
from portal.submit.gitpolicy import GitPolicy, GitURLError
from portal.submit.sbatch import RenderError
from portal.submit.script import joined

#: Values of one swept parameter shown before "…".
SHOWN_VALUES = 6


def describe_sweep(spec: Mapping[str, Any] | None) -> str:
    """One line saying what a stored sweep spec varies: ``grid: CLOCK_PERIOD 10, 20, 30``."""
    if not spec or spec.get("kind", "single") == "single":
        return "single point"
    kind = str(spec.get("kind"))
    if kind == "list":
        return f"list of {len(spec.get('points') or [])} points"
    if kind == "random":
        names = ", ".join(sorted(spec.get("ranges") or {}))
        return f"random: {spec.get('samples')} samples (seed {spec.get('seed')}) over {names}"
    axes = []
    for name, axis in (spec.get("parameters") or {}).items():
        if isinstance(axis, Mapping):
            axes.append(f"{name} {axis.get('start')}..{axis.get('stop')} step {axis.get('step')}")
        else:
            values = [str(v) for v in axis]
            more = ", …" if len(values) > SHOWN_VALUES else ""
            axes.append(f"{name} {', '.join(values[:SHOWN_VALUES])}{more}")
    return f"{kind}: {'; '.join(axes)}" if axes else kind


def preview_stored(
    submission: Submission, settings: SettingsLike, max_array_size: int = 1001
) -> str:
    """The script(s) ``submission`` would submit now, from a scratch clone (nothing kept).

    The branch or tag is resolved again, so the commit may differ from the one pinned at
    launch if the ref moved meanwhile. Raises :class:`SubmissionError` with the reason when
    the repository or design cannot be read.
    """
    settings = as_settings(settings)
    with tempfile.TemporaryDirectory(prefix="olp-admin-preview-") as tmp:
        checkout = Path(tmp) / "design"
        try:
            git_policy = GitPolicy.from_settings(settings)
            stage_repository(
                git_policy.check_url(submission.repo_url),
                submission.commit or submission.ref,
                checkout,
                timeout_s=float(settings.GIT_CLONE_TIMEOUT),
                max_mb=settings.GIT_MAX_REPO_MB,
                allowed_private=git_policy.allowed_private,
            )
            rendered = render_for(submission, checkout, settings, max_array_size=max_array_size)
        except (GitURLError, StagingError, FlowError, RenderError) as exc:
            raise SubmissionError(str(exc)) from None
    return joined(rendered)


def approve_and_launch(app: Flask, submission: Submission, admin: User) -> Submission:
    """Approve a waiting submission and start its launch.

    Raises :class:`SubmissionError` (and changes nothing) if it is no longer waiting: decided
    by someone else meanwhile. A launch that fails (its owner has no Unix account to run as,
    say) ends in SUBMIT_FAILED with the reason, like any other launch.
    """
    record_approval(submission, admin)
    start_launch(app, submission)
    return submission
