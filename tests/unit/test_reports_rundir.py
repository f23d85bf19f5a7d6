"""Run-directory discovery and flow status, on layouts built from the real report files."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from portal.flows.reports import (
    MAX_ERROR_LINES,
    find_run_dir,
    parse_path,
    parse_run_dir,
    run_errors,
    status_from_log,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data" / "openlane"
CURRENT = DATA / "openlane1" / "metrics" / "2024-07_sky130_fd_sc_hd.csv"
OLD_2021 = DATA / "openlane1" / "metrics" / "2021-08_sky130_fd_sc_hdll.csv"
SPM_METRICS = DATA / "openlane2" / "spm_metrics.json"

OL1_RUNTIME_YAML = """\
- status: 0 - openlane design prep
  runtime_s: 1.42
  runtime_ts: 0h0m1s420ms
- status: 1 - synthesis - yosys
  runtime_s: 9.8
  runtime_ts: 0h0m9s800ms
---
- status: routed
  runtime_s: 52.0
  runtime_ts: 0h0m52s0ms
- status: {status}
  runtime_s: {seconds}
  runtime_ts: 0h1m10s0ms
"""
OL2_STEP_RUNTIMES = {
    "01-verilator-lint": "00:00:01.500",
    "06-yosys-synthesis": "00:00:20.250",
    "41-openroad-detailedrouting": "00:00:48.000",
}


def _metrics_csv(source: Path, design: str) -> str:
    """A run's metrics.csv: the header and one real row (without a pandas index column)."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        row = next(r for r in reader if r["design_name"] == design)
        header = [h for h in reader.fieldnames if h]
    return ",".join(header) + "\n" + ",".join(row[h] for h in header) + "\n"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ol1_run(run: Path, design: str = "spm", source: Path = CURRENT, **files: str) -> Path:
    report = "final_summary_report.csv" if source == OLD_2021 else "metrics.csv"
    _write(run / "reports" / report, _metrics_csv(source, design))
    for name, text in files.items():
        _write(run / name.replace("__", "."), text)
    return run


def ol2_run(run: Path, *, final: bool = True, steps: bool | int = True, **files: str) -> Path:
    """An OpenLane 2 run dir; ``steps`` = True for three timed steps, or a number of steps."""
    run.mkdir(parents=True, exist_ok=True)
    if final:
        (run / "final").mkdir()
        shutil.copyfile(SPM_METRICS, run / "final" / "metrics.json")
    _write(run / "resolved.json", json.dumps({"DESIGN_NAME": "spm", "CLOCK_PERIOD": 10.0}))
    step_runtimes = OL2_STEP_RUNTIMES
    if steps is not True:
        step_runtimes = {f"{i:02d}-step": "00:00:01.000" for i in range(steps)}
    for step, runtime in step_runtimes.items():
        _write(run / step / "runtime.txt", runtime)
    for name, text in files.items():
        _write(run / name.replace("__", "."), text)
    return run


def test_openlane1_metrics_csv_from_run_dir_and_from_task_dir(tmp_path):
    run = ol1_run(tmp_path / "task" / "runs" / "RUN_2024.07.18_10.00.00")
    for where in (run, tmp_path / "task"):
        rec = parse_run_dir(where)
        assert rec.flow == "openlane1" and rec.design == "spm"
        assert rec.flow_status == "completed"
        assert rec.die_area_um2 == pytest.approx(11465.2545)
        assert rec.runtime_seconds == 70.0
        assert rec.source == str(run / "reports" / "metrics.csv")
    assert find_run_dir(tmp_path / "task") == run


def test_openlane1_pre_2022_final_summary_report(tmp_path):
    run = ol1_run(tmp_path / "runs" / "tag", design="picorv32a", source=OLD_2021)
    rec = parse_run_dir(tmp_path)
    assert rec.flow == "openlane1" and rec.design == "picorv32a"
    assert rec.flow_status == "completed" and rec.runtime_seconds == 40 * 60 + 36
    assert rec.setup_wns_ns == -1.99
    assert rec.source == str(run / "reports" / "final_summary_report.csv")


def test_openlane1_without_metrics_takes_status_and_runtime_from_runtime_yaml(tmp_path):
    run = tmp_path / "runs" / "tag"
    _write(run / "runtime.yaml", OL1_RUNTIME_YAML.format(status="flow failed", seconds=70.0))
    rec = parse_run_dir(tmp_path)
    assert rec.flow == "openlane1"
    assert rec.flow_status == "failed" and rec.runtime_seconds == 70.0
    assert rec.die_area_um2 is None


