"""A designer creates an account and signs in, in a real browser."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import shot

pytestmark = pytest.mark.cluster


def test_register_sign_out_and_sign_in_again(live_portal, page):
    page.goto(live_portal.at("/auth/register"))
    page.fill("input[name=username]", "ada")
    page.fill("input[name=email]", "ada@example.org")
    page.fill("input[name=password]", "correct horse battery")
    page.fill("input[name=confirm]", "correct horse battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_selector(".usermenu")
    assert "ada" in page.inner_text(".usermenu")
    assert "Stand-in flow in use" in page.inner_text("body")
    shot(page, "registered")

    page.click(".usermenu button[type=submit]")
    page.wait_for_url("**/auth/login**")
    page.fill("input[name=login]", "ada")
    page.fill("input[name=password]", "correct horse battery")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_selector(".usermenu")
    assert page.console_errors == []
