"""Forms of the admin pages (Flask-WTF: each carries and checks a CSRF token).

Per-row actions of the lists (approve, activate, role...) are small forms without visible
fields; their values are checked here, so a crafted POST is refused with the same message.
"""

from __future__ import annotations

import re
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from portal import accounts
from portal.accounts import AccountError
from portal.models import Role

#: A portable Unix login name (what ``sudo -u`` gets with SLURM_RUN_AS='user'): no leading
#: ``-`` (an option) or ``#`` (a uid), at most 32 characters.
UNIX_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
REASON_MAX = 2000


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button: nothing but the CSRF token."""


class RejectForm(FlaskForm):
    reason = TextAreaField(
        "Reason",
        validators=[DataRequired("A rejection needs a reason."), Length(max=REASON_MAX)],
        filters=[_strip],
        description="The owner reads this in the rejection email.",
        render_kw={"rows": 2, "maxlength": REASON_MAX, "required": True},
    )
    submit = SubmitField("Reject")


class RoleForm(FlaskForm):
    role = SelectField(
        "Role",
        choices=[SelectChoice(role.value, role.value) for role in Role],
        validators=[InputRequired()],
    )


def _slurm_account(form: FlaskForm, field: Any) -> None:
    if field.data and not accounts.SLURM_ACCOUNT_RE.fullmatch(field.data):
        raise ValidationError(
            f"Invalid Slurm account name {field.data!r}: letters, digits, '_', '.' or '-'."
        )


def _unix_user(form: FlaskForm, field: Any) -> None:
    if field.data and (not UNIX_NAME_RE.match(field.data) or field.data == "root"):
        raise ValidationError(
            f"Invalid Unix user {field.data!r}: a plain login name (not root), e.g. 'ada'."
        )


class UserAccountsForm(FlaskForm):
    """Which Slurm account a user's jobs are charged to, and which Unix user they run as."""

    slurm_account = StringField(
        "Slurm account",
        validators=[Optional(), Length(max=64), _slurm_account],
        filters=[_strip],
        render_kw={"maxlength": 64, "placeholder": "cluster default"},
    )
    unix_user = StringField(
        "Unix user",
        validators=[Optional(), Length(max=32), _unix_user],
        filters=[_strip],
        render_kw={"maxlength": 32, "placeholder": "none"},
    )


def _invite_email(form: FlaskForm, field: Any) -> None:
    if field.data:
        try:
            field.data = accounts.validate_email(field.data)
        except AccountError as exc:
            raise ValidationError(exc.message) from exc


class InviteForm(FlaskForm):
    email = EmailField(
        "Email (optional)",
        validators=[Optional(), Length(max=254), _invite_email],
        filters=[_strip],
        description="Bind the invitation to this address; leave empty for a link anyone can use.",
        render_kw={"autocomplete": "off", "placeholder": "designer@example.org"},
    )
    send = BooleanField("Email the link to this address")
    submit = SubmitField("Create invitation link")

    def validate_send(self, field: Any) -> None:
        if field.data and not self.email.data:
            raise ValidationError("Give an email address to send the invitation to.")


def _recipient(form: FlaskForm, field: Any) -> None:
    try:
        field.data = accounts.validate_email(field.data or "")
    except AccountError as exc:
        raise ValidationError(exc.message) from exc


class TestEmailForm(FlaskForm):
    __test__ = False  # not a pytest test class

    recipient = EmailField(
        "Recipient",
        validators=[DataRequired("Give the address to send the test email to."), _recipient],
        filters=[_strip],
        render_kw={"autocomplete": "email"},
    )
    submit = SubmitField("Send test email")
