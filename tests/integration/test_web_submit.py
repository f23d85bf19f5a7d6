"""The submit form: translation into a request, the live estimate, the sbatch preview, refusals
that write nothing, and one submission from the form that runs on the real cluster.

Web tests use the real Flask test client on real SQLite with CSRF on; partitions come from the
real cluster's sinfo; the preview and the end-to-end test clone the example design from a real
git daemon (the ``example_repo`` fixture) and run the stand-in flow (a test double).
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from portal.catalog import load_catalog
from portal.extensions import db
from portal.models import Submission
from portal.web.submit_forms import (
    FormInvalid,
    build_request,
    params_from_fields,
    sweep_from_rows,
)
from tests.fixtures.gitdaemon import closed_port
from tests.integration import engine_helpers
from tests.integration.web_helpers import PASSWORD, add_user, login, post_form

cluster = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]
HX = {"HX-Request": "true"}
ESTIMATE_RE = re.compile(r'<div class="estimate" data-points="([^"]*)"\s+data-core-hours="([^"]*)"')


def form_data(*rows, mode="grid", **fields):
    """The submit form as a browser posts it; ``rows`` are (parameter, values or range)."""
    data = {
        "repo_url": "https://git.example.org/designs/counter.git",
        "ref": "main",
        "design_path": "designs/counter",
        "flow": "openlane1",
        "name": "",
        "notify": "y",
        "cpus": "1",
        "mem_mb": "256",
        "time_minutes": "10",
        "partition": "debug",
        "throttle": "0",
        "sweep_mode": mode,
    }
    for i in range(max(4, len(rows))):
        for part in ("parameter", "values", "start", "stop", "step"):
            data[f"sweep-{i}-{part}"] = ""
    for i, (name, values) in enumerate(rows):
        data[f"sweep-{i}-parameter"] = name
        if isinstance(values, tuple):
            for part, value in zip(("start", "stop", "step"), values, strict=False):
                data[f"sweep-{i}-{part}"] = value
        else:
            data[f"sweep-{i}-values"] = values
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def submissions_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Submission))


def run_dirs(app) -> list[Path]:
    root = Path(app.config["RUN_ROOT"])
    return sorted(root.iterdir()) if root.exists() else []


@pytest.fixture
def web(make_app, tmp_path):
    """An app whose runs go to tmp/runs, the user ada signed in, and her client."""
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), SLURM_PARTITION="debug")
    add_user(app, "ada", slurm_account="openlane")
    client = app.test_client()
    assert login(client).status_code == 302
    return app, client


def estimate(client, data):
    response = post_form(client, "/submissions/new", data, "/submissions/new/estimate", headers=HX)
    assert response.status_code == 200
    return response.get_data(as_text=True)


# --------------------------------------------------------------------------- translation


def test_build_request_translates_editor_and_rows():
    data = {
        **{k: v for k, v in form_data().items() if not k.startswith("sweep-")},
        "cpus": 2,
        "mem_mb": 512,
        "time_minutes": 30,
        "throttle": 3,
        "notify": False,
        "name": "  my   counter ",
        "design_path": "/designs/counter/",
        "sweep": [
            {"parameter": "CLOCK_PERIOD", "values": "10, 20,30"},
            {"parameter": "FP_CORE_UTIL", "start": "30", "stop": "50", "step": "20"},
            {"parameter": "", "values": ""},
        ],
    }
    request = build_request(data, {"SYNTH_STRATEGY": "DELAY 1"}, account="openlane")
    assert request.sweep == {
        "kind": "grid",
        "parameters": {
            "CLOCK_PERIOD": ["10", "20", "30"],
            "FP_CORE_UTIL": {"start": "30", "stop": "50", "step": "20"},
        },
    }
    assert request.params == {"SYNTH_STRATEGY": "DELAY 1"}
    assert request.name == "my counter" and request.design_path == "designs/counter"
    assert request.notify is False
    res = request.resources
    assert (res.cpus, res.mem_mb, res.time_minutes, res.partition, res.account, res.throttle) == (
        2,
        512,
        30,
        "debug",
        "openlane",
        3,
    )
    single = build_request({**data, "sweep": []}, {})
    assert single.sweep is None and single.params == {}


def test_every_row_and_parameter_problem_is_reported_at_once():
    rows = [
        {"parameter": "CLOCK_PERIOD", "values": "10,,20"},
        {"parameter": "", "values": "1,2"},
        {"parameter": "FP_CORE_UTIL", "values": "40", "start": "1", "stop": "2"},
        {"parameter": "FP_CORE_UTIL", "start": "30"},
        {"parameter": "CLOCK_PERIODD", "values": "5"},
        {"parameter": "FP_ASPECT_RATIO", "values": "1, 50"},
        {"parameter": "SYNTH_STRATEGY", "values": "AREA 0"},
    ]
    with pytest.raises(FormInvalid) as caught:
        build_request(
            {"flow": "openlane1", "sweep": rows, "sweep_mode": "grid"},
            {"MAX_FANOUT_CONSTRAINT": "0", "NOT_A_PARAM": "1", "SYNTH_STRATEGY": "AREA 9"},
        )
    errors = caught.value.errors
    assert errors["param-MAX_FANOUT_CONSTRAINT"] == [
        "MAX_FANOUT_CONSTRAINT must be between 1 and 1000 cells, got 0"
    ]
    assert "unknown parameter 'NOT_A_PARAM'" in errors["form"][0]
    assert "SYNTH_STRATEGY must be one of" in errors["param-SYNTH_STRATEGY"][0]
    assert "empty item" in errors["sweep-0"][0]
    assert "choose the parameter" in errors["sweep-1"][0]
    assert "either values or a range" in errors["sweep-2"][0]
    assert "already swept in row 3" in errors["sweep-3"][0]
    assert "did you mean CLOCK_PERIOD" in errors["sweep-4"][0]
    assert "FP_ASPECT_RATIO must be between 0.1 and 10, got 50" in errors["sweep-5"][0]
    assert "also set in the parameter editor" in errors["sweep-6"][0]


def test_zip_rows_need_equal_lengths_and_flow_specific_parameters_are_checked():
    catalog = load_catalog()
    rows = [{"parameter": "CLOCK_PERIOD", "values": "10,20"}, {"parameter": "FP_CORE_UTIL"}]
    rows[1].update(start="30", stop="50", step="10")
    with pytest.raises(FormInvalid) as caught:
        sweep_from_rows(rows, "zip", catalog=catalog)
    assert caught.value.errors == {
        "sweep": [
            "zip needs the same number of values in every row: CLOCK_PERIOD has 2, "
            "FP_CORE_UTIL has 3"
        ]
    }
    rows[1]["stop"] = "40"
    assert sweep_from_rows(rows, "zip", catalog=catalog)["kind"] == "zip"
    with pytest.raises(FormInvalid):
        sweep_from_rows(rows, "cartesian", catalog=catalog)
    values, errors = params_from_fields({"PL_TARGET_DENSITY_PCT": "60"}, flow="openlane1")
    assert errors == {
        "param-PL_TARGET_DENSITY_PCT": [
            "PL_TARGET_DENSITY_PCT is only understood by OpenLane 2, not OpenLane 1"
        ]
    }
    assert params_from_fields({"PL_TARGET_DENSITY_PCT": "60"}, flow="openlane2") == (
        {"PL_TARGET_DENSITY_PCT": 60.0},
        {},
    )


# --------------------------------------------------------------------------- the page


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_form_shows_catalog_help_partitions_and_sweep_rows(web):
    app, client = web
    response = client.get("/submissions/new")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    for param in load_catalog():
        assert f'name="param-{param.name}"' in page
        assert str(escape(param.help)) in page
    assert "The clock period for the design in nanoseconds." in page
    assert 'Allowed: <span class="mono">1..99 %</span>' in page
    # partitions from the real cluster's sinfo, with their limits; the portal default chosen
    assert re.search(r'<option selected value="debug">debug \(default\) · up to 2 h', page)
    assert '<option value="long">long · up to 2 d' in page
    assert '<tr data-partition="long">' in page and "2880 min" in page
    # four sweep rows without JavaScript, more with it
    assert 'name="sweep-3-parameter"' in page and 'name="sweep-4-parameter"' not in page
    assert "data-sweep-add" in page and "js/submit.js" in page
    assert 'id="notify" name="notify" type="checkbox" value="y" checked' in page or re.search(
        r'<input[^>]*checked[^>]*id="notify"', page
    )
    assert "style=" not in page and "onclick" not in page
    assert 'hx-post="/submissions/new/estimate"' in page
    assert "openlane" in page  # the user's Slurm account is shown


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_estimate_counts_grid_and_zip_points_and_cost(web):
    _, client = web
    grid = estimate(
        client,
        form_data(
            ("CLOCK_PERIOD", "10,20,30"),
            ("FP_CORE_UTIL", ("30", "50", "20")),
            cpus="2",
            time_minutes="30",
        ),
    )
    assert ESTIMATE_RE.search(grid).groups() == ("6", "6.00")  # 6 x 2 CPUs x 0.5 h
    assert "(3 × 2)" in grid and "Ready to submit." in grid
    assert 'data-needs-approval="no"' in grid and "approval-notice" not in grid

    zipped = estimate(
        client,
        form_data(("CLOCK_PERIOD", "10,20,30"), ("FP_CORE_UTIL", "30,40,50"), mode="zip"),
    )
    assert ESTIMATE_RE.search(zipped).groups() == ("3", "0.50")
    assert "(zip of 3)" in zipped

    single = estimate(client, form_data(**{"param-CLOCK_PERIOD": "12.5"}))
    assert ESTIMATE_RE.search(single).groups() == ("1", "0.17")

    mismatch = estimate(
        client, form_data(("CLOCK_PERIOD", "10,20"), ("FP_CORE_UTIL", "30,40,50"), mode="zip")
    )
    assert "zip needs the same number of values in every row" in mismatch
    assert 'data-ready="no"' in mismatch


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_estimate_follows_the_sweep_before_the_form_is_complete(web):
    _, client = web
    partial = estimate(client, form_data(("CLOCK_PERIOD", "1:4"), repo_url="", ref=""))
    assert ESTIMATE_RE.search(partial).groups() == ("4", "0.67")
    assert "Repository URL: Give the Git repository to clone." in partial
    assert "Not ready to submit" in partial

    over_limit = estimate(client, form_data(time_minutes="500"))
    assert "above partition debug&#39;s maximum of 120 min" in over_limit


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_approval_notice_over_the_thresholds(make_app, tmp_path):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), APPROVAL_ARRAY_SIZE=4, APPROVAL_CORE_HOURS=2)
    add_user(app, "ada")
    client = app.test_client()
    login(client)
    rows = (("CLOCK_PERIOD", "10,20,30"), ("FP_CORE_UTIL", "30,50"))

    big = estimate(client, form_data(*rows))
    assert 'data-needs-approval="yes"' in big
    assert "This submission will need an admin's approval." in big
    assert "<li>6 tasks is over the 4 task threshold</li>" in big
    assert "core-hour threshold" not in big  # 1 core-hour is under 2

    costly = estimate(client, form_data(("CLOCK_PERIOD", "10,20"), cpus="4", time_minutes="60"))
    assert "<li>8.0 core-hours is over the 2 core-hour threshold</li>" in costly
    assert "task threshold" not in costly

    small = estimate(client, form_data(("CLOCK_PERIOD", "10,20")))
    assert 'data-needs-approval="no"' in small and "approval-notice" not in small


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_without_javascript_the_estimate_comes_back_in_the_whole_page(web):
    _, client = web
    response = post_form(
        client,
        "/submissions/new",
        form_data(("CLOCK_PERIOD", "10,20")),
        "/submissions/new/estimate",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in page
    assert ESTIMATE_RE.search(page).groups() == ("2", "0.33")
    assert 'value="10,20"' in page  # the form keeps what was typed


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_preview_shows_the_exact_array_script_and_keeps_nothing(web, example_repo):
    app, client = web
    data = form_data(
        ("CLOCK_PERIOD", "10,20,30"),
        ("FP_CORE_UTIL", "30,50"),
        repo_url=example_repo,
        name="<b>preview</b>",
    )
    response = post_form(client, "/submissions/new", data, "/submissions/new/preview", headers=HX)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in fragment
    script = htmllib.unescape(
        re.search(r'<pre class="code sbatch-preview">(.*?)</pre>', fragment, re.S)[1]
    )
    assert "#SBATCH --array=0-5" in script
    assert "#SBATCH --partition=debug" in script and "#SBATCH --account=openlane" in script
    assert "#SBATCH --job-name=olp-" in script
    assert submissions_count(app) == 0 and run_dirs(app) == []

    bad = post_form(
        client,
        "/submissions/new",
        {**data, "repo_url": "http://localhost/x.git"},
        "/submissions/new/preview",
        headers=HX,
    ).get_data(as_text=True)
    assert "No preview:" in bad and "plain http:// is not accepted" in bad
    assert "sbatch-preview" not in bad


# --------------------------------------------------------------------------- refusals


BAD_INPUTS = {
    "unknown parameter": (
        {"param-NOT_A_PARAM": "1"},
        (),
        "unknown parameter &#39;NOT_A_PARAM&#39;",
    ),
    "unknown swept parameter": (
        {},
        (("CLOCK_PERIODD", "10,20"),),
        "unknown parameter &#39;CLOCK_PERIODD&#39;; did you mean CLOCK_PERIOD?",
    ),
    "value out of range": (
        {"param-FP_CORE_UTIL": "150"},
        (),
        "FP_CORE_UTIL must be between 1 and 99 %, got 150",
    ),
    "swept value out of range": (
        {},
        (("FP_CORE_UTIL", ("50", "120", "10")),),
        "FP_CORE_UTIL must be between 1 and 99 %, got 120",
    ),
    "shell metacharacters": (
        {"param-RT_MAX_LAYER": "met5; rm -rf ~"},
        (),
        "RT_MAX_LAYER: character &#39;;&#39; is not allowed in values",
    ),
    "file url": (
        {"repo_url": "file:///srv/git/counter.git"},
        (),
        "local repositories (file://) are not allowed on this portal",
    ),
    "http localhost": (
        {"repo_url": "http://localhost/counter.git"},
        (),
        "plain http:// is not accepted, use https://",
    ),
    "credentials in url": (
        {"repo_url": "https://user:secret@git.example.org/x.git"},
        (),
        "credentials in the repository URL are not allowed",
    ),
    "bad ref": ({"ref": "main..evil"}, (), "invalid ref &#39;main..evil&#39;"),
    "option-like ref": ({"ref": "--upload-pack=x"}, (), "ref must not start with &#39;-&#39;"),
    "zero cpus": ({"cpus": "0"}, (), "Number must be between 1 and 1024."),
    "time over the partition limit": (
        {"time_minutes": "121"},
        (),
        "time limit 121 min is above partition debug&#39;s maximum of 120 min",
    ),
    "unknown partition": ({"partition": "gpu"}, (), "Not a valid choice"),
}


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_clear_message_and_writes_nothing(web, case):
    app, client = web
    fields, rows, message = BAD_INPUTS[case]
    response = post_form(client, "/submissions/new", form_data(*rows, **fields))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page
    assert 'id="form-errors"' in page
    assert submissions_count(app) == 0
    assert run_dirs(app) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Submission)) == 0


def test_errors_sit_next_to_their_fields(web):
    _, client = web
    page = post_form(
        client,
        "/submissions/new",
        form_data(("FP_CORE_UTIL", "50,200"), **{"param-CLOCK_PERIOD": "fast"}),
    ).get_data(as_text=True)
    field = re.search(
        r'<div class="field param-field has-error" data-param="CLOCK_PERIOD">(.*?)</div>',
        page,
        re.S,
    )
    assert field and "CLOCK_PERIOD must be a number, got &#39;fast&#39;" in field[1]
    assert 'aria-invalid="true"' in field[1] and 'value="fast"' in field[1]
    row = re.search(
        r'<fieldset class="sweep-row has-error" data-sweep-row>(.*?)</fieldset>', page, re.S
    )
    assert row and "FP_CORE_UTIL must be between 1 and 99 %, got 200" in row[1]
    assert 'value="50,200"' in row[1]


def test_posts_without_csrf_token_are_refused(web):
    app, client = web
    for url in ("/submissions/new", "/submissions/new/estimate", "/submissions/new/preview"):
        response = client.post(url, data=form_data(("CLOCK_PERIOD", "10,20")))
        assert response.status_code == 400, url
        assert "CSRF" in response.get_data(as_text=True)
    assert submissions_count(app) == 0 and run_dirs(app) == []


def test_previews_are_rate_limited_per_user(make_app, tmp_path):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), PREVIEW_RATE_LIMIT="2 per minute")
    add_user(app, "ada")
    add_user(app, "bob")
    ada, bob = app.test_client(), app.test_client()
    login(ada)
    login(bob, "bob")
    data = form_data(repo_url="file:///nope")  # refused before any clone

    def preview(client):
        return post_form(client, "/submissions/new", data, "/submissions/new/preview", headers=HX)

    assert [preview(ada).status_code for _ in range(3)] == [200, 200, 429]
    assert preview(bob).status_code == 200  # another user has a budget of their own


def test_anonymous_users_are_sent_to_sign_in(app):
    response = app.test_client().get("/submissions/new")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_form_works_when_slurm_does_not_answer(make_app, tmp_path):
    with closed_port() as port:
        app = make_app(
            RUN_ROOT=str(tmp_path / "runs"),
            SLURM_TRANSPORT="ssh",
            SLURM_SSH_HOST="127.0.0.1",
            SLURM_SSH_PORT=port,
            SLURM_PARTITION="debug",
        )
        add_user(app, "ada")
        client = app.test_client()
        login(client)
        page = client.get("/submissions/new").get_data(as_text=True)
        assert 'id="partitions-unavailable"' in page
        assert f"Slurm did not answer (cannot connect to 127.0.0.1:{port}" in page
        assert '<option selected value="debug">debug (portal default)</option>' in page
        fragment = estimate(client, form_data(("CLOCK_PERIOD", "10,20,30")))
        assert ESTIMATE_RE.search(fragment).groups() == ("3", "0.50")
        assert "Ready to submit." in fragment


# --------------------------------------------------------------------------- submitting


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_a_submission_over_the_threshold_is_recorded_and_waits(make_app, tmp_path):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), APPROVAL_ARRAY_SIZE=1)
    add_user(app, "ada")
    client = app.test_client()
    login(client)
    data = form_data(
        ("CLOCK_PERIOD", "10,20"),
        repo_url="git://127.0.0.1:1/nowhere.git",  # planning never clones
        name="needs a yes",
        notify=None,
        **{"param-SYNTH_STRATEGY": "DELAY 2"},
    )
    response = post_form(client, "/submissions/new", data)
    assert response.status_code == 302
    with app.app_context():
        sub = db.session.scalar(select(Submission))
        assert response.headers["Location"].endswith(f"/submissions/{sub.uuid}")
        assert sub.state == "AWAITING_APPROVAL" and sub.job_ids == [] and sub.n_tasks == 2
        assert sub.name == "needs a yes" and sub.notify is False
        assert sub.base_params == {"SYNTH_STRATEGY": "DELAY 2"}
        assert sub.sweep_spec["parameters"] == {"CLOCK_PERIOD": [10.0, 20.0]}
        assert sub.resources["partition"] == "debug" and sub.resources["mem_mb"] == 256
        assert "2 tasks is over the 1 task threshold" in sub.decision_reason
    assert run_dirs(app) == []
    follow = client.get("/").get_data(as_text=True)
    assert "waits for an admin&#39;s approval" in follow
    assert "awaiting approval" in follow


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
@pytest.mark.slow
def test_form_submission_runs_on_the_cluster_and_the_dashboard_shows_it(tmp_path, example_repo):
    app = engine_helpers.make_app(tmp_path, LAUNCH_IN_BACKGROUND=False, REGISTRATION="open")
    add_user(app, "ada", password=PASSWORD, slurm_account="openlane")
    client = app.test_client()
    assert login(client).status_code == 302
    data = form_data(("CLOCK_PERIOD", "10,20"), repo_url=example_repo, name="counter from the web")
    response = post_form(client, "/submissions/new", data)
    assert response.status_code == 302, response.get_data(as_text=True)
    uuid = response.headers["Location"].rsplit("/", 1)[-1]
    with app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        assert sub.state == "QUEUED", sub.error
        assert len(sub.job_ids) == 1
        script = (Path(sub.run_dir) / "job.sbatch").read_text()
        assert "#SBATCH --array=0-1" in script and "#SBATCH --partition=debug" in script
        engine_helpers.wait_final(app, sub)
        assert sub.state == "COMPLETED"
        assert [t.params["CLOCK_PERIOD"] for t in sub.tasks] == [10.0, 20.0]
        db.session.remove()

    page = client.get("/").get_data(as_text=True)
    assert "was submitted: 2 task(s)." in page  # the flash after the redirect
    row = re.search(rf'<tr id="submission-{uuid}"(.*?)>', page, re.S)[1]
    assert 'data-state="COMPLETED"' in row and 'data-done="2"' in row and 'data-total="2"' in row
    assert "counter from the web" in page and '<span class="chip chip-completed">' in page
    assert 'data-polling="off"' in page
