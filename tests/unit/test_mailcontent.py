"""Email content: subjects, the results table with Pareto marks, log tails, escaping, thumbnails.

Metrics are real: the OpenLane 2 ``spm`` run in ``tests/data/openlane`` (and variations of it with
hand-picked area / power / WNS so the Pareto front can be worked out by hand), and OpenLane 1
benchmark rows for the case where power was not measured.
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import gdstk
import pytest
from PIL import Image

from portal.flows.reports import parse_openlane1_csv, parse_openlane2_json
from portal.mail import content
from portal.mail.content import (
    THUMBNAIL_END,
    THUMBNAIL_START,
    build_decision_mail,
    build_submission_mail,
    build_test_mail,
    compress_indices,
    find_layout_gds,
    read_log_tail,
    render_thumbnail,
    strip_thumbnail,
    task_log_path,
    thumbnail_cid,
)
from portal.models import Submission, Task

SITE = "https://portal.example.org/"
UUID = "0b5e4b8e-1111-4000-8000-000000000001"
T0 = datetime(2024, 7, 1, 12, 0, 0)


@pytest.fixture(scope="module")
def spm(openlane_data):
    return parse_openlane2_json(openlane_data / "openlane2" / "spm_metrics.json").to_dict(
        include_raw=False
    )


def metrics(base, **values):
    return {**base, **values}


def write_log(run_dir, name, lines):
    logs = run_dir / "logs"
    logs.mkdir(exist_ok=True)
    (logs / name).write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture
def sweep(spm, tmp_path):
    """Seven tasks. Objectives: min area, min power, max WNS. By hand:
    0 (15000, 1.100 mW, 0)      Pareto: lowest power
    1 (11327.4, 1.107 mW, 0)    Pareto: the real spm run
    2 (9500, 1.150 mW, -0.12)   Pareto: smallest area
    3 (11327.4, 2.1 mW, -0.45)  dominated by 1
    5 (12000, 1.2 mW, 0)        dominated by 1
    4 FAILED, 6 TIMEOUT: no metrics. Best area 2, best power 0, best WNS 0 (tie 0/1/5: lowest).
    """
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_log(run_dir, "4242_4.out", [f"\x1b[31m[STEP {i}]\x1b[0m line {i}" for i in range(30)])
    write_log(run_dir, "4242_4.err", ["[ERROR] routing congestion <overflow>"])
    sub = Submission(
        uuid=UUID,
        name="spm utilisation sweep",
        repo_url="https://github.com/example/spm.git",
        ref="main",
        commit="0123456789abcdef0123456789abcdef01234567",
        state="PARTIAL",
        run_dir=str(run_dir),
    )

    def task(index, util, clock, state="COMPLETED", values=None, **kw):
        return Task(
            index=index,
            params={"FP_CORE_UTIL": util, "CLOCK_PERIOD": clock, "PDK": "sky130A"},
            state=state,
            metrics=metrics(spm, **values) if values is not None else None,
            array_job_id="4242",
            array_index=index,
            **kw,
        )

    sub.tasks = [
        task(
            0,
            30,
            10,
            values=dict(die_area_um2=15000.0, power_total_w=0.00110, setup_wns_ns=0.0),
            started_at=T0,
            ended_at=T0 + timedelta(minutes=5),
        ),  # fmt: skip
        task(1, 40, 10, values={}, started_at=T0, ended_at=T0 + timedelta(minutes=6)),
        task(
            2, 50, 10, values=dict(die_area_um2=9500.0, power_total_w=0.00115, setup_wns_ns=-0.12)
        ),
        task(3, 40, 5, values=dict(power_total_w=0.0021, setup_wns_ns=-0.45)),
        task(
            4,
            60,
            10,
            state="FAILED",
            exit_code=1,
            started_at=T0 + timedelta(minutes=1),
            ended_at=T0 + timedelta(minutes=42, seconds=10),
        ),  # fmt: skip
        task(5, 40, 8, values=dict(die_area_um2=12000.0, power_total_w=0.0012, setup_wns_ns=0.0)),
        task(6, 70, 10, state="TIMEOUT"),
    ]
    return sub


def text_rows(text: str) -> dict[int, str]:
    """Results-table lines of the plain-text part, by task index."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\s*(\d+)\s+\d+\s+\d+\s+(COMPLETED|FAILED)", line)
        if match:
            rows[int(match.group(1))] = line
    return rows


