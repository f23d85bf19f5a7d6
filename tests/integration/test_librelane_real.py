"""The REAL LibreLane flow through the portal on the real cluster: lint, Yosys synthesis and
pre-layout timing and power with OpenSTA (``LIBRELANE_STEPS=synthesis``: this machine has no
OpenROAD, so nothing from floorplan on can run). No stand-in anywhere in this module.

Needs ``scripts/install-librelane`` (run by ``scripts/bootstrap``): LibreLane and pyosys in
``.venv-librelane``, the sky130A synthesis subset in ``.pdk``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.flows.librelane import SYNTHESIS_STEPS
from portal.mail.outbox import send_pending
from portal.models import Outbox, Submission, User
from portal.runfolder import RunFolder
from portal.submit.taskconfigs import read_task_config
from tests.fixtures.gitdaemon import make_bare_repo
from tests.fixtures.smtp import smtp_server  # noqa: F401
from tests.integration.engine_helpers import EXAMPLE, make_app, native_librelane, wait_final
from tests.integration.web_helpers import add_user, login

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture
def real_app(tmp_path, smtp_server):  # noqa: F811
    app = make_app(
        tmp_path,
        **native_librelane(),
        MAIL_SERVER=smtp_server.host,
        MAIL_PORT=smtp_server.port,
    )
    with app.app_context():
        db.session.add(User(username="ada", email="ada@example.org", slurm_account="openlane"))
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture(scope="module")
def repos(git_daemon, tmp_path_factory) -> dict[str, str]:  # noqa: ANN001 - fixture
    """git:// URLs: the example counter, one with a Verilog error, one asking for routing."""
    urls = {}
    root = tmp_path_factory.mktemp("real-designs")
    for name in ("counter", "broken", "routed"):
        src = root / name
        shutil.copytree(EXAMPLE, src / "designs" / "counter")
        urls[name] = f"{git_daemon.url_base}/real-{name}.git"
        if name == "broken":
            verilog = src / "designs" / "counter" / "src" / "counter.v"
            verilog.write_text(verilog.read_text().replace("count + 1'b1;", "count + ;"))
        if name == "routed":
            config = src / "designs" / "counter" / "config.json"
            data = json.loads(config.read_text())
            data["meta"] = {"version": 2, "flow": ["Yosys.Synthesis", "OpenROAD.Floorplan"]}
            config.write_text(json.dumps(data))
        make_bare_repo(src, git_daemon.base_path / f"real-{name}.git")
    return urls


def ada() -> User:
    return db.session.scalar(select(User).where(User.username == "ada"))


def plan(app, repo: str, sweeps=()) -> svc.Plan:
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        flow="librelane",
        cli_sweeps=list(sweeps),
        resources=svc.Resources(time_minutes=10, mem_mb=1024),
    )
    return svc.plan_submission(request, app.config, slurm_client(app.config), owner=ada())


def run(app, repo: str, sweeps=()) -> Submission:
    submission = svc.create_submission(plan(app, repo, sweeps), ada())
    return svc.launch(submission, app.config, slurm_client(app.config))


def final_metrics(submission: Submission, index: int) -> dict:
    run = Path(submission.run_dir) / "tasks" / str(index) / "runs" / f"task-{index:04d}"
    return json.loads((run / "final" / "metrics.json").read_text())


