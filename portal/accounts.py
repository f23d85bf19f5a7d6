"""User accounts: passwords, validation, API tokens and signed reset/invite tokens.

No request handling here: the web views, the CLI (``portal user add``) and the mail layer all
use these functions inside an application context. Invalid input raises :class:`AccountError`
with a message fit to show to the user, before anything is written.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import email_validator
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.models import ApiToken, Role, User, utcnow

USERNAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
#: System accounts a portal user must not be named after (jobs may run as the user's Unix name).
RESERVED_USERNAMES = frozenset(
    {"root", "daemon", "bin", "sys", "sync", "nobody", "slurm", "munge", "mysql", "postgres"}
)
SLURM_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
NOTIFY_CHOICES = ("completion", "failure", "never")
TOKEN_PREFIX = "olp_"  # noqa: S105  (a public marker, not a secret)
TOKEN_NAME_MAX = 100
#: Seconds between two writes of ``ApiToken.last_used_at`` (spares the database a write per call).
LAST_USED_RESOLUTION = timedelta(seconds=60)
DEFAULT_RESET_MAX_AGE = 3600
DEFAULT_INVITE_MAX_AGE = 7 * 24 * 3600

_hasher = PasswordHasher()
# Verified against when a login names no account, so both cases take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """Invalid account input; ``field`` names the form field it concerns (or ``None``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


# --------------------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """Return an Argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash`` (``None`` never matches)."""
    if not password_hash:
        _hasher_verify(_DUMMY_HASH, password)
        return False
    return _hasher_verify(password_hash, password)


def _hasher_verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def validate_password(password: str, username: str) -> str:
    """Check the password rules (length >= 10, not the username); return the password."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AccountError(
            f"The password must be at least {PASSWORD_MIN_LENGTH} characters long.", "password"
        )
    if len(password) > PASSWORD_MAX_LENGTH:
        raise AccountError(
            f"The password must be at most {PASSWORD_MAX_LENGTH} characters long.", "password"
        )
    if password.strip().lower() == username.strip().lower():
        raise AccountError("The password must not be the same as the username.", "password")
    return password


def set_password(user: User, password: str) -> None:
    """Validate and store a new password (the caller commits).

    Every session of the account ends (:func:`end_sessions`) and outstanding reset links,
    which carry a fingerprint of the previous hash, stop working.
    """
    validate_password(password, user.username)
    user.password_hash = hash_password(password)
    end_sessions(user)


def check_password(user: User, password: str) -> bool:
    """Verify ``password`` for ``user``; upgrade the hash if the Argon2 parameters changed."""
    if not verify_password(user.password_hash, password):
        return False
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
    return True


def password_fingerprint(user: User) -> str:
    """A short keyed digest of the current password hash: changes whenever the password does.

    Reset links carry it, so a link works once. Sessions do not: they carry the account's
    ``session_version`` (see :func:`end_sessions`).
    """
    key = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- sessions


def session_id(user: User) -> str:
    """What a browser session and a remember-me cookie carry: ``"<id>:<session_version>"``."""
    return f"{user.id}:{user.session_version}"


def user_for_session_id(value: str) -> User | None:
    """The active user a session id from :func:`session_id` still signs in, else ``None``.

    ``None`` when the account is gone or inactive, or when its sessions were ended since the
    id was issued (the version differs; also ids of the older ``<id>:<fingerprint>`` form).
    """
    user_id, _, version = (value or "").partition(":")
    if not user_id.isdigit() or not version.isdigit() or len(user_id) > 18 or len(version) > 18:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or int(version) != user.session_version:
        return None
    return user


def end_sessions(user: User) -> None:
    """End every browser session and remember-me cookie of ``user`` (the caller commits).

    Raises ``session_version`` in the database (atomically: two concurrent calls raise it
    twice), so each session id made before stops loading. API tokens are not affected.
    """
    if sa_inspect(user).persistent:
        user.session_version = User.session_version + 1  # UPDATE ... SET v = v + 1
        db.session.flush()  # the attribute reads the new number from now on
    else:
        user.session_version = (user.session_version or 0) + 1


# --------------------------------------------------------------------------- users


def validate_username(username: str) -> str:
    """Return ``username`` if it is usable as a portal and Unix user name, else raise."""
    if not username:
        raise AccountError("A username is required.", "username")
    if not USERNAME_RE.fullmatch(username):
        raise AccountError(
            f"Invalid username {username!r}: use 1-32 characters, lowercase letters, digits, "
            "'_' or '-', starting with a letter or '_' (it must be a valid Unix user name).",
            "username",
        )
    if username in RESERVED_USERNAMES:
        raise AccountError(f"The username {username!r} is reserved.", "username")
    return username


def validate_email(email: str) -> str:
    """Return the normalized form of ``email`` or raise :class:`AccountError`."""
    if not email or not email.strip():
        raise AccountError("An email address is required.", "email")
    try:
        info = email_validator.validate_email(email.strip(), check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise AccountError(f"Invalid email address {email!r}: {exc}", "email") from exc
    return info.normalized


def find_user(login: str) -> User | None:
    """The user whose username is ``login``, or whose email is (when exactly one has it)."""
    login = login.strip()
    if not login:
        return None
    user = db.session.scalar(select(User).where(User.username == login.lower()))
    if user is not None or "@" not in login:
        return user
    matches = users_by_email(login)
    return matches[0] if len(matches) == 1 else None


def users_by_email(email: str) -> list[User]:
    """Users registered with ``email`` (compared case-insensitively)."""
    stmt = select(User).where(func.lower(User.email) == email.strip().lower()).order_by(User.id)
    return list(db.session.scalars(stmt))


def authenticate(login: str, password: str) -> User | None:
    """The user named by ``login`` (username or email) if ``password`` is right, else ``None``.

    Inactive users are returned too: the caller decides what to tell them. The time taken does
    not reveal whether the account exists.
    """
    user = find_user(login)
    if user is None:
        verify_password(None, password)
        return None
    return user if check_password(user, password) else None


def create_user(
    username: str,
    email: str,
    password: str | None = None,
    role: str = "user",
    slurm_account: str | None = None,
    active: bool = True,
) -> User:
    """Validate and create a user (committed). Nothing is written when a value is refused.

    ``password=None`` creates an account that cannot sign in until a password is set (for
    example through a reset link). Raises :class:`AccountError` for an invalid or taken
    username, an invalid or already registered email, a weak password or an unknown role.
    """
    username = validate_username(username.strip() if username else "")
    email = validate_email(email)
    if password is not None:
        validate_password(password, username)
    if role not in {r.value for r in Role}:
        raise AccountError(f"Unknown role {role!r}: use one of {', '.join(Role)}.", "role")
    if slurm_account is not None and not SLURM_ACCOUNT_RE.fullmatch(slurm_account):
        raise AccountError(f"Invalid Slurm account name {slurm_account!r}.", "slurm_account")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"The username {username!r} is already taken.", "username")
    if users_by_email(email):
        raise AccountError(f"The email address {email!r} is already registered.", "email")
    user = User(
        username=username,
        email=email,
        password_hash=hash_password(password) if password is not None else None,
        role=role,
        slurm_account=slurm_account,
        active=active,
    )
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError as exc:  # a concurrent registration took the name first
        db.session.rollback()
        raise AccountError(f"The username {username!r} is already taken.", "username") from exc
    return user


def change_email(user: User, email: str) -> str:
    """Validate and set a new email for ``user`` (the caller commits); return it normalized."""
    email = validate_email(email)
    if any(other.id != user.id for other in users_by_email(email)):
        raise AccountError(f"The email address {email!r} is already registered.", "email")
    user.email = email
    return email


def set_notify(user: User, preference: str) -> None:
    """Set when ``user`` gets email about finished submissions (the caller commits)."""
    if preference not in NOTIFY_CHOICES:
        raise AccountError(
            f"Unknown notification preference {preference!r}: use one of "
            f"{', '.join(NOTIFY_CHOICES)}.",
            "notify",
        )
    user.notify = preference


# --------------------------------------------------------------------------- API tokens


def _token_digest(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_api_token(user: User, name: str) -> tuple[str, ApiToken]:
    """Create a personal API token; return ``(plaintext, row)``. Only the SHA-256 is stored,
    so the plaintext must be shown to the user now or never."""
    name = (name or "").strip()
    if not name:
        raise AccountError("Give the token a name (for example the machine that uses it).", "name")
    if len(name) > TOKEN_NAME_MAX:
        raise AccountError(f"Token names are at most {TOKEN_NAME_MAX} characters.", "name")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=_token_digest(plaintext),
        prefix=plaintext[:12],
    )
    db.session.add(token)
    db.session.commit()
    return plaintext, token


def revoke_api_token(token: ApiToken) -> None:
    """Revoke ``token`` (kept for the record, refused from now on)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()


def api_token_for(plaintext: str) -> ApiToken | None:
    """The live token row for ``plaintext``: not revoked, owner active. Updates last use."""
    if not plaintext or not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = db.session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _token_digest(plaintext), ApiToken.revoked_at.is_(None)
        )
    )
    if token is None or not token.user.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        token.last_used_at = now
        db.session.commit()
    return token


