"""Jobs run as the designer's own Unix account (SLURM_RUN_AS='user') on the real cluster.

The module creates real Unix accounts: ``olp_portal`` (the portal's service account, not root),
``olp_alice`` and ``olp_bob`` (designers the sudoers rule names), ``olp_carol`` (a designer it
does not name), the group ``olp_runs`` shared by all of them, Slurm associations for the
designers, and a sudoers rule (checked with ``visudo -cf`` first) that lets olp_portal run
exactly sbatch and scancel as olp_alice and olp_bob. Everything is removed at the end, also on
failure, and leftovers of an aborted earlier run are removed first.

The portal itself runs as olp_portal: every ``portal`` command below is
``sudo -u olp_portal python -m portal.cli ...`` (the CLI is the driver), so staging, sbatch
through sudo, polling and reading results happen exactly as on a site. The flow is the stand-in
test double (tests/standin).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User
from portal.submit import background
from tests.conftest import REPO_ROOT
from tests.integration.engine_helpers import STANDIN, make_app, wait_final

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]

SERVICE = "olp_portal"
ALICE, BOB, CAROL = "olp_alice", "olp_bob", "olp_carol"
DESIGNERS = (ALICE, BOB)  # the sudoers rule names these two only
ACCOUNTS = (SERVICE, ALICE, BOB, CAROL)
GROUP = "olp_runs"
SUDOERS = Path("/etc/sudoers.d/olp-test-run-as")
#: The Slurm account of the local cluster (ansible/roles/slurm/defaults/main.yml).
SLURM_ACCOUNT = "openlane"
FAIL_WRAPPER = REPO_ROOT / "tests" / "standin" / "fail_some_tasks.sh"
FINAL = {"COMPLETED", "FAILED", "PARTIAL", "CANCELLED", "SUBMIT_FAILED"}


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 120):
    """Run a command (as root); with ``check``, fail the test with its output."""
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"{shlex.join(argv)} exited {done.returncode}: {done.stdout}{done.stderr}")
    return done


def as_user(user: str, argv: Sequence[str], **kwargs):
    """Run ``argv`` as the Unix account ``user`` (root may sudo to anyone)."""
    return run(["sudo", "-n", "-u", user, "--", *argv], **kwargs)


# -------------------------------------------------------------------------------------- site


@dataclass
class Site:
    base: Path
    instance: Path
    run_root: Path
    python: str
    uids: dict[str, int]
    gid: int
    repo: str

    def portal(self, *args: str, check: bool = True, **settings: str):
        """``portal <args>`` run by the service account olp_portal, with run-as-user on."""
        env = {
            "HOME": f"/home/{SERVICE}",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": os.pathsep.join(_import_paths()),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PORTAL_INSTANCE_PATH": str(self.instance),
            "PORTAL_RUN_ROOT": str(self.run_root),
            "PORTAL_SLURM_RUN_AS": "user",
            "PORTAL_SLURM_PARTITION": "debug",
            "PORTAL_FLOW_EXECUTABLE_OVERRIDE": str(STANDIN),
            "PORTAL_POLL_LEASE_SECONDS": "1",
            "PORTAL_MAIL_SERVER": "127.0.0.1",
            "PORTAL_MAIL_PORT": "1",
            "PORTAL_GIT_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1", "localhost"]',  # git daemon
            **{f"PORTAL_{key}": value for key, value in settings.items()},
        }
        words = ["env", "-i", *(f"{k}={v}" for k, v in env.items())]
        done = as_user(SERVICE, [*words, self.python, "-m", "portal.cli", *args], check=False)
        if check and done.returncode != 0:
            pytest.fail(f"portal {shlex.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def submit(self, user: str, sweep: str, *, check: bool = True, **settings: str) -> dict:
        done = self.portal(
            "submit",
            "--user",
            user,
            "--repo",
            self.repo,
            "--design",
            "designs/counter",
            "--sweep",
            sweep,
            "--time",
            "10",
            "--mem",
            "256M",
            "--json",
            check=check,
            **settings,
        )
        return json.loads(done.stdout)

    def status(self, ident: str) -> dict:
        return json.loads(self.portal("status", ident, "--json").stdout)

    def wait(self, ident: str, task_state: str | None = None, timeout: float = 240) -> dict:
        """Poll (as the service account) until the submission is final, or with
        ``task_state`` until one of its tasks is in that state."""
        deadline = time.monotonic() + timeout
        while True:
            self.portal("poll", "--once", check=False)  # fails only while a lease is held
            status = self.status(ident)
            if task_state is None and status["state"] in FINAL:
                return status
            if task_state in {t["state"] for t in status["tasks"]}:
                return status
            if time.monotonic() > deadline:
                pytest.fail(f"submission still {status['state']} after {timeout:.0f} s: {status}")
            time.sleep(1)


def _import_paths() -> list[str]:
    """The repository and this virtualenv's packages (for an interpreter the service
    account can run)."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([str(REPO_ROOT), paths["purelib"], paths["platlib"]]))