def test_openlane1_without_metrics_reads_the_end_of_openlane_log(tmp_path):
    log = "[INFO]: Running Synthesis...\n[ERROR]: Synthesis failed.\n[ERROR]: Flow failed.\n"
    _write(tmp_path / "openlane.log", log)
    rec = parse_run_dir(tmp_path)
    assert (rec.flow, rec.flow_status) == ("openlane1", "failed")


def test_openlane1_unconcluded_run_is_unknown(tmp_path):
    _write(tmp_path / "openlane.log", "[INFO]: Running Placement...\n")
    assert parse_run_dir(tmp_path).flow_status == "unknown"


def test_openlane2_final_metrics_with_resolved_config_and_step_runtimes(tmp_path):
    run = ol2_run(tmp_path / "task" / "runs" / "RUN_2024-07-18_10-00-00")
    for where in (run, tmp_path / "task"):
        rec = parse_run_dir(where, step_runtimes=True)
        assert rec.flow == "openlane2" and rec.design == "spm"
        assert rec.flow_status == "completed"  # final/ is written only after the last step
        assert rec.clock_period_ns == 10.0 and rec.suggested_frequency_mhz == 100.0
        assert rec.runtime_seconds == pytest.approx(1.5 + 20.25 + 48.0)
        assert rec.die_area_um2 == 11327.4 and rec.setup_ws_ns == 5.973317
        assert rec.source == str(run / "final" / "metrics.json")
    assert parse_run_dir(run).runtime_seconds is None  # step files are read only on request
    (from_cli,) = parse_path(run)
    assert from_cli.runtime_seconds == pytest.approx(69.75)


def test_openlane2_runtime_yaml_gives_status_and_runtime(tmp_path):
    yaml_text = OL1_RUNTIME_YAML.format(status="flow completed", seconds=70.0)
    ol2_run(tmp_path, runtime__yaml=yaml_text)
    rec = parse_run_dir(tmp_path)
    assert rec.flow == "openlane2"
    assert (rec.flow_status, rec.runtime_seconds) == ("completed", 70.0)


def test_openlane2_failed_run_flow_log_ends_with_an_error(tmp_path):
    log = (
        "[10:00:01] INFO     Starting a new run of the 'Classic' flow\n"
        "[10:02:10] ERROR    [Checker.LVS] 2 LVS errors found.\n"
        "[10:02:10] ERROR    The following error was encountered while running the flow:\n"
    )
    ol2_run(tmp_path, final=False, flow__log=log)
    rec = parse_run_dir(tmp_path, step_runtimes=True)
    assert (rec.flow, rec.design, rec.flow_status) == ("openlane2", "spm", "failed")
    assert rec.die_area_um2 is None
    assert rec.runtime_seconds == pytest.approx(69.75)


def test_openlane2_without_final_or_verdict_is_unknown(tmp_path):
    ol2_run(tmp_path, final=False, steps=False, flow__log="[10:00:01] INFO     Running\n")
    rec = parse_run_dir(tmp_path, step_runtimes=True)
    assert (rec.flow, rec.flow_status, rec.runtime_seconds) == ("openlane2", "unknown", None)


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("[SUCCESS]: Flow complete.\n", "completed"),
        ("[ERROR]: Flow failed.\n", "failed"),
        ("[10:00] ERROR x\n[10:05] SUCCESS Flow complete.\n", "completed"),
        ("Flow complete.\nTraceback (most recent call last):\n", "failed"),
        ("[INFO]: Running routing\n", "unknown"),
        ("", "unknown"),
    ],
)
def test_status_from_log_last_verdict_wins(text, status):
    assert status_from_log(text) == status


def test_newest_tag_is_chosen(tmp_path):
    old = ol1_run(tmp_path / "runs" / "RUN_old", design="gcd")
    new = ol1_run(tmp_path / "runs" / "RUN_new", design="spm")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    os.utime(new, (2_000_000_000, 2_000_000_000))
    assert parse_run_dir(tmp_path).design == "spm"
    os.utime(old, (3_000_000_000, 3_000_000_000))
    assert parse_run_dir(tmp_path).design == "gcd"


def test_task_console_log_does_not_hide_the_run_below(tmp_path):
    _write(tmp_path / "flow.log", "task started\nERROR: something on the console\n")
    run = ol1_run(tmp_path / "runs" / "tag")
    assert find_run_dir(tmp_path) == run
    assert parse_run_dir(tmp_path).flow_status == "completed"


