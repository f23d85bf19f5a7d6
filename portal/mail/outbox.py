"""Email notifications: Flask-Mail speaks SMTP, the ``outbox`` table makes delivery reliable.

Queueing
    :func:`enqueue_mail` (and :func:`queue_submission_mail` / :func:`queue_decision_mail` on top
    of it) only *adds* an :class:`~portal.models.Outbox` row to the current session: it is
    committed together with the caller's state change, or not at all. Every row has a
    ``dedupe_key`` (unique in the table); queueing a key that exists is a no-op, so one
    terminal state of one submission gives exactly one email.

Sending
    :func:`send_pending` delivers due rows one at a time. Each row is first *claimed* with a
    conditional UPDATE that moves its ``next_try_at`` forward (committed), then sent, then
    marked ``sent`` (committed). A restart therefore never re-sends a message marked sent, two
    senders never send the same row, and a sender that dies after claiming leaves the row to be
    retried once the claim expires. The one unavoidable gap: the SMTP server accepted a message
    and the process died before the ``sent`` commit; then it is sent again (with the same
    Message-ID, which lets mail clients drop the copy).

    A failed attempt increments ``tries``, keeps the server's answer in ``last_error`` and sets
    ``next_try_at = now + MAIL_RETRY_BASE_SECONDS * 2 ** (tries - 1)`` (at most
    ``MAIL_RETRY_MAX_SECONDS``). After ``MAIL_MAX_TRIES`` attempts, or at once for a permanent
    (5xx) refusal of the message or its recipient, the row becomes ``failed``. When the server
    cannot be reached the batch stops: the other rows stay queued as they were.

    :func:`run_sender_cycle` runs :func:`send_pending` under the database lease ``"mailer"``
    (one sending process at a time); :func:`start_sender` schedules it with APScheduler.

Layout thumbnail
    The submission email may show the best point's layout. The picture is not stored in the
    outbox: the HTML refers to it by Content-ID and the sender re-renders it from the
    submission's run directory (:func:`portal.mail.content.render_thumbnail`); when that is no
    longer possible the image block is removed from the HTML and the mail goes out without it.

Settings (defaults and meanings in portal/config.py):
``MAIL_SEND_INTERVAL_SECONDS``, ``MAIL_RETRY_BASE_SECONDS``, ``MAIL_RETRY_MAX_SECONDS``,
``MAIL_TIMEOUT``, ``MAIL_LEASE_SECONDS``, ``MAIL_TLS_CA_FILE`` and Flask-Mail's ``MAIL_*``.
TLS (``MAIL_USE_TLS`` = STARTTLS, ``MAIL_USE_SSL`` = SMTPS) verifies the server certificate
against the system CAs or ``MAIL_TLS_CA_FILE``.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import flask_mail
from apscheduler.job import Job
from apscheduler.schedulers.base import BaseScheduler
from flask import Flask, current_app
from sqlalchemy import select, update

from portal import leases
from portal.config import settings_of
from portal.extensions import db
from portal.mail.content import (
    TERMINAL_STATES,
    THUMBNAIL_START,
    build_decision_mail,
    build_launch_failed_mail,
    build_submission_mail,
    build_test_mail,
    render_thumbnail,
    strip_thumbnail,
)
from portal.models import Outbox, Submission, utcnow

log = logging.getLogger(__name__)

LEASE_NAME = "mailer"
JOB_ID = "portal-mail-sender"
#: Message parts use quoted-printable (7-bit safe) whatever the server supports.
_POLICY = policy.SMTP.clone(cte_type="7bit")

Counts = dict[str, int]

mail = flask_mail.Mail()


class MailError(Exception):
    """Sending failed; the message is the SMTP server's answer (or why it was not reached)."""


def init_mail(app: Flask) -> None:
    """Bind Flask-Mail to ``app`` (SMTP host, port, STARTTLS/SSL, user and password from the
    ``MAIL_*`` settings; the password normally comes from ``PORTAL_MAIL_PASSWORD``)."""
    if not app.config.get("MAIL_PASSWORD") and os.environ.get("PORTAL_MAIL_PASSWORD"):
        app.config["MAIL_PASSWORD"] = os.environ["PORTAL_MAIL_PASSWORD"]
    mail.init_app(app)


