"""Who may see what: the admin decorator, per-submission access and the Flask-Login protocol.

Rule of the portal: admins see everything, everybody else sees only their own things. Views
answer 404 (not 403) for someone else's submission, so its existence does not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort, current_app
from flask_login import current_user
from sqlalchemy import Select, select

from portal.accounts import session_id
from portal.models import Submission, User

F = TypeVar("F", bound=Callable[..., Any])


def is_admin(user: Any) -> bool:
    """True for an authenticated, active admin."""
    return bool(getattr(user, "is_authenticated", False) and user.active and user.is_admin)


def can_view(user: Any, submission: Submission) -> bool:
    """Admins see every submission; other signed-in users only their own."""
    if not getattr(user, "is_authenticated", False) or not user.active:
        return False
    return is_admin(user) or submission.owner_id == user.id


def require_view(submission: Submission | None) -> Submission:
    """Return ``submission`` if the current user may see it, else abort with 404."""
    if submission is None or not can_view(current_user, submission):
        abort(404)
    return submission


def visible_submissions(user: User) -> Select[tuple[Submission]]:
    """A query for the submissions ``user`` may see (all of them for admins)."""
    stmt = select(Submission)
    if not is_admin(user):
        stmt = stmt.where(Submission.owner_id == user.id)
    return stmt


def admin_required(view: F) -> F:
    """Decorate a view: anonymous users are sent to sign in, non-admins get 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        if not is_admin(current_user):
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapper)


# --------------------------------------------------------------------------- Flask-Login


def install_login_protocol(cls: type[User]) -> None:
    """Give the ``User`` model what Flask-Login needs (models.py stays free of web imports).

    ``is_active`` follows the ``active`` column and ``get_id`` is ``"<id>:<session_version>"``
    (:func:`portal.accounts.session_id`: the session and remember-me cookie carry it, and
    :func:`portal.accounts.user_for_session_id` refuses it once the version has moved on);
    both are always set, also if the model gains ``UserMixin`` later.
    """
    cls.is_active = property(lambda self: bool(self.active))  # type: ignore[attr-defined]
    cls.get_id = session_id  # type: ignore[attr-defined]
    if not hasattr(cls, "is_authenticated"):
        cls.is_authenticated = property(lambda self: True)  # type: ignore[attr-defined]
    if not hasattr(cls, "is_anonymous"):
        cls.is_anonymous = property(lambda self: False)  # type: ignore[attr-defined]
