"""Every page passes axe-core (vendored from npm by scripts/build-assets) with no serious or
critical violation, signed out, as a designer and as an admin, on a desktop and on a phone;
and no page breaks the Content Security Policy, nor asks for a favicon that is not there.

axe is loaded from the portal's own /static/vendor/axe.min.js: an inline script (what
``add_script_tag(path=...)`` adds) is refused by the portal's CSP, which stays on here.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import LivePortal
from tests.e2e.test_responsive_e2e import (
    OPEN_ALL_DETAILS,
    PHONE,
    arrange_site,
    open_as,
    site_pages,
    visit,
)
from tests.integration.web_helpers import VENDOR

pytestmark = pytest.mark.cluster

DESKTOP = {"width": 1280, "height": 900}
BLOCKING = ("serious", "critical")

#: Records what the CSP refuses, before any of the page's own scripts run.
RECORD_CSP = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
  `${e.violatedDirective} refused ${e.blockedURI || e.sample || 'inline'} `
  + `at ${e.sourceFile}:${e.lineNumber}`));"""

RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return {
    passes: result.passes.length,
    violations: result.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')),
    })),
  };
}"""


def axe_check(page: Page, portal: LivePortal) -> dict[str, Any]:
    """Run axe on the page as it is now (loading axe first when the page has not got it)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url=portal.at("/static/vendor/axe.min.js"))
    return page.evaluate(RUN_AXE)


def blocking(result: dict[str, Any]) -> list[str]:
    """The serious and critical violations of an axe result, one line each."""
    return [
        f"{v['impact']} {v['id']} ({v['help']}): {v['nodes']}"
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def test_axe_is_built_and_reports_what_it_should(live_portal, page):
    assert (VENDOR / "axe.min.js").is_file(), "run scripts/build-assets (axe.min.js missing)"
    visit(page, live_portal.at("/auth/login"))
    # An image without a text alternative is a critical violation: the check can fail.
    page.evaluate(
        """() => { const img = document.createElement('img');
                   img.src = document.querySelector('link[rel=icon]').href;
                   document.getElementById('main').appendChild(img); }"""
    )
    result = axe_check(page, live_portal)
    assert result["passes"] > 10
    assert any("image-alt" in line for line in blocking(result)), result


def test_every_page_is_accessible_and_keeps_the_csp(
    live_portal, open_page, example_repo, monkeypatch
):
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "0")
    site = arrange_site(live_portal, example_repo)
    found: list[str] = []
    refused: list[str] = []
    for viewport in (DESKTOP, PHONE):
        for who, paths in site_pages(site).items():
            page = open_as(open_page, live_portal, who, viewport)
            page.add_init_script(RECORD_CSP)
            for path in paths:
                visit(page, live_portal.at(path))
                # Hidden parts count too: open every <details> (column chooser, parameters).
                page.evaluate(OPEN_ALL_DETAILS)
                where = f"{who or 'signed out'} {viewport['width']}px {path}"
                found += [f"{where}: {line}" for line in blocking(axe_check(page, live_portal))]
                refused += [f"{where}: {v}" for v in page.evaluate("window.__cspViolations")]
            errors = [e for e in page.console_errors if "Content Security Policy" in e]
            refused += [f"{who} console: {e}" for e in errors]
    assert not found, "axe found serious or critical violations:\n" + "\n".join(found)
    assert not refused, "the CSP refused:\n" + "\n".join(refused)


def test_favicon_is_linked_and_served(live_portal, page):
    visit(page, live_portal.at("/auth/login"))
    href = page.get_attribute("link[rel=icon]", "href")
    assert href and href.startswith("/static/"), href
    answer = page.request.get(live_portal.at(href))
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in answer.body()
