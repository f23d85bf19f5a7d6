"""Shared helpers for web tests: an app on a fresh SQLite database, users, and posting forms
with the page's CSRF token like a browser (CSRF stays ON in every web test).

``make_app`` and ``app`` are fixtures (this module is a pytest plugin named in conftest.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask_migrate import upgrade

from portal import accounts, create_app
from portal.extensions import db
from portal.web.access import admin_required

PASSWORD = "correct horse battery"
NEW_PASSWORD = "staple gun thunderbolt"
SITE = "http://portal.test"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
VENDOR = Path(__file__).resolve().parents[2] / "portal" / "static" / "vendor"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def make_app(tmp_path):
    """Factory of apps on a fresh SQLite database under ``tmp_path`` (settings override)."""
    made = []

    pdk_root = tmp_path / "pdks"
    (pdk_root / "sky130A").mkdir(parents=True, exist_ok=True)  # the site has its PDK

    def factory(**settings):
        config = {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}",
            "RUN_ROOT": str(tmp_path),
            "SITE_URL": SITE,
            "REGISTRATION": "open",
            "PDK_ROOT": str(pdk_root),
        }
        config.update(settings)
        app = create_app(config)
        with app.app_context():
            upgrade()
        made.append(app)
        return app

    yield factory
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    app = make_app()
    _add_test_routes(app)
    return app


def _add_test_routes(app):
    @app.get("/test-only/admin")
    @admin_required
    def admin_only():
        return "admin area"


def add_user(app, username="ada", email=None, password=PASSWORD, **kwargs):
    with app.app_context():
        user = accounts.create_user(
            username, email or f"{username}@example.org", password, **kwargs
        )
        return user.id


def csrf(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def post_form(client, page_url, data, post_url=None, **kwargs):
    """GET the page, then POST ``data`` with the page's CSRF token (like a browser)."""
    token = csrf(client.get(page_url).get_data(as_text=True))
    return client.post(post_url or page_url, data={"csrf_token": token, **data}, **kwargs)


def login(client, name="ada", password=PASSWORD, **extra):
    return post_form(client, "/auth/login", {"login": name, "password": password, **extra})


def signed_in(make_app, tmp_path, name="ada", account=None, **settings):
    """An app with ``settings`` (runs under ``tmp_path``), the user ``name`` (Slurm account
    ``account``) and a test client signed in as them."""
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), **settings)
    add_user(app, name, **({"slurm_account": account} if account else {}))
    client = app.test_client()
    login(client, name)
    return app, client


def slurm_at(port):
    """Settings that point the portal's Slurm client at ``port`` on loopback (over SSH)."""
    return {"SLURM_TRANSPORT": "ssh", "SLURM_SSH_HOST": "127.0.0.1", "SLURM_SSH_PORT": port}
