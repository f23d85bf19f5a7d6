"""The portal as deployed by its Ansible role (scripts/portal-up on the local inventory), used
over HTTP on loopback like a browser: nginx on 127.0.0.1:8080 in front of gunicorn on
127.0.0.1:8000; sweeps submitted to the real cluster through the REST API (a token made with
the deployed `portal token create`) and through the web form (sign-in with the form's CSRF
token), and the deployed poller following them to COMPLETED. The stand-in flow (a test double)
replaces OpenLane. The services are stopped at the end (scripts/portal-down)."""

from __future__ import annotations

import json
import pwd
import re
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import requests

from portal.logmask import mask_secrets
from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NGINX = "http://127.0.0.1:8080"
GUNICORN = "http://127.0.0.1:8000"
CREDENTIALS = REPO_ROOT / "ansible" / ".credentials"
INSTANCE = Path("/var/lib/openlane-portal/instance")
RUN_ROOT = Path("/srv/openlane-portal/runs")
PORTAL_CLI = "/opt/openlane-portal/bin/portal"
SERVICE_USER = "openlane-portal"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
NGINX_LOG_DIR = Path("/var/log/nginx")
NGINX_ACCESS_LOG = NGINX_LOG_DIR / "openlane-portal.access.log"  # portal_nginx_access_log
#: nginx's combined format: address, user, time, request line, status, bytes, Referer, agent
COMBINED_RE = re.compile(r'\S+ - \S+ \[[^]]+\] "([^"]*)" \d{3} \d+ "([^"]*)" "([^"]*)"')
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "PARTIAL", "SUBMIT_FAILED", "REJECTED"}


