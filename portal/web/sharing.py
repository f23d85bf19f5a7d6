"""Who is looking at a submission page: its signed-in owner (or an admin), or anybody holding a
signed share link.

Share links are ``/shared/<token>``: an itsdangerous ``URLSafeTimedSerializer`` signature (the
app's ``SECRET_KEY`` and the dedicated salt :data:`SHARE_SALT`) over the submission uuid, an
expiry time chosen by the owner (at most ``SHARE_LINK_MAX_AGE`` seconds away) and the id of the
link's :class:`~portal.models.ShareLink` row. A link is refused when its signature does not
match (forged or altered: 404), when its expiry has passed or when it is older than
``SHARE_LINK_MAX_AGE`` (lowering the setting shortens existing links: 410), and when its row was
revoked by the owner or an admin (410). Links signed before links had rows (no row id) are
refused like revoked ones: nobody could revoke them.

:func:`dual_route` registers a read-only view twice: at ``/submissions/<uuid>...`` for
signed-in users allowed by :func:`portal.web.access.require_view`, and at
``/shared/<token>...`` (endpoint ``shared_<name>``) for link holders. Views get a
:class:`Viewer` and build every link with :meth:`Viewer.url`, so a shared page only ever links
to shared URLs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, has_request_context, render_template, url_for
from flask_login import current_user, login_required
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import ShareLink, Submission, User, utcnow
from portal.web.access import can_view, require_view

#: Salt of share-link signatures (keeps them apart from sessions, resets, invitations).
SHARE_SALT = "openlane-portal.share-link.v1"
DEFAULT_MAX_AGE = 7 * 24 * 3600
#: Seconds between two writes of ``ShareLink.last_used_at`` (a page polls every few seconds).
LAST_USED_RESOLUTION = timedelta(seconds=60)
#: Links listed on the submission page (newest first).
LINKS_LISTED = 50
_UUID_RE = re.compile(r"[0-9a-fA-F-]{32,36}")


class ShareLinkError(Exception):
    """A share link that does not open anything (forged, altered, unknown submission)."""

    status = 404
    title = "This share link is not valid"
    message = "This share link is not valid. Check that it was copied completely."


class ShareLinkExpired(ShareLinkError):
    """A genuine share link past its expiry."""

    status = 410
    title = "This share link has expired"
    message = "This share link has expired. Ask the owner of the submission for a new one."


class ShareLinkRevoked(ShareLinkExpired):
    """A genuine share link the owner or an admin revoked (or one made before links could be)."""

    title = "This share link was revoked"
    message = (
        "This share link was revoked and no longer opens the submission. Ask the owner of the "
        "submission for a new one."
    )


def max_age() -> int:
    """The longest lifetime of a share link, in seconds (``SHARE_LINK_MAX_AGE``)."""
    value = current_app.config.get("SHARE_LINK_MAX_AGE")
    return int(value) if value is not None else DEFAULT_MAX_AGE


def serializer() -> URLSafeTimedSerializer:
    """The signer of share links."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SHARE_SALT)


