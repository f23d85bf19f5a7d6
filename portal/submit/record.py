"""Record a validated plan: the submission row, one task row per sweep point, the audit entry."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy import insert

from portal.errors import SubmissionError
from portal.extensions import db
from portal.models import Submission, SubmissionState, Task, User, audit
from portal.submit.plan import Plan


def create_submission(plan: Plan, owner: User) -> Submission:
    """Record a validated plan: the submission, its tasks, the audit entry (one commit)."""
    if plan.owner_id != owner.id:
        raise SubmissionError("this plan was checked for another user; plan it again")
    needs_approval = plan.decision.needs_approval
    submission = Submission(
        uuid=plan.uuid,
        owner=owner,
        name=plan.request.name or _default_name(plan),
        repo_url=plan.repo_url,
        ref=plan.ref,
        design_path=plan.design_path,
        flow=plan.flow.name,
        base_params=plan.base_params,
        sweep_spec=plan.sweep_spec,
        resources=asdict(plan.resources),
        state=SubmissionState.AWAITING_APPROVAL if needs_approval else SubmissionState.STAGING,
        n_tasks=len(plan.points),
        cost_core_hours=plan.decision.core_hours,
        notify=plan.request.notify,
        decision_reason="; ".join(plan.decision.reasons) or None,
    )
    db.session.add(submission)
    db.session.flush()
    # One multi-row INSERT for the tasks (the unit of work would build one object per point).
    for start in range(0, len(plan.points), 5000):
        db.session.execute(
            insert(Task),
            [
                {"submission_id": submission.id, "index": i, "params": point}
                for i, point in enumerate(plan.points[start : start + 5000], start)
            ],
        )
    audit(
        "submission.create",
        actor=owner,
        submission=submission,
        tasks=len(plan.points),
        core_hours=round(plan.decision.core_hours, 2),
        approval=needs_approval,
    )
    db.session.commit()
    return submission


def _default_name(plan: Plan) -> str:
    design = plan.design_path.rsplit("/", 1)[-1] or plan.repo_url.rstrip("/").rsplit("/", 1)[-1]
    return (
        f"{design.removesuffix('.git')} ({len(plan.points)} point{'s' * (len(plan.points) != 1)})"
    )
