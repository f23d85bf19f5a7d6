"""Database models: users, submissions and their array tasks, share links, the mail outbox, the
audit log and the poller lease."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


class Role(enum.StrEnum):
    USER = "user"
    ADMIN = "admin"


class SubmissionState(enum.StrEnum):
    DRAFT = "DRAFT"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    REJECTED = "REJECTED"
    STAGING = "STAGING"
    SUBMITTING = "SUBMITTING"
    SUBMIT_FAILED = "SUBMIT_FAILED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIAL = "PARTIAL"
    CANCELLED = "CANCELLED"


#: States after which nothing changes any more.
FINAL_STATES = frozenset(
    {
        SubmissionState.REJECTED,
        SubmissionState.COMPLETED,
        SubmissionState.FAILED,
        SubmissionState.PARTIAL,
        SubmissionState.CANCELLED,
    }
)
#: States whose tasks the poller follows.
ACTIVE_STATES = frozenset({SubmissionState.QUEUED, SubmissionState.RUNNING})


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER)
    slurm_account: Mapped[str | None] = mapped_column(String(64))
    unix_user: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    notify: Mapped[str] = mapped_column(String(16), default="completion")
    #: Part of every session and remember-me cookie of the account; raising it ends them all
    #: (sign-out, password change or reset, deactivation, "sign out everywhere").
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    submissions: Mapped[list[Submission]] = relationship(
        back_populates="owner", foreign_keys="Submission.owner_id"
    )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiToken(db.Model):
    """A personal API token; only its SHA-256 is stored (the token is shown once)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class Submission(db.Model):
    __tablename__ = "submissions"
    __table_args__ = (Index("ix_submissions_state", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    repo_url: Mapped[str] = mapped_column(String(1000))
    ref: Mapped[str] = mapped_column(String(255))
    commit: Mapped[str | None] = mapped_column(String(40))
    design_path: Mapped[str] = mapped_column(String(500), default=".")
    flow: Mapped[str] = mapped_column(String(32))
    base_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sweep_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resources: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(24), default=SubmissionState.DRAFT)
    job_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    n_tasks: Mapped[int] = mapped_column(default=0)
    cost_core_hours: Mapped[float] = mapped_column(default=0.0)
    run_dir: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    #: what the tasks run when it is less than the whole real flow (a cut flow, the stand-in)
    flow_note: Mapped[str | None] = mapped_column(Text)
    #: launches tried so far, and when a launch that failed for a passing cause is tried again
    launch_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    retry_at: Mapped[datetime | None]
    #: the launch working on it now (a token) and until when its claim holds unless renewed
    launch_claim: Mapped[str | None] = mapped_column(String(64))
    launch_claim_until: Mapped[datetime | None]
    notify: Mapped[bool] = mapped_column(default=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    submitted_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship(back_populates="submissions", foreign_keys=[owner_id])
    tasks: Mapped[list[Task]] = relationship(
        back_populates="submission", order_by="Task.index", cascade="all, delete-orphan"
    )

    @property
    def job_name(self) -> str:
        """Slurm job name: carries the uuid so a lost submit can be found again."""
        return f"olp-{self.uuid}"


class Task(db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("submission_id", "index", name="uq_tasks_submission_index"),
        Index("ix_tasks_job", "array_job_id", "array_index"),
        Index("ix_tasks_submission_state", "submission_id", "state"),  # progress counts
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id", ondelete="CASCADE"))
    index: Mapped[int]
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    array_job_id: Mapped[str | None] = mapped_column(String(32))
    array_index: Mapped[int | None]
    state: Mapped[str] = mapped_column(String(24), default="PENDING")
    #: why Slurm keeps the task waiting (squeue's %r: Priority, Resources, JobHeldUser...),
    #: while it is PENDING
    pending_reason: Mapped[str | None] = mapped_column(String(255))
    exit_code: Mapped[int | None]
    signal: Mapped[int | None]
    node: Mapped[str | None] = mapped_column(String(255))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    elapsed_seconds: Mapped[int | None]
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    submission: Mapped[Submission] = relationship(back_populates="tasks")


class ShareLink(db.Model):
    """A read-only share link of a submission. The link's signed token carries this row's id;
    the link opens the submission while the row is unrevoked and unexpired."""

    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    submission: Mapped[Submission] = relationship()
    created_by: Mapped[User | None] = relationship()


class Outbox(db.Model):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    tries: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class AuditLog(db.Model):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Lease(db.Model):
    """A named lease: whoever holds it unexpired is the one active poller (or mail sender)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


def audit(
    action: str, *, actor: User | None = None, submission: Submission | None = None, **detail: Any
) -> None:
    """Add an audit record to the current session (committed with the caller's change)."""
    db.session.add(
        AuditLog(
            action=action,
            actor_id=actor.id if actor else None,
            submission_id=submission.id if submission else None,
            detail=detail,
        )
    )
