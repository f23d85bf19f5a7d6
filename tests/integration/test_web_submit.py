"""The submit form: translation into a request, the live estimate, the sbatch preview, refusals
that write nothing, and one submission from the form that runs on the real cluster.

Web tests use the real Flask test client on real SQLite with CSRF on; partitions come from the
real cluster's sinfo; the preview and the end-to-end test clone the example design from a real
git daemon (the ``example_repo`` fixture) and run the stand-in flow (a test double).
"""

from __future__ import annotations

import html as htmllib
import re
import socket
import time
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import Submission, User
from portal.slurm.client import SlurmClient
from portal.slurm.transports import SSHTransport
from portal.submit.catalog import load_catalog
from portal.web.submit_forms import (
    FormInvalid,
    build_request,
    params_from_fields,
    sweep_from_rows,
)
from tests.fixtures.gitdaemon import closed_port, stalled_server
from tests.integration import engine_helpers
from tests.integration.web_helpers import PASSWORD, add_user, login, post_form, signed_in, slurm_at

cluster = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]
HX = {"HX-Request": "true"}
ESTIMATE_RE = re.compile(r'<div class="estimate" data-points="([^"]*)"\s+data-core-hours="([^"]*)"')
FIELD_ERRORS_RE = re.compile(r'<p data-key="([^"]+)">(.*?)</p>', re.S)


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


def settled(client, data, timeout: float = 60) -> str:
    """The estimate once the repository check is past "still fetching"."""
    deadline = time.monotonic() + timeout
    while True:
        fragment = estimate(client, data)
        if 'data-readiness="fetching"' not in fragment or time.monotonic() > deadline:
            return fragment
        time.sleep(0.2)


def field_errors(fragment: str) -> dict[str, list[str]]:
    """The estimate's problems by field key (the form's script shows each at its field)."""
    box = re.search(r"<div hidden data-field-errors>(.*?)</div>", fragment, re.S)
    errors: dict[str, list[str]] = {}
    for key, text in FIELD_ERRORS_RE.findall(box[1] if box else ""):
        errors.setdefault(key, []).append(htmllib.unescape(text.strip()))
    return errors


def text_of(html: str) -> str:
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def control(page: str, control_id: str) -> str:
    """The opening tag of the input or select with this id."""
    tag = re.search(rf'<(?:input|select)\b[^>]*\bid="{re.escape(control_id)}"[^>]*>', page)
    assert tag, f"no control {control_id}"
    return tag[0]


def error_at(page: str, control_id: str) -> str:
    """The error text a control points at: it must be aria-invalid and describe its error."""
    tag = control(page, control_id)
    assert 'aria-invalid="true"' in tag, tag
    described = re.search(r'aria-describedby="([^"]*)"', tag)
    assert described, tag
    texts = []
    for ref in described[1].split():
        element = re.search(rf'<(\w+)\b[^>]*\bid="{re.escape(ref)}"[^>]*>(.*?)</\1>', page, re.S)
        assert element, f"{control_id} points at {ref}, which is not in the page"
        if ref.endswith("-error"):
            texts.append(text_of(element[2]))
    assert texts and all(texts), f"{control_id} points at no error text"
    return " ".join(texts)


def value_of(page: str, control_id: str) -> str:
    """The value a text input shows."""
    found = re.search(r'value="([^"]*)"', control(page, control_id))
    return htmllib.unescape(found[1]) if found else ""


