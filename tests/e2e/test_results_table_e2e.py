"""The metrics table of a finished sweep (the stand-in flow on the real cluster): key columns
first, no column that every row left empty, one number format, a column chooser this browser
remembers, and a table that scrolls inside its own box (first column sticky) instead of
widening the page."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from portal.extensions import db
from portal.models import Submission
from tests.e2e.conftest import LivePortal, shot
from tests.e2e.steps import until
from tests.e2e.test_responsive_e2e import DESIGNER, PHONE, arrange_site, open_as, visit

pytestmark = pytest.mark.cluster

DESKTOP = {"width": 1280, "height": 900}

#: data-col of the table's header cells, in order, and whether each is shown.
HEADER = """() => Array.from(document.querySelectorAll('#results thead th'))
  .map(th => [th.dataset.col, !th.hidden, th.textContent.trim()])"""

#: For every column: does any body cell have text? (hidden cells count too)
FILLED = """() => {
  const filled = {};
  document.querySelectorAll('#results tbody td, #results tbody th').forEach(c => {
    filled[c.dataset.col] = filled[c.dataset.col] || c.textContent.trim() !== '';
  });
  return filled;
}"""

#: [column, data-value, text] of every shown numeric metric cell.
NUMBERS = """() => Array.from(document.querySelectorAll('#results tbody td.num'))
  .filter(td => !td.hidden && td.dataset.value !== '')
  .map(td => [td.dataset.col, td.dataset.value, td.textContent.trim()])"""


def cell(page: Page, task: int, column: str) -> str:
    """The text of one cell of the metrics table."""
    return page.inner_text(f"#results tr[data-index='{task}'] [data-col='{column}']").strip()


def shown(page: Page, column: str) -> bool:
    """Whether the column's header is displayed."""
    return page.is_visible(f"#results thead th[data-col='{column}']")


def expected_number(raw: str) -> str:
    """The one format, from the raw value: whole numbers with separators, others to four
    significant digits."""
    if not any(c in raw for c in ".eE"):
        return f"{int(raw):,}"
    value = float(raw)
    exponent = math.floor(math.log10(abs(value))) if value else 0
    return f"{value:,.{max(0, 3 - exponent)}f}"


def finished_table(
    portal: LivePortal, open_page: Callable[[str], Page], repo_url: str
) -> tuple[Page, str]:
    """A finished 2×2 sweep whose total power no task measured and whose task 0 has a large
    and a small slack; the designer's page on it (desktop)."""
    site = arrange_site(portal, repo_url)
    with portal.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == site.finished))
        for task in sub.tasks:
            metrics = dict(task.metrics or {})
            metrics["power_total_w"] = None
            if task.index == 0:
                metrics.update(setup_tns_ns=-1234.56789, setup_wns_ns=-0.052301)
            task.metrics = metrics
        db.session.commit()
        db.session.remove()
    page = open_as(open_page, portal, DESIGNER, DESKTOP)
    visit(page, portal.at(f"/submissions/{site.finished}"))
    return page, site.finished


