"""Blueprint ``account``: the signed-in user's profile, notification preference, email and
password, and personal API tokens (the plaintext is shown once, right after creation)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select

from portal import accounts
from portal.accounts import AccountError
from portal.extensions import db
from portal.models import ApiToken
from portal.web.forms import EmailChangeForm, NotifyForm, PasswordChangeForm, TokenCreateForm

bp = Blueprint("account", __name__, url_prefix="/account")


def _profile_page(status: int = 200, **forms: Any) -> tuple[str, int]:
    user = current_user
    notify_form = forms.get("notify_form") or NotifyForm(formdata=None, notify=user.notify)
    email_form = forms.get("email_form") or EmailChangeForm(formdata=None)
    password_form = forms.get("password_form") or PasswordChangeForm(formdata=None)
    page = render_template(
        "account/profile.html",
        user=user,
        notify_form=notify_form,
        email_form=email_form,
        password_form=password_form,
    )
    return page, status


@bp.get("/")
@login_required
def profile() -> Any:
    """The profile page."""
    return _profile_page()


@bp.post("/notify")
@login_required
def update_notify() -> Any:
    """Save when the user wants email about their submissions."""
    form = NotifyForm()
    if not form.validate_on_submit():
        return _profile_page(400, notify_form=form)
    accounts.set_notify(current_user, form.notify.data)
    db.session.commit()
    flash("Notification preference saved.", "success")
    return redirect(url_for("account.profile"))


@bp.post("/email")
@login_required
def update_email() -> Any:
    """Change the email address (the current password is required: email controls resets)."""
    form = EmailChangeForm()
    if form.validate_on_submit():
        if not accounts.check_password(current_user, form.current_password.data):
            form.current_password.errors.append("The current password is not right.")
        else:
            try:
                accounts.change_email(current_user, form.email.data)
            except AccountError as exc:
                form.email.errors.append(exc.message)
            else:
                db.session.commit()
                flash("Email address changed.", "success")
                return redirect(url_for("account.profile"))
    return _profile_page(400, email_form=form)


@bp.post("/password")
@login_required
def update_password() -> Any:
    """Change the password; other sessions of the account end."""
    form = PasswordChangeForm()
    form.owner_name = current_user.username
    if form.validate_on_submit():
        if not accounts.check_password(current_user, form.current_password.data):
            form.current_password.errors.append("The current password is not right.")
        else:
            accounts.set_password(current_user, form.password.data)
            db.session.commit()
            # set_password ended every session: sign this browser in again (only it).
            cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            login_user(current_user._get_current_object(), remember=cookie in request.cookies)
            flash("Password changed. Other sessions of your account were signed out.", "success")
            return redirect(url_for("account.profile"))
    return _profile_page(400, password_form=form)


@bp.post("/sessions/end")
@login_required
def end_sessions() -> Any:
    """Sign out everywhere: every session and remember-me cookie of the account ends, this
    browser's too (a POST with CSRF token). API tokens keep working."""
    accounts.end_sessions(current_user._get_current_object())
    db.session.commit()
    logout_user()
    flash("You are signed out on every browser and device. API tokens still work.", "success")
    return redirect(url_for("auth.login"))


# --------------------------------------------------------------------------- API tokens


def _tokens_page(form: TokenCreateForm, new_token: str | None = None, status: int = 200) -> Any:
    tokens = db.session.scalars(
        select(ApiToken)
        .where(ApiToken.user_id == current_user.id)
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    ).all()
    page = render_template("account/tokens.html", form=form, tokens=tokens, new_token=new_token)
    return page, status


@bp.get("/tokens")
@login_required
def tokens() -> Any:
    """List the user's API tokens and offer to create one."""
    return _tokens_page(TokenCreateForm(formdata=None))


@bp.post("/tokens")
@login_required
def create_token() -> Any:
    """Create a token and show its plaintext on this answer only (never stored, never again)."""
    form = TokenCreateForm()
    if not form.validate_on_submit():
        return _tokens_page(form, status=400)
    try:
        plaintext, token = accounts.create_api_token(current_user, form.name.data)
    except AccountError as exc:
        form.name.errors.append(exc.message)
        return _tokens_page(form, status=400)
    flash(f"Token “{token.name}” created. Copy it now: it will not be shown again.", "success")
    return _tokens_page(TokenCreateForm(formdata=None), new_token=plaintext, status=201)


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    """Revoke one of the user's own tokens."""
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != current_user.id:
        abort(404)
    accounts.revoke_api_token(token)
    flash(f"Token “{token.name}” revoked.", "success")
    return redirect(url_for("account.tokens"))


@bp.get("/whoami")
@login_required
def whoami() -> Any:
    """JSON about the authenticated user (works with a session or a bearer token)."""
    token = g.get("api_token")
    return jsonify(
        username=current_user.username,
        email=current_user.email,
        role=current_user.role,
        slurm_account=current_user.slurm_account,
        notify=current_user.notify,
        auth="token" if token is not None else "session",
        token=token.prefix if token is not None else None,
    )