def html_rows(html: str) -> dict[int, str]:
    return {
        int(m.group(1)): m.group(2)
        for m in re.finditer(r'<tr data-task="(\d+)"(.*?)</tr>', html, flags=re.DOTALL)
    }


def test_subject_names_state_and_counts(sweep):
    subject, _, _ = build_submission_mail(sweep, SITE)
    assert subject == "[OpenLane Portal] PARTIAL: spm utilisation sweep (5 of 7 tasks completed)"


def test_text_part_summary(sweep):
    _, text, _ = build_submission_mail(sweep, SITE)
    assert f"Submission:  {UUID}" in text
    assert "Repository:  https://github.com/example/spm.git" in text
    assert "Ref:         main (commit 0123456789ab)" in text
    assert "Tasks:       COMPLETED 5, FAILED 1, TIMEOUT 1" in text
    assert "Wall time:   0:42:10 (2024-07-01 12:00 to 2024-07-01 12:42 UTC)" in text
    assert f"Details:     https://portal.example.org/submissions/{UUID}" in text
    assert "Pareto front over area (min), power (min), WNS (max)." in text


def test_text_table_marks_pareto_and_bests(sweep):
    _, text, _ = build_submission_mail(sweep, SITE)
    rows = text_rows(text)
    assert sorted(rows) == [0, 1, 2, 3, 5]  # failed tasks have no results row
    assert rows[0].endswith("Pareto, best power, best WNS")
    assert rows[1].endswith("Pareto")
    assert rows[2].endswith("Pareto, best area")
    assert "Pareto" not in rows[3] and "best" not in rows[3]
    assert "Pareto" not in rows[5] and "best" not in rows[5]
    # Swept parameters only (PDK is the same everywhere), units in the headers.
    header = next(line for line in text.splitlines() if line.startswith("#  "))
    assert header.split()[:3] == ["#", "FP_CORE_UTIL", "CLOCK_PERIOD"]
    assert "PDK" not in header
    for unit in ("Area (µm²)", "WNS (ns)", "Power (mW)"):
        assert unit in header
    # The real spm values: 11,327 µm² die, 3,596 µm² of cells, 451 cells, 1.107 mW.
    assert re.search(r"11,327\s+3,596\s+451\s+0\.000\s+1\.107\s+0\b", rows[1])
    assert all(len(line) < 140 for line in text.splitlines())


def test_html_rows_mark_pareto_and_bests(sweep):
    _, _, html = build_submission_mail(sweep, SITE)
    rows = html_rows(html)
    assert sorted(rows) == [0, 1, 2, 3, 5]
    pareto = {i for i, row in rows.items() if "&#9670; Pareto" in row}
    assert pareto == {0, 1, 2}
    assert "best area" in rows[2] and "best area" not in rows[0]
    assert "best power" in rows[0] and "best WNS" in rows[0]
    assert "best" not in rows[3] and "best" not in rows[5]
    assert "background-color:#eef6ff" in rows[1] and "#eef6ff" not in rows[3]
    assert "11,327" in rows[1] and "1.107" in rows[1]
    assert f'href="https://portal.example.org/submissions/{UUID}"' in html
    assert "<style" not in html  # inline CSS only


def test_failed_tasks_show_the_log_tail(sweep):
    _, text, html = build_submission_mail(sweep, SITE)
    assert "FAILED TASKS: 4, 6" in text
    assert "Task 4: FAILED, exit code 1, last lines of logs/4242_4.out:" in text
    for i in range(15, 30):
        assert f"  | [STEP {i}] line {i}" in text
        assert f"[STEP {i}] line {i}" in html
    assert "[STEP 14]" not in text and "[STEP 14]" not in html
    assert "\x1b" not in text and "\x1b" not in html
    assert "  | [ERROR] routing congestion <overflow>" in text  # stderr tail follows
    assert "routing congestion &lt;overflow&gt;" in html
    assert "Task 6: TIMEOUT, no Slurm log found" in text
    assert "No Slurm log was found for this task." in html


def test_each_slurm_failure_state_says_what_it_means(sweep):
    sweep.resources = {"time_minutes": 90, "mem_mb": 4096}
    sweep.tasks[6].state, sweep.tasks[4].state = "TIMEOUT", "OUT_OF_MEMORY"
    _, text, html = build_submission_mail(sweep, SITE)
    assert (
        "  (Slurm stopped it at its time limit (1:30:00): resubmit it with a longer time)" in text
    )
    assert "  (Slurm stopped it for using more than its memory (4096 MB): resubmit it" in text
    assert "Slurm stopped it at its time limit (1:30:00)" in html
    sweep.tasks[4].state = "FAILED"  # the design's own failure: no Slurm explanation
    _, text, _ = build_submission_mail(sweep, SITE)
    assert "memory" not in text
    assert content.state_hint("NODE_FAIL", {}) == (
        "the node it ran on failed, not the design: resubmit it"
    )


