"""Property test (Hypothesis) of the web routes: no path, number or query string a client can
send gives a 5xx. Signed in as the owner of a recorded submission (no Slurm needed: the rows are
written directly), and as an admin, against every route with an integer or a token in it."""

from __future__ import annotations

import uuid as uuidlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.extensions import db
from portal.models import Submission, Task, User
from tests.integration.web_helpers import add_user, csrf, login

BIG = st.one_of(
    st.integers(min_value=0, max_value=2**31 + 5),
    st.integers(min_value=2**31, max_value=10**40),
    st.sampled_from([2**63 - 1, 2**63, 2**64, 99999999999999999999999]),
)
SEGMENT = st.text(
    alphabet=st.characters(codec="ascii", exclude_characters="/?#"), min_size=0, max_size=30
)
ROUTES = [
    ("GET", "/submissions/{uuid}/tasks/{n}"),
    ("GET", "/submissions/{uuid}/tasks/{n}/config"),
    ("GET", "/submissions/{uuid}/tasks/{n}/log?stream=out&offset={n}"),
    ("GET", "/submissions/{uuid}/tasks/{n}/files/{text}"),
    ("GET", "/submissions/{uuid}/tasks/{n}/archive.tar.gz"),
    ("GET", "/submissions/{uuid}/tasks/{n}/layout.png"),
    ("GET", "/submissions/{uuid}?page={n}&task={n}&sort={text}"),
    ("GET", "/submissions/{text}"),
    ("GET", "/shared/{text}/tasks/{n}/config"),
    ("GET", "/shared/{text}"),
    ("GET", "/?page={n}&q={text}&state={text}"),
    ("POST", "/account/tokens/{n}/revoke"),
    ("POST", "/admin/users/{n}/activate"),
    ("POST", "/admin/users/{n}/deactivate"),
    ("GET", "/api/v1/submissions/{text}"),
    ("GET", "/api/v1/submissions?page={n}&per_page={n}&q={text}"),
]


@pytest.fixture
def site(make_app):
    app = make_app(RATELIMIT_ENABLED=False)
    add_user(app, "ada", slurm_account="openlane")
    add_user(app, "grace", role="admin")
    with app.app_context():
        owner = db.session.query(User).filter_by(username="ada").one()
        submission = Submission(
            uuid=str(uuidlib.uuid4()),
            owner=owner,
            repo_url="https://example.org/chip.git",
            ref="main",
            design_path="designs/counter",
            flow="librelane",
            state="COMPLETED",
            n_tasks=2,
            run_dir=str(app.config["RUN_ROOT"]),
        )
        submission.tasks = [Task(index=i, params={"CLOCK_PERIOD": 10}) for i in range(2)]
        db.session.add(submission)
        db.session.commit()
        ident = submission.uuid
    clients = {}
    for name in ("ada", "grace"):
        client = app.test_client()
        login(client, name)
        clients[name] = (client, csrf(client.get("/account/").get_data(as_text=True)))
    return clients, ident


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    number=BIG,
    text=SEGMENT,
    who=st.sampled_from(["ada", "grace"]),
)
def test_no_route_answers_5xx(site, route, number, text, who):
    clients, ident = site
    method, template = route
    path = template.format(uuid=ident, n=number, text=text)
    client, token = clients[who]
    data = {"csrf_token": token} if method == "POST" else None
    response = client.open(path, method=method, data=data)
    assert response.status_code < 500, (method, path, response.status_code)