def _setting(name: str) -> Any:
    """A MAIL_* setting (defaults and meanings live in portal/config.py)."""
    return current_app.config[name]


# --------------------------------------------------------------------------- queueing


def _dedupe_exists(key: str) -> bool:
    return db.session.scalar(select(Outbox.id).where(Outbox.dedupe_key == key)) is not None


def enqueue_mail(
    recipient: str,
    subject: str,
    body_text: str,
    body_html: str | None = None,
    dedupe_key: str | None = None,
    submission_id: int | None = None,
) -> Outbox | None:
    """Add a message to the outbox in the current session, *without committing*.

    Returns the new row, or None when a row with ``dedupe_key`` exists already (the unique
    constraint backs this check up: a concurrent duplicate fails the caller's commit). Without
    a key the message is never deduplicated.
    """
    key = dedupe_key or f"adhoc:{uuidlib.uuid4()}"
    if _dedupe_exists(key):
        log.debug("outbox: %s already queued", key)
        return None
    row = Outbox(
        dedupe_key=key,
        submission_id=submission_id,
        recipient=recipient,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        status="queued",
        tries=0,
        next_try_at=utcnow(),
    )
    db.session.add(row)
    return row


def _wants_mail(submission: Submission, *, bad_news: bool) -> bool:
    """The submission's opt-out and its owner's preference: ``completion`` (every end),
    ``failure`` (only bad news) or ``never``. An unknown preference counts as ``completion``."""
    owner = submission.owner
    if not submission.notify or owner is None or not owner.email:
        return False
    preference = (owner.notify or "completion").strip().lower()
    if preference == "never":
        return False
    return bad_news if preference == "failure" else True


def _site_url() -> str:
    return str(_setting("SITE_URL") or "").rstrip("/")


def _prepare(submission: Submission, key: str) -> bool:
    if submission.id is None:
        db.session.flush()
    return not _dedupe_exists(key)


def queue_submission_mail(submission: Submission) -> Outbox | None:
    """Queue the "job array ended" email of ``submission`` (in the caller's transaction).

    Only for the terminal states COMPLETED, FAILED, PARTIAL and CANCELLED; respects
    ``submission.notify`` and the owner's preference (``failure`` skips COMPLETED). One email
    per terminal state and round: the dedupe key is ``submission:<uuid>:<state>:<arrays>``
    (arrays submitted so far). Returns the row or None when nothing was queued.
    """
    state = str(submission.state)
    if state not in TERMINAL_STATES:
        return None
    if not _wants_mail(submission, bad_news=state != "COMPLETED"):
        return None
    # One email per terminal state per round (a resubmission of failed tasks is a new round).
    key = f"submission:{submission.uuid}:{state}:{len(submission.job_ids)}"
    if not _prepare(submission, key):
        return None
    subject, text, html = build_submission_mail(submission, _site_url())
    return enqueue_mail(submission.owner.email, subject, text, html, key, submission.id)


def queue_launch_failed_mail(submission: Submission) -> Outbox | None:
    """Queue the email telling the owner that ``submission`` could not be launched (its final
    SUBMIT_FAILED, with ``submission.error`` and how to retry). Bad news: sent unless the
    owner opted out; one per launch round (dedupe ``launch-failed:<uuid>:<attempts>``)."""
    if not _wants_mail(submission, bad_news=True):
        return None
    key = f"launch-failed:{submission.uuid}:{submission.launch_attempts or 0}"
    if not _prepare(submission, key):
        return None
    subject, text, html = build_launch_failed_mail(submission, _site_url())
    return enqueue_mail(submission.owner.email, subject, text, html, key, submission.id)


def queue_decision_mail(submission: Submission, approved: bool) -> Outbox | None:
    """Queue the email telling the owner an admin approved or rejected ``submission``, with
    ``submission.decision_reason``. Same opt-outs as the completion email (a rejection is bad
    news, an approval is not); dedupe key ``decision:<uuid>:approved|rejected``."""
    if not _wants_mail(submission, bad_news=not approved):
        return None
    key = f"decision:{submission.uuid}:{'approved' if approved else 'rejected'}"
    if not _prepare(submission, key):
        return None
    subject, text, html = build_decision_mail(submission, approved, _site_url())
    return enqueue_mail(submission.owner.email, subject, text, html, key, submission.id)


