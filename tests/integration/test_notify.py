"""Job-array emails through the outbox, a real database and a real SMTP server.

Every test runs on SQLite and on a throwaway PostgreSQL server. The SMTP server is aiosmtpd on
loopback (``tests/fixtures/smtp.py``); "SMTP down" means its port really refuses connections.
Metrics are the real OpenLane 2 ``spm`` run in ``tests/data/openlane`` and hand-picked variations of
it (the Pareto front is worked out by hand in :func:`make_sweep`).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import gdstk
import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask_migrate import upgrade
from PIL import Image
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from portal import create_app, leases
from portal.extensions import db
from portal.flows.reports import parse_openlane2_json
from portal.mail.content import thumbnail_cid
from portal.mail.outbox import (
    MailError,
    enqueue_mail,
    flush_outbox,
    queue_decision_mail,
    queue_submission_mail,
    run_sender_cycle,
    send_pending,
    send_test_email,
    start_sender,
)
from portal.models import Outbox, Submission, Task, User, utcnow
from tests.conftest import REPO_ROOT
from tests.fixtures.postgres import create_database, postgres_server  # noqa: F401
from tests.fixtures.smtp import SmtpServer, make_certificate, smtp_server  # noqa: F401

SITE = "https://portal.example.org"
T0 = datetime(2024, 7, 1, 12, 0, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.db'}"
    base = request.getfixturevalue("postgres_server")
    return create_database(base, f"olp_mail_{tmp_path.name[-20:].lower().replace('-', '_')}")


@pytest.fixture
def settings(tmp_path, smtp_server, monkeypatch, database_url):  # noqa: F811
    instance = tmp_path / "instance"
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(instance))
    return {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "RUN_ROOT": str(tmp_path / "runs"),
        "SECRET_KEY": "test-secret",
        "SITE_URL": SITE,
        "MAIL_SERVER": smtp_server.host,
        "MAIL_PORT": smtp_server.port,
        "MAIL_DEFAULT_SENDER": "OpenLane Portal <portal@example.org>",
        "MAIL_SUPPRESS_SEND": False,
        "MAIL_RETRY_BASE_SECONDS": 0.5,
        "MAIL_RETRY_MAX_SECONDS": 5,
        "MAIL_TIMEOUT": 5,
    }


@pytest.fixture
def app(settings):
    app = create_app(settings)
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="module")
def spm(openlane_data):
    return parse_openlane2_json(openlane_data / "openlane2" / "spm_metrics.json").to_dict(
        include_raw=False
    )


def write_gds(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lib = gdstk.Library()
    top = lib.new_cell("spm")
    top.add(gdstk.rectangle((0, 0), (97.5, 116.2), layer=235, datatype=4))
    top.add(gdstk.rectangle((5, 5), (92, 10), layer=68, datatype=20))
    top.add(gdstk.rectangle((20, 0), (24, 116), layer=69, datatype=20))
    lib.write_gds(str(path))


def make_sweep(spm, run_dir: Path, *, user: User | None = None, name="spm sweep") -> Submission:
    """Seven tasks. Objectives: min die area, min total power, max setup WNS. By hand:

    ===  =========  ========  =======  ============================
    idx  area µm²   power mW  WNS ns   verdict
    ===  =========  ========  =======  ============================
    0    15000      1.100     0        Pareto, best power, best WNS
    1    11327.4    1.107     0        Pareto (the real spm run)
    2    9500       1.150     -0.12    Pareto, best area
    3    11327.4    2.100     -0.45    dominated by 1
    5    12000      1.200     0        dominated by 1
    4    FAILED (exit 1, has a log), 6 TIMEOUT (no log)
    ===  =========  ========  =======  ============================
    """
    logs = run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "7001_4.out").write_text(
        "".join(f"[INFO]: step {i} of the flow\n" for i in range(40))
        + "[ERROR]: detailed routing failed: 1123 violations\n"
    )
    write_gds(run_dir / "tasks/2/runs/RUN_2024.07.01_12.00.00/results/final/gds/spm.gds")
    user = user or User(username="ada", email="ada@example.org", notify="completion")
    sub = Submission(
        owner=user,
        name=name,
        repo_url="https://github.com/example/spm.git",
        ref="main",
        commit="9f2c1e0d8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e",
        flow="openlane2",
        state="RUNNING",
        run_dir=str(run_dir),
        job_ids=["7001"],
        n_tasks=7,
    )

    def task(index, util, state="COMPLETED", values=None, **kw):
        return Task(
            index=index,
            params={"FP_CORE_UTIL": util, "CLOCK_PERIOD": 10 if index != 3 else 5},
            state=state,
            metrics={**spm, **values} if values is not None else None,
            array_job_id="7001",
            array_index=index,
            started_at=T0 + timedelta(minutes=index),
            ended_at=T0 + timedelta(minutes=10 + index),
            **kw,
        )

    sub.tasks = [
        task(0, 30, values=dict(die_area_um2=15000.0, power_total_w=0.00110, setup_wns_ns=0.0)),
        task(1, 40, values={}),
        task(2, 50, values=dict(die_area_um2=9500.0, power_total_w=0.00115, setup_wns_ns=-0.12)),
        task(3, 40, values=dict(power_total_w=0.0021, setup_wns_ns=-0.45)),
        task(4, 60, state="FAILED", exit_code=1),
        task(5, 35, values=dict(die_area_um2=12000.0, power_total_w=0.0012, setup_wns_ns=0.0)),
        task(6, 70, state="TIMEOUT"),
    ]
    db.session.add(sub)
    db.session.commit()
    return sub


@pytest.fixture
def sweep(app, spm, tmp_path):
    return make_sweep(spm, tmp_path / "runs" / "sweep")


def finish(sub: Submission, state: str = "PARTIAL") -> None:
    sub.state = state
    sub.finished_at = utcnow()


def outbox_rows() -> list[Outbox]:
    db.session.expire_all()
    return list(db.session.scalars(select(Outbox).order_by(Outbox.id)))


def committed_outbox_count() -> int:
    """Rows visible to another connection, i.e. committed."""
    with db.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM outbox")).scalar_one()


def parts(message) -> dict[str, list]:
    found: dict[str, list] = {}
    for part in message.walk():
        found.setdefault(part.get_content_type(), []).append(part)
    return found


def html_rows(html: str) -> dict[int, str]:
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'<tr data-task="(\d+)"(.*?)</tr>', html, flags=re.DOTALL)
    }


# --------------------------------------------------------------------------- the whole path


def test_array_end_mail_is_delivered_with_results_logs_and_layout(app, sweep, smtp_server):  # noqa: F811
    finish(sweep, "PARTIAL")
    row = queue_submission_mail(sweep)
    assert (
        row is not None
        and row.dedupe_key == f"submission:{sweep.uuid}:PARTIAL:{len(sweep.job_ids)}"
    )
    assert committed_outbox_count() == 0  # in the caller's transaction, not committed
    db.session.commit()
    assert committed_outbox_count() == 1
    assert "iVBORw0KGgo" not in (row.body_html or "")  # no PNG stored in the database

    counts = send_pending()
    assert counts == {"sent": 1, "retry": 0, "failed": 0, "skipped": 0}
    [received] = smtp_server.received()
    assert received.rcpt_tos == ("ada@example.org",)
    message = received.message
    assert message["To"] == "ada@example.org"
    assert message["From"] == "OpenLane Portal <portal@example.org>"
    assert message["Subject"] == "[OpenLane Portal] PARTIAL: spm sweep (5 of 7 tasks completed)"
    assert message["Auto-Submitted"] == "auto-generated"
    assert re.fullmatch(r"<olp-outbox-\d+\.\d{14}@example\.org>", message["Message-ID"])

    # multipart/alternative: text, then multipart/related (HTML + the inline PNG).
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    found = parts(message)
    text_body = message.get_body(("plain",)).get_content()
    html_body = message.get_body(("html",)).get_content()

    assert "Tasks:       COMPLETED 5, FAILED 1, TIMEOUT 1" in text_body
    assert "Wall time:   0:16:00 (2024-07-01 12:00 to 2024-07-01 12:16 UTC)" in text_body
    assert "Ref:         main (commit 9f2c1e0d8b7a)" in text_body
    assert f"{SITE}/submissions/{sweep.uuid}" in text_body
    assert f'href="{SITE}/submissions/{sweep.uuid}"' in html_body

    rows = html_rows(html_body)
    assert sorted(rows) == [0, 1, 2, 3, 5]
    assert {i for i, r in rows.items() if "&#9670; Pareto" in r} == {0, 1, 2}
    assert "best area" in rows[2]
    assert "best power" in rows[0] and "best WNS" in rows[0]
    assert not any("best" in rows[i] for i in (1, 3, 5))

    assert "FAILED TASKS: 4, 6" in text_body
    assert "Task 4: FAILED, exit code 1, last lines of logs/7001_4.out:" in text_body
    assert "  | [ERROR]: detailed routing failed: 1123 violations" in text_body
    assert "  | [INFO]: step 26 of the flow" in text_body
    assert "step 25 of the flow" not in text_body  # 15 lines: 26..39 and the error
    assert "Task 6: TIMEOUT, no Slurm log found" in text_body
    assert "detailed routing failed: 1123 violations" in html_body

    [png] = found["image/png"]
    cid = thumbnail_cid(sweep.uuid)
    assert png["Content-ID"] == f"<{cid}>"
    assert f'src="cid:{cid}"' in html_body
    image = Image.open(io.BytesIO(png.get_content()))
    assert image.format == "PNG" and image.size == (480, 480)

    [stored] = outbox_rows()
    assert (stored.status, stored.tries, stored.last_error) == ("sent", 1, None)
    assert stored.sent_at is not None
    assert send_pending() == {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    assert len(smtp_server.received()) == 1


def test_gds_gone_at_send_time_sends_without_the_image(app, sweep, smtp_server):  # noqa: F811
    finish(sweep)
    queue_submission_mail(sweep)
    db.session.commit()
    for gds in Path(sweep.run_dir).rglob("*.gds"):
        gds.unlink()
    assert send_pending()["sent"] == 1
    message = smtp_server.received()[0].message
    assert "image/png" not in parts(message)
    html_body = message.get_body(("html",)).get_content()
    assert "cid:" not in html_body and "Results" in html_body


def test_rollback_drops_the_queued_mail(app, sweep):
    finish(sweep)
    assert queue_submission_mail(sweep) is not None
    db.session.rollback()
    assert outbox_rows() == []


# --------------------------------------------------------------------------- SMTP failures


def test_smtp_down_at_array_end_then_back(app, sweep, smtp_server):  # noqa: F811
    smtp_server.stop()
    assert smtp_server.refuses_connections()
    finish(sweep, "COMPLETED")
    queue_submission_mail(sweep)
    db.session.commit()

    before = utcnow()
    assert send_pending() == {"sent": 0, "retry": 1, "failed": 0, "skipped": 0}
    [row] = outbox_rows()
    assert row.status == "queued" and row.tries == 1
    assert row.next_try_at > before
    assert "Connection refused" in row.last_error
    assert f"127.0.0.1:{smtp_server.port}" in row.last_error

    smtp_server.start()
    assert send_pending()["sent"] == 0  # backoff: not due yet
    assert smtp_server.received() == []
    wait = (row.next_try_at - utcnow()).total_seconds()
    assert 0 < wait <= 0.5
    time.sleep(wait + 0.05)
    assert send_pending()["sent"] == 1
    assert send_pending()["sent"] == 0
    assert flush_outbox()["sent"] == 0
    assert len(smtp_server.received()) == 1
    [row] = outbox_rows()
    assert (row.status, row.tries) == ("sent", 2)
    assert "Connection refused" in row.last_error  # the history is kept


def test_backoff_doubles_and_gives_up_after_max_tries(settings, smtp_server):  # noqa: F811
    overrides = {"MAIL_MAX_TRIES": 4, "MAIL_RETRY_BASE_SECONDS": 10, "MAIL_RETRY_MAX_SECONDS": 30}
    app = create_app({**settings, **overrides})
    with app.app_context():
        upgrade()
        smtp_server.stop()
        enqueue_mail("ada@example.org", "s", "body")
        db.session.commit()
        delays = []
        for attempt in range(1, 5):
            start = utcnow()
            counts = flush_outbox()
            [row] = outbox_rows()
            assert row.tries == attempt
            if attempt < 4:
                assert counts["retry"] == 1 and row.status == "queued"
                delays.append(round((row.next_try_at - start).total_seconds()))
        assert delays == [10, 20, 30]  # doubled, then capped
        assert counts["failed"] == 1
        assert row.status == "failed" and "Connection refused" in row.last_error
        smtp_server.start()
        assert flush_outbox()["sent"] == 0
        assert smtp_server.received() == []
        db.session.remove()
        db.engine.dispose()


def test_server_down_stops_the_batch_without_touching_other_messages(app, smtp_server):  # noqa: F811
    for i in range(3):
        enqueue_mail(f"u{i}@example.org", f"message {i}", "body")
    db.session.commit()
    smtp_server.stop()
    assert send_pending() == {"sent": 0, "retry": 1, "failed": 0, "skipped": 2}
    assert [r.tries for r in outbox_rows()] == [1, 0, 0]


def test_permanent_refusal_fails_at_once_and_the_batch_goes_on(app, smtp_server):  # noqa: F811
    smtp_server.reject_recipients.add("gone@example.org")
    enqueue_mail("gone@example.org", "to a gone user", "body", dedupe_key="a")
    enqueue_mail("ada@example.org", "to ada", "body", dedupe_key="b")
    db.session.commit()
    assert send_pending() == {"sent": 1, "retry": 0, "failed": 1, "skipped": 0}
    gone, ada = outbox_rows()
    assert (gone.status, gone.tries) == ("failed", 1)
    assert "550" in gone.last_error and "User unknown" in gone.last_error
    assert ada.status == "sent"
    assert [m.message["Subject"] for m in smtp_server.received()] == ["to ada"]


def test_temporary_refusal_is_retried(app, smtp_server):  # noqa: F811
    smtp_server.data_reply = "451 4.3.0 Mailbox temporarily unavailable"
    enqueue_mail("ada@example.org", "later", "body")
    db.session.commit()
    assert send_pending()["retry"] == 1
    [row] = outbox_rows()
    assert row.status == "queued" and "451" in row.last_error
    smtp_server.data_reply = None
    assert flush_outbox()["sent"] == 1
    assert len(smtp_server.received()) == 1


# --------------------------------------------------------------------------- restarts, leases


def _sender_process(settings: dict) -> dict:
    """send_pending in a brand-new Python process, configured through PORTAL_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    for name in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SITE_URL", "MAIL_SERVER", "MAIL_PORT",
                 "MAIL_DEFAULT_SENDER"):  # fmt: skip
        env[f"PORTAL_{name}"] = str(settings[name])
    env["PORTAL_INSTANCE_PATH"] = os.environ["PORTAL_INSTANCE_PATH"]
    code = (
        "import json\n"
        "from portal import create_app\n"
        "from portal.mail.outbox import send_pending\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    print(json.dumps(send_pending()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sender_restarted_mid_queue_sends_each_message_once(settings, smtp_server):  # noqa: F811
    first = create_app(settings)
    with first.app_context():
        upgrade()
        for i in range(3):
            enqueue_mail(f"user{i}@example.org", f"message {i}", f"body {i}", dedupe_key=f"k{i}")
        db.session.commit()
        assert send_pending(limit=1)["sent"] == 1
        db.session.remove()
        db.engine.dispose()
    assert [m.message["Subject"] for m in smtp_server.received()] == ["message 0"]

    assert _sender_process(settings) == {"sent": 2, "retry": 0, "failed": 0, "skipped": 0}
    assert _sender_process(settings) == {"sent": 0, "retry": 0, "failed": 0, "skipped": 0}
    subjects = sorted(m.message["Subject"] for m in smtp_server.received())
    assert subjects == ["message 0", "message 1", "message 2"]


def test_sender_cycle_waits_while_another_process_holds_the_lease(app, sweep, smtp_server):  # noqa: F811
    finish(sweep)
    queue_submission_mail(sweep)
    db.session.commit()
    assert leases.acquire("mailer", "other-host:4242", 60)
    counts = run_sender_cycle(app)
    assert counts["lease"] == 0 and counts["sent"] == 0
    assert smtp_server.received() == []
    leases.release("mailer", "other-host:4242")
    counts = run_sender_cycle(app)
    assert counts["lease"] == 1 and counts["sent"] == 1
    assert len(smtp_server.received()) == 1
    # The cycle gives the lease back: another process may take it at once.
    assert leases.acquire("mailer", "other-host:4242", 60)


def test_two_concurrent_sender_cycles_only_one_sends(app, smtp_server):  # noqa: F811
    for i in range(4):
        enqueue_mail(f"user{i}@example.org", f"message {i}", "body", dedupe_key=f"c{i}")
    db.session.commit()
    smtp_server.delay = 0.3  # the winner still holds the lease when the other one asks
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def cycle() -> None:
        barrier.wait()
        results.append(run_sender_cycle(app))

    threads = [threading.Thread(target=cycle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(r["lease"] for r in results) == [0, 1]
    assert sum(r["sent"] for r in results) == 4
    subjects = sorted(m.message["Subject"] for m in smtp_server.received())
    assert subjects == [f"message {i}" for i in range(4)]


def test_concurrent_flushes_claim_each_message_once(app, smtp_server):  # noqa: F811
    """Without the lease (the CLI flush next to the scheduled sender) the per-row claim still
    keeps two senders from sending the same message."""
    for i in range(6):
        enqueue_mail(f"user{i}@example.org", f"message {i}", "body", dedupe_key=f"f{i}")
    db.session.commit()
    smtp_server.delay = 0.1
    barrier = threading.Barrier(2)
    results: list[dict] = []

    def flush() -> None:
        with app.app_context():
            barrier.wait()
            results.append(flush_outbox())
            db.session.remove()

    threads = [threading.Thread(target=flush) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r["sent"] for r in results) == 6
    subjects = sorted(m.message["Subject"] for m in smtp_server.received())
    assert subjects == [f"message {i}" for i in range(6)]
    assert {r.status for r in outbox_rows()} == {"sent"}


def test_sender_cycle_from_inside_an_app_context(app, sweep, smtp_server):  # noqa: F811
    """The poller calls it from its own app context; the caller's session keeps working."""
    finish(sweep, "FAILED")
    queue_submission_mail(sweep)
    db.session.commit()
    assert run_sender_cycle(app)["sent"] == 1
    assert db.session.get(Submission, sweep.id).state == "FAILED"
    assert [r.status for r in outbox_rows()] == ["sent"]


def test_scheduled_sender_delivers(app, sweep, smtp_server):  # noqa: F811
    app.config["MAIL_SEND_INTERVAL_SECONDS"] = 0.2
    scheduler = BackgroundScheduler()
    job = start_sender(app, scheduler)
    assert job.id == "portal-mail-sender"
    assert job.trigger.interval == timedelta(seconds=0.2)
    assert start_sender(app, scheduler).id == job.id  # registering again replaces it
    finish(sweep, "COMPLETED")
    queue_submission_mail(sweep)
    db.session.commit()
    scheduler.start()
    try:
        assert len(scheduler.get_jobs()) == 1
        deadline = time.monotonic() + 15
        while not smtp_server.received() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown(wait=True)
    assert len(smtp_server.received()) == 1
    assert [r.status for r in outbox_rows()] == ["sent"]


# --------------------------------------------------------------------------- who gets what


def test_one_mail_per_terminal_state(app, sweep):
    finish(sweep, "PARTIAL")
    assert queue_submission_mail(sweep) is not None
    assert queue_submission_mail(sweep) is None  # same transaction
    db.session.commit()
    assert queue_submission_mail(sweep) is None  # after the commit
    db.session.commit()
    assert len(outbox_rows()) == 1
    # A later, different terminal state (e.g. after resubmitting the failed tasks) is news.
    finish(sweep, "COMPLETED")
    assert queue_submission_mail(sweep) is not None
    db.session.commit()
    keys = [r.dedupe_key for r in outbox_rows()]
    assert keys == [
        f"submission:{sweep.uuid}:PARTIAL:{len(sweep.job_ids)}",
        f"submission:{sweep.uuid}:COMPLETED:{len(sweep.job_ids)}",
    ]


def test_unique_key_backs_up_a_concurrent_duplicate(app):
    assert enqueue_mail("a@example.org", "s", "b", dedupe_key="same") is not None
    with app.app_context():  # a second session, as in another worker
        assert enqueue_mail("a@example.org", "s", "b", dedupe_key="same") is not None
        db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Outbox)) == 1


@pytest.mark.parametrize(
    ("preference", "state", "expected"),
    [
        ("completion", "COMPLETED", True),
        ("completion", "CANCELLED", True),
        ("failure", "COMPLETED", False),
        ("failure", "FAILED", True),
        ("failure", "PARTIAL", True),
        ("failure", "CANCELLED", True),
        ("never", "COMPLETED", False),
        ("never", "FAILED", False),
    ],
)
def test_owner_preference(app, sweep, preference, state, expected):
    sweep.owner.notify = preference
    finish(sweep, state)
    assert (queue_submission_mail(sweep) is not None) is expected
    db.session.commit()
    assert len(outbox_rows()) == int(expected)


def test_submission_opt_out_and_non_terminal_states(app, sweep):
    sweep.state = "RUNNING"
    assert queue_submission_mail(sweep) is None
    sweep.notify = False
    finish(sweep, "FAILED")
    assert queue_submission_mail(sweep) is None
    assert queue_decision_mail(sweep, approved=False) is None
    db.session.commit()
    assert outbox_rows() == []


@pytest.mark.parametrize("approved", [True, False])
def test_decision_mail_carries_the_reason(app, sweep, smtp_server, approved):  # noqa: F811
    sweep.state = "STAGING" if approved else "REJECTED"
    sweep.decision_reason = "4,000 core-hours is over the <b>monthly</b> budget"
    assert queue_decision_mail(sweep, approved=approved) is not None
    assert queue_decision_mail(sweep, approved=approved) is None
    db.session.commit()
    assert send_pending()["sent"] == 1
    message = smtp_server.received()[0].message
    verdict = "approved" if approved else "rejected"
    assert message["Subject"] == f"[OpenLane Portal] Submission {verdict}: spm sweep"
    text_body = message.get_body(("plain",)).get_content()
    html_body = message.get_body(("html",)).get_content()
    assert "4,000 core-hours is over the <b>monthly</b> budget" in text_body
    assert "4,000 core-hours is over the &lt;b&gt;monthly&lt;/b&gt; budget" in html_body
    assert f"{SITE}/submissions/{sweep.uuid}" in text_body


def test_failure_preference_gets_rejections_only(app, sweep):
    sweep.owner.notify = "failure"
    assert queue_decision_mail(sweep, approved=True) is None
    assert queue_decision_mail(sweep, approved=False) is not None


# --------------------------------------------------------------------------- test email


def test_send_test_email(app, smtp_server):  # noqa: F811
    send_test_email("admin@example.org")
    [received] = smtp_server.received()
    assert received.rcpt_tos == ("admin@example.org",)
    assert received.message["Subject"] == "[OpenLane Portal] Test email"
    assert f"127.0.0.1:{smtp_server.port}" in received.message.get_body(("plain",)).get_content()
    assert outbox_rows() == []  # not through the outbox


def test_send_test_email_reports_the_server_answer(app, smtp_server):  # noqa: F811
    smtp_server.reject_recipients.add("nobody@example.org")
    with pytest.raises(MailError, match="550 5.1.1 <nobody@example.org>: Recipient address"):
        send_test_email("nobody@example.org")
    smtp_server.stop()
    with pytest.raises(MailError, match="Connection refused"):
        send_test_email("admin@example.org")


# --------------------------------------------------------------------------- STARTTLS + AUTH


@pytest.fixture
def tls_server(tmp_path):
    server = SmtpServer(tls=make_certificate(tmp_path), credentials=("portal", "s3cret pass"))
    server.start()
    yield server
    server.stop()


def tls_app(settings, server: SmtpServer, **overrides):
    config = {
        **settings,
        "MAIL_PORT": server.port,
        "MAIL_USE_TLS": True,
        "MAIL_USERNAME": "portal",
        "MAIL_PASSWORD": None,
        "MAIL_TLS_CA_FILE": str(server.tls[0]),
        **overrides,
    }
    return create_app(config)


def test_starttls_and_login_with_the_password_from_the_environment(
    settings, tls_server, monkeypatch
):
    monkeypatch.setenv("PORTAL_MAIL_PASSWORD", "s3cret pass")
    app = tls_app(settings, tls_server)
    with app.app_context():
        upgrade()
        send_test_email("admin@example.org")
        enqueue_mail("ada@example.org", "over TLS", "body")
        db.session.commit()
        assert send_pending()["sent"] == 1
        db.session.remove()
        db.engine.dispose()
    received = tls_server.received()
    assert [r.message["Subject"] for r in received] == [
        "[OpenLane Portal] Test email",
        "over TLS",
    ]
    assert all(r.tls and r.authenticated for r in received)


def test_tls_certificate_is_verified(settings, tls_server, monkeypatch):
    monkeypatch.setenv("PORTAL_MAIL_PASSWORD", "s3cret pass")
    app = tls_app(settings, tls_server, MAIL_TLS_CA_FILE=None)  # system CAs: self-signed fails
    with app.app_context(), pytest.raises(MailError, match="CERTIFICATE_VERIFY_FAILED"):
        send_test_email("admin@example.org")
    assert tls_server.received() == []


def test_wrong_password_is_reported(settings, tls_server, monkeypatch):
    monkeypatch.setenv("PORTAL_MAIL_PASSWORD", "wrong")
    app = tls_app(settings, tls_server)
    with app.app_context(), pytest.raises(MailError, match="535"):
        send_test_email("admin@example.org")
    assert tls_server.received() == []
