"""One launch at a time per submission: a claim the launch renews while it works.

A launch (the web or API thread, an admin's approval, a retry, the poller's hand-over) first
takes its submission's claim: one conditional UPDATE that wins only when no other launch holds
a live claim, so two processes can never both clone and sbatch the same submission. While the
clone and the staging run, a :class:`Heartbeat` thread renews the claim every third of
``LAUNCH_CLAIM_SECONDS``; right before the submission turns SUBMITTING (and sbatch follows) the
launch renews it inside that same transaction and stops if another launch took it over. The
poller relaunches a submission left in STAGING or SUBMITTING only when its claim has expired:
the process that held it died (or never took it).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from types import TracebackType

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.engine import Connection, Engine

from portal.extensions import db
from portal.leases import holder_id
from portal.models import Submission, SubmissionState, utcnow

log = logging.getLogger(__name__)

#: the states a launch may start from
LAUNCHABLE = (SubmissionState.STAGING, SubmissionState.SUBMITTING, SubmissionState.SUBMIT_FAILED)


def new_token() -> str:
    """A claim token naming this process and this one launch."""
    return f"{holder_id()}:{uuid.uuid4().hex[:12]}"[:64]


def is_free() -> ColumnElement[bool]:
    """SQL: no launch holds a live claim on the submission."""
    return or_(Submission.launch_claim_until.is_(None), Submission.launch_claim_until < utcnow())


def take(submission_id: int, token: str, seconds: float) -> bool:
    """Claim a launchable submission for ``token`` unless another launch holds it, counting
    the attempt (and clearing a pending retry time); commits. Committed at once, so the long
    clone that follows holds no write lock the heartbeat's renewals would wait for."""
    result = db.session.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.state.in_(LAUNCHABLE), is_free())
        .values(
            launch_claim=token,
            launch_claim_until=utcnow() + timedelta(seconds=seconds),
            launch_attempts=func.coalesce(Submission.launch_attempts, 0) + 1,
            retry_at=None,
        ),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def renew(
    submission_id: int, token: str, seconds: float, connection: Connection | None = None
) -> bool:
    """Extend ``token``'s claim; False when another launch has taken it over. Runs in the
    caller's transaction (the session's, or ``connection``'s) and does not commit."""
    statement = (
        update(Submission)
        .where(Submission.id == submission_id, Submission.launch_claim == token)
        .values(launch_claim_until=utcnow() + timedelta(seconds=seconds))
    )
    if connection is not None:
        return connection.execute(statement).rowcount == 1
    result = db.session.execute(statement, execution_options={"synchronize_session": False})
    return result.rowcount == 1  # type: ignore[attr-defined]


def release(submission_id: int, token: str) -> None:
    """Give ``token``'s claim up (the launch is over); commits."""
    db.session.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.launch_claim == token)
        .values(launch_claim=None, launch_claim_until=None),
        execution_options={"synchronize_session": False},
    )
    db.session.commit()


def abandoned(older_than: timedelta) -> ColumnElement[bool]:
    """SQL: the claim expired, or no launch ever claimed it within ``older_than``."""
    now = utcnow()
    return or_(
        Submission.launch_claim_until < now,
        and_(Submission.launch_claim_until.is_(None), Submission.updated_at < now - older_than),
    )


class Heartbeat:
    """A daemon thread renewing one claim every ``seconds / 3`` on a connection of its own.

    ``lost`` turns true when a renewal found the claim taken by another launch; a renewal that
    fails (the database busy or away) is logged and tried again at the next beat.
    """

    def __init__(self, engine: Engine, submission_id: int, token: str, seconds: float) -> None:
        self.engine, self.submission_id, self.token, self.seconds = (
            engine,
            submission_id,
            token,
            seconds,
        )
        self.lost = False
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"launch-claim-{submission_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                with self.engine.begin() as connection:
                    held = renew(self.submission_id, self.token, self.seconds, connection)
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                log.warning("launch claim of submission %s not renewed: %s", self.submission_id,
                            exc)  # fmt: skip
                continue
            if not held:
                self.lost = True
                log.warning("launch claim of submission %s was taken over", self.submission_id)
                return
            self.beats += 1
