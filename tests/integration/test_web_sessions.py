"""Ending sessions: a copied session cookie or remember-me cookie stops working after sign-out,
a password change or reset, deactivation and "sign out everywhere".

The thief is a second test client holding copies of the victim's cookies, taken while they
worked (each test first shows the copies open ``/account/``). CSRF stays ON; API tokens are
separate and keep working.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.models import Outbox, User
from tests.integration.web_helpers import (  # noqa: F401 - fixtures
    NEW_PASSWORD,
    PASSWORD,
    SITE,
    add_user,
    csrf,
    login,
    post_form,
)

SESSION = "session"
REMEMBER = "remember_token"
JSON = {"Accept": "application/json"}


def signed_in(app, name="ada", remember=True):
    client = app.test_client()
    response = login(client, name, remember="y") if remember else login(client, name)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return client


def copy_of(app, victim, *names):
    """A new client holding copies of ``victim``'s cookies ``names`` (nothing else)."""
    thief = app.test_client()
    for name in names:
        cookie = victim.get_cookie(name)
        assert cookie is not None, f"no {name} cookie"
        thief.set_cookie(name, cookie.value)
    return thief


def thieves(app, victim):
    """Copies of the session cookie alone and of the remember-me cookie alone, both working."""
    by_session = copy_of(app, victim, SESSION)
    by_remember = copy_of(app, victim, REMEMBER)
    for thief in (by_session, by_remember):
        assert thief.get("/account/").status_code == 200
    # fresh copies: the remember-me copy has made itself a session by now
    return copy_of(app, victim, SESSION), copy_of(app, victim, REMEMBER)


def assert_refused(client):
    page = client.get("/account/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/auth/login")
    api = client.get("/account/whoami", headers=JSON)
    assert api.status_code == 401 and api.get_json()["error"]["code"] == "unauthorized"


def session_version(app, name="ada") -> int:
    with app.app_context():
        return db.session.scalar(select(User.session_version).where(User.username == name))


# --------------------------------------------------------------------------- sign-out


def test_logout_ends_copied_session_and_remember_cookies(app):
    add_user(app)
    victim = signed_in(app)
    by_session, by_remember = thieves(app, victim)
    by_both = copy_of(app, victim, SESSION, REMEMBER)
    before = session_version(app)
    out = post_form(victim, "/account/", {}, post_url="/auth/logout")
    assert out.status_code == 302 and out.headers["Location"] == "/auth/login"
    assert session_version(app) == before + 1
    for client in (victim, by_session, by_remember, by_both):
        assert_refused(client)
    assert signed_in(app).get("/account/").status_code == 200  # a new sign-in works


def test_logout_ends_the_other_sessions_of_the_account_but_no_one_elses(app):
    add_user(app)
    add_user(app, "bob")
    laptop, phone, bob = signed_in(app), signed_in(app, remember=False), signed_in(app, "bob")
    post_form(laptop, "/account/", {}, post_url="/auth/logout")
    assert_refused(phone)
    assert bob.get("/account/").status_code == 200


def test_logout_needs_csrf_and_leaves_the_session_alone_without_it(app):
    add_user(app)
    victim = signed_in(app)
    thief = copy_of(app, victim, SESSION)
    assert victim.post("/auth/logout").status_code == 400
    assert victim.get("/account/").status_code == 200
    assert thief.get("/account/").status_code == 200


# --------------------------------------------------------------------------- password


def test_password_change_ends_copied_cookies_and_keeps_this_browser(app):
    add_user(app)
    here = signed_in(app)
    by_session, by_remember = thieves(app, here)
    data = {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    assert post_form(here, "/account/", data, post_url="/account/password").status_code == 302
    assert here.get("/account/").status_code == 200  # signed in again with the new version
    for client in (by_session, by_remember):
        assert_refused(client)
    # the browser that changed it keeps a working remember-me cookie of the new version
    assert copy_of(app, here, REMEMBER).get("/account/").status_code == 200


def test_password_reset_ends_every_session(app):
    add_user(app)
    victim = signed_in(app)
    by_session, by_remember = thieves(app, victim)
    anonymous = app.test_client()
    post_form(anonymous, "/auth/reset", {"email": "ada@example.org"})
    with app.app_context():
        body = db.session.scalars(select(Outbox.body_text)).one()
    link = re.search(re.escape(SITE) + r"(/auth/reset/\S+)", body).group(1)
    done = post_form(anonymous, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    for client in (victim, by_session, by_remember):
        assert_refused(client)
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 302


def test_a_password_set_outside_the_web_ends_sessions_too(app):
    """``accounts.set_password`` is the one place: the CLI and admin tools go through it."""
    add_user(app)
    victim = signed_in(app)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "ada"))
        accounts.set_password(user, NEW_PASSWORD)
        db.session.commit()
    assert_refused(victim)


