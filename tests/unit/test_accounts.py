"""portal.accounts on a real SQLite database: hashing, validation, API tokens, signed tokens."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import func, select

from portal import accounts, create_app
from portal.accounts import AccountError
from portal.extensions import db
from portal.models import ApiToken, User

GOOD_PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}", "RUN_ROOT": str(tmp_path)}
    )
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


# --------------------------------------------------------------------------- passwords


def test_hash_is_argon2id_salted_and_verifies():
    first = accounts.hash_password(GOOD_PASSWORD)
    second = accounts.hash_password(GOOD_PASSWORD)
    assert first.startswith("$argon2id$")
    assert first != second  # salted
    assert GOOD_PASSWORD not in first
    assert accounts.verify_password(first, GOOD_PASSWORD)
    assert not accounts.verify_password(first, GOOD_PASSWORD + "!")
    assert not accounts.verify_password(None, GOOD_PASSWORD)
    assert not accounts.verify_password("not-a-hash", GOOD_PASSWORD)


@pytest.mark.parametrize(
    ("password", "message"),
    [("short", "at least 10"), ("ada_design", "same as the username"), ("x" * 2000, "at most")],
)
def test_password_rules(password, message):
    with pytest.raises(AccountError, match=message) as info:
        accounts.validate_password(password, "ada_design")
    assert info.value.field == "password"


# --------------------------------------------------------------------------- create_user


def test_create_user_stores_normalized_email_and_hash(app):
    user = accounts.create_user("ada", "Ada@Example.ORG", GOOD_PASSWORD, slurm_account="chips")
    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert stored.email == "Ada@example.org"  # domain normalized, local part kept
    assert stored.role == "user" and stored.active and stored.slurm_account == "chips"
    assert accounts.verify_password(stored.password_hash, GOOD_PASSWORD)
    assert accounts.authenticate("ada", GOOD_PASSWORD) == stored
    assert accounts.authenticate("ADA@example.org", GOOD_PASSWORD) == stored  # by email
    assert accounts.authenticate("ada", "wrong password") is None
    assert accounts.authenticate("nobody", GOOD_PASSWORD) is None


def test_create_user_without_password_cannot_sign_in(app):
    user = accounts.create_user("grace", "grace@example.org")
    assert user.password_hash is None
    assert accounts.authenticate("grace", "") is None


@pytest.mark.parametrize(
    "username",
    ["", "Ada", "9lives", "a" * 33, "ada lovelace", "ada;rm", "<script>", "-dash", "root"],
)
def test_create_user_refuses_bad_usernames_and_writes_nothing(app, username):
    with pytest.raises(AccountError) as info:
        accounts.create_user(username, "ok@example.org", GOOD_PASSWORD)
    assert info.value.field == "username"
    assert "username" in info.value.message.lower()
    assert user_count() == 0


@pytest.mark.parametrize(
    ("email", "detail"),
    [
        ("not-an-email", "@-sign"),
        ("a@b", "period"),
        ("x@@example.org", "invalid characters"),
        ("", "required"),
    ],
)
def test_create_user_refuses_invalid_emails_and_writes_nothing(app, email, detail):
    with pytest.raises(AccountError) as info:
        accounts.create_user("ada", email, GOOD_PASSWORD)
    assert info.value.field == "email"
    assert detail in info.value.message
    if email:
        assert repr(email) in info.value.message  # the message names the refused address
    assert user_count() == 0


def test_create_user_refuses_duplicates_weak_password_and_unknown_role(app):
    accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    cases = [
        (("ada", "other@example.org", GOOD_PASSWORD), {}, "already taken"),
        (("bob", "ADA@example.org", GOOD_PASSWORD), {}, "already registered"),
        (("bob", "bob@example.org", "short"), {}, "at least 10"),
        (("bob", "bob@example.org", GOOD_PASSWORD), {"role": "root"}, "Unknown role"),
        (("bob", "bob@example.org", GOOD_PASSWORD), {"slurm_account": "a b"}, "Slurm account"),
    ]
    for args, kwargs, message in cases:
        with pytest.raises(AccountError, match=message):
            accounts.create_user(*args, **kwargs)
    assert user_count() == 1


def test_set_notify_accepts_only_known_preferences(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    for choice in accounts.NOTIFY_CHOICES:
        accounts.set_notify(user, choice)
        assert user.notify == choice
    with pytest.raises(AccountError, match="Unknown notification"):
        accounts.set_notify(user, "always")


# --------------------------------------------------------------------------- API tokens


def test_api_token_stores_only_a_digest_and_authenticates(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    plaintext, token = accounts.create_api_token(user, "laptop")
    assert plaintext.startswith("olp_") and len(plaintext) > 40
    row = db.session.scalars(select(ApiToken)).one()
    assert row.token_hash != plaintext and plaintext not in row.token_hash
    assert len(row.token_hash) == 64 and row.prefix == plaintext[:12]
    assert row.last_used_at is None
    assert accounts.user_for_token(plaintext) == user
    assert row.last_used_at is not None
    assert accounts.user_for_token(plaintext + "x") is None
    assert accounts.user_for_token("") is None


def test_revoked_token_and_inactive_owner_are_refused(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    first, first_row = accounts.create_api_token(user, "ci")
    second, _ = accounts.create_api_token(user, "laptop")
    accounts.revoke_api_token(first_row)
    assert accounts.user_for_token(first) is None
    assert accounts.user_for_token(second) == user
    user.active = False
    db.session.commit()
    assert accounts.user_for_token(second) is None


def test_api_token_needs_a_name(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    with pytest.raises(AccountError, match="name"):
        accounts.create_api_token(user, "  ")
    assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


# --------------------------------------------------------------------------- signed tokens


def test_reset_token_round_trip_and_void_after_password_change(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    token = accounts.make_reset_token(user)
    assert accounts.verify_reset_token(token) == user
    accounts.set_password(user, "a brand new passphrase")
    db.session.commit()
    with pytest.raises(AccountError, match="already used"):
        accounts.verify_reset_token(token)


def test_reset_token_forged_expired_or_for_inactive_user(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    token = accounts.make_reset_token(user)
    with pytest.raises(AccountError, match="not valid"):
        accounts.verify_reset_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    with pytest.raises(AccountError, match="expired"):
        accounts.verify_reset_token(token, max_age=-1)  # older than allowed
    user.active = False
    db.session.commit()
    with pytest.raises(AccountError, match="not valid"):
        accounts.verify_reset_token(token)


def test_tokens_are_salted_per_purpose(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    invite = accounts.make_invite_token("new@example.org")
    with pytest.raises(AccountError):
        accounts.verify_reset_token(invite)
    with pytest.raises(AccountError):
        accounts.verify_invite_token(accounts.make_reset_token(user))


def test_invite_tokens(app):
    assert accounts.verify_invite_token(accounts.make_invite_token()).email is None
    bound = accounts.verify_invite_token(accounts.make_invite_token("New@Example.org"))
    assert bound.email == "New@example.org"
    with pytest.raises(AccountError, match="Invalid email"):
        accounts.make_invite_token("not-an-email")
    token = accounts.make_invite_token()
    with pytest.raises(AccountError, match="expired"):
        accounts.verify_invite_token(token, max_age=-1)
    with pytest.raises(AccountError, match="not valid"):
        accounts.verify_invite_token("forged." + token)


def test_signed_tokens_depend_on_the_secret_key(app):
    user = accounts.create_user("ada", "ada@example.org", GOOD_PASSWORD)
    token = accounts.make_reset_token(user)
    app.config["SECRET_KEY"] = "another secret"
    with pytest.raises(AccountError, match="not valid"):
        accounts.verify_reset_token(token)