def selected(page: str, control_id: str) -> str:
    """The selected option of a select."""
    select = re.search(
        rf'<select\b[^>]*\bid="{re.escape(control_id)}"[^>]*>(.*?)</select>', page, re.S
    )
    assert select, control_id
    option = re.search(r'<option\b(?=[^>]*\bselected\b)[^>]*\bvalue="([^"]*)"', select[1])
    return htmllib.unescape(option[1]) if option else ""


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
def test_estimate_counts_grid_and_zip_points_and_cost(web, example_repo):
    _, client = web
    grid = settled(
        client,
        form_data(
            ("CLOCK_PERIOD", "10,20,30"),
            ("FP_CORE_UTIL", ("30", "50", "20")),
            cpus="2",
            time_minutes="30",
            repo_url=example_repo,
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
    assert field_errors(partial) == {
        "repo_url": ["Give the Git repository to clone."],
        "ref": ["Give a branch, tag or commit."],
    }
    assert "Not ready to submit" in partial
    assert '<a href="#repo_url">Repository URL</a>' in partial  # named; its message at it

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
    # The preview says plainly what the script that runs will have otherwise.
    assert "What will differ:" in fragment and "submission id" in fragment
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
        _, client = signed_in(make_app, tmp_path, **slurm_at(port), SLURM_PARTITION="debug")
        page = client.get("/submissions/new").get_data(as_text=True)
        assert 'id="cluster-silent"' in page
        assert f"(cannot connect to 127.0.0.1:{port}" in page
        assert '<option selected value="debug">debug (portal default)</option>' in page
        fragment = estimate(client, form_data(("CLOCK_PERIOD", "10,20,30")))
        assert ESTIMATE_RE.search(fragment).groups() == ("3", "0.50")
        assert "the cluster does not answer right now" in fragment
        assert "Ready to submit." not in fragment  # a submission would be refused


# --------------------------------------------------------------------------- submitting


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_a_submission_over_the_threshold_is_recorded_and_waits(make_app, tmp_path, example_repo):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), APPROVAL_ARRAY_SIZE=1)
    add_user(app, "ada")
    client = app.test_client()
    login(client)
    data = form_data(
        ("CLOCK_PERIOD", "10,20"),
        repo_url=example_repo,  # found (the form checks it), but nothing is staged
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


# --------------------------------------------------------------------------- readiness


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_ready_only_once_the_repository_ref_and_design_folder_are_found(
    make_app, tmp_path, example_repo, git_daemon
):
    app, client = signed_in(
        make_app,
        tmp_path,
        account="openlane",
        SLURM_PARTITION="debug",
        PREVIEW_WAIT_SECONDS=0,
        PREVIEW_CACHE_DIR=str(tmp_path / "previews"),
    )
    good = form_data(("CLOCK_PERIOD", "10,20"), repo_url=example_repo)

    first = estimate(client, good)  # the clone runs off the request: not ready yet
    assert 'data-readiness="fetching"' in first and 'data-ready="no"' in first
    assert "Ready to submit." not in first and "still fetching the repository" in first
    assert 'hx-trigger="load delay:2s"' in first  # the fragment asks again by itself
    ready = settled(client, good)
    assert 'data-ready="yes"' in ready and "Ready to submit." in ready
    assert field_errors(ready) == {}

    missing_repo = f"{git_daemon.url_base}/no-such-design.git"
    no_repo = settled(client, {**good, "repo_url": missing_repo})
    assert 'data-ready="no"' in no_repo and "Ready to submit." not in no_repo
    assert field_errors(no_repo) == {
        "repo_url": [f"repository {missing_repo} not found (or not readable by the portal)"]
    }
    no_ref = settled(client, {**good, "ref": "no-such-branch"})
    assert field_errors(no_ref) == {
        "ref": [f"branch or tag 'no-such-branch' not found in {example_repo}"]
    }
    assert 'data-ready="no"' in no_ref
    no_folder = settled(client, {**good, "design_path": "designs/nope"})
    [message] = field_errors(no_folder)["design_path"]
    assert message.startswith("no folder 'designs/nope' in the repository at main (commit ")
    assert str(tmp_path) not in no_folder  # no server path
    assert 'data-ready="no"' in no_folder and "Ready to submit." not in no_folder


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_submit_is_refused_at_the_field_while_the_repository_or_folder_is_missing(
    make_app, tmp_path, example_repo, git_daemon
):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), SLURM_PARTITION="debug")
    add_user(app, "ada", slurm_account="openlane")
    client = app.test_client()
    login(client)
    no_folder = form_data(repo_url=example_repo, design_path="designs/nope")
    settled(client, no_folder)  # the checkout is fetched (a submit waits only seconds for it)
    response = post_form(client, "/submissions/new", no_folder)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "no folder &#39;designs/nope&#39;" in page
    assert error_at(page, "design_path").startswith("no folder 'designs/nope' in the repository")
    missing = f"{git_daemon.url_base}/no-such-design.git"
    response = post_form(client, "/submissions/new", form_data(repo_url=missing))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert error_at(page, "repo_url") == (
        f"repository {missing} not found (or not readable by the portal)"
    )
    assert submissions_count(app) == 0 and run_dirs(app) == []