def test_everything_user_supplied_is_escaped_in_html(sweep):
    sweep.name = 'evil <script>alert("n")</script>'
    sweep.repo_url = "https://example.org/<img src=x onerror=alert(1)>.git"
    sweep.tasks[1].params["FP_CORE_UTIL"] = "<script>p</script>"
    write_log(Path(sweep.run_dir), "4242_4.out", ["</pre><script>log</script>"])
    subject, text, html = build_submission_mail(sweep, SITE)
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;" in html
    assert "&lt;script&gt;p&lt;/script&gt;" in html
    assert "&lt;/pre&gt;&lt;script&gt;log&lt;/script&gt;" in html
    # The plain-text part shows them as typed; the subject is one line.
    assert '<script>alert("n")</script>' in text and "\n" not in subject


def test_control_characters_never_reach_the_subject(sweep):
    sweep.name = "line one\r\nBcc: victim@example.org"
    subject, _, _ = build_submission_mail(sweep, SITE)
    assert "\n" not in subject and "\r" not in subject
    assert "line one Bcc: victim@example.org" in subject


def test_at_most_fifty_rows_and_marked_rows_are_kept(spm):
    sub = Submission(uuid=UUID, name="big", repo_url="r", ref="main", state="COMPLETED")
    sub.tasks = [
        Task(
            index=i,
            params={"FP_CORE_UTIL": 20 + i},
            state="COMPLETED",
            # area grows with i, so the smallest area (Pareto, best) would be index 0 ...
            metrics=metrics(spm, die_area_um2=10000.0 + i, power_total_w=0.002, setup_wns_ns=-1.0),
        )
        for i in range(120)
    ]
    # ... but index 100 has the lowest power and the best WNS: it must be shown too.
    sub.tasks[100].metrics = metrics(spm, die_area_um2=20000.0, power_total_w=0.001, setup_wns_ns=0)
    _, text, html = build_submission_mail(sub, SITE)
    shown = sorted(html_rows(html))
    assert len(shown) == 50
    assert 0 in shown and 100 in shown
    assert shown[:49] == list(range(49)) and shown[-1] == 100
    assert "... and 70 more tasks with results, listed in the portal." in text
    assert "and 70 more tasks with results" in html
    assert (
        len([line for line in text.splitlines() if re.match(r"\s*\d+\s+\d+\s+COMPLETED", line)])
        == 50
    )


def test_objectives_without_data_are_left_out(openlane_data):
    """OpenLane 1 benchmark rows have no power: the front is over area and WNS only."""
    rows = parse_openlane1_csv(openlane_data / "openlane1/metrics/2024-07_sky130_fd_sc_hd.csv")
    by_design = {r.design: r for r in rows}
    picked = [by_design[d] for d in ("spm", "gcd", "inverter", "usb")]
    assert all(p.power_total_w is None for p in picked)
    sub = Submission(uuid=UUID, name="ol1", repo_url="r", ref="main", state="COMPLETED")
    sub.tasks = [
        Task(
            index=i,
            params={"DESIGN": f.design},
            state="COMPLETED",
            metrics=f.to_dict(include_raw=False),
        )  # fmt: skip
        for i, f in enumerate(picked)
    ]
    _, text, html = build_submission_mail(sub, SITE)
    assert "Pareto front over area (min), WNS (max)." in text
    # All four meet timing (WNS 0), so only the smallest die (inverter, 1,971 µm²) is Pareto.
    marked = {i for i, row in html_rows(html).items() if "&#9670; Pareto" in row}
    assert marked == {2}
    assert "1,971" in html_rows(html)[2]


def test_no_results_at_all():
    sub = Submission(uuid=UUID, name="", repo_url="r", ref="main", state="FAILED")
    sub.tasks = [Task(index=0, params={}, state="FAILED", exit_code=2)]
    subject, text, html = build_submission_mail(sub, SITE)
    assert subject == "[OpenLane Portal] FAILED: submission 0b5e4b8e (0 of 1 tasks completed)"
    assert "No task produced results." in text and "No task produced results." in html
    assert "Task 0: FAILED, exit code 2, no Slurm log found" in text


