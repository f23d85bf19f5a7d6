"""A sweep over the site's task threshold waits for an admin, who approves it in another browser;
the designer's open page follows it to the end without being reloaded."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shot
from tests.e2e.steps import (
    LIVE_SNAPSHOT,
    MARK_SCRIPT,
    SubmitForm,
    all_in,
    create_admin,
    fill_submit_form,
    open_submit_form,
    register,
    sign_in,
    submit,
    track_navigations,
    wait_estimate,
    watch,
)

pytestmark = pytest.mark.cluster


def test_admin_approves_large_submission(live_portal, open_page, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "8")  # long enough to be seen running
    live_portal.app.config["APPROVAL_ARRAY_SIZE"] = 2
    create_admin(live_portal, "grace")
    designer = open_page("designer")
    admin = open_page("admin")

    register(designer, live_portal, "ada")
    open_submit_form(designer, live_portal)
    fill_submit_form(
        designer,
        SubmitForm(
            repo_url=example_repo,
            sweep=[("CLOCK_PERIOD", "10, 15, 20")],
            name="three clocks",
        ),
    )
    wait_estimate(designer, points=3, needs_approval=True)
    notice = designer.inner_text("#estimate .approval-notice")
    assert "need an admin's approval" in notice
    assert "3 tasks is over the 2 task threshold" in notice
    shot(designer, "approval-form-notice")

    uuid = submit(designer)
    assert "waits for an admin's approval" in designer.inner_text(".flashes")
    assert designer.get_attribute("#live", "data-state") == "AWAITING_APPROVAL"
    url = designer.url
    navigations = track_navigations(designer)
    designer.evaluate(MARK_SCRIPT)
    shot(designer, "approval-designer-waiting")

    sign_in(admin, live_portal, "grace")
    admin.goto(live_portal.at("/admin/"))
    card = admin.locator(f"#approval-{uuid}")
    assert "three clocks" in card.locator(".approval-name").inner_text()
    assert "ada" in card.locator(".approval-owner").inner_text()
    assert card.locator(".approval-tasks").inner_text() == "3 tasks"
    # 3 tasks x 1 CPU x 10 min
    assert card.locator(".approval-cost").inner_text() == "0.5 core-hours"
    card.locator(".script-preview summary").click()
    script = card.locator(".script-body pre.sbatch-preview")
    script.wait_for()
    assert "#SBATCH --array=0-2" in script.inner_text()
    shot(admin, "approval-admin-queue")

    # The form asks before approving (data-confirm): accept it.
    dialogs: list[str] = []

    def accept(dialog) -> None:  # noqa: ANN001 - a Playwright dialog
        dialogs.append(dialog.message)
        dialog.accept()

    admin.on("dialog", accept)
    card.locator("button:has-text('Approve and submit')").click()
    admin.wait_for_selector(".flashes .flash-success")
    assert "Approved “three clocks” of ada" in admin.inner_text(".flashes")
    assert dialogs and "3 tasks" in dialogs[0]
    assert admin.locator(f"#approval-{uuid}").count() == 0
    shot(admin, "approval-admin-approved")

    seen = watch(designer, LIVE_SNAPSHOT, all_in("COMPLETED", 3), navigations, timeout=120)
    live = seen.marked()
    states = [s["state"] for s in live]
    # Launched and running were shown by htmx on the document that showed it waiting.
    assert {"SUBMITTING", "QUEUED", "RUNNING"} & set(states), states
    assert any("RUNNING" in s["tasks"] for s in live), live
    # The only navigation is the page's own refresh when the array ended.
    assert seen.navigations in ([], [url]), seen.navigations
    assert designer.url == url
    assert designer.get_attribute("#submission-state", "data-state") == "COMPLETED"
    shot(designer, "approval-designer-completed")

    assert designer.console_errors == [], "\n".join(designer.console_errors)
    assert admin.console_errors == [], "\n".join(admin.console_errors)
