"""A designer submits a sweep from a git URL in a real browser and follows it to the end: live
tasks table, Pareto plot, layout preview and GDS download, on the real cluster."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Submission
from portal.runfolder import RunFolder
from tests.e2e.conftest import shot
from tests.e2e.steps import (
    LIVE_SNAPSHOT,
    MARK_SCRIPT,
    SubmitForm,
    all_in,
    fill_submit_form,
    open_submit_form,
    register,
    submit,
    track_navigations,
    until,
    wait_estimate,
    watch,
)

pytestmark = pytest.mark.cluster

CHART_SNAPSHOT = """() => {
  const canvas = document.getElementById('pareto-chart');
  const chart = window.Chart && canvas ? window.Chart.getChart(canvas) : null;
  if (!chart) return null;
  const sets = {};
  chart.data.datasets.forEach(d => { sets[d.label] = d.data.map(p => [p.index, p.x, p.y]); });
  return {x: chart.options.scales.x.title.text, y: chart.options.scales.y.title.text, sets};
}"""

# Pixels of the canvas in the Pareto front's colour (#0e7c86): the front was really drawn.
FRONT_PIXELS = """() => {
  const canvas = document.getElementById('pareto-chart');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - 14) < 8 && Math.abs(data[i + 1] - 124) < 8
        && Math.abs(data[i + 2] - 134) < 8 && data[i + 3] > 200) n++;
  }
  return {n, width: canvas.width, height: canvas.height};
}"""


def test_submit_sweep_and_watch_it_finish(live_portal, page, example_repo, monkeypatch):
    # Each task runs ~6 s and at most 2 at once, so the table has something to show while
    # the first pair has finished and the second still runs.
    monkeypatch.setenv("OPENLANE_STANDIN_SECONDS", "6")
    register(page, live_portal, "ada")
    open_submit_form(page, live_portal)
    form = SubmitForm(
        repo_url=example_repo,
        sweep=[("CLOCK_PERIOD", "10, 20"), ("FP_CORE_UTIL", "30, 50")],
        name="counter timing sweep",
        throttle=2,
    )
    fill_submit_form(page, form)
    wait_estimate(page, points=4)
    estimate = page.inner_text("#estimate")
    assert "4 points" in " ".join(estimate.split())
    assert "(2 × 2)" in estimate
    # 4 tasks x 1 CPU x 10 min
    assert page.get_attribute("#estimate .estimate", "data-core-hours") == "0.67"
    shot(page, "submit-form-filled")

    page.click("#preview-button")
    preview = page.wait_for_selector("#preview pre.sbatch-preview")
    script = preview.inner_text()
    assert "#SBATCH --array=0-3%2" in script
    assert "#SBATCH --mem=512M" in script
    assert "#SBATCH --time=10" in script
    assert "#SBATCH --partition=debug" in script
    shot(page, "submit-sbatch-preview")

    uuid = submit(page)
    assert "was submitted: 4 task(s)" in page.inner_text(".flashes")
    url = page.url
    navigations = track_navigations(page)
    page.evaluate(MARK_SCRIPT)
    first = page.evaluate(f"({LIVE_SNAPSHOT})()")
    assert first["final"] == "0" and "COMPLETED" not in first["tasks"]
    shot(page, "submission-running")

    seen = watch(page, LIVE_SNAPSHOT, all_in("COMPLETED", 4), navigations, timeout=120)

    # Until the array ended the page was never replaced: htmx swapped the tasks table in
    # place, and the table showed tasks finishing while others still ran.
    live = seen.marked()
    assert len({tuple(s["tasks"]) for s in live}) >= 2, live
    assert any(0 < s["tasks"].count("COMPLETED") < 4 for s in live), live
    # When the array ends, the state chip and the metrics section are swapped in out of band:
    # no navigation at all, not even a self-refresh.
    assert seen.navigations == [], seen.navigations
    assert all(s["marker"] for s in seen.snapshots), "the page was replaced"
    assert page.url == url
    assert page.get_attribute("#live", "data-final") == "1"
    assert page.get_attribute("#live", "hx-trigger") is None  # polling stopped
    assert page.get_attribute("#submission-state", "data-state") == "COMPLETED"
    shot(page, "submission-completed")

    # ------------------------------------------------------------------ the Pareto plot
    page.locator("#results").scroll_into_view_if_needed()
    until(page, f"() => ({CHART_SNAPSHOT})() !== null")
    assert page.evaluate("window.__noReload") == 1  # the plot arrived into the same document
    axes = page.eval_on_selector_all("#chart-x option", "os => os.map(o => o.value)")
    assert len(axes) >= 3, axes
    default_x = page.input_value("#chart-x")
    default_y = page.input_value("#chart-y")
    x, y = [name for name in axes if name not in (default_x, default_y)][:2]
    # The answer to the first change (y) is held back until the second (x) has been answered:
    # the stale answer arrives last and must not be drawn.
    held: list = []

    def answer_out_of_order(route) -> None:  # noqa: ANN001 - Playwright Route
        if not held:
            held.append((route, route.fetch()))
            return
        route.fulfill(response=route.fetch())
        first, answer = held[0]
        first.fulfill(response=answer)

    page.route("**/results.json?*", answer_out_of_order)
    page.select_option("#chart-y", y)
    for _ in range(100):  # the first request reaches the route before the second is made
        if held:
            break
        page.wait_for_timeout(50)
    page.select_option("#chart-x", x)
    expected = page.request.get(live_portal.at(f"/submissions/{uuid}/results.json?x={x}&y={y}"))
    assert expected.ok
    payload = expected.json()
    assert len(payload["rows"]) == 4 and payload["pareto"]
    label_x = payload["fields"][x]["label"]
    until(
        page,
        f"(label) => {{ const s = ({CHART_SNAPSHOT})(); return s && s.x.startsWith(label); }}",
        label_x,
    )
    page.wait_for_timeout(500)  # the stale answer has arrived by now; it must change nothing
    page.unroute("**/results.json?*")
    assert len(held) == 1  # the out-of-order path really ran
    chart = page.evaluate(f"({CHART_SNAPSHOT})()")
    assert chart["x"].startswith(label_x)  # still the latest choice after the stale answer
    front = chart["sets"]["Pareto front"]
    others = chart["sets"]["Other tasks"]
    assert sorted(p[0] for p in front) == sorted(payload["pareto"])
    assert len(front) + len(others) == 4
    by_index = {row["index"]: row["metrics"] for row in payload["rows"]}
    for index, px, py in front + others:
        assert (px, py) == (by_index[index][x], by_index[index][y])
    assert chart["y"].startswith(payload["fields"][y]["label"])
    drawn = page.evaluate(FRONT_PIXELS)
    assert drawn["n"] > 20, drawn
    shot(page, "submission-pareto-plot", "#results .chart-box")

    # ------------------------------------------------------------------ one task: layout, GDS
    page.click("#live .task-row[data-index='1'] a.task-link")
    page.wait_for_selector("#task-panel[data-index='1']")
    image = page.locator("#task-panel img.layout-preview")
    image.scroll_into_view_if_needed()
    until(
        page,
        "() => { const i = document.querySelector('#task-panel img.layout-preview');"
        " return i && i.complete && i.naturalWidth > 0; }",
    )
    assert image.evaluate("i => i.naturalWidth") > 0
    shot(page, "task-layout-preview")

    with page.expect_download() as info:
        page.click("#task-panel a.download-gds")
    download = info.value
    assert download.suggested_filename.endswith(".gds")
    with live_portal.app.app_context():
        submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        gds = RunFolder(submission.run_dir).final_gds(1)
    assert gds is not None
    with open(download.path(), "rb") as got:
        assert got.read() == gds.read_bytes()

    assert page.console_errors == [], "\n".join(page.console_errors)