def test_cancelled_tasks_are_listed(spm):
    sub = Submission(uuid=UUID, name="c", repo_url="r", ref="main", state="CANCELLED")
    sub.tasks = [Task(index=0, params={}, state="COMPLETED", metrics=spm)] + [
        Task(index=i, params={}, state="CANCELLED") for i in (1, 2, 3, 7)
    ]
    _, text, html = build_submission_mail(sub, SITE)
    assert "Cancelled tasks: 1-3, 7" in text and "Cancelled tasks: 1-3, 7" in html
    assert "FAILED TASKS" not in text


def test_compress_indices():
    assert compress_indices([]) == ""
    assert compress_indices([5]) == "5"
    assert compress_indices([8, 0, 1, 2, 5, 7, 2]) == "0-2, 5, 7-8"


# --------------------------------------------------------------------------- log lookup


def test_log_lookup_uses_array_job_id_and_array_index(tmp_path):
    write_log(tmp_path, "900_3.out", ["chunk log"])
    task = Task(index=1003, array_job_id="900", array_index=3)  # a chunk with offset 1000
    assert task_log_path(tmp_path, task) == tmp_path / "logs" / "900_3.out"
    assert task_log_path(tmp_path, Task(index=3, array_job_id="901", array_index=3)) is None


def test_log_lookup_without_job_id_takes_the_newest_match(tmp_path):
    write_log(tmp_path, "100_2.out", ["old"])
    write_log(tmp_path, "200_2.out", ["new"])
    write_log(tmp_path, "200_12.out", ["other task"])
    os.utime(tmp_path / "logs" / "100_2.out", (1_000_000, 1_000_000))
    assert task_log_path(tmp_path, Task(index=2)) == tmp_path / "logs" / "200_2.out"


def test_log_lookup_tolerates_missing_things(tmp_path):
    assert task_log_path(None, Task(index=0)) is None
    assert task_log_path(tmp_path / "nope", Task(index=0)) is None
    assert task_log_path(tmp_path, Task(index=0)) is None
    write_log(tmp_path, "1_0.out", ["x"])
    # A job id that is not a number is never used to build a path: the lookup falls back to
    # the <digits>_<index>.out pattern inside logs/.
    bad = Task(index=0, array_job_id="../../etc/passwd")
    assert task_log_path(tmp_path, bad) == tmp_path / "logs" / "1_0.out"


def test_read_log_tail(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"a\r\nb\r\n\x1b[1;32mgreen\x1b[0m\x07\n\xff\xfebad bytes\n\n\n")
    assert read_log_tail(path) == ["a", "b", "green", "\ufffd\ufffdbad bytes"]
    assert read_log_tail(path, lines=2) == ["green", "\ufffd\ufffdbad bytes"]
    assert read_log_tail(tmp_path / "missing") == []
    big = tmp_path / "big"
    big.write_text("".join(f"line {i}\n" for i in range(200_000)))
    assert read_log_tail(big, lines=3) == ["line 199997", "line 199998", "line 199999"]


# --------------------------------------------------------------------------- thumbnail


def write_gds(path, width=40.0):
    path.parent.mkdir(parents=True, exist_ok=True)
    lib = gdstk.Library()
    top = lib.new_cell("spm")
    top.add(gdstk.rectangle((0, 0), (width, 30), layer=68, datatype=20))
    top.add(gdstk.rectangle((5, 5), (10, 25), layer=69, datatype=20))
    lib.write_gds(str(path))


def test_find_layout_gds_openlane1_and_2(tmp_path):
    assert find_layout_gds(tmp_path, 0) is None
    ol1 = tmp_path / "tasks/0/runs/RUN_2024.07.01/results/final/gds/spm.gds"
    write_gds(ol1)
    assert find_layout_gds(tmp_path, 0) == ol1
    ol2 = tmp_path / "tasks/3/runs/RUN_2024-07-01/final/gds/spm.gds"
    write_gds(ol2)
    assert find_layout_gds(tmp_path, 3) == ol2
    assert find_layout_gds(None, 3) is None


