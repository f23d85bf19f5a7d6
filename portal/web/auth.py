"""Blueprint ``auth``: sign in/out, registration (open, invite-only, admin-activated) and
password reset by emailed link.

Brute force is slowed twice: Flask-Limiter caps failed sign-ins per client address and login
name (``LOGIN_RATE_LIMIT``) and per address (``LOGIN_IP_RATE_LIMIT``), and an escalating lock
(``LOGIN_LOCKOUT``) holds an account after repeated failures from anywhere. Both answer 429.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from limits import parse_many
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal import accounts
from portal.accounts import AccountError
from portal.extensions import db
from portal.models import Role, User
from portal.web import home_url, limiter
from portal.web.forms import LoginForm, RegisterForm, ResetPasswordForm, ResetRequestForm

bp = Blueprint("auth", __name__, url_prefix="/auth")

_LOCKOUT_NAMESPACE = "login-lockout"


# --------------------------------------------------------------------------- helpers


def send_mail(recipient: str, subject: str, body_text: str, dedupe_key: str) -> None:
    """Queue an email in the outbox (portal.mail.outbox delivers and retries it).

    A message with the same ``dedupe_key`` is queued only once, also under a race.
    """
    from portal.mail.outbox import enqueue_mail  # imported late: the mail layer loads after the web

    enqueue_mail(recipient, subject, body_text, None, dedupe_key=dedupe_key)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent request queued the same message first
        db.session.rollback()


def site_url(endpoint: str, **values: Any) -> str:
    """Absolute URL of ``endpoint`` under ``SITE_URL`` (for links in emails)."""
    path = url_for(endpoint, **values)
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root) :]
    return str(current_app.config["SITE_URL"]).rstrip("/") + path


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no open redirects), else ``None``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(ch) < 32 for ch in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _login_limit_key() -> str:
    login = (request.form.get("login") or "").strip().lower()[:254]
    return f"{get_remote_address()}|{login}"


def _counts_as_failure(response: Response) -> bool:
    return response.status_code != 302  # a successful sign-in redirects


# --------------------------------------------------------------------------- account lockout


def _lockout_items() -> list[Any]:
    return parse_many(str(current_app.config["LOGIN_LOCKOUT"]))


def _lockout_key(login: str) -> str:
    user = accounts.find_user(login)  # username and email of one account share one counter
    return f"user:{user.id}" if user else f"login:{login.strip().lower()[:254]}"


def locked_for(key: str) -> int:
    """Seconds the account behind ``key`` stays locked (0 when it is not)."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return 0
    strategy, wait = limiter.limiter, 0
    for item in _lockout_items():
        if not strategy.test(item, _LOCKOUT_NAMESPACE, key):
            reset_at = strategy.get_window_stats(item, _LOCKOUT_NAMESPACE, key).reset_time
            wait = max(wait, int(reset_at - time.time()) + 1)
    return wait


def _record_failure(key: str) -> None:
    if current_app.config.get("RATELIMIT_ENABLED", True):
        for item in _lockout_items():
            limiter.limiter.hit(item, _LOCKOUT_NAMESPACE, key)


def clear_failures(key: str) -> None:
    """Forget the failed sign-ins counted against ``key``."""
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return
    for item in _lockout_items():
        limiter.limiter.clear(item, _LOCKOUT_NAMESPACE, key)


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


# --------------------------------------------------------------------------- sign in / out


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: str(current_app.config["LOGIN_RATE_LIMIT"]),
    key_func=_login_limit_key,
    methods=["POST"],
    deduct_when=_counts_as_failure,
    error_message="Too many sign-in attempts for this name from your address.",
)
@limiter.limit(
    lambda: str(current_app.config["LOGIN_IP_RATE_LIMIT"]),
    methods=["POST"],
    deduct_when=_counts_as_failure,
    scope="login-ip",
    error_message="Too many sign-in attempts from your address.",
)
def login() -> Any:
    """Sign in by username or email."""
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or home_url())
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        key = _lockout_key(form.login.data)
        wait = locked_for(key)
        if wait:
            form.form_errors.append(
                "Too many failed sign-ins for this account. It is locked for "
                f"{_minutes(wait)}; try again later or reset your password."
            )
            return render_template("auth/login.html", form=form), 429, {"Retry-After": str(wait)}
        user = accounts.authenticate(form.login.data, form.password.data)
        if user is None:
            _record_failure(key)
            form.form_errors.append("Wrong username/email or password.")
        elif not user.active:
            form.form_errors.append(
                "Your account is not active: an administrator has to activate it first."
            )
            status = 403
        else:
            clear_failures(key)
            login_user(user, remember=form.remember.data)
            flash(f"Signed in as {user.username}.", "success")
            return redirect(next_url or home_url())
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Any:
    """Sign out (a POST with CSRF token, so other sites cannot sign users out).

    Ends every session of the account, not just this browser's cookie: a copied session or
    remember-me cookie stops working too (sessions carry the account's session version).
    """
    accounts.end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are signed out, on every browser of your account.", "info")
    return redirect(url_for("auth.login"))