def failed_submission(app, repo: str) -> str:
    """A submission whose launch really failed (Slurm unreachable at sbatch): SUBMIT_FAILED."""
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        request = svc.SubmissionRequest(
            repo_url=repo,
            design_path="designs/counter",
            flow="openlane1",
            params={"SYNTH_STRATEGY": "DELAY 2"},
            sweep={
                "kind": "grid",
                "parameters": {
                    "CLOCK_PERIOD": [10, 20.5],
                    "FP_CORE_UTIL": {"start": 30, "stop": 50, "step": 10},
                },
            },
            resources=svc.Resources(
                cpus=2, mem_mb=300, time_minutes=15, partition="debug", throttle=2
            ),
        )
        plan = svc.plan_submission(request, app.config, slurm_client(app.config), owner=owner)
        submission = svc.create_submission(plan, owner)
        with closed_port() as port:
            silent = SSHTransport(host="127.0.0.1", port=port, user="nobody")
            svc.launch(submission, app.config, SlurmClient(silent, timeout=5))
        assert submission.state == "SUBMIT_FAILED", submission.state
        return submission.uuid


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_a_failed_submission_offers_edit_and_resubmit_first_and_prefills_the_form(
    make_app, tmp_path, example_repo
):
    app = make_app(RUN_ROOT=str(tmp_path / "runs"), SLURM_PARTITION="debug", LAUNCH_MAX_ATTEMPTS=1)
    add_user(app, "ada", slurm_account="openlane")
    add_user(app, "bob")
    add_user(app, "grace", role="admin")
    uuid = failed_submission(app, example_repo)
    client = app.test_client()
    login(client)

    show = client.get(f"/submissions/{uuid}").get_data(as_text=True)
    actions = re.search(r'<section class="card detail-actions".*?</section>', show, re.S)[0]
    link = re.search(r'<a\b[^>]*href="([^"]+)"[^>]*>\s*Edit and resubmit\s*</a>', actions)
    assert link and htmllib.unescape(link[1]) == f"/submissions/new?from={uuid}"
    assert "btn-primary" in link[0]
    assert actions.index("Edit and resubmit") < actions.index("Retry")  # offered first

    page = client.get(f"/submissions/new?from={uuid}").get_data(as_text=True)
    assert value_of(page, "repo_url") == example_repo
    assert value_of(page, "ref") == "main"
    assert value_of(page, "design_path") == "designs/counter"
    assert selected(page, "flow") == "openlane1"
    assert selected(page, "param-SYNTH_STRATEGY") == "DELAY 2"
    assert selected(page, "sweep-0-parameter") == "CLOCK_PERIOD"
    assert value_of(page, "sweep-0-values") == "10, 20.5"
    assert selected(page, "sweep-1-parameter") == "FP_CORE_UTIL"
    assert [value_of(page, f"sweep-1-{part}") for part in ("start", "stop", "step")] == [
        "30",
        "50",
        "10",
    ]
    assert 'value="grid" checked' in page or re.search(r'checked[^>]*value="grid"', page)
    assert (value_of(page, "cpus"), value_of(page, "mem_mb")) == ("2", "300")
    assert (value_of(page, "time_minutes"), value_of(page, "throttle")) == ("15", "2")
    assert selected(page, "partition") == "debug"
    assert 'aria-invalid="true"' not in page  # a copy is not an error

    # the copy is estimated like any form: 6 points, and ready (the repository is found)
    copied = form_data(
        ("CLOCK_PERIOD", "10, 20.5"),
        ("FP_CORE_UTIL", ("30", "50", "10")),
        repo_url=example_repo,
        **{"param-SYNTH_STRATEGY": "DELAY 2"},
    )
    assert 'data-points="6"' in settled(client, copied)

    bob = app.test_client()
    login(bob, "bob")
    assert bob.get(f"/submissions/new?from={uuid}").status_code == 404  # not his to see
    assert bob.get("/submissions/new?from=not-a-uuid").status_code == 404
    grace = app.test_client()
    login(grace, "grace")
    assert value_of(grace.get(f"/submissions/new?from={uuid}").get_data(as_text=True), "repo_url")