def user_for_token(plaintext: str) -> User | None:
    """The active owner of a live API token, or ``None``."""
    token = api_token_for(plaintext)
    return token.user if token is not None else None


# --------------------------------------------------------------------------- signed tokens

_RESET_SALT = "openlane-portal/password-reset"
_INVITE_SALT = "openlane-portal/invite"


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def _load(salt: str, token: str, max_age: int, what: str) -> Any:
    try:
        return _serializer(salt).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AccountError(f"This {what} link has expired.", "token") from exc
    except BadSignature as exc:
        raise AccountError(f"This {what} link is not valid.", "token") from exc


def make_reset_token(user: User) -> str:
    """A signed password-reset token for ``user``; void once the password changes."""
    return _serializer(_RESET_SALT).dumps({"uid": user.id, "fp": password_fingerprint(user)})


def verify_reset_token(token: str, max_age: int | None = None) -> User:
    """The user a reset token was made for; raises :class:`AccountError` when it is forged,
    expired (``PASSWORD_RESET_MAX_AGE`` seconds), already used or the account is inactive."""
    if max_age is None:
        max_age = int(current_app.config.get("PASSWORD_RESET_MAX_AGE", DEFAULT_RESET_MAX_AGE))
    data = _load(_RESET_SALT, token, max_age, "password reset")
    user = db.session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or not user.active:
        raise AccountError("This password reset link is not valid.", "token")
    if not hmac.compare_digest(str(data.get("fp", "")), password_fingerprint(user)):
        raise AccountError(
            "This password reset link was already used (the password has changed since).", "token"
        )
    return user


@dataclass(frozen=True)
class Invite:
    """A verified invitation; ``email`` set means the account must use that address."""

    email: str | None = None


def make_invite_token(email: str | None = None) -> str:
    """A signed invitation to register, optionally bound to one email address.

    An address-bound invite is effectively single-use, as an address registers only once.
    """
    bound = validate_email(email) if email else None
    return _serializer(_INVITE_SALT).dumps({"email": bound, "n": secrets.token_hex(4)})


def verify_invite_token(token: str, max_age: int | None = None) -> Invite:
    """Check an invitation (``INVITE_MAX_AGE`` seconds); raise :class:`AccountError` if invalid."""
    if max_age is None:
        max_age = int(current_app.config.get("INVITE_MAX_AGE", DEFAULT_INVITE_MAX_AGE))
    data = _load(_INVITE_SALT, token, max_age, "invitation")
    if not isinstance(data, dict):
        raise AccountError("This invitation link is not valid.", "token")
    return Invite(email=data.get("email") or None)