def _service_python() -> str:
    """An interpreter olp_portal may execute with this virtualenv's packages: the venv's own,
    else the system Python of the same version (the venv's may live under /root)."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    probe = "import sys, flask, portal.cli; print('%d.%d' % sys.version_info[:2])"
    tried = []
    for python in (sys.executable, f"/usr/bin/python{version}"):
        env = ["env", "-i", f"PYTHONPATH={os.pathsep.join(_import_paths())}"]
        done = as_user(SERVICE, [*env, python, "-c", probe], check=False)
        if done.returncode == 0 and done.stdout.strip() == version:
            return python
        tried.append(f"{python}: {done.stderr.strip()[-200:]}")
    pytest.fail(f"no Python {version} that {SERVICE} can run: " + "; ".join(tried))


def _sudoers_rule() -> str:
    programs = []
    for name in ("sbatch", "scancel"):
        path = shutil.which(name)
        if path is None:
            pytest.fail(f"{name} is not installed")
        programs.append(path)
    return (
        "# Installed by tests/integration/test_run_as_user.py and removed when it ends.\n"
        "# The portal's service account may run sbatch and scancel, nothing else, as the\n"
        "# designers it names, without a password.\n"
        f"Cmnd_Alias OLP_TEST_RUN_AS_SLURM = {', '.join(programs)}\n"
        f"{SERVICE} ALL = ({', '.join(DESIGNERS)}) NOPASSWD: OLP_TEST_RUN_AS_SLURM\n"
    )


def _install_sudoers(base: Path) -> None:
    draft = base / "sudoers-draft"
    draft.write_text(_sudoers_rule())
    run(["visudo", "-cf", str(draft)])  # a broken rule would lock sudo out: check first
    fd = os.open(SUDOERS, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o440)
    with os.fdopen(fd, "w") as handle:
        handle.write(draft.read_text())
    run(["visudo", "-c"])


def _remove_site(base: Path | None) -> list[str]:
    """Undo everything the fixture creates (best effort, each step tried); return problems."""
    problems: list[str] = []
    designers = [name for name in ACCOUNTS if _exists(name)]
    for name in designers:
        run(["scancel", "-u", name], check=False)
    deadline = time.monotonic() + 60
    while designers and time.monotonic() < deadline:
        queued = run(["squeue", "-h", "-u", ",".join(designers), "-o", "%i"], check=False)
        if not queued.stdout.strip():
            break
        time.sleep(1)
    users = run(["sacctmgr", "-n", "-P", "show", "user", "format=user"], check=False).stdout
    ours = [name for name in ACCOUNTS if name in users.split()]
    if ours:
        where = f"name={','.join(ours)}"
        removed = run(["sacctmgr", "-i", "remove", "user", "where", where], check=False)
        if removed.returncode != 0:
            problems.append(f"sacctmgr remove user: {removed.stdout}{removed.stderr}")
    SUDOERS.unlink(missing_ok=True)
    for name in ACCOUNTS:
        if _exists(name):
            gone = run(["userdel", "-r", name], check=False)
            if _exists(name):
                problems.append(f"userdel -r {name}: {gone.stderr}")
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        pass
    else:
        run(["groupdel", GROUP], check=False)
    if base is not None:
        shutil.rmtree(base, ignore_errors=True)
    return problems


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def site(slurm_cluster, example_repo) -> Iterator[Site]:  # noqa: ANN001 - fixtures
    assert os.geteuid() == 0, "this module creates Unix accounts: it must run as root"
    leftovers = _remove_site(None)
    assert not leftovers, leftovers
    base = Path(tempfile.mkdtemp(prefix="olp-run-as-", dir="/tmp"))
    try:
        accounts = run(["sacctmgr", "-n", "-P", "show", "account", "format=account"]).stdout
        assert SLURM_ACCOUNT in accounts.split(), f"no Slurm account {SLURM_ACCOUNT!r}"
        run(["groupadd", GROUP])
        for name in ACCOUNTS:
            run(["useradd", "--create-home", "--shell", "/bin/bash", "-G", GROUP, name])
        run(["sacctmgr", "-i", "add", "user", ",".join(DESIGNERS + (CAROL,)),
             f"account={SLURM_ACCOUNT}"])  # fmt: skip
        _install_sudoers(base)
        uids = {name: pwd.getpwnam(name).pw_uid for name in ACCOUNTS}
        gid = grp.getgrnam(GROUP).gr_gid
        os.chmod(base, 0o755)
        instance = base / "instance"
        instance.mkdir(mode=0o700)
        os.chown(instance, uids[SERVICE], uids[SERVICE])
        run_root = base / "runs"
        run_root.mkdir()
        os.chown(run_root, uids[SERVICE], gid)
        os.chmod(run_root, 0o2770)  # the portal and the designers, nobody else
        site = Site(base, instance, run_root, _service_python(), uids, gid, example_repo)
        site.portal("db", "upgrade")
        site.portal("user", "add", "admin", "--email", "admin@example.org", "--admin")
        for name, unix in (("alice", ALICE), ("bob", BOB), ("carol", CAROL), ("dave", None)):
            extra = ["--unix-user", unix] if unix else []
            site.portal("user", "add", name, "--email", f"{name}@example.org",
                        "--account", SLURM_ACCOUNT, *extra)  # fmt: skip
        yield site
    finally:
        problems = _remove_site(base)
    assert not problems, problems


def sacct(job_id: str, fields: str) -> set[tuple[str, ...]]:
    """The distinct allocation rows of ``job_id``'s tasks (once slurmdbd has the job)."""
    deadline = time.monotonic() + 60
    while True:
        out = run(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", fields]).stdout
        rows = {tuple(line.split("|")) for line in out.splitlines() if line}
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(1)


def write_wrapper(site: Site, name: str, body: str) -> str:
    """A flow wrapper the job users can run (sudo drops the portal's environment, so test
    knobs for the stand-in go into a script)."""
    path = site.base / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    os.chmod(path, 0o755)
    return str(path)


# -------------------------------------------------------------------------------------- tests


def test_sudoers_rule_allows_exactly_sbatch_and_scancel_as_the_designers(site: Site):
    listing = run(["sudo", "-l", "-U", SERVICE]).stdout
    rule = [line.strip() for line in listing.splitlines() if "NOPASSWD" in line]
    sbatch, scancel = shutil.which("sbatch"), shutil.which("scancel")
    assert rule == [f"({ALICE}, {BOB}) NOPASSWD: {sbatch}, {scancel}"]
    for designer in DESIGNERS:
        allowed = as_user(SERVICE, ["sudo", "-n", "-u", designer, "--", "sbatch", "--version"])
        assert allowed.stdout.startswith("slurm")
    for target, argv in [
        (ALICE, ["id", "-un"]),  # not sbatch/scancel
        (ALICE, ["squeue"]),  # queries run as the portal itself
        (BOB, ["/bin/sh", "-c", "id"]),
        ("root", ["sbatch", "--version"]),  # not a designer
        (CAROL, ["sbatch", "--version"]),  # a designer the rule does not name
    ]:
        refused = as_user(SERVICE, ["sudo", "-n", "-u", target, "--", *argv], check=False)
        assert refused.returncode == 1, (target, argv, refused.stdout)
        assert "a password is required" in refused.stderr, refused.stderr
    # The portal's transport, run by olp_portal: sbatch goes through, anything else is a
    # clear refusal (the command never ran).
    probe = (
        "from portal.slurm.transports import LocalTransport, TransportError\n"
        f"print(LocalTransport(run_as={ALICE!r}).run(['sbatch', '--version']).stdout.strip())\n"
        "try:\n"
        f"    LocalTransport(run_as={ALICE!r}, sudo_programs=frozenset({{'id'}})).run(['id'])\n"
        "except TransportError as exc:\n"
        "    print(exc)\n"
    )
    env = ["env", "-i", f"PYTHONPATH={os.pathsep.join(_import_paths())}"]
    out = as_user(SERVICE, [*env, site.python, "-c", probe]).stdout.splitlines()
    assert out[0].startswith("slurm")
    assert out[1].startswith(f"sudo refused to run id as {ALICE}: sudo: a password is required")


def test_sweep_runs_as_the_designer_and_the_portal_reads_the_results(site: Site):
    failing = write_wrapper(
        site, "fail-task-1.sh", f'OLP_TEST_FAIL_TASKS=1 exec "{FAIL_WRAPPER}" "$@"'
    )
    sub = site.submit("alice", "CLOCK_PERIOD=10,20", FLOW_EXECUTABLE_OVERRIDE=failing)
    assert sub["state"] == "QUEUED" and len(sub["job_ids"]) == 1, sub
    job = sub["job_ids"][0]
    assert sacct(job, "User,Account") == {(ALICE, SLURM_ACCOUNT)}  # ONE array, alice's
    run_dir = Path(sub["run_dir"])

    status = site.wait(sub["uuid"])
    assert status["state"] == "PARTIAL", status
    assert [(t["state"], t["exit_code"]) for t in status["tasks"]] == [
        ("COMPLETED", 0),
        ("FAILED", 3),
    ]
    assert status["tasks"][0]["metrics"]["die_area_um2"] > 0  # read by olp_portal

    # What the job wrote belongs to alice, in the shared group; the portal staged the rest.
    alice, portal = site.uids[ALICE], site.uids[SERVICE]
    written = [run_dir / "tasks" / "0" / "started", *(run_dir / "logs").iterdir()]
    written += list((run_dir / "tasks" / "0" / "runs").iterdir())
    assert written and {(p.stat().st_uid, p.stat().st_gid) for p in written} == {(alice, site.gid)}
    staged = [run_dir / "job.sbatch", run_dir / "sweep.tsv", run_dir / "design"]
    assert {(p.stat().st_uid, p.stat().st_gid) for p in staged} == {(portal, site.gid)}
    # alice writes only where her job writes: not the checkout, not the scripts.
    for target in (run_dir / "design" / "x", run_dir / "x"):
        assert as_user(ALICE, ["touch", str(target)], check=False).returncode != 0
        assert not target.exists()
    assert as_user(ALICE, ["touch", str(run_dir / "tasks" / "1" / "x")]).returncode == 0

    # Resubmitting the failed task: the portal re-shares a run dir holding alice's files.
    out = site.portal("resubmit", sub["uuid"], "--failed", "--user", "alice").stdout
    second = out.split()[-1]
    assert "resubmitted tasks 1 as job" in out and second != job
    assert sacct(second, "User") == {(ALICE,)}
    status = site.wait(sub["uuid"])
    assert status["state"] == "COMPLETED", status
    assert all(t["metrics"]["die_area_um2"] > 0 for t in status["tasks"])
    assert (run_dir / "resubmit-1.sbatch").stat().st_gid == site.gid


def test_cancel_runs_scancel_as_the_designer(site: Site):
    slow = write_wrapper(site, "slow.sh", f'OPENLANE_STANDIN_SLEEP=300 exec "{STANDIN}" "$@"')
    sub = site.submit("bob", "FP_CORE_UTIL=30,40", FLOW_EXECUTABLE_OVERRIDE=slow)
    assert sub["state"] == "QUEUED", sub
    job = sub["job_ids"][0]
    site.wait(sub["uuid"], "RUNNING", timeout=120)
    # The service account itself may not cancel bob's job: only sudo as bob can.
    direct = as_user(SERVICE, ["scancel", job], check=False)
    assert "Access/permission denied" in direct.stderr, direct
    assert run(["squeue", "-h", "-j", job, "-o", "%u"]).stdout.split()[0] == BOB

    out = site.portal("cancel", sub["uuid"], "--user", "bob").stdout
    assert f"cancel requested for {sub['uuid']}" in out
    status = site.wait(sub["uuid"], timeout=120)
    assert status["state"] == "CANCELLED", status
    states = {row[0] for row in sacct(job, "State")}
    assert f"CANCELLED by {site.uids[BOB]}" in states, states  # scancel ran as bob


def test_designer_outside_the_sudoers_rule_gets_submit_failed(site: Site):
    sub = site.submit("carol", "CLOCK_PERIOD=10", check=False)
    assert sub["state"] == "SUBMIT_FAILED" and sub["job_ids"] == [], sub
    assert f"sudo refused to run sbatch as {CAROL}" in sub["error"]
    assert "a password is required" in sub["error"]
    queued = run(["squeue", "-h", "-u", CAROL, "-o", "%i"]).stdout
    history = run(["sacct", "-n", "-X", "-u", CAROL, "-S", "now-1hour", "-o", "JobID"]).stdout
    assert queued.strip() == "" and history.strip() == ""


def test_user_without_a_unix_account_is_refused_and_nothing_is_submitted(site: Site, tmp_path):
    runs_before = sorted(p.name for p in site.run_root.iterdir())
    done = site.portal("submit", "--user", "dave", "--repo", site.repo, "--design",
                       "designs/counter", "--json", check=False)  # fmt: skip
    assert done.returncode == 2  # a clear refusal, not a crash
    assert "Traceback" not in done.stderr
    assert "error: " in done.stderr and "portal user 'dave' has no Unix account" in done.stderr
    listing = json.loads(site.portal("status", "--all", "--user", "admin", "--json").stdout)
    assert "dave" not in {row["owner"] for row in listing}
    assert sorted(p.name for p in site.run_root.iterdir()) == runs_before

    # The web and API path (the launcher) says the same and records nothing.
    app = make_app(tmp_path, SLURM_RUN_AS="user", RUN_ROOT=str(tmp_path / "runs"))
    with app.app_context():
        dave = User(username="dave", email="dave@example.org", slurm_account=SLURM_ACCOUNT)
        db.session.add(dave)
        db.session.commit()
        request = svc.SubmissionRequest(repo_url=site.repo, design_path="designs/counter")
        with pytest.raises(svc.SubmissionError, match="'dave' has no Unix account"):
            background.submit_request(app, request, dave)
        assert db.session.scalar(select(func.count(Submission.id))) == 0
        db.session.remove()
    assert not (tmp_path / "runs").exists()


def test_a_relaunch_with_the_service_client_still_runs_as_the_owner(site: Site, tmp_path):
    """The poller relaunches stuck submissions with its own client: the job must still be
    the owner's (here the portal is root, the strongest service account there is)."""
    run_root = site.base / "runs-root-portal"
    run_root.mkdir()
    os.chown(run_root, 0, site.gid)
    os.chmod(run_root, 0o2770)
    app = make_app(tmp_path, SLURM_RUN_AS="user", RUN_ROOT=str(run_root))
    with app.app_context():
        owner = User(username="alice", email="alice@example.org", unix_user=ALICE,
                     slurm_account=SLURM_ACCOUNT)  # fmt: skip
        db.session.add(owner)
        db.session.commit()
        request = svc.SubmissionRequest(
            repo_url=site.repo,
            design_path="designs/counter",
            resources=svc.Resources(time_minutes=10, mem_mb=256, account=SLURM_ACCOUNT),
        )
        service = slurm_client(app.config)  # no user: what the poller holds
        assert service.transport.run_as is None
        plan = svc.plan_submission(request, app.config, service, owner=owner)
        sub = svc.create_submission(plan, owner)
        svc.launch(sub, app.config, service)
        assert sub.state == "QUEUED", sub.error
        assert sacct(sub.job_ids[0], "User") == {(ALICE,)}
        wait_final(app, sub)
        assert sub.state == "COMPLETED" and sub.tasks[0].metrics
        task_dir = Path(sub.run_dir) / "tasks" / "0"
        assert (task_dir / "exit_code").stat().st_uid == site.uids[ALICE]
        db.session.remove()