def test_thumbnail_of_the_smallest_area_task(sweep):
    run_dir = Path(sweep.run_dir)
    # Task 1's GDS exists but task 2 has the smallest area: no thumbnail yet.
    write_gds(run_dir / "tasks/1/runs/t/final/gds/spm.gds")
    _, text, html = build_submission_mail(sweep, SITE)
    assert "cid:" not in html and THUMBNAIL_START not in html
    assert render_thumbnail(sweep) is None
    write_gds(run_dir / "tasks/2/runs/t/results/final/gds/spm.gds")
    _, text, html = build_submission_mail(sweep, SITE)
    cid = thumbnail_cid(UUID)
    assert f'src="cid:{cid}"' in html
    assert html.count(THUMBNAIL_START) == 1 and html.count(THUMBNAIL_END) == 1
    assert "layout of task 2 (smallest die area)" in text
    found = render_thumbnail(sweep)
    assert found is not None and found[0] == cid
    image = Image.open(io.BytesIO(found[1]))
    assert image.format == "PNG" and image.size == content.THUMBNAIL_SIZE
    stripped = strip_thumbnail(html)
    assert "cid:" not in stripped and "Layout of task" not in stripped
    assert "Open the submission" in stripped and "Results" in stripped


def test_unreadable_gds_gives_no_thumbnail(sweep):
    bad = Path(sweep.run_dir) / "tasks/2/runs/t/final/gds/spm.gds"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a gds")
    assert render_thumbnail(sweep) is None


# --------------------------------------------------------------------------- other mails


@pytest.mark.parametrize("approved", [True, False])
def test_decision_mail(approved):
    sub = Submission(
        uuid=UUID,
        name="huge <sweep>",
        repo_url="https://example.org/r.git",
        ref="v1",
        n_tasks=4000,
        cost_core_hours=1234.5,
        decision_reason="4,000 tasks is over the\nlimit; <b>split</b> it",
    )
    subject, text, html = build_decision_mail(sub, approved, SITE)
    verdict = "approved" if approved else "rejected"
    assert subject == f"[OpenLane Portal] Submission {verdict}: huge <sweep>"
    assert "  4,000 tasks is over the\n  limit; <b>split</b> it" in text
    assert "4,000 tasks is over the\nlimit; &lt;b&gt;split&lt;/b&gt; it" in html
    assert "4000 tasks, about 1234.5 core-hours" in text
    assert "huge &lt;sweep&gt;" in html and "<sweep>" not in html
    assert f"https://portal.example.org/submissions/{UUID}" in text
    assert ("Nothing will run" in text) is not approved


def test_decision_mail_without_reason():
    sub = Submission(uuid=UUID, name="n", repo_url="r", ref="main", n_tasks=1)
    _, text, html = build_decision_mail(sub, False, SITE)
    assert "No reason was given." in text and "No reason was given." in html


def test_test_mail():
    subject, text, html = build_test_mail("https://p.example.org", "smtp.example.org:587")
    assert subject == "[OpenLane Portal] Test email"
    assert "smtp.example.org:587" in text and "smtp.example.org:587" in html


def test_a_flow_cut_after_synthesis_says_so_and_shows_what_synthesis_measured(tmp_path):
    """LibreLane stopped after synthesis: the note, cell area and synthesis cells; no empty
    layout columns; a failed task shows the flow's own errors."""
    synth = {
        "cell_area_um2": 431.664,
        "cell_count_synth": 37,
        "setup_wns_ns": 0.0,
        "power_total_w": 1.05e-05,
    }
    sub = Submission(
        uuid=UUID,
        name="counter",
        repo_url="git://example.org/counter.git",
        ref="main",
        state="PARTIAL",
        run_dir=str(tmp_path),
        flow_note="LibreLane stops after synthesis on this cluster",
    )
    sub.tasks = [
        Task(index=0, params={"SYNTH_STRATEGY": "AREA 0"}, state="COMPLETED", metrics=synth),
        Task(
            index=1,
            params={"SYNTH_STRATEGY": "DELAY 0"},
            state="FAILED",
            exit_code=2,
            metrics={"errors": ["1 Lint errors found.", "%Error: src/counter.v:12:30: oops"]},
        ),
    ]
    _subject, text, html = build_submission_mail(sub, SITE)
    assert "Flow:        LibreLane stops after synthesis on this cluster" in text
    assert "LibreLane stops after synthesis on this cluster" in html
    header = next(line for line in text.splitlines() if line.startswith("#  "))
    assert "Cell area (µm²)" in header and "Cells" in header
    assert "Area (µm²)" not in header.replace("Cell area (µm²)", "")  # no die area column
    assert "DRC" not in header and "Runtime" not in header
    assert re.search(r"^0\s+AREA 0\s+COMPLETED\s+432\s+37\s+0\.000\s+0\.010", text, re.M)
    assert "Pareto front over cell area (min)" in text
    assert "The flow reported:" in text and "! %Error: src/counter.v:12:30: oops" in text
    assert "%Error: src/counter.v:12:30: oops" in html