@pytest.fixture(scope="module")
def deployed(slurm_cluster):  # noqa: ARG001 - the cluster must be up
    up = subprocess.run(
        [str(REPO_ROOT / "scripts" / "portal-up")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert up.returncode == 0, up.stdout[-5000:] + up.stderr
    try:
        yield
    finally:
        down = subprocess.run(
            [str(REPO_ROOT / "scripts" / "portal-down")], capture_output=True, text=True
        )
        assert down.returncode == 0, down.stdout + down.stderr


def pid_owner(pidfile: Path) -> str:
    pid = int(pidfile.read_text().split()[0])
    return pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def deployed_status(uuid: str) -> dict:
    """The submission as the deployed `portal status --json` (run as the service) reports it."""
    out = subprocess.run(
        [PORTAL_CLI, "status", uuid, "--json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def assert_ran_as_service_account(uuid: str, job: str) -> None:
    """The array ran as the service account, in a run folder it owns under the run root."""
    users = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-j", job, "--format=User"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert users and set(users) == {SERVICE_USER}
    run_dir = RUN_ROOT / uuid
    assert run_dir.stat().st_uid == pwd.getpwnam(SERVICE_USER).pw_uid
    assert (run_dir / "job.sbatch").is_file()


@pytest.mark.usefixtures("deployed")
def test_nginx_and_gunicorn_answer_on_loopback():
    through_nginx = requests.get(f"{NGINX}/healthz", timeout=10)
    assert through_nginx.status_code == 200
    assert through_nginx.json() == {"status": "ok"}
    assert through_nginx.headers["Server"].startswith("nginx")
    direct = requests.get(f"{GUNICORN}/healthz", timeout=10)
    assert direct.status_code == 200 and direct.json() == {"status": "ok"}
    # nginx's /healthz is the gunicorn master's answer (portal_health_bind), not the app's
    master = requests.get("http://127.0.0.1:8001/healthz", timeout=10)
    assert master.status_code == 200 and master.json() == {"status": "ok"}
    # the app's answers carry its security headers, the master's does not
    assert "Content-Security-Policy" in direct.headers
    assert "Content-Security-Policy" not in through_nginx.headers
    assert "nginx" not in direct.headers.get("Server", "")
    # Only loopback: nginx was told to listen on 127.0.0.1, gunicorn binds 127.0.0.1.
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True).stdout
    assert re.search(r"\s127\.0\.0\.1:8080\s", listening)
    assert re.search(r"\s127\.0\.0\.1:8000\s", listening)
    assert not re.search(r"\s(0\.0\.0\.0|\*|\[::\]):(8080|8000)\s", listening)


@pytest.mark.usefixtures("deployed")
def test_nginx_access_log_masks_the_secrets_in_urls():
    """Reset, share-link and invitation tokens in the request URI and the Referer are logged
    as *** by nginx, as portal.logmask writes them in gunicorn's log; other requests are
    logged as they came, in nginx's combined format."""
    run = time.time_ns()
    tokens = [f"SECRETTOKEN{n}x{run}" for n in (123, 456, 789, 321, 654)]
    # (path, Referer) and the request line and Referer nginx logs for them
    cases = [
        ((f"/auth/reset/{tokens[0]}", None), ("GET /auth/reset/*** HTTP/1.1", "-")),
        ((f"/shared/{tokens[1]}/", None), ("GET /shared/***/ HTTP/1.1", "-")),
        (
            (f"/auth/register?invite={tokens[2]}", None),
            ("GET /auth/register?invite=*** HTTP/1.1", "-"),
        ),
        (
            (f"/auth/login?next=%2Fauth%2Fregister%3Finvite%3D{tokens[3]}", None),
            ("GET /auth/login?next=%2Fauth%2Fregister%3Finvite%3D*** HTTP/1.1", "-"),
        ),
        (
            ("/healthz", f"{NGINX}/shared/{tokens[4]}/tasks/0"),
            ("GET /healthz HTTP/1.1", f"{NGINX}/shared/***/tasks/0"),
        ),
        (("/healthz", None), ("GET /healthz HTTP/1.1", "-")),
    ]
    expected = {}
    for n, ((path, referer), (request_line, logged_referer)) in enumerate(cases):
        # The same masking as in gunicorn's access log and the portal's log records.
        assert request_line == f"GET {mask_secrets(path)} HTTP/1.1"
        assert logged_referer == (mask_secrets(referer) if referer else "-")
        agent = f"masking-test-{run}-{n}"  # finds the request's line
        headers = {"User-Agent": agent} | ({"Referer": referer} if referer else {})
        got = requests.get(f"{NGINX}{path}", headers=headers, allow_redirects=False, timeout=30)
        assert got.status_code < 500, (path, got.status_code)
        expected[agent] = (request_line, logged_referer, agent)

    deadline = time.monotonic() + 10  # nginx writes a line once the response has gone out
    while True:
        lines = NGINX_ACCESS_LOG.read_text().splitlines()
        logged = {m.group(3): m.groups() for m in map(COMBINED_RE.fullmatch, lines) if m}
        if expected.keys() <= logged.keys() or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {agent: logged.get(agent) for agent in expected} == expected
    assert NGINX_ACCESS_LOG.stat().st_mode & 0o777 == 0o640  # as the distribution's access.log
    for log in NGINX_LOG_DIR.glob("*.log"):  # this access log, nginx's default one, error.log
        text = log.read_text(errors="replace")
        assert not [token for token in tokens if token in text], log


@pytest.mark.usefixtures("deployed")
def test_services_run_as_the_service_account_with_the_rendered_settings():
    assert pid_owner(Path("/run/openlane-portal/web.pid")) == SERVICE_USER
    assert pid_owner(Path("/run/openlane-portal/poller.pid")) == SERVICE_USER
    settings_file = INSTANCE / "portal.json"
    stat = settings_file.stat()
    assert stat.st_mode & 0o777 == 0o640 and stat.st_uid == 0
    settings = json.loads(settings_file.read_text())
    assert settings["SECRET_KEY"] == (CREDENTIALS / "portal_secret_key").read_text().strip()
    assert settings["TRUSTED_PROXIES"] == 1  # nginx is in front
    assert settings["RUN_ROOT"] == str(RUN_ROOT)
    assert settings["SLURM_PARTITION"] == "debug"
    assert settings["FLOW_EXECUTABLE_OVERRIDE"] == str(
        REPO_ROOT / "tests" / "standin" / "openlane_standin.py"
    )
    assert settings["POLLER_ENABLED"] is False  # the poller is its own service
    assert (INSTANCE / "portal.db").stat().st_uid == pwd.getpwnam(SERVICE_USER).pw_uid
    assert RUN_ROOT.stat().st_uid == pwd.getpwnam(SERVICE_USER).pw_uid
    # The service account may submit: Slurm accounting knows it.
    assoc = subprocess.run(
        ["sacctmgr", "-nP", "list", "association", f"user={SERVICE_USER}", "format=account"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "openlane" in assoc


@pytest.mark.usefixtures("deployed")
def test_sweep_submitted_through_the_web_form_completes_on_the_cluster(example_repo):
    session = requests.Session()
    login_page = session.get(f"{NGINX}/auth/login", timeout=30)
    assert login_page.status_code == 200
    # A designer account of its own, made with the deployed CLI (the admin's password belongs
    # to whichever checkout first deployed this host's database).
    designer, password = f"designer{time.time_ns()}", secrets.token_urlsafe(16)
    made = subprocess.run(
        [PORTAL_CLI, "user", "add", designer, "--email", f"{designer}@example.org",
         "--account", "openlane", "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    signed_in = session.post(
        f"{NGINX}/auth/login",
        data={"csrf_token": csrf_token(login_page.text), "login": designer, "password": password},
        allow_redirects=False,
        timeout=30,
    )
    assert signed_in.status_code == 302, signed_in.text[-2000:]

    form = session.get(f"{NGINX}/submissions/new", timeout=30)
    assert form.status_code == 200
    posted = session.post(
        f"{NGINX}/submissions/new",
        data={
            "csrf_token": csrf_token(form.text),
            "repo_url": example_repo,
            "ref": "main",
            "design_path": "designs/counter",
            "flow": "openlane1",
            "name": "deployed-portal-test",
            "cpus": "1",
            "mem_mb": "256",
            "time_minutes": "10",
            "partition": "debug",
            "throttle": "0",
            "sweep_mode": "grid",
            "sweep-0-parameter": "CLOCK_PERIOD",
            "sweep-0-values": "10,20",
        },
        allow_redirects=False,
        timeout=120,
    )
    assert posted.status_code == 302, posted.text[-3000:]
    location = posted.headers["Location"]
    found = re.fullmatch(r"(?:https?://[^/]+)?/submissions/([0-9a-f-]{36})", location)
    assert found, location
    uuid = found.group(1)

    deadline = time.monotonic() + 240
    status = deployed_status(uuid)
    while status["state"] not in FINAL and time.monotonic() < deadline:
        time.sleep(2)
        status = deployed_status(uuid)
    assert status["state"] == "COMPLETED", status
    assert status["n_tasks"] == 2 and len(status["job_ids"]) == 1  # one array
    assert [t["state"] for t in status["tasks"]] == ["COMPLETED", "COMPLETED"]

    assert_ran_as_service_account(uuid, status["job_ids"][0])

    # The submission page answers through nginx for its owner.
    page = session.get(f"{NGINX}/submissions/{uuid}", timeout=30)
    assert page.status_code == 200 and "deployed-portal-test" in page.text


@pytest.mark.usefixtures("deployed")
def test_sweep_submitted_through_the_api_completes_on_the_cluster(example_repo):
    made = subprocess.run(
        [PORTAL_CLI, "token", "create", "admin", "--name", f"deploy-test-{time.time_ns()}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {made.stdout.strip()}"
    me = api.get(f"{NGINX}/api/v1/me", timeout=30)
    assert me.status_code == 200, me.text
    assert requests.get(f"{NGINX}/api/v1/me", timeout=30).status_code == 401  # no token

    created = api.post(
        f"{NGINX}/api/v1/submissions",
        json={
            "repo_url": example_repo,
            "ref": "main",
            "design_path": "designs/counter",
            "flow": "openlane1",
            "sweeps": ["FP_CORE_UTIL=30,50"],
            "resources": {"cpus": 1, "mem_mb": 256, "time_minutes": 10, "partition": "debug"},
            "name": "deployed-api-test",
            "notify": False,
        },
        timeout=120,
    )
    assert created.status_code == 201, created.text
    uuid = created.json()["submission"]["uuid"]

    deadline = time.monotonic() + 240
    while True:
        got = api.get(f"{NGINX}/api/v1/submissions/{uuid}", timeout=30)
        assert got.status_code == 200, got.text
        submission = got.json()["submission"]
        if submission["state"] in FINAL or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert submission["state"] == "COMPLETED", submission
    assert submission["n_tasks"] == 2 and submission["tasks_by_state"] == {"COMPLETED": 2}
    assert len(submission["job_ids"]) == 1  # one array
    assert submission["url"] == f"{NGINX}/submissions/{uuid}"  # SITE_URL of the deployment
    assert_ran_as_service_account(uuid, submission["job_ids"][0])


def portal_up(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "portal-up"), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.mark.usefixtures("deployed")
def test_tls_with_a_certificate_and_plain_http_redirected(tmp_path):
    """The same play with a certificate: nginx serves HTTPS (on 8443 here) and answers plain
    HTTP on port 80 with a redirect; the next play without one goes back to plain HTTP."""
    cert, key = tmp_path / "portal.crt", tmp_path / "portal.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    tls = {
        "portal_tls_cert": str(cert),
        "portal_tls_key": str(key),
        "portal_nginx_port": 8443,
        "portal_site_url": "https://127.0.0.1:8443",
    }
    try:
        up = portal_up("-e", json.dumps(tls))
        assert up.returncode == 0, up.stdout[-5000:] + up.stderr
        secure = requests.get("https://127.0.0.1:8443/healthz", verify=str(cert), timeout=10)
        assert secure.status_code == 200 and secure.json() == {"status": "ok"}
        assert "max-age" in secure.headers["Strict-Transport-Security"]
        plain = requests.get("http://127.0.0.1:80/healthz", allow_redirects=False, timeout=10)
        assert plain.status_code == 301
        assert plain.headers["Location"] == "https://127.0.0.1:8443/healthz"
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{NGINX}/healthz", timeout=10)
        settings = json.loads((INSTANCE / "portal.json").read_text())
        assert settings["SITE_URL"] == "https://127.0.0.1:8443"
    finally:
        back = portal_up()
        assert back.returncode == 0, back.stdout[-5000:] + back.stderr
    assert requests.get(f"{NGINX}/healthz", timeout=10).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get("https://127.0.0.1:8443/healthz", verify=False, timeout=10)
