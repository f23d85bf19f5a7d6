"""The REST API /api/v1: token auth, every endpoint, bad input (nothing written), cross-user
access (404), stable JSON errors, the OpenAPI document checked against the app's rules and the
answers checked against its schemas, and one sweep submitted through the API on the real
cluster, polled to COMPLETED, with its results and export bundle."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy import event, func, select

from portal import accounts
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import AuditLog, Submission, Task, User
from portal.track.poller import poll_once
from portal.web.api_schema import SubmitRequest, openapi_path
from tests.fixtures.gitdaemon import closed_port
from tests.integration import engine_helpers
from tests.integration.web_helpers import PASSWORD, add_user, login, post_form, slurm_at

API = "/api/v1"


# --------------------------------------------------------------------------- helpers


def make_token(app, username: str) -> str:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        plaintext, _ = accounts.create_api_token(user, f"{username}-test")
        return plaintext


@pytest.fixture
def people(app):
    """ada and bob (users) and grace (admin), each with an API token (no passwords: quick)."""
    add_user(app, "ada", password=None, slurm_account="openlane")
    add_user(app, "bob", password=None)
    add_user(app, "grace", password=None, role="admin")
    return {name: make_token(app, name) for name in ("ada", "bob", "grace")}


def call(client, method, path, token=None, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.open(API + path, method=method, headers=headers, **kwargs)


def error_of(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def add_submission(app, owner, *, state="QUEUED", name="counter", tasks=("PENDING",), job="999"):
    """A submission row with tasks (test data for the endpoints that only read the database)."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == owner))
        sub = Submission(
            owner=user,
            name=name,
            repo_url="https://example.org/chip.git",
            ref="main",
            design_path="designs/counter",
            flow="openlane1",
            state=state,
            n_tasks=len(tasks),
            resources={"cpus": 1, "mem_mb": 256, "time_minutes": 10},
            job_ids=[job] if job else [],
            cost_core_hours=0.5,
        )
        sub.tasks = [
            Task(
                index=i,
                state=s,
                params={"CLOCK_PERIOD": 10 + i},
                array_job_id=job,
                array_index=i,
                exit_code=0 if s == "COMPLETED" else (3 if s == "FAILED" else None),
                metrics={"die_area_um2": 100.0 + i} if s == "COMPLETED" else None,
            )
            for i, s in enumerate(tasks)
        ]
        db.session.add(sub)
        db.session.commit()
        return sub.uuid


def counts(app):
    with app.app_context():
        return (
            db.session.scalar(select(func.count(Submission.id))),
            db.session.scalar(select(func.count(AuditLog.id))),
        )


def state_of(app, uuid):
    with app.app_context():
        return db.session.scalar(select(Submission.state).where(Submission.uuid == uuid))