# --------------------------------------------------------------------------- deactivation


def test_deactivation_ends_sessions_and_reactivation_does_not_revive_them(app):
    add_user(app, "boss", role="admin")
    ada_id = add_user(app)
    victim = signed_in(app)
    by_session, by_remember = thieves(app, victim)
    boss = signed_in(app, "boss")
    users_page = "/admin/users"
    done = post_form(boss, users_page, {}, post_url=f"/admin/users/{ada_id}/deactivate")
    assert done.status_code == 302
    for client in (victim, by_session, by_remember):
        assert_refused(client)
    post_form(boss, users_page, {}, post_url=f"/admin/users/{ada_id}/activate")
    with app.app_context():
        assert db.session.get(User, ada_id).active
    for client in (victim, by_session, by_remember):
        assert_refused(client)  # old cookies stay dead; a new sign-in works
    assert signed_in(app).get("/account/").status_code == 200


# --------------------------------------------------------------------------- sign out everywhere


def test_sign_out_everywhere_ends_other_clients_and_this_one(app):
    add_user(app)
    here, elsewhere = signed_in(app, remember=False), signed_in(app)
    by_session, by_remember = thieves(app, elsewhere)
    page = here.get("/account/").get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)" id="end-sessions-form">', page)
    assert form and form.group(1) == "/account/sessions/end"
    assert "Sign out everywhere" in page
    done = post_form(here, "/account/", {}, post_url="/account/sessions/end")
    assert done.status_code == 302 and done.headers["Location"] == "/auth/login"
    for client in (here, elsewhere, by_session, by_remember):
        assert_refused(client)
    flashed = here.get("/auth/login").get_data(as_text=True)
    assert "signed out on every browser" in flashed


def test_sign_out_everywhere_is_a_post_with_csrf(app):
    add_user(app)
    here = signed_in(app)
    other = signed_in(app)
    assert here.get("/account/sessions/end").status_code == 405
    assert here.post("/account/sessions/end").status_code == 400  # no CSRF token
    forged = here.post("/account/sessions/end", data={"csrf_token": "forged"})
    assert forged.status_code == 400
    assert here.get("/account/").status_code == 200 and other.get("/account/").status_code == 200
    anonymous = app.test_client()
    token = csrf(anonymous.get("/auth/login").get_data(as_text=True))
    refused = anonymous.post("/account/sessions/end", data={"csrf_token": token})
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/auth/login")


def test_api_tokens_survive_sign_out_everywhere(app):
    add_user(app)
    here = signed_in(app)
    created = post_form(here, "/account/tokens", {"name": "laptop"})
    token = re.search(r'<code id="new-token"[^>]*>(olp_[^<]+)</code>', created.get_data(True))
    headers = {"Authorization": f"Bearer {token.group(1)}"}
    post_form(here, "/account/", {}, post_url="/account/sessions/end")
    assert_refused(here)
    who = app.test_client().get("/account/whoami", headers=headers)
    assert who.status_code == 200 and who.get_json()["auth"] == "token"


# --------------------------------------------------------------------------- session ids


def test_session_ids_carry_the_version_and_refuse_anything_else(app):
    add_user(app)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "ada"))
        current = user.get_id()
        assert current == f"{user.id}:{user.session_version}"
        assert accounts.user_for_session_id(current) is user
        old_form = f"{user.id}:{accounts.password_fingerprint(user)}"  # before session versions
        for value in (old_form, str(user.id), f"{user.id}:", f"{user.id}:-1", "x:0", "", "9:0"):
            assert accounts.user_for_session_id(value) is None, value
        accounts.end_sessions(user)
        db.session.commit()
        assert user.get_id() == f"{user.id}:{int(current.split(':')[1]) + 1}"
        assert accounts.user_for_session_id(current) is None
        assert accounts.user_for_session_id(user.get_id()) is user