# --------------------------------------------------------------------------- SMTP


class _Message(flask_mail.Message):
    """A Flask-Mail message laid out as email clients expect inline images: multipart/
    alternative of the text and a multipart/related holding the HTML and its images."""

    def __init__(
        self,
        *args: Any,
        inline_images: Sequence[tuple[str, bytes]] = (),
        message_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.inline_images = list(inline_images)
        if message_id:
            self.msgId = message_id

    def _message(self) -> EmailMessage:  # type: ignore[override]
        message = EmailMessage(policy=_POLICY)
        message["Subject"] = self.subject
        message["From"] = self.sender
        message["To"] = ", ".join(str(r) for r in self.recipients)
        message["Date"] = formatdate(self.date, localtime=True)
        message["Message-ID"] = self.msgId
        for name, value in (self.extra_headers or {}).items():
            message[name] = value
        message.set_content(self.body or "", cte="quoted-printable")
        if self.html:
            message.add_alternative(self.html, subtype="html", cte="quoted-printable")
            html_part = message.get_payload()[-1]
            for cid, data in self.inline_images:
                html_part.add_related(
                    data,
                    "image",
                    "png",
                    cid=f"<{cid}>",
                    disposition="inline",
                    filename="layout.png",
                )
        return message


class _Connection(flask_mail.Connection):
    """Flask-Mail's connection with a socket timeout and certificate-checking TLS."""

    def configure_host(self) -> smtplib.SMTP:
        timeout = float(_setting("MAIL_TIMEOUT"))
        context = ssl.create_default_context(cafile=_setting("MAIL_TLS_CA_FILE") or None)
        host: smtplib.SMTP
        if self.mail.use_ssl:
            host = smtplib.SMTP_SSL(
                self.mail.server, self.mail.port, timeout=timeout, context=context
            )
        else:
            host = smtplib.SMTP(self.mail.server, self.mail.port, timeout=timeout)
        try:
            host.set_debuglevel(int(self.mail.debug))
            if self.mail.use_tls:
                host.starttls(context=context)
            if self.mail.username and self.mail.password:
                host.login(self.mail.username, self.mail.password)
        except BaseException:
            host.close()
            raise
        return host


class _Session:
    """One SMTP session for a batch: opened on first use, dropped after any error."""

    def __init__(self) -> None:
        self.connection: _Connection | None = None

    def open(self) -> None:
        if self.connection is None:
            connection = _Connection(current_app.extensions["mail"])
            connection.host = None if connection.mail.suppress else connection.configure_host()
            self.connection = connection

    def send(self, message: flask_mail.Message) -> None:
        self.open()
        assert self.connection is not None
        try:
            self.connection.send(message)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is None or connection.host is None:
            return
        try:
            connection.host.quit()
        except (smtplib.SMTPException, OSError):
            connection.host.close()


def _server() -> str:
    state = current_app.extensions["mail"]
    return f"{state.server}:{state.port}"


def _describe(error: BaseException) -> tuple[str, bool, bool]:
    """(text, permanent, server-level) for a failed attempt.

    Permanent: the server refused this message or every recipient with a 5xx reply.
    Server-level: the server could not be reached or refused the session (connection,
    TLS, login, sender); the other messages would fail the same way.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{address}: {code} {_text(reply)}"
            for address, (code, reply) in error.recipients.items()
        ]
        codes = [code for code, _ in error.recipients.values()]
        return "recipient refused: " + "; ".join(parts), all(500 <= c < 600 for c in codes), False
    if isinstance(error, smtplib.SMTPDataError):
        return (
            f"message refused: {error.smtp_code} {_text(error.smtp_error)}",
            error.smtp_code >= 500,
            False,
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return f"{error.smtp_code} {_text(error.smtp_error)} (server {_server()})", False, True
    if isinstance(error, smtplib.SMTPException | OSError):
        return f"cannot deliver through {_server()}: {error or type(error).__name__}", False, True
    return f"{type(error).__name__}: {error}", False, False


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _message_id(row: Outbox) -> str:
    domain = parseaddr(str(_setting("MAIL_DEFAULT_SENDER") or ""))[1].rpartition("@")[2]
    stamp = (row.created_at or utcnow()).strftime("%Y%m%d%H%M%S")
    return f"<olp-outbox-{row.id}.{stamp}@{domain or 'openlane-portal.invalid'}>"


_HEADERS = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


def _build(row: Outbox) -> _Message:
    html, images = row.body_html, []
    if html and THUMBNAIL_START in html:
        thumbnail = None
        submission = db.session.get(Submission, row.submission_id) if row.submission_id else None
        try:
            thumbnail = render_thumbnail(submission) if submission else None
        except Exception:  # a thumbnail is never worth losing the email
            log.exception("outbox %s: layout thumbnail failed", row.id)
        if thumbnail:
            images.append(thumbnail)
        else:
            html = strip_thumbnail(html)
    return _Message(
        subject=row.subject,
        recipients=[row.recipient],
        body=row.body_text,
        html=html,
        inline_images=images,
        message_id=_message_id(row),
        extra_headers=dict(_HEADERS),
    )


# --------------------------------------------------------------------------- sending


def _claim(row_id: int, seen_next_try: datetime) -> bool:
    """Take the row for this sender: move its next_try_at past any send attempt (committed)."""
    hold = timedelta(seconds=10 * float(_setting("MAIL_TIMEOUT")) + 60)
    result = db.session.execute(
        update(Outbox)
        .where(
            Outbox.id == row_id,
            Outbox.status == "queued",
            Outbox.next_try_at == seen_next_try,
        )
        .values(next_try_at=utcnow() + hold)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1


def _backoff_seconds(tries: int) -> float:
    base = float(_setting("MAIL_RETRY_BASE_SECONDS"))
    cap = float(_setting("MAIL_RETRY_MAX_SECONDS"))
    return min(cap, base * 2 ** max(0, tries - 1))


def _record_failure(row: Outbox, error: BaseException) -> tuple[str, bool]:
    """Update ``row`` after a failed attempt; return (outcome, stop the batch)."""
    text, permanent, server_level = _describe(error)
    row.tries += 1
    row.last_error = text[:2000]
    if permanent or row.tries >= int(_setting("MAIL_MAX_TRIES")):
        row.status = "failed"
        log.error(
            "outbox %s to %s given up after %d tries: %s", row.id, row.recipient, row.tries, text
        )
        outcome = "failed"
    else:
        row.next_try_at = utcnow() + timedelta(seconds=_backoff_seconds(row.tries))
        log.warning("outbox %s to %s: try %d failed: %s", row.id, row.recipient, row.tries, text)
        outcome = "retry"
    return outcome, server_level


def _deliver(
    limit: int | None, *, ignore_backoff: bool, keep_going: Callable[[], bool] | None
) -> Counts:
    query = select(Outbox.id, Outbox.next_try_at).where(Outbox.status == "queued")
    if not ignore_backoff:
        query = query.where(Outbox.next_try_at <= utcnow())
    query = query.order_by(Outbox.next_try_at, Outbox.id)
    if limit is not None:
        query = query.limit(limit)
    due = db.session.execute(query).all()
    db.session.commit()
    counts: Counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    session = _Session()
    try:
        for position, (row_id, seen_next_try) in enumerate(due):
            if keep_going is not None and not keep_going():
                counts["skipped"] += len(due) - position
                break
            if not _claim(row_id, seen_next_try):
                counts["skipped"] += 1  # another sender has it
                continue
            row = db.session.get(Outbox, row_id)
            assert row is not None
            try:
                session.open()  # before building: no thumbnail work while the server is down
                session.send(_build(row))
            except Exception as error:
                outcome, stop = _record_failure(row, error)
                db.session.commit()
                counts[outcome] += 1
                if stop:
                    counts["skipped"] += len(due) - position - 1
                    break
                continue
            row.status = "sent"
            row.tries += 1
            row.sent_at = utcnow()
            db.session.commit()
            counts["sent"] += 1
            log.info("outbox %s sent to %s: %s", row.id, row.recipient, row.subject)
    finally:
        session.close()
    return counts


def send_pending(limit: int | None = 50, *, keep_going: Callable[[], bool] | None = None) -> Counts:
    """Send up to ``limit`` due queued messages, oldest first, committing after each one.

    Needs an app context. ``keep_going`` is asked before each message (the sender cycle uses it
    to renew its lease). Returns counts: ``sent``, ``retry`` (failed, will be retried),
    ``failed`` (given up), ``skipped`` (not attempted: the server was unreachable, the lease was
    lost, or another sender had claimed the message).
    """
    return _deliver(limit, ignore_backoff=False, keep_going=keep_going)


def flush_outbox() -> Counts:
    """Try every queued message once now, ignoring backoff (the CLI's "flush"); see
    :func:`send_pending` for the counts."""
    return _deliver(None, ignore_backoff=True, keep_going=None)


def _has_due() -> bool:
    query = select(Outbox.id).where(Outbox.status == "queued", Outbox.next_try_at <= utcnow())
    found = db.session.scalar(query.limit(1)) is not None
    db.session.commit()
    return found


def run_sender_cycle(app: Flask, holder: str | None = None) -> Counts:
    """One scheduled sending round: when messages are due, take the ``"mailer"`` lease (one
    sending process at a time), send them with :func:`send_pending`, release the lease.

    Works from any thread, inside or outside an app context. The counts have one more key,
    ``lease``: 1 when this call held the lease, else 0 (nothing was due, or another sender
    holds it).
    """
    holder = holder or f"{leases.holder_id()}:{threading.get_ident()}"
    with app.app_context():
        counts: Counts = {"sent": 0, "retry": 0, "failed": 0, "skipped": 0, "lease": 0}
        try:
            if not _has_due():
                return counts
            seconds = float(_setting("MAIL_LEASE_SECONDS"))
            if not leases.acquire(LEASE_NAME, holder, seconds):
                return counts
            counts["lease"] = 1
            renewed = time.monotonic()

            def keep_going() -> bool:
                nonlocal renewed
                if time.monotonic() - renewed < seconds / 3:
                    return True
                renewed = time.monotonic()
                return leases.acquire(LEASE_NAME, holder, seconds)

            try:
                counts.update(send_pending(keep_going=keep_going))
            finally:
                db.session.rollback()
                leases.release(LEASE_NAME, holder)
            return counts
        finally:
            db.session.remove()


def start_sender(app: Flask, scheduler: BaseScheduler) -> Job:
    """Register :func:`run_sender_cycle` on ``scheduler`` every ``MAIL_SEND_INTERVAL_SECONDS``
    (the caller starts the scheduler). Registering again replaces the job."""
    seconds = float(settings_of(app).MAIL_SEND_INTERVAL_SECONDS)
    return scheduler.add_job(
        run_sender_cycle,
        trigger="interval",
        seconds=seconds,
        args=[app],
        id=JOB_ID,
        name="send queued email",
        replace_existing=True,
        max_instances=1,
        coalesce=True,
    )


def send_test_email(recipient: str) -> None:
    """Send the administrator's test email to ``recipient`` now, bypassing the outbox.

    Raises :class:`MailError` with the SMTP server's answer (or why it could not be reached);
    also when sending is switched off (``MAIL_SUPPRESS_SEND`` or testing mode).
    """
    state = current_app.extensions["mail"]
    if state.suppress:
        raise MailError("sending is switched off (MAIL_SUPPRESS_SEND or TESTING)")
    subject, text, html = build_test_mail(_site_url(), _server())
    message = _Message(
        subject=subject,
        recipients=[recipient],
        body=text,
        html=html,
        extra_headers=dict(_HEADERS),
    )
    session = _Session()
    try:
        session.send(message)
    except (smtplib.SMTPException, OSError, AssertionError, ValueError) as error:
        raise MailError(_describe(error)[0]) from error
    finally:
        session.close()