def openapi(client):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def check_schema(doc, name, instance):
    """``instance`` is valid against the document's component schema ``name``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


VALID = {
    "repo_url": "https://example.org/chip.git",
    "design_path": "designs/counter",
    "resources": {"time_minutes": 10, "mem_mb": 256},
}


# --------------------------------------------------------------------------- authentication


def test_every_endpoint_needs_a_live_token(app, people):
    client = app.test_client()
    uuid = add_submission(app, "ada")
    endpoints = [
        ("GET", "/me"),
        ("GET", "/submissions"),
        ("POST", "/submissions"),
        ("GET", f"/submissions/{uuid}"),
        ("GET", f"/submissions/{uuid}/tasks"),
        ("GET", f"/submissions/{uuid}/results"),
        ("POST", f"/submissions/{uuid}/cancel"),
        ("POST", f"/submissions/{uuid}/resubmit"),
        ("GET", f"/submissions/{uuid}/export"),
    ]
    with app.app_context():
        revoked_plain, revoked = accounts.create_api_token(
            db.session.scalar(select(User).where(User.username == "ada")), "old"
        )
        accounts.revoke_api_token(revoked)
    for method, path in endpoints:
        for token in (None, "olp_not-a-real-token", revoked_plain, "not-even-prefixed"):
            response = call(client, method, path, token, json={})
            error = error_of(response, 401, "unauthorized")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "token" in error["message"].lower()
    assert state_of(app, uuid) == "QUEUED"


def test_disabled_account_token_is_refused(app, people):
    with app.app_context():
        db.session.scalar(select(User).where(User.username == "bob")).active = False
        db.session.commit()
    error_of(call(app.test_client(), "GET", "/me", people["bob"]), 401, "unauthorized")


def set_password(app, username):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        accounts.set_password(user, PASSWORD)
        db.session.commit()


def test_session_cookie_is_not_enough_and_bearer_wins(app, people):
    client = app.test_client()
    set_password(app, "ada")
    assert login(client, "ada").status_code == 302  # a browser session for ada
    error_of(call(client, "GET", "/me"), 401, "unauthorized")
    before = counts(app)
    error_of(call(client, "POST", "/submissions", json=VALID), 401, "unauthorized")
    assert counts(app) == before
    me = call(client, "GET", "/me", people["bob"])  # bob's token beats ada's cookie
    assert me.status_code == 200 and me.get_json()["user"]["username"] == "bob"


def test_bearer_answers_never_set_a_cookie(app, people):
    client = app.test_client()
    uuid = add_submission(app, "ada")
    for method, path, body in [
        ("GET", "/me", None),
        ("GET", "/submissions", None),
        ("GET", f"/submissions/{uuid}", None),
        ("GET", f"/submissions/{uuid}/tasks", None),
        ("GET", "/submissions?page=0", None),
        ("POST", "/submissions", {"bogus": 1}),
        ("GET", "/nowhere", None),
    ]:
        response = call(client, method, path, people["ada"], json=body)
        assert "Set-Cookie" not in response.headers, (path, response.headers)
    set_password(app, "ada")
    assert login(client, "ada").headers.get("Set-Cookie")  # the browser path does set one
    response = call(client, "GET", "/me", people["ada"])
    assert "Set-Cookie" not in response.headers


def test_me(app, people):
    client = app.test_client()
    body = call(client, "GET", "/me", people["ada"]).get_json()
    assert body["user"]["username"] == "ada" and body["user"]["role"] == "user"
    assert body["user"]["slurm_account"] == "openlane"
    assert body["token"]["name"] == "ada-test" and body["token"]["prefix"].startswith("olp_")
    assert body["token"]["last_used_at"] is not None
    assert "token_hash" not in json.dumps(body)
    check_schema(openapi(client), "Me", body)
    root = call(client, "GET", "/me", people["grace"]).get_json()
    assert root["user"]["role"] == "admin"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "fragment", "field"),
    [
        ("{not json", "not valid JSON", None),
        ("", "must be a JSON object", None),
        ("[1, 2]", "body must be a JSON object", "body"),
        ('"https://example.org/chip.git"', "body must be a JSON object", "body"),
        (json.dumps({**VALID, "colour": "red"}), "unknown field in body: colour", "body"),
        (json.dumps({"design_path": "x"}), "repo_url is required", "repo_url"),
        (json.dumps({**VALID, "repo_url": 42}), "repo_url must be a string", "repo_url"),
        (json.dumps({**VALID, "notify": "yes"}), "notify must be true or false", "notify"),
        (json.dumps({**VALID, "sweeps": "CLOCK_PERIOD=1,2"}), "list of strings", "sweeps"),
        (json.dumps({**VALID, "params": ["CLOCK_PERIOD"]}), "params must be", "params"),
        (json.dumps({**VALID, "params": {"CLOCK_PERIOD": [1]}}), "params must be", "params"),
        (json.dumps({**VALID, "sweep": "grid"}), "sweep must be an object", "sweep"),
        (json.dumps({**VALID, "resources": {"cpus": "2"}}), "cpus must be an integer", None),
        (json.dumps({**VALID, "resources": {"cpus": 2.5}}), "cpus must be an integer", None),
        (json.dumps({**VALID, "resources": {"cpus": True}}), "cpus must be an integer", None),
        (json.dumps({**VALID, "resources": {"gpus": 1}}), "unknown field in resources", None),
        (json.dumps({**VALID, "resources": 4}), "resources must be a JSON object", None),
    ],
)
def test_unreadable_submissions_are_400_and_write_nothing(app, people, body, fragment, field):
    client = app.test_client()
    before = counts(app)
    response = call(
        client,
        "POST",
        "/submissions",
        people["ada"],
        data=body,
        headers={"Content-Type": "application/json"},
    )
    error = error_of(response, 400, "invalid_request")
    assert fragment in error["message"]
    if field:
        assert error["details"]["field"] == field
    assert counts(app) == before
    check_schema(openapi(client), "Error", response.get_json())


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"repo_url": "file:///etc/passwd"}, "not allowed"),
        ({"repo_url": "ext::sh -c touch% /tmp/pwned"}, "remote-helper"),
        ({"repo_url": "https://user:s3cret@example.org/chip.git"}, "credentials"),
        ({"repo_url": "http://example.org/chip.git"}, "use https"),
        ({"ref": "main..evil"}, "ref"),
        ({"design_path": "../../etc"}, ".."),
        ({"flow": "openlane9"}, "unknown flow"),
        ({"params": {"NOT_A_PARAMETER": 1}}, "NOT_A_PARAMETER"),
        ({"params": {"CLOCK_PERIOD": -5}}, "CLOCK_PERIOD"),
        ({"params": {"CLOCK_PERIOD": True}}, "CLOCK_PERIOD"),
        ({"resources": {"cpus": 0}}, "cpus must be a positive"),
        ({"resources": {"mem_mb": -1}}, "mem_mb must be a positive"),
        ({"resources": {"time_minutes": 0}}, "time_minutes must be a positive"),
        ({"resources": {"throttle": -1}}, "throttle"),
        # A designer charges only what is theirs (ada: openlane), and names reach no script.
        (
            {"resources": {"account": "root"}},
            "may not charge Slurm account 'root' (yours: openlane)",
        ),
        ({"resources": {"qos": "high"}}, "may not use Slurm QOS 'high'"),
        ({"resources": {"qos": "$(id)"}}, "qos must be a Slurm name"),
        ({"resources": {"account": "openlane\n#SBATCH --x"}}, "account must be a Slurm name"),
        ({"resources": {"partition": "debug;id"}}, "partition must be a Slurm name"),
        ({"sweeps": ["CLOCK_PERIOD=1:1e300:1e-300"]}, "CLOCK_PERIOD must be between"),
        ({"sweeps": ["CLOCK_PERIOD=1:100:1e-300"]}, "about 9.90e+301 points"),
        ({"sweeps": ["CLOCK_PERIOD=1:100000:1"]}, "more than the limit of 10,000"),
        (
            {
                "sweep": {
                    "kind": "grid",
                    "parameters": {"CLOCK_PERIOD": "1:2000", "FP_CORE_UTIL": "1:90"},
                }
            },
            "180,000 points",
        ),
        ({"sweep": {"kind": "warp"}}, "kind"),
        ({"sweeps": ["CLOCK_PERIOD=10,20"], "sweep": {"kind": "single"}}, "not both"),
    ],
)
def test_refused_submissions_are_422_and_write_nothing(app, people, change, fragment):
    before = counts(app)
    response = call(
        app.test_client(), "POST", "/submissions", people["ada"], json={**VALID, **change}
    )
    error = error_of(response, 422, "validation_failed")
    assert fragment.lower() in error["message"].lower(), error
    assert counts(app) == before
    assert not (Path(app.config["RUN_ROOT"]) / "runs").exists()


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [({"account": "root"}, "may not charge"), ({"qos": "$(id)"}, "qos must be a Slurm name")],
)
def test_dry_runs_refuse_what_submissions_refuse(app, people, resources, fragment):
    body = {**VALID, "resources": {**VALID["resources"], **resources}, "dry_run": True}
    response = call(app.test_client(), "POST", "/submissions", people["ada"], json=body)
    assert fragment in error_of(response, 422, "validation_failed")["message"]


def test_deeply_nested_json_is_a_400_not_a_crash(app, people):
    body = "[" * 100_000 + "]" * 100_000
    response = call(
        app.test_client(),
        "POST",
        "/submissions",
        people["ada"],
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.get_json()["error"]["message"]


def test_huge_sweep_is_refused_before_expanding(app, people):
    app.config["MAX_SWEEP_POINTS"] = 50
    sweep = {"kind": "grid", "parameters": {"CLOCK_PERIOD": "1:100000", "FP_CORE_UTIL": "1:99"}}
    started = time.monotonic()
    response = call(
        app.test_client(), "POST", "/submissions", people["ada"], json={**VALID, "sweep": sweep}
    )
    error = error_of(response, 422, "validation_failed")
    assert "50" in error["message"] and time.monotonic() - started < 5
    assert counts(app) == (0, 0)


def test_oversized_body_is_413(app, people):
    body = json.dumps({**VALID, "name": "x" * (6 * 1024 * 1024)})
    response = call(
        app.test_client(),
        "POST",
        "/submissions",
        people["ada"],
        data=body,
        headers={"Content-Type": "application/json"},
    )
    error_of(response, 413, "payload_too_large")
    assert counts(app) == (0, 0)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("page=0", "page must be between 1"),
        ("page=-1", "page must be a whole number"),
        ("page=abc", "page must be a whole number"),
        ("per_page=101", "per_page must be between 1 and 100"),
        ("per_page=1&per_page=2", "given 2 times"),
        ("state=DONE", "unknown state 'DONE'"),
        ("flow=openlane9", "unknown flow"),
        ("mine=maybe", "mine must be true or false"),
        ("uuid=ab", "prefix of at least 4"),
        ("sort=name", "unknown query parameter: sort"),
    ],
)
def test_bad_list_queries_are_400(app, people, query, fragment):
    response = call(app.test_client(), "GET", f"/submissions?{query}", people["ada"])
    assert fragment in error_of(response, 400, "invalid_request")["message"]


def test_unknown_urls_and_methods_answer_in_the_api_shape(app, people):
    client = app.test_client()
    error_of(call(client, "GET", "/nowhere", people["ada"]), 404, "not_found")
    error_of(call(client, "DELETE", "/submissions", people["ada"]), 405, "method_not_allowed")
    error_of(call(client, "GET", "/submissions/x/cancel", people["ada"]), 405, "method_not_allowed")
    page = client.get("/no-such-page", headers={"Accept": "text/html"})  # the rest is unchanged
    assert page.status_code == 404 and page.content_type.startswith("text/html")


def test_rate_limit_is_429_with_retry_after(make_app):
    app = make_app(API_RATE_LIMIT="3 per minute")
    add_user(app, "ada", password=None)
    token = make_token(app, "ada")
    client = app.test_client()
    for _ in range(3):
        assert call(client, "GET", "/me", token).status_code == 200
    response = call(client, "GET", "/me", token)
    error_of(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) > 0
    assert client.get(f"{API}/openapi.json").status_code == 200  # the document is exempt


def test_submit_and_dry_run_share_the_web_forms_per_user_limits(make_app):
    app = make_app(SUBMIT_RATE_LIMIT="2 per minute", PREVIEW_RATE_LIMIT="1 per minute")
    add_user(app, "ada")
    add_user(app, "bob", password=None)
    ada, bob = make_token(app, "ada"), make_token(app, "bob")
    client = app.test_client()
    refused = {**VALID, "repo_url": "file:///nope"}
    error_of(call(client, "POST", "/submissions", ada, json=refused), 422, "validation_failed")
    login(client, "ada")
    form = post_form(client, "/submissions/new", {"repo_url": "file:///nope"})
    assert form.status_code == 400  # a refused form post, counted like the API's
    limited = call(client, "POST", "/submissions", ada, json=refused)
    assert "Too many submissions" in error_of(limited, 429, "rate_limited")["message"]
    assert int(limited.headers["Retry-After"]) > 0
    error_of(call(client, "POST", "/submissions", bob, json=refused), 422, "validation_failed")
    dry = {**refused, "dry_run": True}  # previews have their own, smaller budget
    error_of(call(client, "POST", "/submissions", ada, json=dry), 422, "validation_failed")
    again = call(client, "POST", "/submissions", ada, json=dry)
    assert "previews" in error_of(again, 429, "rate_limited")["message"]
    malformed = call(client, "POST", "/submissions", ada, json={"colour": 1})
    error_of(malformed, 400, "invalid_request")  # unreadable requests are refused first
    assert counts(app) == (0, 0)


# --------------------------------------------------------------------------- reading


def test_list_filters_and_paginates_in_sql(app, people):
    for i in range(7):
        add_submission(app, "ada", name=f"ada {i}", tasks=("COMPLETED", "FAILED", "PENDING"))
    add_submission(app, "ada", name="100% util", state="COMPLETED", tasks=("COMPLETED",))
    add_submission(app, "ada", name="100 util", state="COMPLETED", tasks=("COMPLETED",))
    bobs = add_submission(app, "bob", name="bob's", state="FAILED", tasks=("FAILED",))
    client = app.test_client()
    doc = openapi(client)

    def statements(query):
        seen = []

        def count(_conn, _cursor, statement, *_args):
            seen.append(statement)

        with app.app_context():
            event.listen(db.engine, "before_cursor_execute", count)
            try:
                answer = call(client, "GET", f"/submissions?{query}", people["ada"]).get_json()
            finally:
                event.remove(db.engine, "before_cursor_execute", count)
        return answer, seen

    statements("per_page=1")  # the token's last use is written once a minute: not measured
    _, few = statements("per_page=1")
    first, many = statements("per_page=4")
    assert len(many) == len(few) <= 6, many  # no statement per submission (no N+1)
    check_schema(doc, "SubmissionPage", first)
    assert first["total"] == 9 and first["page"] == 1 and first["per_page"] == 4
    assert [s["name"] for s in first["items"]] == ["100 util", "100% util", "ada 6", "ada 5"]
    assert first["items"][2]["tasks_by_state"] == {"COMPLETED": 1, "FAILED": 1, "PENDING": 1}
    assert first["items"][2]["url"] == f"http://localhost/submissions/{first['items'][2]['uuid']}"
    third = call(client, "GET", "/submissions?per_page=4&page=3", people["ada"]).get_json()
    assert [s["name"] for s in third["items"]] == ["ada 0"]
    beyond = call(client, "GET", "/submissions?per_page=4&page=9", people["ada"]).get_json()
    assert beyond["items"] == [] and beyond["total"] == 9

    def names(token, query):
        data = call(client, "GET", f"/submissions?{query}", token).get_json()
        return sorted(s["name"] for s in data["items"])

    assert names(people["ada"], "state=COMPLETED") == ["100 util", "100% util"]
    assert names(people["ada"], "state=completed,failed") == ["100 util", "100% util"]
    assert names(people["ada"], "q=%25") == ["100% util"]  # a literal %, not a wildcard
    assert names(people["ada"], "q=0%25+u") == ["100% util"]
    assert names(people["ada"], "q=UTIL") == ["100 util", "100% util"]  # any case
    assert len(names(people["ada"], "q=CHIP.GIT")) == 9  # the repository URL counts too
    assert names(people["bob"], "") == ["bob's"]
    assert names(people["bob"], f"uuid={bobs[:8]}") == ["bob's"]
    assert names(people["ada"], f"uuid={bobs[:8]}") == []  # not visible to ada
    assert len(names(people["grace"], "per_page=100")) == 10  # admins see everybody's
    assert names(people["grace"], "mine=true") == []
    assert names(people["grace"], "state=FAILED&flow=openlane1") == ["bob's"]


def test_get_and_tasks(app, people):
    uuid = add_submission(app, "ada", tasks=("COMPLETED", "FAILED", "RUNNING"))
    client = app.test_client()
    doc = openapi(client)
    body = call(client, "GET", f"/submissions/{uuid}", people["ada"]).get_json()
    check_schema(doc, "SubmissionEnvelope", body)
    sub = body["submission"]
    assert sub["uuid"] == uuid and sub["owner"] == "ada" and sub["state"] == "QUEUED"
    assert sub["n_tasks"] == 3 and sub["job_ids"] == ["999"]
    assert sub["tasks_by_state"] == {"COMPLETED": 1, "FAILED": 1, "RUNNING": 1}
    assert "run_dir" not in sub  # server paths stay on the server
    tasks = call(client, "GET", f"/submissions/{uuid}/tasks", people["ada"]).get_json()
    check_schema(doc, "TaskPage", tasks)
    assert tasks["total"] == 3
    assert [(t["index"], t["state"], t["job"]) for t in tasks["items"]] == [
        (0, "COMPLETED", "999_0"),
        (1, "FAILED", "999_1"),
        (2, "RUNNING", "999_2"),
    ]
    assert tasks["items"][0]["metrics"] == {"die_area_um2": 100.0}
    page = call(client, "GET", f"/submissions/{uuid}/tasks?per_page=2&page=2", people["ada"])
    assert [t["index"] for t in page.get_json()["items"]] == [2]
    error_of(
        call(client, "GET", f"/submissions/{uuid}/tasks?per_page=0", people["ada"]),
        400,
        "invalid_request",
    )


def test_results_and_bad_objectives(app, people):
    uuid = add_submission(app, "ada", tasks=("COMPLETED", "COMPLETED", "FAILED"))
    client = app.test_client()
    body = call(client, "GET", f"/submissions/{uuid}/results", people["ada"]).get_json()
    check_schema(openapi(client), "Results", body)
    assert body["objectives"] == {"die_area_um2": "min"}
    assert body["pareto"] == [0] and body["best"] == {"die_area_um2": 0}
    assert [r["params"] for r in body["rows"]] == [{"CLOCK_PERIOD": 10 + i} for i in range(3)]
    chosen = call(
        client, "GET", f"/submissions/{uuid}/results?objectives=area:max", people["ada"]
    ).get_json()
    assert chosen["best"] == {"die_area_um2": 1}
    bad = call(client, "GET", f"/submissions/{uuid}/results?objectives=charm:max", people["ada"])
    assert "charm" in error_of(bad, 422, "validation_failed")["message"]


def test_other_users_submissions_are_404_like_missing_ones(app, people):
    client = app.test_client()
    uuid = add_submission(app, "ada", state="FAILED", tasks=("FAILED",))
    missing = "00000000-0000-4000-8000-000000000000"
    before = counts(app)
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/tasks", None),
        ("GET", "/results", None),
        ("GET", "/export", None),
        ("POST", "/cancel", {}),
        ("POST", "/resubmit", {}),
    ]:
        theirs = call(client, method, f"/submissions/{uuid}{suffix}", people["bob"], json=body)
        nothing = call(client, method, f"/submissions/{missing}{suffix}", people["bob"], json=body)
        assert (
            error_of(theirs, 404, "not_found")["message"].replace(uuid, missing)
            == error_of(nothing, 404, "not_found")["message"]
        )
    assert counts(app) == before and state_of(app, uuid) == "FAILED"
    admin = call(client, "GET", f"/submissions/{uuid}", people["grace"])
    assert admin.status_code == 200 and admin.get_json()["submission"]["owner"] == "ada"


# --------------------------------------------------------------------------- actions


def test_cancel_and_resubmit_refusals(app, people):
    client = app.test_client()
    done = add_submission(app, "ada", state="COMPLETED", tasks=("COMPLETED",))
    running = add_submission(app, "ada", state="QUEUED", tasks=("FAILED", "PENDING"))
    token = people["ada"]
    assert (
        "COMPLETED"
        in error_of(call(client, "POST", f"/submissions/{done}/cancel", token), 409, "conflict")[
            "message"
        ]
    )
    assert (
        "no failed tasks"
        in error_of(call(client, "POST", f"/submissions/{done}/resubmit", token), 409, "conflict")[
            "message"
        ]
    )
    assert (
        "wait until it has finished"
        in error_of(
            call(client, "POST", f"/submissions/{running}/resubmit", json={}, token=token),
            409,
            "conflict",
        )["message"]
    )
    unknown = call(client, "POST", f"/submissions/{running}/cancel", token, json={"tasks": [7]})
    assert "no such task index: 7" in error_of(unknown, 422, "validation_failed")["message"]
    error_of(
        call(client, "POST", f"/submissions/{running}/cancel", token, json={"tasks": []}),
        422,
        "validation_failed",
    )
    wrong = call(client, "POST", f"/submissions/{running}/cancel", token, json={"tasks": ["1"]})
    assert error_of(wrong, 400, "invalid_request")["details"]["field"] == "tasks"
    extra = call(client, "POST", f"/submissions/{running}/cancel", token, json={"all": True})
    error_of(extra, 400, "invalid_request")
    body = call(client, "POST", f"/submissions/{running}/resubmit", token, json={"tasks": [1]})
    error_of(body, 400, "invalid_request")
    unstaged = call(client, "GET", f"/submissions/{running}/export", token)
    assert "not been staged" in error_of(unstaged, 409, "conflict")["message"]
    assert state_of(app, done) == "COMPLETED" and state_of(app, running) == "QUEUED"
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditLog.id))) == 0


def test_cancel_waiting_submission_without_slurm(app, people):
    uuid = add_submission(app, "ada", state="AWAITING_APPROVAL", tasks=("PENDING",), job=None)
    response = call(app.test_client(), "POST", f"/submissions/{uuid}/cancel", people["ada"])
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["submission"]["state"] == "CANCELLED"
    assert state_of(app, uuid) == "CANCELLED"


def test_slurm_down_is_503_and_changes_nothing(app, people):
    uuid = add_submission(app, "ada", state="QUEUED", tasks=("PENDING", "RUNNING"))
    with closed_port() as port:
        app.config.update(slurm_at(port))
        response = call(app.test_client(), "POST", f"/submissions/{uuid}/cancel", people["ada"])
    assert "Slurm did not answer" in error_of(response, 503, "slurm_unavailable")["message"]
    assert state_of(app, uuid) == "QUEUED"
    with app.app_context():
        tasks = db.session.scalars(select(Task.state).order_by(Task.index)).all()
        assert tasks == ["PENDING", "RUNNING"]  # not marked cancelled
        assert db.session.scalar(select(func.count(AuditLog.id))) == 0


# --------------------------------------------------------------------------- OpenAPI


def test_openapi_describes_every_rule_and_is_public(app):
    client = app.test_client()
    doc = openapi(client)
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"]
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith(API)]
    assert len(rules) >= 9
    for rule in rules:
        path = openapi_path(rule)
        assert path in doc["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            operation = doc["paths"][path][method.lower()]
            assert operation["summary"] and operation["responses"], (path, method)
            if "{uuid}" in path:
                assert {"name": "uuid", "in": "path"}.items() <= operation["parameters"][0].items()
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    documented = {(p, m) for p, item in doc["paths"].items() for m in item}
    registered = {
        (openapi_path(r), m.lower()) for r in rules for m in r.methods - {"HEAD", "OPTIONS"}
    }
    assert documented == registered
    submit = doc["paths"][f"{API}/submissions"]["post"]
    assert submit["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SubmitRequest"
    }
    request_schema = doc["components"]["schemas"]["SubmitRequest"]
    assert list(request_schema["properties"]) == list(SubmitRequest.model_fields)
    assert request_schema["required"] == ["repo_url"]
    assert request_schema["additionalProperties"] is False
    assert doc["paths"][f"{API}/openapi.json"]["get"]["security"] == []


def test_openapi_refs_resolve_and_schemas_are_valid(app):
    doc = openapi(app.test_client())
    schemas = doc["components"]["schemas"]
    refs = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs and all(ref.startswith("#/components/schemas/") for ref in refs)
    assert {ref.rsplit("/", 1)[1] for ref in refs} <= set(schemas)
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)
    codes = set(schemas["ErrorBody"]["properties"]["code"]["enum"])
    assert {
        "invalid_request",
        "unauthorized",
        "not_found",
        "conflict",
        "validation_failed",
        "rate_limited",
        "slurm_unavailable",
    } <= codes
    # the documented request schema accepts what the API accepts and refuses unknown fields
    check_schema(doc, "SubmitRequest", {**VALID, "sweeps": ["CLOCK_PERIOD=10,20"]})
    with pytest.raises(jsonschema.ValidationError):
        check_schema(doc, "SubmitRequest", {**VALID, "colour": "red"})


# --------------------------------------------------------------------------- real cluster


@pytest.fixture
def cluster_api(tmp_path):
    """An app running the stand-in flow on the real cluster; launches inside the request."""
    app = engine_helpers.make_app(tmp_path, LAUNCH_IN_BACKGROUND=False)
    with app.app_context():
        accounts.create_user("ada", "ada@example.org", slurm_account="openlane")
        accounts.create_user("bob", "bob@example.org")
    yield app, {name: make_token(app, name) for name in ("ada", "bob")}
    with app.app_context():
        db.engine.dispose()


def squeue_names() -> list[str]:
    return subprocess.run(
        ["squeue", "-h", "-o", "%j"], capture_output=True, text=True, check=True
    ).stdout.split()


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_dry_run_renders_the_script_and_writes_nothing(cluster_api, example_repo):
    app, tokens = cluster_api
    before = set(squeue_names())
    body = {
        "repo_url": example_repo,
        "design_path": "designs/counter",
        "sweeps": ["CLOCK_PERIOD=10,20"],
        "resources": {"time_minutes": 10, "mem_mb": 256},
        "dry_run": True,
    }
    client = app.test_client()
    response = call(client, "POST", "/submissions", tokens["ada"], json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    check_schema(openapi(client), "DryRun", data)
    assert "#SBATCH --array=0-1" in data["script"] and "--account=openlane" in data["script"]
    assert data["tasks"] == 2 and data["points"] == [{"CLOCK_PERIOD": 10}, {"CLOCK_PERIOD": 20}]
    assert data["needs_approval"] is False and data["core_hours"] > 0
    assert counts(app) == (0, 0)
    assert not Path(app.config["RUN_ROOT"]).exists() or not any(
        Path(app.config["RUN_ROOT"]).iterdir()
    )
    assert set(squeue_names()) == before


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_sweep_through_the_api_on_the_cluster(cluster_api, example_repo, tmp_path):
    app, tokens = cluster_api
    client = app.test_client()
    doc = openapi(client)
    body = {
        "repo_url": example_repo,
        "design_path": "designs/counter",
        "sweeps": ["CLOCK_PERIOD=10,20"],
        "resources": {"time_minutes": 10, "mem_mb": 256},
        "name": "api sweep",
        "notify": False,
    }
    response = call(client, "POST", "/submissions", tokens["ada"], json=body)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()["submission"]
    check_schema(doc, "Submission", created)
    uuid = created["uuid"]
    assert response.headers["Location"] == f"{API}/submissions/{uuid}"
    assert created["state"] == "QUEUED", created["error"]
    assert len(created["job_ids"]) == 1 and created["n_tasks"] == 2
    assert created["resources"]["account"] == "openlane" and created["notify"] is False

    # Slurm unreachable: cancel answers 503 and changes nothing
    with closed_port() as port:
        saved = {k: app.config[k] for k in ("SLURM_TRANSPORT", "SLURM_SSH_HOST", "SLURM_SSH_PORT")}
        app.config.update(slurm_at(port))
        try:
            down = call(client, "POST", f"/submissions/{uuid}/cancel", tokens["ada"])
        finally:
            app.config.update(saved)
    error_of(down, 503, "slurm_unavailable")
    assert state_of(app, uuid) == "QUEUED"

    # bob sees nothing of it
    for suffix in ("", "/tasks", "/results", "/export"):
        error_of(
            call(client, "GET", f"/submissions/{uuid}{suffix}", tokens["bob"]), 404, "not_found"
        )
    error_of(call(client, "POST", f"/submissions/{uuid}/cancel", tokens["bob"]), 404, "not_found")

    deadline = time.monotonic() + 180
    state = created["state"]
    while state not in ("COMPLETED", "FAILED", "PARTIAL", "CANCELLED"):
        assert time.monotonic() < deadline, f"still {state}"
        time.sleep(1)
        with app.app_context():  # the real poller; the API is called outside this context
            poll_once(slurm_client(app.config))
        got = call(client, "GET", f"/submissions/{uuid}", tokens["ada"]).get_json()
        state = got["submission"]["state"]
    assert state == "COMPLETED"
    assert got["submission"]["tasks_by_state"] == {"COMPLETED": 2}
    assert got["submission"]["finished_at"] and got["submission"]["commit"]

    tasks = call(client, "GET", f"/submissions/{uuid}/tasks", tokens["ada"]).get_json()
    check_schema(doc, "TaskPage", tasks)
    assert [(t["state"], t["exit_code"]) for t in tasks["items"]] == [("COMPLETED", 0)] * 2
    assert all(t["metrics"]["die_area_um2"] > 0 and t["node"] for t in tasks["items"])

    results = call(client, "GET", f"/submissions/{uuid}/results", tokens["ada"]).get_json()
    check_schema(doc, "Results", results)
    assert [r["params"]["CLOCK_PERIOD"] for r in results["rows"]] == [10, 20]
    assert results["pareto"] and set(results["pareto"]) <= {0, 1}
    smallest = min(results["rows"], key=lambda r: r["metrics"]["die_area_um2"])["index"]
    assert results["best"]["die_area_um2"] == smallest

    bundle = call(client, "GET", f"/submissions/{uuid}/export", tokens["ada"])
    assert bundle.status_code == 200 and bundle.mimetype == "application/gzip"
    with app.app_context():
        run_dir = db.session.scalar(select(Submission.run_dir).where(Submission.uuid == uuid))
    assert bundle.headers["X-Unpack-Dir"] == run_dir
    with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
        names = set(tar.getnames())
        top = Path(run_dir).name
        assert {
            f"{top}/job.sbatch",
            f"{top}/task-configs.txt",
            f"{top}/task-configs.index",
        } <= names
        script = tar.extractfile(f"{top}/job.sbatch").read().decode()
    assert "#SBATCH --array=0-1" in script
    elsewhere = call(
        client, "GET", f"/submissions/{uuid}/export?run_dir=/scratch/elsewhere", tokens["ada"]
    )
    assert (
        elsewhere.status_code == 200 and elsewhere.headers["X-Unpack-Dir"] == "/scratch/elsewhere"
    )
    relative = call(client, "GET", f"/submissions/{uuid}/export?run_dir=rel/x", tokens["ada"])
    error_of(relative, 400, "invalid_request")

    error_of(call(client, "POST", f"/submissions/{uuid}/cancel", tokens["ada"]), 409, "conflict")
    error_of(call(client, "POST", f"/submissions/{uuid}/resubmit", tokens["ada"]), 409, "conflict")


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_failed_task_resubmitted_through_the_api(cluster_api, example_repo, monkeypatch):
    app, tokens = cluster_api
    app.config["FLOW_EXECUTABLE_OVERRIDE"] = str(
        engine_helpers.REPO_ROOT / "tests" / "standin" / "fail_some_tasks.sh"
    )
    monkeypatch.setenv("OLP_TEST_FAIL_TASKS", "1")
    client = app.test_client()
    body = {
        "repo_url": example_repo,
        "design_path": "designs/counter",
        "sweeps": ["FP_CORE_UTIL=30,40"],
        "resources": {"time_minutes": 10, "mem_mb": 256},
        "notify": False,
    }
    created = call(client, "POST", "/submissions", tokens["ada"], json=body).get_json()
    uuid = created["submission"]["uuid"]
    with app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        engine_helpers.wait_final(app, sub)
        assert sub.state == "PARTIAL"
    monkeypatch.delenv("OLP_TEST_FAIL_TASKS")
    error_of(call(client, "POST", f"/submissions/{uuid}/resubmit", tokens["bob"]), 404, "not_found")
    response = call(client, "POST", f"/submissions/{uuid}/resubmit", tokens["ada"])
    assert response.status_code == 200, response.get_data(as_text=True)
    data = response.get_json()
    check_schema(openapi(client), "Resubmitted", data)
    assert data["resubmitted"] == [1] and len(data["submission"]["job_ids"]) == 2
    with app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        engine_helpers.wait_final(app, sub)
        assert sub.state == "COMPLETED"


def test_docs_describe_every_endpoint_field_and_code(app):
    """docs/api.md keeps up with the API: every path, body field and error code is in it."""
    text = (engine_helpers.REPO_ROOT / "docs" / "api.md").read_text()
    doc = openapi(app.test_client())
    for path, item in doc["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}" in text, (method, path)
    for name in SubmitRequest.model_fields:
        assert f"| `{name}` |" in text, name
    for code in doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["enum"]:
        assert f"`{code}`" in text, code