# --------------------------------------------------------------------------- registration


def _closed(message: str, status: int = 403) -> tuple[str, int]:
    return render_template("auth/register_closed.html", message=message), status


def _tell_admins_about(user: User) -> None:
    admins = db.session.scalars(
        select(User).where(User.role == Role.ADMIN, User.active.is_(True))
    ).all()
    target = "admin.users" if "admin.users" in current_app.view_functions else None
    link = site_url(target) if target else str(current_app.config["SITE_URL"])
    for admin in admins:
        send_mail(
            admin.email,
            f"[OpenLane Portal] New account awaiting activation: {user.username}",
            f"Hello {admin.username},\n\n{user.username} <{user.email}> registered on the "
            f"OpenLane Portal and waits for an administrator to activate the account:\n\n"
            f"{link}\n",
            dedupe_key=f"activation-request:{user.id}:{admin.id}",
        )


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(
    lambda: str(current_app.config["REGISTER_RATE_LIMIT"]),
    methods=["POST"],
    error_message="Too many registrations from your address.",
)
def register() -> Any:
    """Create an account; what happens next depends on the REGISTRATION setting."""
    if current_user.is_authenticated:
        return redirect(home_url())
    mode = current_app.config["REGISTRATION"]
    invite = None
    if mode == "invite-only":
        token = request.args.get("invite", "")
        if not token:
            return _closed("Accounts on this portal are by invitation only. Ask an administrator.")
        try:
            invite = accounts.verify_invite_token(token)
        except AccountError as exc:
            return _closed(f"{exc.message} Ask an administrator for a new invitation.")
    form = RegisterForm()
    if invite and invite.email:
        if request.method == "GET":
            form.email.data = invite.email
        form.email.render_kw = {**(form.email.render_kw or {}), "readonly": True}
    if form.validate_on_submit():
        if invite and invite.email and form.email.data.strip().lower() != invite.email.lower():
            form.email.errors.append("This invitation is for another email address.")
        else:
            try:
                user = accounts.create_user(
                    form.username.data.strip(),
                    form.email.data,
                    form.password.data,
                    active=mode != "admin-activated",
                )
            except AccountError as exc:
                field = getattr(form, exc.field or "", None)
                (field.errors if field is not None else form.form_errors).append(exc.message)
            else:
                return _registered(user)
    return render_template("auth/register.html", form=form, mode=mode, invite=invite)


def _registered(user: User) -> Any:
    if not user.active:
        _tell_admins_about(user)
        flash(
            "Your account was created. An administrator has to activate it before you can sign "
            "in; you will be able to sign in once that is done.",
            "info",
        )
        return redirect(url_for("auth.login"))
    login_user(user)
    flash(f"Welcome, {user.username}! Your account is ready.", "success")
    return redirect(home_url())


# --------------------------------------------------------------------------- password reset


@bp.route("/reset", methods=["GET", "POST"])
@limiter.limit(
    lambda: str(current_app.config["PASSWORD_RESET_RATE_LIMIT"]),
    methods=["POST"],
    error_message="Too many password reset requests from your address.",
)
def reset_request() -> Any:
    """Ask for a reset link. The answer is the same whether or not the address is known."""
    form = ResetRequestForm()
    if form.validate_on_submit():
        max_age = int(current_app.config["PASSWORD_RESET_MAX_AGE"])
        for user in accounts.users_by_email(form.email.data):
            if user.active:
                _send_reset_link(user, max_age)
        flash(
            "If an active account uses that address, we have emailed it a link to choose a new "
            f"password. The link works for {_minutes(max_age)}.",
            "info",
        )
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


def _send_reset_link(user: User, max_age: int) -> None:
    link = site_url("auth.reset_password", token=accounts.make_reset_token(user))
    send_mail(
        user.email,
        "[OpenLane Portal] Reset your password",
        f"Hello {user.username},\n\n"
        "Someone (hopefully you) asked to reset the password of your OpenLane Portal "
        f"account. Open this link within {_minutes(max_age)} to choose a new password:\n\n"
        f"{link}\n\n"
        "The link works once. If you did not ask for it, ignore this email: your password "
        "stays as it is.\n",
        # one email per account per 5 minutes, however often the form is sent
        dedupe_key=f"password-reset:{user.id}:{int(time.time()) // 300}",
    )


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    """Choose a new password from an emailed link."""
    try:
        user = accounts.verify_reset_token(token)
    except AccountError as exc:
        return render_template("auth/reset_invalid.html", message=exc.message), 400
    form = ResetPasswordForm()
    form.owner_name = user.username
    if form.validate_on_submit():
        accounts.set_password(user, form.password.data)
        db.session.commit()
        clear_failures(f"user:{user.id}")
        if current_user.is_authenticated:
            logout_user()
        flash("Your password was changed. Sign in with the new one.", "success")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form, user=user)
