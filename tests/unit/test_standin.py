"""The OpenLane stand-in (a test double), driven exactly as an array task drives the flow."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import gdstk
import pytest

from portal.flows.base import Flow, task_tag
from portal.flows.openlane1 import OpenLane1
from portal.flows.openlane2 import OpenLane2
from portal.flows.reports import parse_run_dir
from portal.shell import shjoin, shquote

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data" / "openlane"
CONFIGS = DATA / "openlane1" / "configs"
OL1_SOURCE = DATA / "openlane1" / "metrics" / "2024-07_sky130_fd_sc_hd.csv"
OL2_SOURCE = DATA / "openlane2" / "spm_metrics.json"
STANDIN = REPO_ROOT / "tests" / "standin" / "openlane_standin.py"
SETTINGS = {
    "FLOW_EXECUTABLE_OVERRIDE": str(STANDIN),
    "PDK_ROOT": "/apps/pdks",
    "PDK": "sky130A",
    "STD_CELL_LIBRARY": "sky130_fd_sc_hd",
    "CONTAINER_RUNTIME": "apptainer",  # ignored: an override always runs natively
}


def stage(tmp_path: Path, config: str, folder: str = "designs/spm") -> tuple[Path, Path]:
    run_dir = tmp_path / "run dir"
    design = run_dir / "design" / folder
    (design / "src").mkdir(parents=True)
    stem = Path(config).stem
    for name in (f"{stem}.v", f"{stem}.sdc"):
        (design / "src" / name).write_text("// test\n")
    target = "config.tcl" if config.endswith(".tcl") else "config.json"
    shutil.copyfile(CONFIGS / config, design / target)
    return run_dir, design


def script_for(flow: Flow, design, run_dir: Path, index: int) -> str:
    """The lines an sbatch array task would run for task ``index``."""
    return (
        f"RUN_DIR={shquote(run_dir)}\n"
        f"DESIGN_DIR={shquote(design.design_dir)}\n"
        f"TASK_ID={index}\n"
        'TASK_DIR="$RUN_DIR/tasks/$TASK_ID"\n'
        'TASK_TAG=$(printf "task-%04d" "$TASK_ID")\n'
        f"{shjoin(flow.task_words(SETTINGS, design))}\n"
    )


def run_point(flow: Flow, design, run_dir: Path, index: int, params: dict, **env: str):
    flow.write_task_config(design, params, run_dir / "tasks" / str(index))
    environment = {**os.environ, "OPENLANE_STANDIN_SECONDS": "0", **env}
    result = subprocess.run(
        ["sh", "-c", script_for(flow, design, run_dir, index)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, flow.run_dir_for_task(run_dir / "tasks" / str(index), task_tag(index))


def ol1_row(path: Path) -> dict[str, str]:
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 1
    return rows[0]


def test_the_standin_is_executable_and_says_it_is_a_test_double():
    assert os.access(STANDIN, os.X_OK)
    text = STANDIN.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    assert "TEST DOUBLE" in text and "NOT OpenLane" in text
    assert "TEST DOUBLE" in (STANDIN.parent / "README.md").read_text()


def test_openlane1_json_sweep_writes_the_real_layout_and_moves_the_right_way(tmp_path):
    run_dir, design_dir = stage(tmp_path, "spm.json")
    flow = OpenLane1()
    design = flow.find_design(run_dir / "design", "designs/spm")
    points = [
        {"CLOCK_PERIOD": 20},
        {"CLOCK_PERIOD": 5},
        {"FP_CORE_UTIL": 30},
        {"FP_CORE_UTIL": 60},
        {"PL_TARGET_DENSITY": 0.3},
        {"PL_TARGET_DENSITY": 0.8},
        {"CLOCK_PERIOD": 0.3},
    ]
    rows = []
    for index, params in enumerate(points):
        result, run = run_point(flow, design, run_dir, index, params)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OpenLane stand-in: TEST DOUBLE")
        assert "[STEP 1]" in result.stdout and "Running Synthesis" in result.stdout
        assert run == run_dir / "tasks" / str(index) / "runs" / f"task-000{index}"
        metrics = flow.metrics_path(run_dir / "tasks" / str(index), task_tag(index))
        header, row, rest = metrics.read_bytes().split(b"\n")
        assert header == OL1_SOURCE.read_bytes().split(b"\n")[0]  # byte for byte
        assert row and rest == b""
        assert (run / "openlane.log").read_text().rstrip().endswith("Flow complete.")
        assert (run / "logs" / "synthesis" / "1-synthesis.log").is_file()
        rows.append(ol1_row(metrics))
    first = rows[0]
    assert first["design_name"] == "spm"
    assert first["design"] == str(design_dir)
    assert first["config"] == "task-0000"
    assert first["flow_status"] == "flow completed"
    assert first["CLOCK_PERIOD"] == "20.0"
    assert first["FP_CORE_UTIL"] == "45"  # the design's own value (pdk::sky130* block)
    assert len(first) == 90

    def num(row, column):
        return float(row[column])

    slow, fast, loose, dense_util, sparse, dense, too_fast = rows
    assert num(fast, "synth_cell_count") > num(slow, "synth_cell_count")
    assert num(fast, "DIEAREA_mm^2") > num(slow, "DIEAREA_mm^2")
    assert num(fast, "critical_path_ns") < num(slow, "critical_path_ns")
    assert num(dense_util, "DIEAREA_mm^2") < num(loose, "DIEAREA_mm^2")
    assert num(dense_util, "Final_Util") > num(loose, "Final_Util")
    assert num(dense, "wire_length") < num(sparse, "wire_length")
    assert num(slow, "wns") == 0.0 and num(too_fast, "wns") < 0 and num(too_fast, "tns") < 0
    assert fast["power_typical_internal_uW"] == "-1"  # not measured stays not measured
    # the portal's report parser finds the run where the adapter says it is
    features = parse_run_dir(flow.run_dir_for_task(run_dir / "tasks/1", "task-0001"))
    assert features is not None and features.flow_status == "completed"
    assert features.die_area_um2 == pytest.approx(num(fast, "DIEAREA_mm^2") * 1e6, rel=1e-3)
    # GDS: a valid stream, one cell named after the design, sized like the die
    gds = flow.gds_path(run_dir / "tasks/1", "task-0001", "spm")
    library = gdstk.read_gds(str(gds))
    (cell,) = library.top_level()
    assert cell.name == "spm"
    (x0, y0), (x1, y1) = cell.bounding_box()
    assert (x1 - x0) * (y1 - y0) == pytest.approx(num(fast, "DIEAREA_mm^2") * 1e6, rel=0.01)
    assert len(cell.polygons) > 3


def test_same_point_same_numbers(tmp_path):
    run_dir, _ = stage(tmp_path, "spm.json")
    flow = OpenLane1()
    design = flow.find_design(run_dir / "design", "designs/spm")
    outputs = []
    for index in (0, 1):
        result, run = run_point(flow, design, run_dir, index, {"CLOCK_PERIOD": 9})
        assert result.returncode == 0, result.stderr
        row = ol1_row(run / "reports" / "metrics.csv")
        row.pop("config")
        outputs.append(row)
    assert outputs[0] == outputs[1]


def test_openlane1_tcl_design(tmp_path):
    run_dir, _ = stage(tmp_path, "xtea.tcl", folder="designs/xtea")
    flow = OpenLane1()
    design = flow.find_design(run_dir / "design", "designs/xtea")
    params = {"CLOCK_PERIOD": 25, "SYNTH_STRATEGY": "DELAY 1"}
    result, run = run_point(flow, design, run_dir, 0, params)
    assert result.returncode == 0, result.stderr
    row = ol1_row(run / "reports" / "metrics.csv")
    assert row["design_name"] == "xtea"  # read through the task config's `source` line
    assert row["CLOCK_PERIOD"] == "25.0"
    assert row["SYNTH_STRATEGY"] == "DELAY 1"
    assert (run / "results/final/gds/xtea.gds").is_file()


def test_openlane2_sweep_writes_the_real_layout_and_moves_the_right_way(tmp_path):
    run_dir, _ = stage(tmp_path, "spm.json")
    flow = OpenLane2()
    design = flow.find_design(run_dir / "design", "designs/spm")
    source = json.loads(OL2_SOURCE.read_text())
    points = [
        {"CLOCK_PERIOD": 10},
        {"CLOCK_PERIOD": 5},
        {"FP_CORE_UTIL": 30},
        {"FP_CORE_UTIL": 60},
        {"PL_TARGET_DENSITY": 0.3},  # written as PL_TARGET_DENSITY_PCT 30
        {"PL_TARGET_DENSITY": 0.8},
        {"CLOCK_PERIOD": 2},
    ]
    results = []
    for index, params in enumerate(points):
        result, run = run_point(flow, design, run_dir, index, params)
        assert result.returncode == 0, result.stderr
        assert "Starting step 1: Verilator.Lint" in result.stdout
        metrics = flow.metrics_path(run_dir / "tasks" / str(index), task_tag(index))
        assert metrics.parent == run / "final"
        data = json.loads(metrics.read_text())
        assert list(data) == list(source)  # same keys, same order
        assert (run / "flow.log").read_text().rstrip().endswith("Flow complete.")
        assert flow.gds_path(run_dir / "tasks" / str(index), task_tag(index), "spm").is_file()
        results.append(data)
    base, fast, loose, dense_util, sparse, dense, too_fast = results
    assert fast["timing__setup__ws"] < base["timing__setup__ws"]
    assert fast["power__total"] > base["power__total"]
    assert fast["design__instance__area"] > base["design__instance__area"]
    assert dense_util["design__die__area"] < loose["design__die__area"]
    assert dense["route__wirelength"] < sparse["route__wirelength"]
    assert isinstance(dense["route__wirelength"], int)
    assert base["timing__setup__wns"] == 0
    assert too_fast["timing__setup__ws"] < 0
    assert too_fast["timing__setup__wns"] < 0 and too_fast["timing__setup_vio__count"] > 0
    features = parse_run_dir(run_dir / "tasks" / "1" / "runs" / "task-0001")
    assert features is not None and features.flow_status == "completed"


@pytest.mark.parametrize("flow", [OpenLane1(), OpenLane2()], ids=["openlane1", "openlane2"])
def test_failure_injection_through_the_config(tmp_path, flow):
    run_dir, _ = stage(tmp_path, "spm.json")
    design = flow.find_design(run_dir / "design", "designs/spm")
    result, run = run_point(flow, design, run_dir, 0, {"STANDIN_EXIT_CODE": 3})
    assert result.returncode == 3
    assert "stand-in failure injected (STANDIN_EXIT_CODE=3)" in result.stdout
    log = (run / "flow.log").read_text()
    assert log.rstrip().endswith("Flow failed (exit code 3).")
    assert not flow.metrics_path(run_dir / "tasks/0", "task-0000").exists()
    features = parse_run_dir(run)
    assert features is not None and features.flow_status == "failed"


def test_failure_injection_through_the_environment(tmp_path):
    run_dir, _ = stage(tmp_path, "spm.json")
    flow = OpenLane1()
    design = flow.find_design(run_dir / "design", "designs/spm")
    result, run = run_point(flow, design, run_dir, 0, {}, OPENLANE_STANDIN_EXIT_CODE="4")
    assert result.returncode == 4
    assert "Flow failed (exit code 4)." in (run / "openlane.log").read_text()


def test_sigterm_cancels_a_long_run(tmp_path):
    run_dir, _ = stage(tmp_path, "spm.json")
    flow = OpenLane2()
    design = flow.find_design(run_dir / "design", "designs/spm")
    flow.write_task_config(design, {"STANDIN_SLEEP": 30}, run_dir / "tasks" / "0")
    words = flow.command_words(SETTINGS, design, "config.json")
    env = {
        **os.environ,
        "OPENLANE_STANDIN_SECONDS": "0",
        "TASK_DIR": str(run_dir / "tasks" / "0"),
        "TASK_TAG": "task-0000",
    }
    process = subprocess.Popen(
        ["sh", "-c", f"exec {shjoin(words)}"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    assert process.stdout is not None
    for line in process.stdout:
        if "detailed routing... 1s" in line:
            break
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < 20
    log = run_dir / "tasks/0/runs/task-0000/flow.log"
    assert log.read_text().rstrip().endswith("Flow cancelled.")


def test_mimic_selection_by_name_flag_and_environment(tmp_path):
    run_dir, design_dir = stage(tmp_path, "spm.json")
    task = run_dir / "tasks" / "0"
    task.mkdir(parents=True)
    shutil.copyfile(design_dir / "config.json", task / "config.json")
    ol1_args = ["-design", str(design_dir), "-run_path", str(task / "runs"), "-tag", "t"]
    ol1_args += ["-config_file", str(task / "config.json"), "-overwrite"]
    env = {**os.environ, "OPENLANE_STANDIN_SECONDS": "0"}
    # a symlink named flow.tcl
    link = tmp_path / "bin" / "flow.tcl"
    link.parent.mkdir()
    link.symlink_to(STANDIN)
    done = subprocess.run([str(link), *ol1_args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Mimicking OpenLane 1" in done.stdout
    assert (task / "runs/t/reports/metrics.csv").is_file()
    # a symlink named librelane, OpenLane 2 arguments
    ll = tmp_path / "bin" / "librelane"
    ll.symlink_to(STANDIN)
    ol2_args = ["--run-tag", "t2", "--design-dir", str(task), str(task / "config.json")]
    done = subprocess.run([str(ll), *ol2_args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Mimicking LibreLane" in done.stdout
    assert (task / "runs/t2/final/metrics.json").is_file()
    # --mimic beats the program name; the environment variable is the fallback
    done = subprocess.run(
        [str(link), "--mimic", "openlane2", *ol2_args, "--overwrite"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "Mimicking OpenLane 2" in done.stdout
    done = subprocess.run(
        [str(STANDIN), *ol2_args, "--overwrite"],
        env={**env, "OPENLANE_STANDIN_MIMIC": "librelane"},
        capture_output=True,
        text=True,
    )
    assert "Mimicking LibreLane" in done.stdout


def test_usage_errors(tmp_path):
    run_dir, design_dir = stage(tmp_path, "spm.json")
    env = {**os.environ, "OPENLANE_STANDIN_SECONDS": "0"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(STANDIN), *args], env=env, capture_output=True, text=True)

    assert run("-design", str(tmp_path / "nope")).returncode == 255
    assert run("--run-tag", "x").returncode == 1  # no config file
    assert run("-design", str(design_dir), "-tag").returncode == 2
    assert run("--mimic", "openlane9", "x.json").returncode == 2
    first = run("-design", str(design_dir), "-tag", "same")
    assert first.returncode == 0, first.stderr
    again = run("-design", str(design_dir), "-tag", "same")
    assert again.returncode == 1 and "-overwrite" in again.stderr
    assert run("-design", str(design_dir), "-tag", "same", "-overwrite").returncode == 0


def test_runs_with_the_system_python_in_isolated_mode(tmp_path):
    run_dir, design_dir = stage(tmp_path, "spm.json")
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", str(STANDIN), "-design", str(design_dir), "-tag", "sys"],
        env={"PATH": "/usr/bin:/bin", "OPENLANE_STANDIN_SECONDS": "0"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert (design_dir / "runs/sys/reports/metrics.csv").is_file()


def test_data_location_can_be_given(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA / "openlane1", data / "openlane1")
    source = data / "openlane1/metrics/2024-07_sky130_fd_sc_hd.csv"
    source.write_text(source.read_text().replace("Peak_Memory_Usage_MB", "Peak_Memory_MiB", 1))
    run_dir, design_dir = stage(tmp_path, "spm.json")
    env = {**os.environ, "OPENLANE_STANDIN_SECONDS": "0", "OPENLANE_STANDIN_DATA": str(data)}
    done = subprocess.run(
        [str(STANDIN), "-design", str(design_dir), "-tag", "d"], env=env, capture_output=True
    )
    assert done.returncode == 0
    header = (design_dir / "runs/d/reports/metrics.csv").read_text().splitlines()[0]
    assert header == source.read_text().splitlines()[0]
    assert "Peak_Memory_MiB" in header
    missing = {**env, "OPENLANE_STANDIN_DATA": str(tmp_path / "none")}
    failed = subprocess.run(
        [str(STANDIN), "-design", str(design_dir), "-tag", "e"],
        env=missing,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "recorded metrics not found" in failed.stderr
    assert "Traceback" not in failed.stderr
