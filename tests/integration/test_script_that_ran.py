"""The script that ran (issue 15, point 8), on the real cluster with the stand-in flow: owners and
admins get the run folder's sbatch file byte for byte (others 404), and the export bundle
carries that same script, so plain ``sbatch`` on it gets the portal's results even where the
exporting process's settings would render a different command (the demo's bundle ran
``apptainer exec ... flow.tcl`` and failed every task with exit 127)."""

from __future__ import annotations

import io
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from flask import Flask
from markupsafe import escape
from sqlalchemy import select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User
from portal.submit.export import ExportError, build_bundle, relocate_script
from portal.track.collect import collect_task_metrics
from tests.integration.engine_helpers import make_app, wait_final
from tests.integration.web_helpers import add_user, csrf, login

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def submit(app: Flask, repo: str, **settings: object) -> Submission:
    """A 2-point sweep of the example by ada, launched with ``settings`` on top of the app's."""
    owner = db.session.scalar(select(User).where(User.username == "ada"))
    request = svc.SubmissionRequest(
        repo_url=repo,
        ref="main",
        design_path="designs/counter",
        cli_sweeps=["FP_CORE_UTIL=30,40"],
        resources=svc.Resources(time_minutes=10, mem_mb=256),
    )
    config = {**app.config, **settings}
    slurm = slurm_client(config)
    plan = svc.plan_submission(request, config, slurm, owner=owner)
    return svc.launch(svc.create_submission(plan, owner), config, slurm)


@pytest.fixture
def site(tmp_path: Path) -> Flask:
    app = make_app(tmp_path, SITE_URL="http://portal.test")
    add_user(app, "ada", slurm_account="openlane")
    add_user(app, "bob")
    add_user(app, "grace", role="admin")
    return app


def signed_in(app: Flask, name: str):  # noqa: ANN201 - a Flask test client
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def test_owner_and_admin_get_the_run_folder_s_script_byte_for_byte(site, example_repo):
    with site.app_context():
        sub = submit(site, example_repo)
        assert sub.state == "QUEUED", sub.error
        uuid, run_dir = sub.uuid, Path(sub.run_dir)
        wait_final(site, sub)
    on_disk = (run_dir / "job.sbatch").read_bytes()
    for name in ("ada", "grace"):
        client = signed_in(site, name)
        page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
        assert f'href="/submissions/{uuid}/script" id="script-link">Script that ran</a>' in page
        view = client.get(f"/submissions/{uuid}/script")
        assert view.status_code == 200
        assert str(escape(on_disk.decode())) in view.get_data(as_text=True)
        download = client.get(f"/submissions/{uuid}/script/job.sbatch")
        assert download.status_code == 200 and download.data == on_disk
        assert "attachment" in download.headers["Content-Disposition"]
        # nothing but the portal's own scripts, by name: no other file of the run folder
        for other in ("submission.json", "../job.sbatch", "job.sbatch.bak"):
            assert client.get(f"/submissions/{uuid}/script/{other}").status_code == 404
    bob = signed_in(site, "bob")
    assert bob.get(f"/submissions/{uuid}/script").status_code == 404
    assert bob.get(f"/submissions/{uuid}/script/job.sbatch").status_code == 404
    anonymous = site.test_client().get(f"/submissions/{uuid}/script/job.sbatch")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.headers["Location"]

    # the web export carries that very file when unpacked where it ran
    client = signed_in(site, "ada")
    page = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    bundle = client.post(f"/submissions/{uuid}/export", data={"csrf_token": csrf(page)})
    assert bundle.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
        assert tar.extractfile(f"{run_dir.name}/job.sbatch").read() == on_disk


def test_before_launch_there_is_no_script_and_admins_get_the_labelled_preview(site):
    with site.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        waiting = Submission(
            owner=owner,
            name="big sweep",
            repo_url="git://127.0.0.1:1/x.git",
            ref="main",
            flow="openlane1",
            state="AWAITING_APPROVAL",
            n_tasks=1,
        )
        db.session.add(waiting)
        db.session.commit()
        uuid = waiting.uuid
    preview_link = f'<a href="/admin/submissions/{uuid}/script">Preview the script approving'
    admin_view = signed_in(site, "grace").get(f"/submissions/{uuid}/script")
    assert admin_view.status_code == 200
    text = admin_view.get_data(as_text=True)
    assert "No script has run" in text and preview_link in text and "a preview, rendered" in text
    owner_view = signed_in(site, "ada").get(f"/submissions/{uuid}/script").get_data(as_text=True)
    assert "No script has run" in owner_view and preview_link not in owner_view
    missing = signed_in(site, "ada").get(f"/submissions/{uuid}/script/job.sbatch")
    assert missing.status_code == 404


def test_exported_bundle_runs_the_command_that_ran_and_gets_the_portal_s_results(
    site, example_repo, tmp_path
):
    with site.app_context():
        sub = submit(site, example_repo)
        assert sub.state == "QUEUED", sub.error
        wait_final(site, sub)
        assert [t.state for t in sub.tasks] == ["COMPLETED", "COMPLETED"]
        portal_results = {t.index: t.metrics for t in sub.tasks}
        assert all(portal_results.values())
        source = Path(sub.run_dir)
        # Exported where the settings no longer name the stand-in (a CLI without the demo's
        # environment): re-rendering would run apptainer's flow.tcl, which this cluster lacks.
        elsewhere = {**site.config, "FLOW_EXECUTABLE_OVERRIDE": None}
        target = tmp_path / "fresh" / "bundle-run"
        bundle = tmp_path / "bundle.tar.gz"
        assert build_bundle(sub, elsewhere, bundle, run_dir=target) == target
        with pytest.raises(ExportError, match="letters, digits"):
            build_bundle(sub, elsewhere, bundle, run_dir=Path("/scratch/my run"))
        flow, uuid = sub.flow, sub.uuid
    ran = (source / "job.sbatch").read_text()
    with tarfile.open(bundle) as tar:
        tar.extractall(target.parent, filter="data")
    script = (target / "job.sbatch").read_text()
    assert script == relocate_script(ran, str(source), str(target)) != ran
    assert str(source) not in script and f"RUN_DIR={target}\n" in script
    assert "apptainer" not in script

    run = subprocess.run(
        ["sbatch", "--parsable", "--wait", "job.sbatch"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    job = run.stdout.strip().split(";")[0]
    wanted = [f"{job}_0|COMPLETED|0:0", f"{job}_1|COMPLETED|0:0"]
    deadline = time.monotonic() + 60
    while True:  # slurmdbd records the tasks' ends a moment after sbatch --wait returns
        states = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job, "-o", "JobID,State,ExitCode"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if sorted(states) == wanted or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert sorted(states) == wanted
    assert f"olp-{uuid}" in (target / "job.sbatch").read_text()
    for index, metrics in portal_results.items():
        assert (target / "tasks" / str(index) / "exit_code").read_text() == "0\n"
        ours = collect_task_metrics(flow, target, index, started=True, failed=False)
        assert ours is not None and ours["die_area_um2"] > 0
        # the same reports, read where each run wrote them
        assert Path(ours.pop("source")).relative_to(target) == Path(
            metrics.pop("source")
        ).relative_to(source)
        assert ours == metrics
