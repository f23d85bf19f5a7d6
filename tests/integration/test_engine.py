"""The submission engine end to end on the real cluster: sweeps as ONE job array, the bulk
sacct poller, idempotent submit, cancel, resubmit, export. The flow is the stand-in test double
(tests/standin), which writes real OpenLane report files."""

from __future__ import annotations

import json
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import AuditLog, Submission, User
from portal.submit.export import build_bundle
from portal.submit.taskconfigs import read_task_config
from portal.track.poller import Poller
from tests.integration.engine_helpers import wait_final, wait_state

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def owner() -> User:
    return db.session.scalar(select(User).where(User.username == "ada"))


def submit(app, repo, sweeps=(), sets=None, resources=None, after_sbatch=None) -> Submission:
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        params=sets or {},
        cli_sweeps=list(sweeps),
        resources=resources or svc.Resources(time_minutes=10, mem_mb=256),
    )
    slurm = slurm_client(app.config)
    plan = svc.plan_submission(request, app.config, slurm, owner=owner())
    submission = svc.create_submission(plan, owner())
    if submission.state != "STAGING":
        return submission  # waits for an admin
    return svc.launch(submission, app.config, slurm, after_sbatch=after_sbatch)


def squeue_names() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%j"], capture_output=True, text=True).stdout
    return out.split()


def test_six_point_sweep_is_one_array_and_collects_metrics(engine_app, example_repo):
    sub = submit(engine_app, example_repo, ["CLOCK_PERIOD=10,20,30", "FP_CORE_UTIL=30,50"])
    assert sub.state == "QUEUED", sub.error
    assert len(sub.job_ids) == 1  # ONE array for six points
    script = (Path(sub.run_dir) / "job.sbatch").read_text()
    assert "#SBATCH --array=0-5" in script and f"olp-{sub.uuid}" in script
    wait_final(engine_app, sub)
    assert sub.state == "COMPLETED"
    assert [t.state for t in sub.tasks] == ["COMPLETED"] * 6
    assert all(t.exit_code == 0 and t.node for t in sub.tasks)
    areas = {t.params["CLOCK_PERIOD"]: t.metrics["die_area_um2"] for t in sub.tasks}
    assert all(area and area > 0 for area in areas.values())
    assert sub.commit and len(sub.commit) == 40


