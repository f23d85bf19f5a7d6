"""`portal --server URL` (the real console script, in a subprocess) against the portal served by
a real HTTP server on loopback: the same output as the local commands on the same database, a
clear error without a token, and /metrics parsed with prometheus_client, counts checked against
the database and poll statistics written by `portal poll --once`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from werkzeug.serving import make_server

from portal import accounts
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Outbox, Submission, Task, User
from portal.track.pollstats import RecordingPoller, read_poller_stats, stats_path
from tests.fixtures.gitdaemon import closed_port
from tests.integration import engine_helpers

PORTAL = str(Path(sys.executable).parent / "portal")  # the installed console script
FINAL = ("COMPLETED", "FAILED", "PARTIAL", "CANCELLED")


class Served:
    """The app behind a real HTTP server in a thread."""

    def __init__(self, app):
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def portal_site(tmp_path, monkeypatch):
    """An instance folder shared by the served app and `portal` subprocesses."""
    instance = tmp_path / "instance"
    instance.mkdir()
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'portal.db'}",
        "RUN_ROOT": str(tmp_path / "runs"),
        "FLOW_EXECUTABLE_OVERRIDE": str(engine_helpers.STANDIN),
        "SLURM_PARTITION": "debug",
        "APPROVAL_CORE_HOURS": 1000,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 1,
        "LAUNCH_IN_BACKGROUND": False,
        "SITE_URL": "http://portal.test",
        "GIT_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1", "localhost"],  # the tests' git daemon
    }
    (instance / "portal.json").write_text(json.dumps(settings))
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(instance))
    app = engine_helpers.make_app(tmp_path, **settings)
    assert Path(app.instance_path) == instance
    with app.app_context():
        accounts.create_user("ada", "ada@example.org", slurm_account="openlane")
        accounts.create_user("bob", "bob@example.org")
        ada = db.session.scalar(select(User).where(User.username == "ada"))
        token, _ = accounts.create_api_token(ada, "laptop")
    served = Served(app)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PORTAL_") and key != "XDG_CONFIG_HOME"
    }
    env.update(
        PORTAL_INSTANCE_PATH=str(instance),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        HOME=str(tmp_path / "home"),
    )
    yield {"app": app, "url": served.url, "token": token, "env": env, "tmp": tmp_path}
    served.stop()
    with app.app_context():
        db.engine.dispose()


def portal(env, *args, check=True, extra_env=None):
    run = subprocess.run(
        [PORTAL, *args],
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert run.returncode == 0, f"portal {' '.join(args)}: {run.stdout}{run.stderr}"
    return run


def remote(site, *args, check=True):
    return portal(
        site["env"],
        "--server",
        site["url"],
        *args,
        check=check,
        extra_env={"PORTAL_TOKEN": site["token"]},
    )


def local(site, *args, check=True):
    return portal(site["env"], *args, check=check, extra_env={"PORTAL_USER": "ada"})


def scrape(site, **headers):
    response = requests.get(f"{site['url']}/metrics", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


SWEEP = [
    "--repo",
    "",
    "--design",
    "designs/counter",
    "--sweep",
    "CLOCK_PERIOD=10,20",
    "--time",
    "10",
    "--mem",
    "256M",
]


def sweep_args(repo):
    args = list(SWEEP)
    args[1] = repo
    return args


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_remote_cli_matches_local_and_metrics_count_right(portal_site, example_repo, tmp_path):
    site = portal_site

    # dry run: the same points and summary as the local command, nothing written
    dry = remote(site, "submit", *sweep_args(example_repo), "--dry-run").stdout
    assert "#SBATCH --array=0-1" in dry and "--account=openlane" in dry
    local_dry = local(site, "submit", *sweep_args(example_repo), "--dry-run").stdout
    assert dry.splitlines()[-4:] == local_dry.splitlines()[-4:]  # points table and summary
    assert dry.splitlines()[-4:] == [
        "index  CLOCK_PERIOD",
        "0      10",
        "1      20",
        "2 task(s), 0.3 core-hours",
    ]
    assert json.loads(remote(site, "status", "--json").stdout) == []

    # submit through the API, follow it with `portal poll --once` (recording poll statistics)
    sub = json.loads(remote(site, "submit", *sweep_args(example_repo), "--json").stdout)
    assert sub["state"] == "QUEUED" and len(sub["job_ids"]) == 1 and len(sub["tasks"]) == 2
    uuid = sub["uuid"]
    for _ in range(180):
        polled = local(site, "poll", "--once", check=False)
        assert polled.returncode == 0, polled.stderr
        state = json.loads(remote(site, "status", uuid[:8], "--json").stdout)["state"]
        if state in FINAL:
            break
        time.sleep(1)
    assert state == "COMPLETED"

    # the same text as the local commands on the same database
    for args in (
        ["status", uuid],
        ["status", uuid[:8]],
        ["status"],
        ["results", uuid],
        ["results", uuid, "--csv"],
        ["results", uuid, "--objectives", "area:max"],
        ["results", uuid, "--json"],
    ):
        assert remote(site, *args).stdout == local(site, *args).stdout, args
    mine = json.loads(remote(site, "status", uuid, "--json").stdout)
    ours = json.loads(local(site, "status", uuid, "--json").stdout)
    assert ours.pop("run_dir") and ours.pop("url") == f"http://portal.test/submissions/{uuid}"
    assert mine.pop("url") == f"{site['url']}/submissions/{uuid}"
    assert mine == ours
    assert [t["state"] for t in mine["tasks"]] == ["COMPLETED", "COMPLETED"]
    text = remote(site, "status", uuid).stdout
    assert text.startswith(f"{uuid}  COMPLETED") and "CLOCK_PERIOD=20" in text

    # export and the refusals, with the local command's messages and exit codes
    bundle = tmp_path / "bundle.tar.gz"
    out = remote(site, "export", uuid[:8], "-o", str(bundle)).stdout
    with site["app"].app_context():
        run_dir = db.session.scalar(select(Submission.run_dir).where(Submission.uuid == uuid))
    assert out.strip() == (
        f"wrote {bundle} (unpack it as {run_dir}, then: cd {run_dir} && sbatch job.sbatch)"
    )
    with tarfile.open(bundle) as tar:
        assert f"{Path(run_dir).name}/job.sbatch" in tar.getnames()
    assert not list(tmp_path.glob(".bundle.tar.gz.*"))  # no partial download left behind
    refused = remote(site, "cancel", uuid, check=False)
    assert refused.returncode == 2 and "already COMPLETED" in refused.stderr
    again = remote(site, "resubmit", uuid, "--failed", check=False)
    assert again.returncode == 2 and "no failed tasks" in again.stderr
    missing = remote(site, "status", "ffffffff", check=False)
    assert missing.returncode == 2 and "no submission 'ffffffff'" in missing.stderr
    number = remote(site, "status", "1", check=False)
    assert number.returncode == 2 and "portal host only" in number.stderr
    local_only = remote(site, "approve", uuid, check=False)
    assert local_only.returncode == 2 and "runs on the portal host only" in local_only.stderr

    # /metrics: counts from the database, poll statistics from `portal poll --once`
    samples = scrape(site)
    with site["app"].app_context():
        by_state = dict(
            db.session.execute(
                select(Submission.state, func.count(Submission.id)).group_by(Submission.state)
            ).all()
        )
        queued_mail = db.session.scalar(
            select(func.count(Outbox.id)).where(Outbox.status == "queued")
        )
        tasks = db.session.scalar(select(func.count(Task.id)).where(Task.state == "COMPLETED"))
    assert by_state == {"COMPLETED": 1} and tasks == 2 and queued_mail == 1
    assert value(samples, "openlane_portal_submissions", state="COMPLETED") == 1
    assert value(samples, "openlane_portal_submissions", state="QUEUED") == 0
    assert value(samples, "openlane_portal_tasks", state="COMPLETED") == 2
    assert value(samples, "openlane_portal_outbox_queued") == queued_mail
    assert value(samples, "openlane_portal_users_active") == 2
    stats = read_poller_stats(stats_path(site["app"].instance_path))
    assert stats is not None and stats.cycles_total == 1  # each `--once` is a new process
    assert value(samples, "openlane_portal_poll_cycles_total") == 1
    assert value(samples, "openlane_portal_sacct_errors_total") == 0
    assert 0 < value(samples, "openlane_portal_poll_cycle_duration_seconds") < 60
    assert value(samples, "openlane_portal_poller_lease_held") == 0  # --once gives it back
    assert (
        abs(value(samples, "openlane_portal_poll_last_success_timestamp_seconds") - time.time())
        < 600
    )


def test_missing_or_bad_token_is_a_clear_error(portal_site):
    site = portal_site
    env = dict(site["env"])
    config = Path(env["XDG_CONFIG_HOME"]) / "openlane-portal" / "config.toml"
    run = portal(env, "--server", site["url"], "status", check=False)
    assert run.returncode == 2 and run.stdout == ""
    assert "no API token" in run.stderr and "PORTAL_TOKEN" in run.stderr
    assert str(config) in run.stderr

    config.parent.mkdir(parents=True)
    config.write_text('server = "ignored"\n')
    run = portal(env, "--server", site["url"], "status", check=False)
    assert run.returncode == 2 and f"{config} has no token" in run.stderr

    config.write_text("token = [unclosed\n")
    run = portal(env, "--server", site["url"], "status", check=False)
    assert run.returncode == 2 and "not valid TOML" in run.stderr

    config.write_text(f'token = "{site["token"]}"\n')
    config.chmod(0o600)
    run = portal(env, "--server", site["url"], "status", "--json")  # PORTAL_SERVER works too
    assert json.loads(run.stdout) == [] and "warning" not in run.stderr
    config.chmod(0o644)
    run = portal(env, "status", "--json", extra_env={"PORTAL_SERVER": site["url"]})
    assert json.loads(run.stdout) == [] and "readable by other users" in run.stderr

    run = portal(
        env,
        "--server",
        site["url"],
        "status",
        check=False,
        extra_env={"PORTAL_TOKEN": "olp_wrong"},
    )
    assert run.returncode == 2 and "token is unknown" in run.stderr

    run = portal(
        env,
        "--server",
        site["url"],
        "status",
        "--user",
        "bob",
        check=False,
        extra_env={"PORTAL_TOKEN": site["token"]},
    )
    assert run.returncode == 2 and "--user does not apply" in run.stderr
    with closed_port() as port:
        run = portal(
            env,
            "--server",
            f"http://127.0.0.1:{port}",
            "status",
            check=False,
            extra_env={"PORTAL_TOKEN": site["token"]},
        )
    assert run.returncode == 1 and "Connection refused" in run.stderr


def test_token_commands(portal_site):
    site = portal_site
    env = site["env"]
    created = portal(env, "token", "create", "bob", "--name", "ci runner")
    plaintext = created.stdout.strip()
    assert plaintext.startswith("olp_") and "shown only now" in created.stderr
    me = requests.get(
        f"{site['url']}/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    )
    assert me.status_code == 200 and me.json()["user"]["username"] == "bob"
    listed = json.loads(portal(env, "token", "list", "bob", "--json").stdout)
    assert [(t["name"], t["revoked_at"]) for t in listed] == [("ci runner", None)]
    assert plaintext not in portal(env, "token", "list").stdout
    assert portal(env, "token", "create", "nobody", "--name", "x", check=False).returncode == 2
    assert portal(env, "token", "create", "bob", "--name", " ", check=False).returncode == 2
    revoked = portal(env, "token", "revoke", str(listed[0]["id"]))
    assert "revoked" in revoked.stdout
    me = requests.get(
        f"{site['url']}/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"}, timeout=30
    )
    assert me.status_code == 401 and me.json()["error"]["code"] == "unauthorized"
    assert portal(env, "token", "revoke", "12345", check=False).returncode == 2


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_metrics_count_sacct_errors_and_recover(portal_site):
    site = portal_site
    app = site["app"]
    with app.app_context():
        ada = db.session.scalar(select(User).where(User.username == "ada"))
        sub = Submission(
            owner=ada,
            repo_url="https://example.org/chip.git",
            ref="main",
            flow="openlane1",
            state="QUEUED",
            n_tasks=1,
            job_ids=["999999"],
        )
        sub.tasks = [Task(index=0, array_job_id="999999", array_index=0, state="PENDING")]
        db.session.add(sub)
        db.session.commit()
    assert (
        value(scrape(site), "openlane_portal_poller_lease_held") == 0
    )  # no poller has run here yet
    assert ("openlane_portal_poll_cycles_total", ()) not in scrape(site)
    with closed_port() as port:
        broken = dict(
            app.config, SLURM_TRANSPORT="ssh", SLURM_SSH_HOST="127.0.0.1", SLURM_SSH_PORT=port
        )
        poller = RecordingPoller(app, slurm_client(broken), holder="metrics-test")
        assert poller.run_cycle() is None  # sacct could not be reached
    samples = scrape(site)
    assert value(samples, "openlane_portal_sacct_errors_total") == 1
    assert value(samples, "openlane_portal_poll_consecutive_errors") == 1
    assert value(samples, "openlane_portal_poller_lease_held") == 1
    assert value(samples, "openlane_portal_submissions", state="QUEUED") == 1
    assert value(samples, "openlane_portal_tasks", state="PENDING") == 1
    poller.slurm, poller.resume_at = slurm_client(app.config), 0.0
    assert poller.run_cycle() is not None  # Slurm answers again
    samples = scrape(site)
    assert value(samples, "openlane_portal_poll_cycles_total") == 2
    assert value(samples, "openlane_portal_sacct_errors_total") == 1
    assert value(samples, "openlane_portal_poll_consecutive_errors") == 0
    assert poller.run_cycle() is not None
    assert value(scrape(site), "openlane_portal_poll_cycles_total") == 3
    poller.stop()
    assert value(scrape(site), "openlane_portal_poller_lease_held") == 0


def test_metrics_token(portal_site):
    site = portal_site
    site["app"].config["METRICS_TOKEN"] = "scrape-s3cret"
    url = f"{site['url']}/metrics"
    assert requests.get(url, timeout=30).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
    assert (
        value(scrape(site, Authorization="Bearer scrape-s3cret"), "openlane_portal_users_active")
        == 2
    )
    api_token = requests.get(url, headers={"Authorization": f"Bearer {site['token']}"}, timeout=30)
    assert api_token.status_code == 401  # a user's API token is not the scrape token


def test_unwritable_statistics_never_stop_the_poller(portal_site, tmp_path, caplog):
    app = portal_site["app"]
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the statistics folder should be\n")
    poller = RecordingPoller(
        app, slurm_client(app.config), holder="stats-test", stats_file=blocker / "s.json"
    )
    try:
        stats = poller.run_cycle()  # nothing active: the cycle needs no Slurm call
    finally:
        poller.stop()
    assert stats is not None and stats.submissions == 0
    assert poller.recorder.stats.cycles_total == 1
    assert "cannot write poller statistics" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".poller")) == []