def test_no_run_found(tmp_path):
    assert parse_run_dir(tmp_path) is None
    assert parse_path(tmp_path) == []
    (tmp_path / "runs" / "empty-tag").mkdir(parents=True)
    assert parse_run_dir(tmp_path) is None
    assert parse_run_dir(tmp_path / "does-not-exist") is None


def test_parse_path_on_run_dir_and_errors(tmp_path):
    ol2_run(tmp_path / "run")
    (rec,) = parse_path(tmp_path / "run")
    assert rec.flow == "openlane2"
    with pytest.raises(FileNotFoundError):
        parse_path(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="unsupported"):
        parse_path(_write(tmp_path / "notes.txt", "hello"))


def test_a_thousand_finished_task_dirs_of_both_flows_all_parse(tmp_path):
    with CURRENT.open(newline="", encoding="utf-8") as handle:
        designs = [row["design_name"] for row in csv.DictReader(handle)]
    metrics_csv = {d: _metrics_csv(CURRENT, d) for d in designs}
    yaml_text = OL1_RUNTIME_YAML.format(status="flow completed", seconds=70.0)
    task_dirs = []
    for i in range(1000):
        run = tmp_path / f"{i}" / "runs" / "tag"
        if i % 2:
            ol2_run(run, steps=0)
            _write(run / "flow.log", "[10:00:01] INFO  Flow complete.\n")
        else:
            _write(run / "reports" / "metrics.csv", metrics_csv[designs[i % len(designs)]])
            _write(run / "runtime.yaml", yaml_text)
        task_dirs.append(tmp_path / f"{i}")

    records = [parse_run_dir(task) for task in task_dirs]  # speed: benchmarks/bench_reports.py

    assert all(r is not None and r.flow_status == "completed" for r in records)
    assert sum(r.flow == "openlane2" for r in records) == 500


def _failed_librelane_run(root: Path) -> Path:
    """The layout LibreLane leaves when Verilator finds a syntax error (recorded by hand)."""
    run = root / "runs" / "task-0000"
    lint = run / "01-verilator-lint"
    lint.mkdir(parents=True)
    (lint / "verilator-lint.log").write_text(
        "%Error: /r/tasks/0/design/src/counter.v:12:30: syntax error, unexpected ';'\n"
        "        : ... Perhaps 'count' is a package\n"
        "%Error: Exiting due to 1 error(s)\n"
    )
    (run / "02-checker-linttimingconstructs").mkdir()
    (run / "03-checker-linterrors").mkdir()
    (run / "resolved.json").write_text('{"DESIGN_NAME": "counter", "CLOCK_PERIOD": 10}')
    (run / "flow.log").write_text("Running 'Checker.LintErrors'...\n1 Lint errors found.\n")
    (run / "error.log").write_text("1 Lint errors found.\n")
    return run


def test_a_failed_librelane_run_is_failed_with_its_errors(tmp_path):
    run = _failed_librelane_run(tmp_path)
    features = parse_run_dir(tmp_path)
    assert features.flow_status == "failed" and features.design == "counter"
    assert features.errors == [
        "1 Lint errors found.",
        "%Error: /r/tasks/0/design/src/counter.v:12:30: syntax error, unexpected ';'",
        "%Error: Exiting due to 1 error(s)",
    ]
    assert run_errors(run) == features.errors


def test_an_empty_error_log_is_not_a_failure(tmp_path):
    run = _failed_librelane_run(tmp_path)
    (run / "error.log").write_text("")
    (run / "flow.log").write_text("Flow complete.\n")
    features = parse_run_dir(tmp_path)
    assert features.flow_status == "completed" and features.errors == []


def test_errors_are_capped(tmp_path):
    run = _failed_librelane_run(tmp_path)
    (run / "error.log").write_text("".join(f"problem {i}\n" for i in range(50)))
    assert len(run_errors(run)) == MAX_ERROR_LINES


def test_a_run_cut_short_takes_the_layout_of_the_flow_that_ran(tmp_path):
    """A timed-out OpenLane 1 task has logs but no report yet: it is not an OpenLane 2 run."""
    run = tmp_path / "runs" / "task-0003"
    run.mkdir(parents=True)
    (run / "flow.log").write_text("[STEP 12] Running global routing...\n")
    assert parse_run_dir(tmp_path).flow == "openlane2"  # guessed from the files alone
    assert parse_run_dir(tmp_path, flow="openlane1").flow == "openlane1"
    assert parse_run_dir(tmp_path, flow="librelane").flow == "openlane2"