def test_crash_between_sbatch_and_commit_is_reconciled_without_duplicate(engine_app, example_repo):
    class Crash(BaseException):
        pass

    def crash(job_id: str) -> None:
        raise Crash(job_id)

    with pytest.raises(Crash) as crashed:
        submit(engine_app, example_repo, ["CLOCK_PERIOD=10,20"], after_sbatch=crash)
    db.session.rollback()
    sub = db.session.scalar(select(Submission).order_by(Submission.id.desc()))
    assert sub.state == "SUBMITTING" and sub.job_ids == []
    svc.reconcile_submitting(engine_app.config, slurm_client(engine_app.config))
    db.session.refresh(sub)
    assert sub.job_ids == [str(crashed.value.args[0])]  # adopted, not resubmitted
    jobs = subprocess.run(
        ["squeue", "-h", "-t", "all", "--name", sub.job_name, "-o", "%F"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert set(jobs) == {sub.job_ids[0]}  # one array job under that name
    wait_final(engine_app, sub)
    assert sub.state == "COMPLETED"


def test_export_bundle_runs_with_plain_sbatch(engine_app, example_repo, tmp_path):
    sub = submit(engine_app, example_repo, ["FP_CORE_UTIL=30,40"])
    wait_final(engine_app, sub)
    target = tmp_path / "unpacked" / "bundle-run"
    bundle = tmp_path / "bundle.tar.gz"
    assert build_bundle(sub, engine_app.config, bundle, run_dir=target) == target
    with tarfile.open(bundle) as tar:
        names = tar.getnames()
        assert not any("/.git" in n for n in names)
        tar.extractall(target.parent, filter="data")
    assert (target / "tasks").is_dir() and (target / "README.txt").is_file()
    assert not list((target / "tasks").iterdir())  # each task copies its config out at run time
    # The README's recipe for reading one task's config before running gives the staged one.
    readme = (target / "README.txt").read_text()
    recipe = [line.strip() for line in readme.splitlines() if "tasks/3" in line]
    recipe = [line.replace("3", "1") for line in recipe]
    shown = subprocess.run(
        ["bash", "-c", " && ".join(recipe) + " && cat tasks/1/config.json"],
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert shown == read_task_config(Path(sub.run_dir), 1).text
    assert json.loads(shown)["FP_CORE_UTIL"] == 40
    run = subprocess.run(
        ["sbatch", "--parsable", "--wait", "job.sbatch"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    for index in (0, 1):
        assert (target / "tasks" / str(index) / "exit_code").read_text().strip() == "0"
        assert list((target / "tasks" / str(index) / "runs").glob("*/reports/metrics.csv"))


def test_two_pollers_only_one_active(engine_app, tmp_path):
    slurm = slurm_client(engine_app.config)
    first = Poller(engine_app, slurm, holder="poller-a")
    second = Poller(engine_app, slurm, holder="poller-b")
    results = {}
    barrier = threading.Barrier(2)

    def run(name: str, poller: Poller) -> None:
        barrier.wait()
        results[name] = poller.run_cycle()

    threads = [threading.Thread(target=run, args=(n, p)) for n, p in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    active = [name for name, stats in results.items() if stats is not None]
    assert len(active) == 1
    assert (first if active == ["a"] else second).run_cycle() is not None  # keeps the lease
    assert (second if active == ["a"] else first).run_cycle() is None


def test_bad_input_writes_and_submits_nothing(engine_app, example_repo, tmp_path):
    before = set(squeue_names())
    hostile = ["CLOCK_PERIOD=$(touch /tmp/olp-pwned)", "FP_CORE_UTIL=150", "NOT_A_PARAM=1"]
    for bad in hostile:
        with pytest.raises(svc.SubmissionError):
            submit(engine_app, example_repo, sets=dict([bad.split("=", 1)]))
    with pytest.raises(svc.SubmissionError, match="points"):
        submit(engine_app, example_repo, ["CLOCK_PERIOD=1:100000:1"])
    with pytest.raises(svc.SubmissionError, match="partition"):
        submit(engine_app, example_repo, resources=svc.Resources(time_minutes=100000))
    assert not Path("/tmp/olp-pwned").exists()
    assert db.session.scalar(select(func.count(Submission.id))) == 0
    assert db.session.scalar(select(func.count(AuditLog.id))) == 0
    assert not Path(engine_app.config["RUN_ROOT"]).exists()
    assert set(squeue_names()) == before


def test_slurmctld_down_gives_submit_failed_then_retry_succeeds(engine_app, example_repo):
    pid = int(Path("/run/slurmctld.pid").read_text())
    subprocess.run(["kill", str(pid)], check=True)
    for _ in range(100):
        if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode:
            break
        time.sleep(0.1)
    try:
        request = svc.SubmissionRequest(
            repo_url=example_repo,
            design_path="designs/counter",
            resources=svc.Resources(time_minutes=10, mem_mb=256),
        )
        slurm = slurm_client(engine_app.config)
        plan = svc.plan_submission(request, engine_app.config, slurm, owner=owner())
        sub = svc.create_submission(plan, owner())
        svc.launch(sub, engine_app.config, slurm)
        assert sub.state == "SUBMIT_FAILED"
        assert "Slurm" in sub.error and sub.job_ids == []
    finally:
        subprocess.run(["/usr/sbin/slurmctld"], check=True)
        for _ in range(100):
            if (
                "is UP"
                in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout
            ):
                break
            time.sleep(0.3)
    svc.launch(sub, engine_app.config, slurm_client(engine_app.config))
    assert sub.state == "QUEUED", sub.error
    wait_final(engine_app, sub)
    assert sub.state == "COMPLETED"


WRAPPER = Path(__file__).resolve().parents[1] / "standin" / "fail_some_tasks.sh"


def test_failed_tasks_then_resubmit_only_those_as_one_array(engine_app, example_repo, monkeypatch):
    engine_app.config["FLOW_EXECUTABLE_OVERRIDE"] = str(WRAPPER)
    monkeypatch.setenv("OLP_TEST_FAIL_TASKS", "1,3")
    sub = submit(engine_app, example_repo, ["CLOCK_PERIOD=10,15,20,25"])
    wait_final(engine_app, sub)
    assert sub.state == "PARTIAL"
    assert [(t.state, t.exit_code) for t in sub.tasks] == [
        ("COMPLETED", 0),
        ("FAILED", 3),
        ("COMPLETED", 0),
        ("FAILED", 3),
    ]
    monkeypatch.delenv("OLP_TEST_FAIL_TASKS")
    first_job = sub.job_ids[0]
    assert svc.resubmit_failed(sub, engine_app.config, slurm_client(engine_app.config)) == [1, 3]
    assert len(sub.job_ids) == 2  # ONE new array
    script = (Path(sub.run_dir) / "resubmit-1.sbatch").read_text()
    assert "#SBATCH --array=1,3\n" in script
    assert [t.array_job_id for t in sub.tasks] == [
        first_job,
        sub.job_ids[1],
        first_job,
        sub.job_ids[1],
    ]
    wait_final(engine_app, sub)
    assert sub.state == "COMPLETED"
    assert all(t.state == "COMPLETED" and t.metrics for t in sub.tasks)


def test_cancel_running_array(engine_app, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "120")
    sub = submit(engine_app, example_repo, ["FP_CORE_UTIL=30,40,50"])
    wait_state(engine_app, sub, {"RUNNING"})
    svc.cancel(sub, slurm_client(engine_app.config))
    wait_final(engine_app, sub, timeout=60)
    assert sub.state == "CANCELLED"
    assert {t.state for t in sub.tasks} == {"CANCELLED"}


def test_too_short_time_limit_times_out(engine_app, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SLEEP", "400")
    sub = submit(engine_app, example_repo, resources=svc.Resources(time_minutes=1, mem_mb=256))
    wait_final(engine_app, sub, timeout=300)
    assert [t.state for t in sub.tasks] == ["TIMEOUT"]
    assert sub.state == "FAILED"


def test_array_end_email_from_a_real_sweep(engine_app, example_repo, monkeypatch, smtp_server):
    engine_app.config.update(MAIL_SERVER=smtp_server.host, MAIL_PORT=smtp_server.port)
    engine_app.extensions["mail"].server = smtp_server.host
    engine_app.extensions["mail"].port = smtp_server.port
    engine_app.config["FLOW_EXECUTABLE_OVERRIDE"] = str(WRAPPER)
    monkeypatch.setenv("OLP_TEST_FAIL_TASKS", "2")
    sub = submit(engine_app, example_repo, ["CLOCK_PERIOD=10,20,30"])
    wait_final(engine_app, sub)
    assert sub.state == "PARTIAL"
    from portal.mail.outbox import send_pending

    assert send_pending()["sent"] == 1
    [received] = smtp_server.received()
    message = received.message
    assert received.rcpt_tos == ("ada@example.org",)
    assert "PARTIAL" in message["Subject"] and "2 of 3" in message["Subject"]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "COMPLETED 2, FAILED 1" in text
    assert "injected failure of task 2" in text  # the failed task's log tail
    assert f"/submissions/{sub.uuid}" in text and f"/submissions/{sub.uuid}" in html
    assert send_pending()["sent"] == 0  # exactly one email


def test_large_submission_waits_for_an_admin(engine_app, example_repo):
    engine_app.config["APPROVAL_ARRAY_SIZE"] = 2
    before = set(squeue_names())
    waiting = submit(engine_app, example_repo, ["CLOCK_PERIOD=10,20,30"])
    assert waiting.state == "AWAITING_APPROVAL" and "3 tasks" in waiting.decision_reason
    assert waiting.job_ids == [] and waiting.run_dir is None
    assert set(squeue_names()) == before  # nothing submitted
    admin = db.session.scalar(select(User).where(User.username == "root"))
    with pytest.raises(svc.SubmissionError, match="reason"):
        svc.reject(waiting, admin, "  ")
    svc.reject(waiting, admin, "use a coarser sweep")
    assert waiting.state == "REJECTED" and waiting.decision_reason == "use a coarser sweep"
    second = submit(engine_app, example_repo, ["CLOCK_PERIOD=10,20,30"])
    svc.approve(second, admin, engine_app.config, slurm_client(engine_app.config))
    assert second.state == "QUEUED" and len(second.job_ids) == 1
    wait_final(engine_app, second)
    assert second.state == "COMPLETED"
    from portal.models import Outbox

    keys = set(db.session.scalars(select(Outbox.dedupe_key)))
    assert {f"decision:{waiting.uuid}:rejected", f"decision:{second.uuid}:approved"} <= keys


def test_slurmdbd_down_keeps_states_then_poller_recovers(engine_app, example_repo):
    sub = submit(engine_app, example_repo, ["FP_CORE_UTIL=30,40"])
    poller = Poller(engine_app, slurm_client(engine_app.config), holder="dbd-test")
    pid = int(Path("/run/slurmdbd.pid").read_text())
    subprocess.run(["kill", str(pid)], check=True)
    try:
        for _ in range(100):
            if subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode:
                break
            time.sleep(0.1)
        states = [t.state for t in sub.tasks]
        assert poller.run_cycle() is None  # the cycle failed: logged, nothing written
        assert poller.errors == 1 and poller.resume_at > time.monotonic()
        db.session.refresh(sub)
        assert [t.state for t in sub.tasks] == states
    finally:
        subprocess.run(["/usr/sbin/slurmdbd"], check=True)
        for _ in range(100):
            ok = subprocess.run(["sacctmgr", "-n", "list", "cluster"], capture_output=True)
            if ok.returncode == 0:
                break
            time.sleep(0.3)
    poller.resume_at = 0.0  # skip the backoff wait in the test
    deadline = time.monotonic() + 120
    while sub.state not in ("COMPLETED", "FAILED") and time.monotonic() < deadline:
        assert poller.run_cycle() is not None
        db.session.expire_all()
        sub = db.session.get(Submission, sub.id)
        time.sleep(1)
    assert poller.errors == 0 and sub.state == "COMPLETED"


def test_poll_memory_skips_unchanged_cycles_and_sees_every_change(engine_app, example_repo):
    """A cycle that sees the same Slurm answer and the same followed tasks reads no task rows
    and writes nothing; a cancel in the portal or a change in Slurm is seen at once."""
    from sqlalchemy import event

    from benchmarks.common import CountingTransport
    from portal.slurm.client import SlurmClient
    from portal.track.poller import PollMemory

    transport = CountingTransport(hold=True)  # the array waits, held, until released below
    slurm = SlurmClient(transport)
    request = svc.SubmissionRequest(
        repo_url=example_repo,
        ref="main",
        design_path="designs/counter",
        cli_sweeps=["FP_CORE_UTIL=30,40,50"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )
    plan = svc.plan_submission(request, engine_app.config, slurm, owner=owner())
    sub = svc.create_submission(plan, owner())
    svc.launch(sub, engine_app.config, slurm)
    (job_id,) = sub.job_ids
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:  # noqa: ANN001 - SQLAlchemy event
        statements.append(statement.lstrip().split(" ", 1)[0].upper() + " " + statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    memory = PollMemory()

    def cycle() -> tuple[bool, int]:
        """(read the task rows?, write statements) of one cycle with the memory."""
        unfinished = sum(t.state not in ("COMPLETED", "CANCELLED") for t in sub.tasks)
        statements.clear()
        transport.reset()
        stats = svc_poll(slurm, memory)
        read_rows = any("tasks.elapsed_seconds" in s for s in statements)
        writes = sum(s.startswith(("UPDATE", "INSERT", "DELETE")) for s in statements)
        assert transport.calls["sacct"] == 1 and stats.tasks_followed == unfinished
        return read_rows, writes

    def settle() -> None:
        """Cycles until three in a row read no rows. slurmdbd records a new or changed job a
        moment (seconds, on a busy machine) after slurmctld, so the answer may change a few
        times first; only a poller that remembers can ever skip at all."""
        skipped = 0
        deadline = time.monotonic() + 90
        while skipped < 3:
            assert time.monotonic() < deadline, "the Slurm answer never settled"
            skipped = skipped + 1 if cycle() == (False, 0) else 0
            time.sleep(0.5)

    try:
        assert cycle()[0]  # nothing remembered yet: every followed row is read
        settle()
        svc.cancel(sub, slurm, indices=[2])  # the portal marks pending task 2 CANCELLED itself
        db.session.commit()
        assert cycle()[0]  # fewer followed tasks: read again, whatever Slurm says
        settle()
        subprocess.run(["scontrol", "release", job_id], check=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and {t.state for t in sub.tasks[:2]} != {"COMPLETED"}:
            cycle()
            db.session.refresh(sub)
            time.sleep(0.5)
        assert [(t.state, t.exit_code) for t in sub.tasks] == [
            ("COMPLETED", 0),
            ("COMPLETED", 0),
            ("CANCELLED", None),
        ]
        assert all(t.metrics for t in sub.tasks[:2])
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
        subprocess.run(["scancel", job_id], check=False)


def svc_poll(slurm, memory):  # noqa: ANN001, ANN201 - test helper
    from portal.track.poller import poll_once

    stats = poll_once(slurm, memory)
    db.session.expire_all()
    return stats
