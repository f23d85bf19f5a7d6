"""Forms of the auth and account pages (Flask-WTF: every form carries a CSRF token).

Field rules reuse :mod:`portal.accounts`, so the web, the CLI and the API refuse the same input
with the same message.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    RadioField,
    SelectChoice,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, ValidationError

from portal import accounts
from portal.accounts import AccountError

NOTIFY_LABELS = {
    "completion": "When a submission finishes (completed, failed or cancelled)",
    "failure": "Only when a submission fails or is partly failed",
    "never": "Never",
}


def _account_rule(check: Any) -> Any:
    """A WTForms validator calling an ``accounts`` check that raises :class:`AccountError`."""

    def validator(form: FlaskForm, field: Any) -> None:
        try:
            check(form, field.data or "")
        except AccountError as exc:
            raise ValidationError(exc.message) from exc

    return validator


_username_rule = _account_rule(lambda form, value: accounts.validate_username(value.strip()))
_email_rule = _account_rule(lambda form, value: accounts.validate_email(value))
_new_password_rule = _account_rule(
    lambda form, value: accounts.validate_password(value, form.password_owner())
)


class _NewPasswordMixin:
    """A new password typed twice, checked against the password rules."""

    password = PasswordField(
        "New password",
        validators=[InputRequired(), _new_password_rule],
        description=f"At least {accounts.PASSWORD_MIN_LENGTH} characters; not your username.",
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat the password",
        validators=[InputRequired(), EqualTo("password", "The two passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
    owner_name = ""

    def password_owner(self) -> str:
        return self.owner_name


class LoginForm(FlaskForm):
    login = StringField(
        "Username or email",
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired(), Length(max=accounts.PASSWORD_MAX_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this computer")
    submit = SubmitField("Sign in")


class RegisterForm(_NewPasswordMixin, FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired(), _username_rule],
        description="Lowercase letters, digits, '_' or '-' (like a Unix user name).",
        render_kw={"autocomplete": "username", "autofocus": True, "maxlength": 32},
    )
    email = EmailField(
        "Email",
        validators=[DataRequired(), _email_rule],
        render_kw={"autocomplete": "email"},
    )
    submit = SubmitField("Create account")

    def password_owner(self) -> str:
        return (self.username.data or "").strip()


class ResetRequestForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "email", "autofocus": True},
    )
    submit = SubmitField("Send reset link")


class ResetPasswordForm(_NewPasswordMixin, FlaskForm):
    submit = SubmitField("Set new password")


class NotifyForm(FlaskForm):
    notify = RadioField(
        "Email me about my submissions",
        choices=[SelectChoice(key, NOTIFY_LABELS[key]) for key in accounts.NOTIFY_CHOICES],
        validators=[InputRequired()],
    )
    submit = SubmitField("Save preference")


class EmailChangeForm(FlaskForm):
    email = EmailField(
        "New email", validators=[DataRequired(), _email_rule], render_kw={"autocomplete": "email"}
    )
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Change email")


class PasswordChangeForm(_NewPasswordMixin, FlaskForm):
    current_password = PasswordField(
        "Current password",
        validators=[InputRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField("Change password")


class TokenCreateForm(FlaskForm):
    name = StringField(
        "Token name",
        validators=[DataRequired(), Length(max=accounts.TOKEN_NAME_MAX)],
        description="Where it will be used, e.g. 'laptop' or 'CI pipeline'.",
        render_kw={"maxlength": accounts.TOKEN_NAME_MAX, "placeholder": "e.g. laptop"},
    )
    submit = SubmitField("Create token")