# --------------------------------------------------------------------------- messages


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_over_the_sweep_limit_the_estimate_says_only_that(web):
    _, client = web
    rows = [(name, ("1", "100", "1")) for name in ("CLOCK_PERIOD", "MAX_FANOUT_CONSTRAINT")]
    fragment = estimate(client, form_data(*rows, ("FP_PDN_VPITCH", ("1", "100", "1"))))
    assert 'data-points="1000000"' in fragment and 'data-needs-approval="no"' in fragment
    shown = text_of(fragment)
    assert "1,000,000 points" in shown and "more than the limit of 10,000" in shown
    assert "approval" not in shown and "core-hours" not in shown
    assert field_errors(fragment)["sweep"] == [
        "the sweep has 1,000,000 points, more than the limit of 10,000; narrow the ranges "
        "or split the sweep"
    ]


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_an_untouched_form_shows_no_error(web):
    _, client = web
    page = client.get("/submissions/new").get_data(as_text=True)
    assert 'aria-invalid="true"' not in page and 'class="field-error"' not in page
    assert "alert-error" not in page and 'id="form-errors"' not in page
    # what the page's first estimate posts: the form as it opens
    untouched = estimate(client, form_data(repo_url="", design_path="", mem_mb="4096"))
    assert "alert-error" not in untouched and 'role="alert"' not in untouched
    assert field_errors(untouched) == {"repo_url": ["Give the Git repository to clone."]}
    assert "repository URL is required" not in untouched  # said once, not twice
    assert 'data-ready="no"' in untouched


@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.cluster
def test_after_a_submit_every_error_is_at_its_field(web):
    app, client = web
    data = form_data(
        ("CLOCK_PERIOD", "10,20"),
        ("FP_CORE_UTIL", "30,300"),
        repo_url="http://localhost/x.git",
        ref="main..evil",
        time_minutes="121",
        **{"param-MAX_FANOUT_CONSTRAINT": "0"},
    )
    response = post_form(client, "/submissions/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert error_at(page, "repo_url").startswith("plain http:// is not accepted, use https://")
    assert error_at(page, "ref").startswith("invalid ref 'main..evil'")
    assert error_at(page, "time_minutes") == (
        "time limit 121 min is above partition debug's maximum of 120 min"
    )
    assert "between 1 and 1000" in error_at(page, "param-MAX_FANOUT_CONSTRAINT")
    assert "got 300" in error_at(page, "sweep-1-values")
    banner = re.search(r'<div[^>]*id="form-errors"[^>]*>(.*?)</div>', page, re.S)[1]
    assert 'href="#repo_url"' in banner and 'href="#time_minutes"' in banner
    assert "plain http://" not in banner  # the message is said at its field only
    assert page.count("plain http:// is not accepted") == 1
    assert submissions_count(app) == 0


# --------------------------------------------------------------------------- a silent cluster


def test_the_form_does_not_wait_for_a_silent_cluster_and_asks_it_once(make_app, tmp_path):
    held: list[socket.socket] = []
    with stalled_server(held) as port:
        _, client = signed_in(make_app, tmp_path, **slurm_at(port), SLURM_PARTITION="debug")
        for _ in range(2):
            page = client.get("/submissions/new").get_data(as_text=True)
            banner = re.search(r'<div[^>]*id="cluster-silent"[^>]*>(.*?)</div>', page, re.S)
            assert banner and "The cluster does not answer right now" in banner[1]
            assert '<option selected value="debug">debug (portal default)</option>' in page
        fragment = estimate(client, form_data(("CLOCK_PERIOD", "10,20,30")))
        assert ESTIMATE_RE.search(fragment).groups() == ("3", "0.50")
        assert "the cluster does not answer right now" in fragment
        assert 'data-ready="no"' in fragment
        # four pages and an estimate, one sinfo (whose one reconnect may fall in the test)
        assert 1 <= len(held) <= 2