def test_real_synthesis_sweep_collects_what_librelane_measured(real_app, repos):
    sub = run(
        real_app,
        repos["counter"],
        ["CLOCK_PERIOD=1,2.5,10", "SYNTH_STRATEGY=AREA 0,DELAY 0"],
    )
    assert sub.state == "QUEUED", sub.error
    assert len(sub.job_ids) == 1  # six points, ONE array
    assert sub.flow_note and "stops after synthesis" in sub.flow_note
    script = (Path(sub.run_dir) / "job.sbatch").read_text()
    assert "apptainer" not in script and "_LLN_OVERRIDE_YOSYS" in script
    assert "# What runs: LibreLane stops after synthesis on this cluster" in script
    config = json.loads(read_task_config(Path(sub.run_dir), 0)[1])
    assert config["meta"]["flow"] == list(SYNTHESIS_STEPS)

    wait_final(real_app, sub, timeout=300)
    assert sub.state == "COMPLETED", [(t.index, t.state, t.metrics) for t in sub.tasks]
    log = (Path(sub.run_dir) / "logs" / f"{sub.job_ids[0]}_0.out").read_text()
    assert "openlane-portal: LibreLane stops after synthesis" in log
    assert "Portal.PrePnRSTA" in log and "Flow complete." in log
    for task in sub.tasks:
        measured = final_metrics(sub, task.index)
        got = task.metrics
        assert got["cell_area_um2"] == measured["design__instance__area"] > 0
        assert got["cell_count_synth"] == measured["design__instance__count"] > 0
        assert got["setup_ws_ns"] == measured["timing__setup__ws"]
        assert got["setup_tns_ns"] == measured["timing__setup__tns"]
        assert got["hold_ws_ns"] == measured["timing__hold__ws"]
        assert got["power_total_w"] == measured["power__total"] > 0
        assert got["clock_period_ns"] == float(task.params["CLOCK_PERIOD"])
        # Nothing from floorplan on ran, so nothing from it was made up.
        assert got["die_area_um2"] is None and got["cell_count_final"] is None
        assert got["wirelength_um"] is None and got["drc_route"] is None

    area = {(t.params["CLOCK_PERIOD"], t.params["SYNTH_STRATEGY"]): t.metrics for t in sub.tasks}
    for period in (1, 2.5, 10):
        assert area[period, "AREA 0"]["cell_area_um2"] != area[period, "DELAY 0"]["cell_area_um2"]
    # A shorter clock leaves less slack: timing really depends on the swept period.
    assert area[1, "AREA 0"]["setup_ws_ns"] < area[10, "AREA 0"]["setup_ws_ns"]

    # The same point run again gives the same numbers.
    again = run(real_app, repos["counter"], ["CLOCK_PERIOD=2.5", "SYNTH_STRATEGY=DELAY 0"])
    wait_final(real_app, again, timeout=120)
    assert again.state == "COMPLETED", again.tasks[0].metrics
    first = area[2.5, "DELAY 0"]
    second = again.tasks[0].metrics
    for name in ("cell_area_um2", "cell_count_synth", "setup_ws_ns", "power_total_w"):
        assert second[name] == first[name], name


def test_verilog_error_fails_with_the_lint_message_in_the_errors_and_the_email(
    real_app,
    repos,
    smtp_server,  # noqa: F811
):
    sub = run(real_app, repos["broken"])
    assert sub.state == "QUEUED", sub.error
    wait_final(real_app, sub, timeout=120)
    assert sub.state == "FAILED"
    [task] = sub.tasks
    assert task.state == "FAILED" and task.exit_code not in (None, 0)
    errors = task.metrics["errors"]
    assert "1 Lint errors found." in errors
    lint = [e for e in errors if e.startswith("%Error:") and "syntax error" in e]
    assert lint, errors
    assert str(real_app.config["RUN_ROOT"]) not in lint[0]  # paths relative to the run folder
    # The submission page says what ran, and the task panel shows the flow's own errors.
    add_user(real_app, "eve", role="admin")
    client = real_app.test_client()
    login(client, "eve")
    page = client.get(f"/submissions/{sub.uuid}?task=0").get_data(as_text=True)
    assert "LibreLane stops after synthesis on this cluster" in page
    assert "The flow reported:" in page and "syntax error" in page
    assert send_pending()["sent"] == 1
    [mail] = smtp_server.received()
    text = mail.message.get_body(("plain",)).get_content()
    assert "FAILED" in mail.message["Subject"]
    assert "The flow reported:" in text and lint[0] in text
    assert "stops after synthesis" in text


def test_a_site_without_pdk_is_refused_and_nothing_is_written(real_app, repos, tmp_path):
    real_app.config["PDK_ROOT"] = str(tmp_path / "no-pdk-here")
    with pytest.raises(svc.SubmissionError, match=r"^this cluster has no sky130A PDK"):
        plan(real_app, repos["counter"])
    assert db.session.scalar(select(func.count(Submission.id))) == 0
    assert db.session.scalar(select(func.count(Outbox.id))) == 0


def test_a_step_the_site_cannot_run_is_refused_before_sbatch(real_app, repos):
    sub = run(real_app, repos["routed"])
    assert sub.state == "SUBMIT_FAILED" and not sub.job_ids
    assert sub.error == (
        "config.json asks for OpenROAD.Floorplan in meta.flow, which this cluster cannot "
        "run: LibreLane stops after synthesis on this cluster, with pre-layout timing and "
        "power from OpenSTA (no floorplan, placement or routing)"
    )
    assert not (RunFolder.of(sub, real_app.config).root / "job.sbatch").exists()
