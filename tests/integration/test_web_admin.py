"""The admin area through the Flask test client (CSRF on, real SQLite), against the real parts:
the real Slurm cluster (approval runs a sweep to COMPLETED with the stand-in flow, a test double
of OpenLane; the cluster page reads sinfo/squeue), the git daemon serving the example design,
and the aiosmtpd server for the test email."""

from __future__ import annotations

import re
import subprocess
import time
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import AuditLog, Outbox, Submission, User
from tests.fixtures.smtp import free_port, smtp_server  # noqa: F401
from tests.integration.engine_helpers import STANDIN, wait_final
from tests.integration.web_helpers import PASSWORD, add_user, csrf, login, post_form

WAIT_SETTINGS = {
    "FLOW_EXECUTABLE_OVERRIDE": str(STANDIN),
    "SLURM_PARTITION": "debug",
    "APPROVAL_ARRAY_SIZE": 1,
    "APPROVAL_CORE_HOURS": 1000,
    "LAUNCH_IN_BACKGROUND": False,
    "MAIL_SERVER": "127.0.0.1",
    "MAIL_PORT": 1,
}


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def admin_app(make_app):
    app = make_app(**WAIT_SETTINGS)
    add_user(app, "ada", slurm_account="openlane")
    add_user(app, "boss", role="admin")
    return app


def signed_in(app, name):
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def user(app, name) -> User:
    with app.app_context():
        found = db.session.scalar(select(User).where(User.username == name))
        db.session.expunge(found)
        return found


