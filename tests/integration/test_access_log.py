"""Secrets in URLs stay out of gunicorn's access log: a real gunicorn on loopback, started like
every deployment (``-c python:portal.gunicorn_conf``, through ``benchmarks.common.gunicorn``),
serves a password-reset link, a share link and an invitation; their log lines show the path
with ``***`` in place of the token, in the request line, the path, the query and the Referer.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from gunicorn.config import AccessLogFormat
from sqlalchemy import select

from benchmarks.common import gunicorn, make_portal_app, portal_env, portal_settings
from portal import accounts
from portal.extensions import db
from portal.logmask import SecretMaskingFilter
from portal.models import Submission, User
from portal.web import sharing

#: gunicorn's default format (what scripts/demo and the Ansible role log), plus the fields that
#: carry the URL on their own: path, query and the Referer header.
FORMAT = AccessLogFormat.default + " U=%(U)s q=%(q)s ref=%({referer}i)s"


@pytest.fixture
def served(tmp_path: Path):
    """(server, secrets) with a reset token, a share token and an invitation made for it."""
    (tmp_path / "pdks" / "sky130A").mkdir(parents=True)
    settings = portal_settings(
        tmp_path, SITE_URL="http://127.0.0.1", PDK_ROOT=str(tmp_path / "pdks"),
        REGISTRATION="invite-only", RATELIMIT_ENABLED=False,
    )  # fmt: skip
    app = make_portal_app(settings)
    # the app's own log ("Exception on /shared/<token> [GET]") is masked as well
    assert any(isinstance(f, SecretMaskingFilter) for f in app.logger.filters)
    with app.app_context():
        user = accounts.create_user("ada", "ada@example.org", "correct horse battery")
        sub = Submission(owner_id=user.id, repo_url="git://x.invalid/r.git", ref="main", flow="x")
        db.session.add(sub)
        db.session.commit()
        user = db.session.scalar(select(User).where(User.username == "ada"))
        secrets = {
            "reset": accounts.make_reset_token(user),
            "share": sharing.make_token(sub.uuid, 3600)[0],
            "invite": accounts.make_invite_token("new@example.org"),
        }
        db.session.commit()  # the share link's row
        db.session.remove()
        db.engine.dispose()
    env = portal_env(settings, tmp_path / "instance")
    log_path = tmp_path / "gunicorn.log"
    extra = ("--access-logformat", FORMAT)
    with gunicorn(env, log_path, workers=1, threads=2, extra=extra) as server:
        yield server, secrets


def log_lines(server, wanted: int, timeout: float = 30) -> list[str]:
    """The access-log lines (they hold ``U=``) but the helper's readiness checks, once there
    are ``wanted`` of them (gunicorn writes a line after sending the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text(errors="replace")
        lines = [
            line
            for line in text.splitlines()
            if " U=" in line and not ("GET /healthz" in line and "ref=-" in line)
        ]
        if len(lines) >= wanted or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def test_tokens_in_urls_are_masked_in_the_access_log(served):
    server, secrets = served
    reset, share, invite = secrets["reset"], secrets["share"], secrets["invite"]
    base = server.url
    answers = [
        requests.get(f"{base}/auth/reset/{reset}", timeout=10),
        requests.get(f"{base}/shared/{share}", timeout=10),
        requests.get(f"{base}/shared/{share}/results.csv", timeout=10),
        requests.get(f"{base}/auth/register?invite={invite}", timeout=10),
        # the reset page's own assets carry the link in their Referer (same-origin policy)
        requests.get(f"{base}/healthz", headers={"Referer": f"{base}/auth/reset/{reset}"},
                     timeout=10),
        # a token percent-encoded inside another URL's parameter
        requests.get(f"{base}/auth/login?next=%2Fshared%2F{share}%2Ftasks", timeout=10),
    ]  # fmt: skip
    # the links work (so the log is of real, successful requests), and stay working
    assert [a.status_code for a in answers[:5]] == [200, 200, 200, 200, 200]
    assert "ada" in answers[0].text and "new@example.org" in answers[3].text

    lines = log_lines(server, len(answers))
    assert len(lines) >= len(answers), server.log_tail()
    text = "\n".join(lines)
    for name, token in secrets.items():
        # neither the token nor its signature (the part after the last dot)
        assert token not in text, name
        assert token.rsplit(".", 1)[-1] not in text, name
    reset_line = next(line for line in lines if "/auth/reset/" in line and "GET /auth" in line)
    assert '"GET /auth/reset/*** HTTP/1.1" 200' in reset_line
    assert "U=/auth/reset/***" in reset_line
    shared = [line for line in lines if "GET /shared/" in line]
    assert len(shared) == 2
    assert '"GET /shared/*** HTTP/1.1" 200' in shared[0] and "U=/shared/*** " in shared[0]
    assert '"GET /shared/***/results.csv HTTP/1.1" 200' in shared[1]
    invite_line = next(line for line in lines if "/auth/register" in line)
    assert '"GET /auth/register?invite=*** HTTP/1.1" 200' in invite_line
    assert "q=invite=***" in invite_line
    referer_line = next(line for line in lines if "GET /healthz" in line)
    assert f'"{base}/auth/reset/***"' in referer_line
    assert f"ref={base}/auth/reset/***" in referer_line
    login_line = next(line for line in lines if "GET /auth/login" in line)
    assert "next=%2Fshared%2F***%2Ftasks" in login_line
    # paths without a secret are logged as they are
    assert "U=/healthz " in referer_line
