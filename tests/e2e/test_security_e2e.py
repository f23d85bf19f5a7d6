"""Markup typed by a user is shown as text everywhere it comes back in a real browser: the submit
form (re-rendered and in the htmx estimate), the flash, the submission page, the dashboard, the
admin queue and an admin's rejection reason. No dialog opens, no element is injected, and the
CSP reports nothing (an injected handler would be blocked by it and logged as an error)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import shot
from tests.e2e.steps import (
    SubmitForm,
    create_admin,
    fill_submit_form,
    open_submit_form,
    register,
    sign_in,
    submit,
    wait_estimate,
)

pytestmark = pytest.mark.cluster

NAME = "<script>alert(1)</script><img src=x onerror=alert(2)> counter"
BAD_PATH = "designs/<img src=x onerror=alert(3)>"
REASON = "<svg onload=alert(4)></svg><marquee>too big</marquee>"

INJECTED = """() => ({
  elements: document.querySelectorAll(
    'img[src="x"], [onerror], [onload], marquee, main script'
  ).length,
  scripts: Array.from(document.scripts).filter(s => !s.src).length,
})"""


def assert_nothing_injected(page) -> None:  # noqa: ANN001 - a Playwright page
    assert page.evaluate(INJECTED) == {"elements": 0, "scripts": 0}, page.url


def record_dialogs(page) -> list[str]:  # noqa: ANN001 - a Playwright page
    opened: list[str] = []

    def dismiss(dialog) -> None:  # noqa: ANN001 - a Playwright dialog
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def test_markup_in_names_and_reasons_is_shown_as_text(live_portal, open_page, example_repo):
    live_portal.app.config["APPROVAL_ARRAY_SIZE"] = 1  # it waits for an admin: nothing runs
    create_admin(live_portal, "grace")
    designer = open_page("designer")
    admin = open_page("admin")
    designer_dialogs = record_dialogs(designer)
    admin_dialogs = record_dialogs(admin)

    register(designer, live_portal, "eve")
    open_submit_form(designer, live_portal)
    form = SubmitForm(
        repo_url=example_repo,
        sweep=[("CLOCK_PERIOD", "10, 20")],
        name=NAME,
        design_path=BAD_PATH,
    )
    fill_submit_form(designer, form)
    # The live estimate (an htmx fragment) quotes the refused folder name back at its field.
    refused = (
        "design folder may only use letters, digits and _ . + @ = , -: "
        "'designs/<img src=x onerror=alert(3)>'"
    )
    expect(designer.locator("#design_path-error")).to_contain_text(refused)
    assert_nothing_injected(designer)

    designer.click("#submit-form button.btn-primary[type=submit]")
    designer.wait_for_selector("#form-errors")
    assert refused in designer.inner_text("#design_path-error")
    assert designer.input_value("#name") == NAME
    assert designer.input_value("#design_path") == BAD_PATH
    assert_nothing_injected(designer)
    shot(designer, "xss-form-refused")

    designer.fill("#design_path", "designs/counter")
    wait_estimate(designer, points=2, needs_approval=True)
    uuid = submit(designer)
    assert NAME in designer.inner_text(".flashes")
    assert designer.inner_text("#submission-name") == NAME
    assert_nothing_injected(designer)
    shot(designer, "xss-submission-page")

    designer.goto(live_portal.at("/"))
    assert designer.inner_text(f"#submission-{uuid} .dash-name a") == NAME
    assert_nothing_injected(designer)
    shot(designer, "xss-dashboard")

    sign_in(admin, live_portal, "grace")
    admin.goto(live_portal.at("/admin/"))
    card = admin.locator(f"#approval-{uuid}")
    assert card.locator(".approval-name").inner_text() == NAME
    assert_nothing_injected(admin)
    card.locator("textarea[name=reason]").fill(REASON)
    card.locator("button:has-text('Reject')").click()
    admin.wait_for_selector(".flashes .flash-success")
    assert NAME in admin.inner_text(".flashes")
    assert REASON in admin.inner_text(".decision-reason")
    assert_nothing_injected(admin)
    shot(admin, "xss-admin-rejected")

    designer.goto(live_portal.at(f"/submissions/{uuid}"))
    assert designer.get_attribute("#submission-state", "data-state") == "REJECTED"
    assert REASON in designer.inner_text(".detail-decision")
    assert_nothing_injected(designer)
    shot(designer, "xss-designer-rejected")

    assert designer_dialogs == [] and admin_dialogs == []
    # The refused form answers 400 by design; Chromium logs that status, nothing else is allowed.
    refused = "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    errors = [e for e in designer.console_errors if not e.startswith(refused)]
    assert len(designer.console_errors) - len(errors) == 1
    assert errors == [], "\n".join(errors)
    assert admin.console_errors == [], "\n".join(admin.console_errors)