def outbox(app) -> list[tuple[str, str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(Outbox).order_by(Outbox.id)).all()
        return [(row.dedupe_key, row.recipient, row.body_text) for row in rows]


def audits(app, action) -> list[AuditLog]:
    with app.app_context():
        rows = db.session.scalars(select(AuditLog).where(AuditLog.action == action)).all()
        db.session.expunge_all()
        return list(rows)


def flashes(html: str) -> list[str]:
    """The flash messages of a page, as the reader sees them (unescaped)."""
    return [
        unescape(re.sub(r"\s+", " ", text).strip())
        for text in re.findall(r'<div class="flash flash-\w+">\s*<span>(.*?)</span>', html, re.S)
    ]


def post(client, url, data=None, page="/admin/", **kwargs):
    """POST ``data`` with a CSRF token taken from ``page`` (like the browser's form)."""
    return post_form(client, page, data or {}, post_url=url, **kwargs)


def waiting_submission(app, repo, name="counter sweep", points="10,20") -> str:
    """Plan a request over APPROVAL_ARRAY_SIZE for ada: it waits for an admin. Its uuid."""
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        cli_sweeps=[f"CLOCK_PERIOD={points}"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
        name=name,
    )
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        plan = svc.plan_submission(request, app.config, slurm_client(app.config), owner=owner)
        submission = svc.create_submission(plan, owner)
        assert submission.state == "AWAITING_APPROVAL"
        return submission.uuid


def state_of(app, uuid) -> Submission:
    with app.app_context():
        found = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        db.session.expunge(found)
        return found


# --------------------------------------------------------------------------- access


def admin_urls(app, uuid: str, user_id: int) -> list[tuple[str, str]]:
    """(method, url) of every admin route, with real ids filled in."""
    urls = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin."):
            continue
        values = {"uuid": uuid, "user_id": user_id}
        url = rule.build({key: values[key] for key in rule.arguments})[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            urls.append((method, url))
    return urls


def test_every_admin_url_is_for_admins_only(admin_app):
    ada_id = user(admin_app, "ada").id
    with admin_app.app_context():
        sub = Submission(
            owner_id=ada_id, name="s", repo_url="https://x.org/r.git", ref="main", flow="openlane1"
        )
        sub.state = "AWAITING_APPROVAL"
        db.session.add(sub)
        db.session.commit()
        uuid = sub.uuid
    urls = admin_urls(admin_app, uuid, ada_id)
    endpoints = {
        r.endpoint for r in admin_app.url_map.iter_rules() if r.endpoint.startswith("admin.")
    }
    assert {
        "admin.index",
        "admin.users",
        "admin.cluster",
        "admin.images",
        "admin.email",
    } <= endpoints
    assert len(urls) >= 14

    anonymous = admin_app.test_client()
    token = csrf(anonymous.get("/auth/login").get_data(as_text=True))
    for method, url in urls:
        response = anonymous.open(url, method=method, data={"csrf_token": token})
        assert response.status_code == 302, (method, url)
        assert response.headers["Location"].startswith("/auth/login?next="), (method, url)

    ada = signed_in(admin_app, "ada")
    token = csrf(ada.get("/account/").get_data(as_text=True))
    form = {"csrf_token": token, "role": "admin", "slurm_account": "x", "reason": "no"}
    for method, url in urls:
        response = ada.open(url, method=method, data=form)
        assert response.status_code == 403, (method, url)
    assert user(admin_app, "ada").role == "user"  # nothing changed
    assert state_of(admin_app, uuid).state == "AWAITING_APPROVAL"
    assert "Admin</a>" not in ada.get("/account/").get_data(as_text=True)

    boss = signed_in(admin_app, "boss")
    assert boss.get("/admin/").status_code == 200
    assert 'href="/admin/"' in boss.get("/account/").get_data(as_text=True)


def test_admin_posts_need_the_csrf_token(admin_app):
    boss = signed_in(admin_app, "boss")
    ada_id = user(admin_app, "ada").id
    response = boss.post(f"/admin/users/{ada_id}/role", data={"role": "admin"})
    assert response.status_code == 400
    assert user(admin_app, "ada").role == "user"


# --------------------------------------------------------------------------- approval queue


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_queue_lists_waiting_submission_and_approval_runs_it_to_completed(admin_app, example_repo):
    uuid = waiting_submission(admin_app, example_repo)
    boss = signed_in(admin_app, "boss")
    html = boss.get("/admin/").get_data(as_text=True)
    card = html[html.index(f'id="approval-{uuid}"') :]
    assert "counter sweep" in card and "<strong>ada</strong> &lt;ada@example.org&gt;" in card
    assert '<strong class="approval-tasks">2 tasks</strong>' in card
    assert '<strong class="approval-cost">0.3 core-hours</strong>' in card  # 2 x 1 CPU x 10 min
    assert "2 tasks is over the 1 task threshold" in card
    assert "grid: CLOCK_PERIOD 10, 20" in card
    assert 'class="tab-count"' in html  # the tab shows one waiting

    # The script preview: read-only, from a scratch clone.
    preview = boss.get(f"/admin/submissions/{uuid}/script", headers={"HX-Request": "true"})
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "<html" not in text
    assert "#SBATCH --array=0-1" in text and f"olp-{uuid}" in text
    assert "--partition=debug" in text
    assert not (Path(admin_app.config["RUN_ROOT"]) / uuid).exists()
    assert state_of(admin_app, uuid).run_dir is None
    page = boss.get(f"/admin/submissions/{uuid}/script").get_data(as_text=True)
    assert "<html" in page and "#SBATCH --array=0-1" in page

    response = post(boss, f"/admin/submissions/{uuid}/approve", follow_redirects=True)
    html = response.get_data(as_text=True)
    sub = state_of(admin_app, uuid)
    assert sub.state == "QUEUED" and len(sub.job_ids) == 1, sub.error
    assert any(f"Approved “counter sweep” of ada: it is QUEUED (job {sub.job_ids[0]})" in f
               for f in flashes(html))  # fmt: skip
    assert f'id="approval-{uuid}"' not in html  # left the queue, listed as decided
    assert "Nothing is waiting for approval." in html
    assert [key for key, _, _ in outbox(admin_app)] == [f"decision:{uuid}:approved"]
    [entry] = audits(admin_app, "submission.approve")
    assert entry.actor_id == user(admin_app, "boss").id

    with admin_app.app_context():
        submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        wait_final(admin_app, submission)
        assert submission.state == "COMPLETED"
        assert [t.state for t in submission.tasks] == ["COMPLETED", "COMPLETED"]

    # Approving again is refused and launches nothing more.
    html = post(boss, f"/admin/submissions/{uuid}/approve", follow_redirects=True).get_data(
        as_text=True
    )
    assert any("was not approved: submission is COMPLETED" in f for f in flashes(html))
    assert len(state_of(admin_app, uuid).job_ids) == 1


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_approval_launches_in_the_background_and_reports_failures(make_app, example_repo):
    app = make_app(**{**WAIT_SETTINGS, "LAUNCH_IN_BACKGROUND": True})
    add_user(app, "ada")
    add_user(app, "boss", role="admin")
    uuid = waiting_submission(app, example_repo)
    with app.app_context():  # the branch disappears before the admin approves
        submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        submission.ref = "no-such-branch"
        db.session.commit()
    boss = signed_in(app, "boss")
    html = post(boss, f"/admin/submissions/{uuid}/approve", follow_redirects=True).get_data(
        as_text=True
    )
    assert any("its 2 tasks are being staged and submitted to Slurm now" in f
               for f in flashes(html))  # fmt: skip
    deadline = time.monotonic() + 60
    while state_of(app, uuid).state in ("STAGING", "SUBMITTING"):
        assert time.monotonic() < deadline, "the background launch did not finish"
        time.sleep(0.2)
    sub = state_of(app, uuid)
    assert sub.state == "SUBMIT_FAILED" and "no-such-branch" in (sub.error or "")
    assert sub.job_ids == []


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_approved_submission_that_cannot_launch_says_why(make_app, example_repo):
    # Jobs run as the designer's own Unix account, and ada has none yet.
    app = make_app(**{**WAIT_SETTINGS, "SLURM_RUN_AS": "user"})
    add_user(app, "ada")
    add_user(app, "boss", role="admin")
    uuid = waiting_submission(app, example_repo)
    boss = signed_in(app, "boss")
    html = post(boss, f"/admin/submissions/{uuid}/approve", follow_redirects=True).get_data(
        as_text=True
    )
    sub = state_of(app, uuid)
    assert sub.state == "SUBMIT_FAILED" and sub.job_ids == []
    assert "has no Unix account" in sub.error
    [message] = flashes(html)
    assert message.startswith("“counter sweep” is approved, but it could not be submitted: ")
    assert "an admin must set one for 'ada'" in message
    # The approval, then the final launch failure (not a passing cause: no retry) with its reason.
    assert [key for key, _, _ in outbox(app)] == [
        f"decision:{uuid}:approved",
        f"launch-failed:{uuid}:1",
    ]
    assert [a.detail["state"] for a in audits(app, "submission.error")] == ["SUBMIT_FAILED"]


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_reject_needs_a_reason_and_queues_exactly_one_email(admin_app, example_repo):
    uuid = waiting_submission(admin_app, example_repo)
    boss = signed_in(admin_app, "boss")
    url = f"/admin/submissions/{uuid}/reject"

    html = post(boss, url, {"reason": "   "}, follow_redirects=True).get_data(as_text=True)
    assert any("was not rejected: A rejection needs a reason." in f for f in flashes(html))
    assert state_of(admin_app, uuid).state == "AWAITING_APPROVAL"
    assert outbox(admin_app) == []

    reason = "Use a coarser sweep <b>first</b>"
    html = post(boss, url, {"reason": reason}, follow_redirects=True).get_data(as_text=True)
    assert any("Rejected “counter sweep” of ada" in f for f in flashes(html))
    sub = state_of(admin_app, uuid)
    assert sub.state == "REJECTED" and sub.decision_reason == reason
    [(key, recipient, body)] = outbox(admin_app)
    assert key == f"decision:{uuid}:rejected" and recipient == "ada@example.org"
    assert reason in body
    assert "Use a coarser sweep &lt;b&gt;first&lt;/b&gt;" in html  # recent decisions, escaped
    assert "<b>first</b>" not in html

    html = post(boss, url, {"reason": "again"}, follow_redirects=True).get_data(as_text=True)
    assert any("was not rejected: submission is REJECTED" in f for f in flashes(html))
    assert len(outbox(admin_app)) == 1
    assert state_of(admin_app, uuid).decision_reason == reason
    assert (
        boss.post(
            "/admin/submissions/00000000-0000-0000-0000-000000000000/reject",
            data={"csrf_token": csrf(html), "reason": "x"},
        ).status_code
        == 404
    )


# --------------------------------------------------------------------------- users


def test_activate_deactivate_and_role_changes_are_audited(admin_app):
    boss = signed_in(admin_app, "boss")
    ada_id = user(admin_app, "ada").id

    html = post(boss, f"/admin/users/{ada_id}/deactivate", page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Deactivated ada." in flashes(html)
    assert user(admin_app, "ada").active is False
    row = re.search(rf'<tr id="user-{ada_id}"[^>]*>', html).group(0)
    assert 'data-active="no"' in row and "row-muted" in row
    response = login(admin_app.test_client(), "ada")
    assert response.status_code == 403 and "not active" in response.get_data(as_text=True)

    html = post(boss, f"/admin/users/{ada_id}/activate", page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Activated ada; they are told by email." in flashes(html)
    assert user(admin_app, "ada").active is True
    [(_, recipient, body)] = outbox(admin_app)
    assert recipient == "ada@example.org" and "http://portal.test/auth/login" in body
    assert login(admin_app.test_client(), "ada").status_code == 302

    html = post(boss, f"/admin/users/{ada_id}/role", {"role": "admin"}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "ada is now an admin." in flashes(html)
    assert user(admin_app, "ada").role == "admin"
    html = post(boss, f"/admin/users/{ada_id}/role", {"role": "root"}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Choose the role 'user' or 'admin'." in flashes(html)
    assert user(admin_app, "ada").role == "admin"

    boss_id = user(admin_app, "boss").id
    assert [
        (a.action, a.actor_id, a.detail["username"]) for a in audits(admin_app, "user.role")
    ] == [("user.role", boss_id, "ada")]
    assert audits(admin_app, "user.role")[0].detail == {
        "user_id": ada_id, "username": "ada", "old": "user", "new": "admin"
    }  # fmt: skip
    assert len(audits(admin_app, "user.deactivate")) == 1
    assert len(audits(admin_app, "user.activate")) == 1
    assert (
        boss.post("/admin/users/9999/activate", data={"csrf_token": csrf(html)}).status_code == 404
    )


def test_the_last_active_admin_cannot_demote_or_deactivate_themselves(admin_app):
    boss = signed_in(admin_app, "boss")
    boss_id, ada_id = user(admin_app, "boss").id, user(admin_app, "ada").id

    html = post(boss, f"/admin/users/{boss_id}/role", {"role": "user"}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert (
        "Cannot demote boss: you are the last active admin. Make another user an admin first."
        in flashes(html)
    )
    html = post(boss, f"/admin/users/{boss_id}/deactivate", page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Cannot deactivate boss: you are the last active admin." in flashes(html)[0]
    found = user(admin_app, "boss")
    assert found.role == "admin" and found.active
    assert audits(admin_app, "user.role") == [] and audits(admin_app, "user.deactivate") == []

    # An inactive admin does not count: ada is made admin but deactivated first.
    post(boss, f"/admin/users/{ada_id}/deactivate", page="/admin/users")
    post(boss, f"/admin/users/{ada_id}/role", {"role": "admin"}, page="/admin/users")
    html = post(boss, f"/admin/users/{boss_id}/role", {"role": "user"}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert any(f.startswith("Cannot demote boss") for f in flashes(html))

    # With a second active admin, boss may step down, and then loses the admin area.
    post(boss, f"/admin/users/{ada_id}/activate", page="/admin/users")
    response = post(boss, f"/admin/users/{boss_id}/role", {"role": "user"}, page="/admin/users")
    assert response.status_code == 302 and response.headers["Location"] == "/account/"
    assert user(admin_app, "boss").role == "user"
    assert boss.get("/admin/").status_code == 403
    ada = signed_in(admin_app, "ada")
    html = post(ada, f"/admin/users/{ada_id}/deactivate", page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "Cannot deactivate ada: you are the last active admin." in flashes(html)[0]


def test_slurm_account_and_unix_user_are_validated_and_saved(admin_app):
    boss = signed_in(admin_app, "boss")
    ada_id = user(admin_app, "ada").id
    url = f"/admin/users/{ada_id}/accounts"

    html = post(boss, url, {"slurm_account": "chip-lab", "unix_user": "ada"}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "ada: Slurm account chip-lab, Unix user ada." in flashes(html)
    found = user(admin_app, "ada")
    assert (found.slurm_account, found.unix_user) == ("chip-lab", "ada")
    assert 'name="slurm_account" value="chip-lab"' in html

    for data, message in [
        ({"slurm_account": "bad account!", "unix_user": "ada"}, "Invalid Slurm account name"),
        ({"slurm_account": "chip-lab", "unix_user": "root"}, "Invalid Unix user 'root'"),
        ({"slurm_account": "chip-lab", "unix_user": "-rf"}, "Invalid Unix user '-rf'"),
    ]:
        html = post(boss, url, data, page="/admin/users", follow_redirects=True).get_data(
            as_text=True
        )
        assert any(message in f for f in flashes(html)), (data, flashes(html))
        found = user(admin_app, "ada")
        assert (found.slurm_account, found.unix_user) == ("chip-lab", "ada")

    html = post(boss, url, {"slurm_account": "", "unix_user": ""}, page="/admin/users",
                follow_redirects=True).get_data(as_text=True)  # fmt: skip
    assert "ada: Slurm account (cluster default), Unix user (none)." in flashes(html)
    found = user(admin_app, "ada")
    assert (found.slurm_account, found.unix_user) == (None, None)
    [first, second] = audits(admin_app, "user.accounts")
    assert first.detail["old"] == {"slurm_account": "openlane", "unix_user": None}
    assert second.detail["new"] == {"slurm_account": None, "unix_user": None}


def test_users_list_shows_accounts_and_escapes_names(admin_app):
    with admin_app.app_context():  # an account that bypassed validation (an old import, say)
        db.session.add(User(username="<script>alert(1)</script>",
                            email='"><img src=x onerror=alert(2)>@example.org'))  # fmt: skip
        db.session.commit()
    boss = signed_in(admin_app, "boss")
    html = boss.get("/admin/users").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<img src=x" not in html
    ada = re.search(r'<tr id="user-\d+" class="user-row" data-username="ada".*?</tr>', html, re.S)
    assert ada and 'value="openlane"' in ada.group(0) and "ada@example.org" in ada.group(0)
    assert 'data-role="user"' in ada.group(0)
    html = boss.get("/admin/users?status=admins").get_data(as_text=True)
    assert 'data-username="boss"' in html and 'data-username="ada"' not in html
    html = boss.get("/admin/users?q=ADA").get_data(as_text=True)
    assert 'data-username="ada"' in html and 'data-username="boss"' not in html


def test_queue_escapes_submission_names(admin_app):
    ada_id = user(admin_app, "ada").id
    with admin_app.app_context():
        sub = Submission(
            owner_id=ada_id,
            name="<img src=x onerror=alert(3)>",
            repo_url="https://git.example.org/r.git",
            ref="main",
            flow="openlane1",
            state="AWAITING_APPROVAL",
            n_tasks=5000,
            cost_core_hours=5000.0,
            resources={"cpus": 1, "mem_mb": 256, "time_minutes": 60},
            decision_reason="5000 tasks is over the 1000 task threshold",
        )
        db.session.add(sub)
        db.session.commit()
    html = signed_in(admin_app, "boss").get("/admin/").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(3)&gt;" in html and "<img src=x" not in html
    assert "5000 tasks" in html and "5000.0 core-hours" in html


# --------------------------------------------------------------------------- invitations


def test_invitation_link_registers_a_user(make_app):
    app = make_app(REGISTRATION="invite-only")
    add_user(app, "boss", role="admin")
    boss = signed_in(app, "boss")

    response = post(boss, "/admin/invites", {"email": "not an address", "send": "y"},
                    page="/admin/users")  # fmt: skip
    assert response.status_code == 400 and "Invalid email address" in response.get_data(
        as_text=True
    )
    response = post(boss, "/admin/invites", {"send": "y"}, page="/admin/users")
    assert response.status_code == 400
    assert "Give an email address to send the invitation to." in response.get_data(as_text=True)
    assert outbox(app) == []

    response = post(boss, "/admin/invites", {"email": "Eve@Example.org", "send": "y"},
                    page="/admin/users")  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    link = re.search(r'<code id="invite-link" class="secret-value">([^<]+)</code>', html).group(1)
    link = link.replace("&amp;", "&")
    assert link.startswith("http://portal.test/auth/register?invite=")
    assert "It was queued for email to Eve@example.org." in html
    [(_, recipient, body)] = outbox(app)
    assert recipient == "Eve@example.org" and link in body
    [entry] = audits(app, "user.invite")
    assert entry.detail == {"email": "Eve@example.org", "emailed": True}

    visitor = app.test_client()
    path = link.removeprefix("http://portal.test")
    assert visitor.get("/auth/register").status_code == 403  # invite-only without a link
    form = {"username": "eve", "email": "Eve@example.org", "password": PASSWORD,
            "confirm": PASSWORD}  # fmt: skip
    response = post_form(visitor, path, form)
    assert response.status_code == 302, response.get_data(as_text=True)
    eve = user(app, "eve")
    assert eve.active and eve.email == "Eve@example.org" and eve.role == "user"

    # An unbound invitation is shown, not emailed.
    html = post(boss, "/admin/invites", {"email": ""}, page="/admin/users").get_data(as_text=True)
    assert "Anyone with this link can register" in html and "it is not emailed" in html
    assert len(outbox(app)) == 1


# --------------------------------------------------------------------------- cluster


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_cluster_status_from_the_real_cluster(admin_app, tmp_path):
    script = "#!/bin/bash\n#SBATCH --job-name=olp-admin-test-held\n#SBATCH --time=1\n" \
        "#SBATCH --mem=64M\n#SBATCH --output=/dev/null\ntrue\n"  # fmt: skip
    held = subprocess.run(
        ["sbatch", "--parsable", "--hold", "--array=0-2", "--partition=long"],
        input=script, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        boss = signed_in(admin_app, "boss")
        html = boss.get("/admin/cluster").get_data(as_text=True)
    finally:
        subprocess.run(["scancel", held], check=True)
    assert "Slurm does not answer" not in html
    debug = re.search(r'<tr class="partition-row" data-partition="debug">(.*?)</tr>', html, re.S)
    assert debug, html
    cells = [
        " ".join(re.sub(r"<[^>]+>", " ", cell).split())
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", debug.group(1), re.S)
    ]
    assert cells[0] == "debug default" and cells[1] == "up" and cells[2] == "2 h"
    assert cells[3].startswith("1 (1 ")  # one node
    assert re.match(r"\d+ / 8", cells[4])
    long = re.search(r'data-partition="long">(.*?)</tr>', html, re.S).group(1)
    pending_long = int(re.findall(r"<td>(\d+)</td>", long)[-1])
    assert pending_long >= 3  # the held 3-task array
    assert re.search(r'<tr class="node-row" data-node="vm">', html)
    assert int(re.search(r'id="queue-pending">(\d+)<', html).group(1)) >= 3
    assert 'hx-get="/admin/cluster/panel"' in html
    panel = boss.get("/admin/cluster/panel").get_data(as_text=True)
    assert "<html" not in panel and 'data-node="vm"' in panel


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_cluster_page_says_clearly_when_slurm_does_not_answer(make_app, tmp_path, monkeypatch):
    # 1. The SSH transport pointed at a loopback port nobody listens on.
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    port = free_port()
    app = make_app(SLURM_TRANSPORT="ssh", SLURM_SSH_HOST="127.0.0.1", SLURM_SSH_PORT=port,
                   SLURM_SSH_KNOWN_HOSTS=str(known_hosts))  # fmt: skip
    add_user(app, "boss", role="admin")
    html = signed_in(app, "boss").get("/admin/cluster").get_data(as_text=True)
    assert "Slurm does not answer." in html
    assert f"Slurm could not be reached: cannot connect to 127.0.0.1:{port}" in html
    assert f"Unable to connect to port {port} on 127.0.0.1" in html
    assert f"ssh 127.0.0.1:{port}" in html
    assert 'data-partition="' not in html

    # 2. The local transport, but slurmctld's port has nothing listening (a copy of slurm.conf).
    conf = Path("/etc/slurm/slurm.conf").read_text()
    conf = re.sub(r"^SlurmctldPort=.*$", f"SlurmctldPort={free_port()}\nMessageTimeout=2", conf,
                  flags=re.M)  # fmt: skip
    (tmp_path / "slurm.conf").write_text(conf)
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    local = make_app()
    boss = signed_in(local, "boss")  # same database: boss exists
    html = boss.get("/admin/cluster").get_data(as_text=True)
    assert "Slurm does not answer." in html
    assert (
        "Slurm answered with an error: sinfo failed: slurm_load_partitions: "
        "Unable to contact slurm controller (connect failure)" in html
    )

    # 3. Settings that cannot work at all (create_app refuses them; changed while running).
    local.config["SLURM_TRANSPORT"] = "carrier-pigeon"
    html = boss.get("/admin/cluster").get_data(as_text=True)
    assert "The Slurm settings are not usable: SLURM_TRANSPORT must be" in html


# --------------------------------------------------------------------------- images


def test_images_page_shows_files_and_warns_about_the_standin(make_app, tmp_path):
    image = tmp_path / "openlane.sif"
    image.write_bytes(b"\0" * 1536)
    sandbox = tmp_path / "librelane-sandbox"
    sandbox.mkdir()
    pdks = tmp_path / "pdks"
    (pdks / "sky130A").mkdir(parents=True, exist_ok=True)  # the test site already has it
    (pdks / "gf180mcuD").mkdir()
    settings = {
        "OPENLANE1_IMAGE": str(image),
        "OPENLANE2_IMAGE": str(tmp_path / "missing.sif"),
        "LIBRELANE_IMAGE": str(sandbox),
        "PDK_ROOT": str(pdks),
        "CONTAINER_RUNTIME": "apptainer",
    }
    app = make_app(**settings, FLOW_EXECUTABLE_OVERRIDE=str(STANDIN))
    add_user(app, "boss", role="admin")
    html = signed_in(app, "boss").get("/admin/images").get_data(as_text=True)
    assert "The stand-in flow (a test double) is in use, not OpenLane." in html
    assert str(STANDIN) in html
    rows = dict(re.findall(r'data-setting="(\w+)" data-exists="(yes|no)"', html))
    assert rows == {
        "OPENLANE1_IMAGE": "yes",
        "OPENLANE2_IMAGE": "no",
        "LIBRELANE_IMAGE": "yes",
        "PDK_ROOT": "yes",
        "FLOW_EXECUTABLE_OVERRIDE": "yes",
    }
    row = re.search(r'data-setting="OPENLANE1_IMAGE".*?</tr>', html, re.S).group(0)
    assert str(image) in row and "1.5 KiB" in row and '<span class="badge badge-ok">file' in row
    missing = re.search(r'data-setting="OPENLANE2_IMAGE".*?</tr>', html, re.S).group(0)
    assert '<span class="badge badge-bad">missing' in missing
    assert "sandbox folder" in re.search(r'data-setting="LIBRELANE_IMAGE".*?</tr>', html,
                                         re.S).group(0)  # fmt: skip
    assert '<code class="mono">gf180mcuD</code>, <code class="mono">sky130A</code>' in html

    production = make_app(**settings)
    html = signed_in(production, "boss").get("/admin/images").get_data(as_text=True)
    assert "stand-in flow" not in html.lower().replace("stand-in flow in use", "")
    assert "Not found on this host:</strong> OPENLANE2_IMAGE." in html


# --------------------------------------------------------------------------- test email


def test_send_test_email_to_the_smtp_server(make_app, smtp_server):  # noqa: F811
    app = make_app(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)
    add_user(app, "boss", role="admin")
    boss = signed_in(app, "boss")
    page = boss.get("/admin/email").get_data(as_text=True)
    assert 'value="boss@example.org"' in page  # the admin's own address by default
    assert f"127.0.0.1:{smtp_server.port}" in page

    response = post(boss, "/admin/email", {"recipient": "ops@example.org"}, page="/admin/email",
                    follow_redirects=True)  # fmt: skip
    assert "Test email sent to ops@example.org: the SMTP server accepted it." in flashes(
        response.get_data(as_text=True)
    )
    [received] = smtp_server.received()
    assert received.rcpt_tos == ("ops@example.org",)
    assert received.message["Subject"] == "[OpenLane Portal] Test email"
    assert outbox(app) == []  # sent at once, not queued
    [entry] = audits(app, "mail.test")
    assert entry.detail == {"recipient": "ops@example.org", "ok": True}

    response = post(boss, "/admin/email", {"recipient": "nobody"}, page="/admin/email")
    assert response.status_code == 400 and "Invalid email address" in response.get_data(
        as_text=True
    )
    assert len(smtp_server.received()) == 1


def test_test_email_shows_the_smtp_error_when_the_server_is_down(make_app, smtp_server):  # noqa: F811
    app = make_app(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)
    add_user(app, "boss", role="admin")
    boss = signed_in(app, "boss")
    smtp_server.reject_recipients.add("gone@example.org")
    html = post(boss, "/admin/email", {"recipient": "gone@example.org"},
                page="/admin/email").get_data(as_text=True)  # fmt: skip
    assert "The test email to gone@example.org was not sent." in html
    assert "550 5.1.1 &lt;gone@example.org&gt;: Recipient address rejected" in html

    smtp_server.stop()
    assert smtp_server.refuses_connections()
    response = post(boss, "/admin/email", {"recipient": "ops@example.org"}, page="/admin/email")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The test email to ops@example.org was not sent." in html
    assert "Connection refused" in html
    assert smtp_server.received() == [] and outbox(app) == []
    assert [a.detail["ok"] for a in audits(app, "mail.test")] == [False, False]