def test_key_columns_first_empty_ones_hidden_one_number_format(
    live_portal, open_page, example_repo, monkeypatch
):
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "0")
    page, _ = finished_table(live_portal, open_page, example_repo)
    header = page.evaluate(HEADER)
    columns = [col for col, _, _ in header]
    visible = [col for col, is_shown, _ in header if is_shown]

    # Key columns first: the task, the Pareto mark, the swept parameters, then area, timing,
    # DRC and LVS; the state last.
    assert visible[:4] == ["task", "pareto", "param:CLOCK_PERIOD", "param:FP_CORE_UTIL"], visible
    key = ["die_area_um2", "setup_wns_ns", "setup_tns_ns", "drc_magic", "lvs_errors"]
    assert [c for c in visible if c in key] == key, visible
    assert visible.index("lvs_errors") < visible.index("wirelength_um") < visible.index("state")
    assert visible[-1] == "state"

    # No task measured the total power: no column, and nothing to choose in the chooser.
    assert "power_total_w" not in columns
    assert "Total power" not in " ".join(text for _, _, text in header)
    assert page.locator("[data-column-chooser] input[data-column='power_total_w']").count() == 0
    filled = page.evaluate(FILLED)
    assert set(filled) == set(columns)
    assert all(filled.values()), [c for c, has in filled.items() if not has]

    # One number format: thousands separators, four significant digits, never 1.728e+04.
    assert cell(page, 0, "die_area_um2") == "17,275"
    assert cell(page, 0, "setup_tns_ns") == "-1,235"
    assert cell(page, 0, "setup_wns_ns") == "-0.05230"
    assert cell(page, 1, "setup_wns_ns") == "0.000"
    numbers = page.evaluate(NUMBERS)
    assert len(numbers) >= 4 * 6
    wrong = [(c, raw, text) for c, raw, text in numbers if text != expected_number(raw)]
    assert not wrong, wrong
    assert "e+" not in page.inner_text("#results table")
    # Units are in the header.
    assert "Die area [µm²]" in page.inner_text("#results thead th[data-col='die_area_um2']")

    # On a desktop the key columns are in view without scrolling, and the page is not widened.
    box = page.locator("#results .table-wrap").bounding_box()
    for column in ("pareto", "drc_magic", "lvs_errors", "wirelength_um"):
        th = page.locator(f"#results thead th[data-col='{column}']").bounding_box()
        assert th["x"] + th["width"] <= box["x"] + box["width"] + 0.5, column
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    shot(page, "metrics-table-desktop", "#results")

    # On a phone the table scrolls inside its box; the task column stays in view.
    page.set_viewport_size(PHONE)
    # The plot follows the new width once Chart.js has seen the resize (a frame or two).
    until(page, "() => document.documentElement.scrollWidth <= window.innerWidth", timeout=5)
    scrolled = page.evaluate(
        """() => {
          const wrap = document.querySelector('#results .table-wrap');
          wrap.scrollLeft = wrap.scrollWidth;
          const first = document.querySelector("#results tbody [data-col='task']");
          return {scroll: wrap.scrollLeft, wrapLeft: wrap.getBoundingClientRect().left,
                  taskLeft: first.getBoundingClientRect().left};
        }"""
    )
    assert scrolled["scroll"] > 0, scrolled
    assert abs(scrolled["taskLeft"] - scrolled["wrapLeft"]) <= 1, scrolled
    shot(page, "metrics-table-phone-scrolled", "#results")


def test_column_chooser_is_remembered(live_portal, open_page, example_repo, monkeypatch):
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "0")
    page, _ = finished_table(live_portal, open_page, example_repo)
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective));"
    )
    chooser = "[data-column-chooser]"
    assert page.is_visible(f"{chooser} > summary")
    # Defaults: cells in the final layout are measured but not shown; wirelength is shown.
    assert not shown(page, "cell_count_final") and shown(page, "wirelength_um")

    page.click(f"{chooser} > summary")
    page.check(f"{chooser} input[data-column='cell_count_final']")
    page.uncheck(f"{chooser} input[data-column='wirelength_um']")
    assert shown(page, "cell_count_final") and not shown(page, "wirelength_um")
    assert cell(page, 0, "cell_count_final") == "1,221"
    page.keyboard.press("Escape")
    assert page.get_attribute(chooser, "open") is None

    # Remembered in this browser: after a reload the choice still holds.
    page.reload()
    page.wait_for_load_state("networkidle")
    assert shown(page, "cell_count_final") and not shown(page, "wirelength_um")
    assert page.is_checked(f"{chooser} input[data-column='cell_count_final']")
    assert not page.is_checked(f"{chooser} input[data-column='wirelength_um']")

    # ... and when htmx swaps the section in again (as the live page does), with the plot
    # drawn: nothing the CSP refuses (htmx would copy the canvas's style attribute back).
    page.evaluate("() => { document.getElementById('results').dataset.old = '1'; }")
    assert page.evaluate(
        "() => !!(window.Chart && Chart.getChart(document.getElementById('pareto-chart')))"
    )
    page.evaluate(
        "() => htmx.ajax('GET', location.pathname + '/results',"
        " {target: '#results', swap: 'outerHTML'})"
    )
    page.wait_for_selector("#results:not([data-old]) [data-column-chooser][data-ready='1']")
    page.wait_for_timeout(300)  # htmx settles swapped attributes after 20 ms
    assert shown(page, "cell_count_final") and not shown(page, "wirelength_um")
    assert page.evaluate("window.__csp") == []
    assert page.console_errors == [], "\n".join(page.console_errors)