def make_token(
    submission_uuid: str,
    seconds: int,
    signer: URLSafeTimedSerializer | None = None,
    created_by: User | None = None,
) -> tuple[str, datetime]:
    """A token opening ``submission_uuid`` for ``seconds`` (1..max_age); (token, expiry UTC).

    Adds the link's :class:`ShareLink` row to the session (flushed for its id; the caller
    commits). ``created_by`` defaults to the signed-in user of the request.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= max_age():
        raise ValueError(f"a share link lives between 1 and {max_age()} seconds")
    submission = find_submission(submission_uuid)
    if submission is None:
        raise ValueError(f"no submission {submission_uuid!r}")
    if created_by is None and has_request_context() and current_user.is_authenticated:
        created_by = current_user._get_current_object()
    expires = int(time.time()) + seconds
    expires_at = datetime.fromtimestamp(expires, UTC).replace(tzinfo=None)
    link = ShareLink(
        submission_id=submission.id,
        created_by_id=created_by.id if created_by is not None else None,
        expires_at=expires_at,
    )
    db.session.add(link)
    db.session.flush()
    token = (signer or serializer()).dumps({"s": submission_uuid, "x": expires, "l": link.id})
    return str(token), expires_at


def _payload(token: str) -> dict[str, Any]:
    """The checked payload of a genuine, unexpired token; raises :class:`ShareLinkError`."""
    if not token or len(token) > 1000:
        raise ShareLinkError
    try:
        payload = serializer().loads(token, max_age=max_age())
    except SignatureExpired:
        raise ShareLinkExpired from None
    except BadSignature:
        raise ShareLinkError from None
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("s"), str)
        or not isinstance(payload.get("x"), int)
        or isinstance(payload["x"], bool)
    ):
        raise ShareLinkError
    if payload["x"] < time.time():
        raise ShareLinkExpired
    return payload


def load_token(token: str) -> tuple[str, datetime]:
    """(submission uuid, expiry UTC) of a valid token; raises :class:`ShareLinkError`.

    Checks the signature and the expiry only; :func:`shared_viewer` also checks the link's row.
    """
    payload = _payload(token)
    return payload["s"], datetime.fromtimestamp(payload["x"], UTC).replace(tzinfo=None)


def live_link(link_id: Any, submission: Submission) -> ShareLink:
    """The unrevoked, unexpired row ``link_id`` of a token of ``submission``; raises
    :class:`ShareLinkRevoked` for a revoked link or a token without a row id, else
    :class:`ShareLinkError` or :class:`ShareLinkExpired`. Records the use (once a minute)."""
    if link_id is None:
        raise ShareLinkRevoked  # signed before links had rows: nobody could revoke it
    if not isinstance(link_id, int) or isinstance(link_id, bool):
        raise ShareLinkError
    link = db.session.get(ShareLink, link_id)
    if link is None or link.submission_id != submission.id:
        raise ShareLinkError
    if link.revoked_at is not None:
        raise ShareLinkRevoked
    now = utcnow()
    if link.expires_at <= now:
        raise ShareLinkExpired
    if link.last_used_at is None or now - link.last_used_at >= LAST_USED_RESOLUTION:
        link.last_used_at = now
        db.session.commit()
    return link


def links_of(submission: Submission, limit: int = LINKS_LISTED) -> list[ShareLink]:
    """The share links of ``submission``, newest first (their creators loaded with them)."""
    return list(
        db.session.scalars(
            select(ShareLink)
            .where(ShareLink.submission_id == submission.id)
            .options(joinedload(ShareLink.created_by))
            .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
            .limit(limit)
        )
    )


def link_state(link: ShareLink) -> str:
    """``"active"``, ``"revoked"`` or ``"expired"``."""
    if link.revoked_at is not None:
        return "revoked"
    return "active" if link.expires_at > utcnow() else "expired"


def revoke(link: ShareLink) -> bool:
    """Revoke ``link`` (the caller commits); False when it was revoked already."""
    if link.revoked_at is not None:
        return False
    link.revoked_at = utcnow()
    return True


def share_url(token: str) -> str:
    """The public address of a share link (``SITE_URL``'s origin + the app's path)."""
    path = url_for("detail.shared_show", token=token)
    site = str(current_app.config.get("SITE_URL") or "").rstrip("/")
    match = re.match(r"[a-z][a-z0-9+.-]*://[^/]+", site)
    return (match.group(0) if match else "") + path


# --------------------------------------------------------------------------- viewers


@dataclass(frozen=True)
class Viewer:
    """A submission as seen by the current request: signed in (token None) or through a link."""

    submission: Submission
    token: str | None = None
    expires_at: datetime | None = None

    @property
    def shared(self) -> bool:
        """True for a link holder (read-only, no actions)."""
        return self.token is not None

    @property
    def can_act(self) -> bool:
        """May cancel, resubmit, export and share: the signed-in owner or an admin."""
        return not self.shared and can_view(current_user, self.submission)

    def url(self, endpoint: str, **values: Any) -> str:
        """URL of ``endpoint`` for this submission, the ``shared_`` twin for link holders."""
        if self.token is not None:
            blueprint, _, name = endpoint.partition(".")
            return url_for(f"{blueprint}.shared_{name}", token=self.token, **values)
        return url_for(endpoint, uuid=self.submission.uuid, **values)


def find_submission(uuid: str) -> Submission | None:
    """The submission with this uuid (owner loaded with it), or None."""
    if not _UUID_RE.fullmatch(uuid or ""):
        return None
    return db.session.scalar(
        select(Submission).where(Submission.uuid == uuid).options(joinedload(Submission.owner))
    )


def owner_viewer(uuid: str) -> Viewer:
    """The viewer of a signed-in request; 404 unless the user may see the submission."""
    return Viewer(require_view(find_submission(uuid)))


def shared_viewer(token: str) -> Viewer:
    """The viewer of a share link; raises :class:`ShareLinkError`."""
    payload = _payload(token)
    submission = find_submission(payload["s"])
    if submission is None or not submission.owner.active:
        raise ShareLinkError
    link = live_link(payload.get("l"), submission)
    return Viewer(submission, token=token, expires_at=link.expires_at)


def share_error_page(error: ShareLinkError) -> Any:
    """The page shown for a refused share link (404 or 410)."""
    body = render_template("detail/share_invalid.html", error=error)
    response = current_app.make_response((body, error.status))
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def dual_route(bp: Blueprint, rule: str, endpoint: str, **options: Any) -> Callable[..., Any]:
    """Register ``view(viewer, **kwargs)`` for owners and for share-link holders.

    ``/submissions/<uuid><rule>`` -> ``<bp>.<endpoint>`` (login required, 404 for others'
    submissions) and ``/shared/<token><rule>`` -> ``<bp>.shared_<endpoint>``.
    """

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @login_required
        @wraps(view)
        def as_owner(uuid: str, **kwargs: Any) -> Any:
            return view(owner_viewer(uuid), **kwargs)

        @wraps(view)
        def as_link_holder(token: str, **kwargs: Any) -> Any:
            try:
                viewer = shared_viewer(token)
            except ShareLinkError as error:
                return share_error_page(error)
            response = current_app.make_response(view(viewer, **kwargs))
            response.headers["X-Robots-Tag"] = "noindex"
            response.headers["Referrer-Policy"] = "no-referrer"
            return response

        bp.add_url_rule(f"/submissions/<uuid>{rule}", endpoint, as_owner, **options)
        bp.add_url_rule(f"/shared/<token>{rule}", f"shared_{endpoint}", as_link_holder, **options)
        return view

    return decorator
