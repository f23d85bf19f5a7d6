"""The submit form in a real browser, on the real cluster and a real git daemon: no error before
the designer acts; each problem at its field (aria-invalid, aria-describedby naming the text);
"Ready to submit" only once the repository, the ref and the design folder are found, with
"still fetching" meanwhile; and "Edit and resubmit" filling the form from a failed submission."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from portal import submit as svc
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import FINAL_STATES, Submission, User
from portal.slurm.client import SlurmClient
from portal.slurm.transports import SSHTransport
from tests.e2e.conftest import LivePortal, shot
from tests.e2e.steps import SUBMISSION_URL, open_submit_form, register, until
from tests.fixtures.gitdaemon import closed_port

pytestmark = pytest.mark.cluster

#: A control's state: aria-invalid, and the texts of the error slots its aria-describedby names.
FIELD_STATE = """(id) => {
  const control = document.getElementById(id);
  const named = (control.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
  const errors = named.filter(n => n.endsWith('-error'))
    .map(n => document.getElementById(n))
    .map(el => (el ? el.innerText.trim() : '<missing ' + n + '>'))
    .filter(Boolean);
  return {invalid: control.getAttribute('aria-invalid'), errors};
}"""
INVALID_CONTROLS = "() => [...document.querySelectorAll('[aria-invalid]')].map(e => e.id)"
SHOWN_ERRORS = """() => [...document.querySelectorAll('.field-error, .alert-error')]
  .filter(e => e.offsetParent !== null).map(e => e.innerText)"""
ESTIMATE = "#estimate .estimate"


def error_at(page: Page, control_id: str, timeout: float = 30) -> str:
    """Wait until the control is aria-invalid and describes an error text; return the text."""
    state = until(
        page,
        f"(id) => {{ const s = ({FIELD_STATE})(id); "
        "return s.invalid === 'true' && s.errors.length ? s : null; }",
        control_id,
        timeout=timeout,
    )
    return " ".join(state["errors"])


def no_error_at(page: Page, control_id: str, timeout: float = 30) -> None:
    until(
        page,
        f"(id) => {{ const s = ({FIELD_STATE})(id); return !s.invalid && !s.errors.length; }}",
        control_id,
        timeout=timeout,
    )


def readiness(page: Page) -> str:
    return page.get_attribute(ESTIMATE, "data-readiness") or ""


def test_readiness_waits_for_the_repository_and_errors_sit_at_their_fields(
    live_portal, page, example_repo, git_daemon
):
    live_portal.app.config["PREVIEW_WAIT_SECONDS"] = 0  # every first look says "fetching"
    register(page, live_portal, "ada")
    open_submit_form(page, live_portal)
    page.wait_for_selector(ESTIMATE)  # the estimate the page asks for when it opens

    # Untouched: the form is not ready (no repository yet), and nothing is called an error.
    assert page.get_attribute(ESTIMATE, "data-ready") == "no"
    assert page.evaluate(INVALID_CONTROLS) == []
    assert page.evaluate(SHOWN_ERRORS) == []
    assert "Repository URL" in page.inner_text("#estimate .estimate-todo")  # named, calmly
    shot(page, "submit-form-untouched")

    # A repository that does not exist: said at the repository field, never "ready".
    missing = f"{git_daemon.url_base}/no-such-design.git"
    page.fill("#repo_url", missing)
    page.fill("#design_path", "designs/counter")
    assert error_at(page, "repo_url") == (
        f"repository {missing} not found (or not readable by the portal)"
    )
    assert page.get_attribute(ESTIMATE, "data-ready") == "no"
    assert "Ready to submit." not in page.inner_text("#estimate")
    assert page.evaluate(INVALID_CONTROLS) == ["repo_url"]
    shot(page, "submit-form-repository-not-found")

    # The real repository, a folder it does not have: "still fetching" first, then the
    # folder's problem at its field (the fragment asks again by itself).
    page.fill("#design_path", "designs/nope")
    page.fill("#repo_url", example_repo)
    page.wait_for_selector(f"{ESTIMATE}[data-readiness=fetching]")
    assert "still fetching the repository" in page.inner_text("#estimate")
    assert page.get_attribute(ESTIMATE, "data-ready") == "no"
    assert error_at(page, "design_path").startswith(
        "no folder 'designs/nope' in the repository at main (commit "
    )
    no_error_at(page, "repo_url")
    assert page.get_attribute(ESTIMATE, "data-ready") == "no"

    # A branch that does not exist, submitted: refused, the reason at the ref field.
    page.fill("#design_path", "designs/counter")
    page.fill("#ref", "no-such-branch")
    assert error_at(page, "ref") == f"branch or tag 'no-such-branch' not found in {example_repo}"
    page.click("#submit-form button.btn-primary[type=submit]")
    page.wait_for_selector("#form-errors")
    assert page.inner_text("#form-errors a") == "Branch, tag or commit"
    assert error_at(page, "ref") == f"branch or tag 'no-such-branch' not found in {example_repo}"
    with live_portal.app.app_context():
        assert db.session.scalar(select(Submission)) is None
    shot(page, "submit-form-refused-at-the-field")

    # All found: ready, and no control is marked any more.
    page.fill("#ref", "main")
    page.wait_for_selector(f"{ESTIMATE}[data-ready=yes]", timeout=30_000)
    assert readiness(page) == "ready" and "Ready to submit." in page.inner_text("#estimate")
    no_error_at(page, "ref")
    assert page.evaluate(INVALID_CONTROLS) == []
    refused = "the server responded with a status of 400 (BAD REQUEST) [on " + page.url
    others = [e for e in page.console_errors if refused not in e]  # the refused submit's page
    assert others == [], "\n".join(others)


def failed_submission(portal: LivePortal, repo: str) -> str:
    """Ada's submission whose launch really failed (Slurm unreachable at sbatch)."""
    portal.app.config["LAUNCH_MAX_ATTEMPTS"] = 1
    with portal.app.app_context():
        owner = db.session.scalar(select(User).where(User.username == "ada"))
        request = svc.SubmissionRequest(
            repo_url=repo,
            design_path="designs/counter",
            params={"SYNTH_STRATEGY": "DELAY 2"},
            sweep={"kind": "grid", "parameters": {"CLOCK_PERIOD": [10, 20.5]}},
            resources=svc.Resources(mem_mb=300, time_minutes=15, partition="debug"),
            name="counter that failed",
        )
        plan = svc.plan_submission(
            request, portal.app.config, slurm_client(portal.app.config), owner=owner
        )
        submission = svc.create_submission(plan, owner)
        with closed_port() as port:
            silent = SSHTransport(host="127.0.0.1", port=port, user="nobody")
            svc.launch(submission, portal.app.config, SlurmClient(silent, timeout=5))
        assert submission.state == "SUBMIT_FAILED", submission.state
        return submission.uuid


def test_edit_and_resubmit_fills_the_form_from_a_failed_submission(live_portal, page, example_repo):
    register(page, live_portal, "ada")
    failed = failed_submission(live_portal, example_repo)
    page.goto(live_portal.at(f"/submissions/{failed}"))
    first = page.locator(".detail-actions :is(a, button)").first
    assert first.inner_text().strip() == "Edit and resubmit"  # offered first
    assert "btn-primary" in (first.get_attribute("class") or "")
    shot(page, "submission-failed-actions", ".detail-actions")
    first.click()
    page.wait_for_selector("#submit-form[data-enhanced=yes]")
    assert "counter that failed" in page.inner_text("#copied-from")

    assert page.input_value("#repo_url") == example_repo
    assert page.input_value("#ref") == "main"
    assert page.input_value("#design_path") == "designs/counter"
    assert page.input_value("#flow") == "openlane1"
    assert page.input_value("#param-SYNTH_STRATEGY") == "DELAY 2"
    assert page.input_value("#sweep-0-parameter") == "CLOCK_PERIOD"
    assert page.input_value("#sweep-0-values") == "10, 20.5"
    assert page.input_value("#sweep-1-parameter") == ""
    assert [page.input_value(f"#{name}") for name in ("cpus", "mem_mb", "time_minutes")] == [
        "1",
        "300",
        "15",
    ]
    assert page.input_value("#partition") == "debug"
    assert page.is_checked("#sweep_mode-0")  # grid
    page.wait_for_selector(f"{ESTIMATE}[data-points='2'][data-ready=yes]", timeout=30_000)
    assert page.evaluate(INVALID_CONTROLS) == []
    shot(page, "submit-form-edit-and-resubmit")

    # Change one thing and submit: a new submission, the failed one left as it was.
    page.fill("#sweep-0-values", "10, 20.5, 30")
    page.wait_for_selector(f"{ESTIMATE}[data-points='3'][data-ready=yes]", timeout=30_000)
    page.click("#submit-form button.btn-primary[type=submit]")
    page.wait_for_url(SUBMISSION_URL)
    uuid = page.url.rsplit("/", 1)[-1]
    assert uuid != failed
    with live_portal.app.app_context():
        deadline = time.monotonic() + 120
        while True:
            copy = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
            if copy.state in FINAL_STATES or time.monotonic() > deadline:
                break
            db.session.remove()
            time.sleep(1)
        assert copy.state == "COMPLETED", copy.error
        assert copy.repo_url == example_repo and copy.design_path == "designs/counter"
        assert copy.base_params == {"SYNTH_STRATEGY": "DELAY 2"}
        assert copy.sweep_spec["parameters"] == {"CLOCK_PERIOD": [10.0, 20.5, 30.0]}
        assert copy.resources["mem_mb"] == 300 and copy.resources["time_minutes"] == 15
        original = db.session.scalar(select(Submission).where(Submission.uuid == failed))
        assert original.state == "SUBMIT_FAILED"
    assert page.console_errors == [], "\n".join(page.console_errors)
