"""OpenLane 1 adapter: design discovery, per-task configs (JSON and Tcl), command lines."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.flows.base import task_tag
from portal.flows.designconfig import read_design_config
from portal.flows.openlane1 import OpenLane1, tcl_value
from portal.flows.types import DesignNotFound, InvalidParameter, UnsupportedConfig
from portal.shell import ShellVar, shjoin

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "tests" / "data" / "openlane" / "openlane1" / "configs"
TCLSH = "/usr/bin/tclsh"
FLOW = OpenLane1()
SETTINGS = {
    "OPENLANE1_IMAGE": "/apps/openlane/openlane.sif",
    "PDK_ROOT": "/apps/pdks",
    "PDK": "sky130A",
    "STD_CELL_LIBRARY": "sky130_fd_sc_hd",
    "CONTAINER_RUNTIME": "apptainer",
}


def make_repo(root: Path, config: str, *, folder: str = "designs/spm", name: str = "") -> Path:
    """A checked-out repository holding one real reference config (and its source files)."""
    design = root / folder
    (design / "src").mkdir(parents=True)
    stem = Path(config).stem
    for source in (f"{stem}.v", f"{stem}.sdc"):
        (design / "src" / source).write_text("// test\n")
    target = name or ("config.tcl" if config.endswith(".tcl") else "config.json")
    shutil.copyfile(CONFIGS / config, design / target)
    return root


def argv_of(words, env: dict[str, str]) -> list[str]:
    """What a POSIX shell passes to the program for a rendered command line."""
    assigns = "".join(f"{k}={shjoin([v])}; " for k, v in env.items())
    script = f'{assigns}set -- {shjoin(words)}; for a in "$@"; do printf "%s\\0" "$a"; done'
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


SCRIPT_ENV = {
    "RUN_DIR": "/shared/runs/u u",
    "DESIGN_DIR": "/shared/runs/u u/design/designs/spm",
    "TASK_ID": "3",
    "TASK_DIR": "/shared/runs/u u/tasks/3",
    "TASK_TAG": "task-0003",
}


# -- discovery ---------------------------------------------------------------------------------


def test_find_design_reads_the_json_config(tmp_path):
    repo = make_repo(tmp_path, "spm.json")
    design = FLOW.find_design(repo, "designs/spm")
    assert design.kind == "json"
    assert design.path == repo / "designs/spm/config.json"
    assert design.design_dir == repo / "designs/spm"
    assert design.design_name == "spm"
    assert design.values["CLOCK_PERIOD"] == 10
    assert design.values["VERILOG_FILES"] == str(repo / "designs/spm/src/spm.v")
    assert design.ok


def test_config_tcl_wins_over_config_json_like_openlane1(tmp_path):
    repo = make_repo(tmp_path, "spm.json")
    shutil.copyfile(CONFIGS / "xtea.tcl", repo / "designs/spm/config.tcl")
    assert FLOW.find_design(repo, "designs/spm").kind == "tcl"


def test_design_not_found_lists_what_was_looked_for(tmp_path):
    repo = make_repo(tmp_path, "spm.json", name="other.json")
    with pytest.raises(DesignNotFound) as info:
        FLOW.find_design(repo, "designs/spm")
    message = str(info.value)
    assert "designs/spm/config.tcl" in message and "designs/spm/config.json" in message
    assert info.value.looked_for == [
        repo / "designs/spm/config.tcl",
        repo / "designs/spm/config.json",
    ]
    with pytest.raises(DesignNotFound, match="does not exist"):
        FLOW.find_design(repo, "designs/nope")


def test_design_paths_cannot_leave_the_repository(tmp_path):
    repo = make_repo(tmp_path / "repo", "spm.json")
    make_repo(tmp_path / "elsewhere", "spm.json")
    for path in ("../elsewhere/designs/spm", "designs/../../elsewhere/designs/spm"):
        with pytest.raises(DesignNotFound, match="outside the repository"):
            FLOW.find_design(repo, path)
    # a leading "/" means the repository root, never the host's root
    with pytest.raises(DesignNotFound) as info:
        FLOW.find_design(repo, "/etc")
    assert info.value.design_dir == repo / "etc"
    (repo / "designs" / "link").symlink_to(tmp_path / "elsewhere" / "designs" / "spm")
    with pytest.raises(DesignNotFound, match="outside the repository"):
        FLOW.find_design(repo, "designs/link")


def test_a_config_symlinked_out_of_the_repository_is_refused(tmp_path):
    repo = make_repo(tmp_path / "repo", "spm.json")
    (repo / "designs/spm/config.json").unlink()
    (repo / "designs/spm/config.json").symlink_to(CONFIGS / "spm.json")
    with pytest.raises(DesignNotFound, match="outside the repository"):
        FLOW.find_design(repo, "designs/spm")


def test_pdk_and_scl_choose_the_conditional_blocks(tmp_path):
    repo = make_repo(tmp_path, "spm.json")
    design = FLOW.find_design(repo, "designs/spm", scl="sky130_fd_sc_hs")
    assert design.values["CLOCK_PERIOD"] == 8
    assert design.scl == "sky130_fd_sc_hs"


# -- per-task JSON ---------------------------------------------------------------------------


def test_json_task_config_keeps_conditional_blocks_and_the_point_wins(tmp_path):
    repo = make_repo(tmp_path, "spm.json")
    design = FLOW.find_design(repo, "designs/spm")
    task_dir = tmp_path / "run" / "tasks" / "0"
    params = {"CLOCK_PERIOD": 12.5, "FP_CORE_UTIL": 30, "SYNTH_STRATEGY": "AREA 0"}
    path = FLOW.write_task_config(design, params, task_dir)
    assert path == task_dir / "config.json"
    document = json.loads(path.read_text())
    assert "pdk::sky130*" in document and "pdk::gf180mcu*" in document
    assert document["pdk::sky130*"]["scl::sky130_fd_sc_ls"] == {"MAX_FANOUT_CONSTRAINT": 5}
    assert document["VERILOG_FILES"] == "dir::src/*.v"  # dir:: kept: -design is the base
    # Read the task config the way OpenLane 1 does: -design is the design folder.
    for pdk, scl in [
        ("sky130A", "sky130_fd_sc_hd"),
        ("sky130A", "sky130_fd_sc_hs"),
        ("sky130B", "sky130_fd_sc_ls"),
        ("gf180mcuD", "gf180mcu_fd_sc_mcu7t5v0"),
    ]:
        task = read_design_config(path, design_dir=design.design_dir, pdk=pdk, scl=scl)
        assert task.errors == []
        assert task.values["CLOCK_PERIOD"] == 12.5, (pdk, scl)
        assert task.values["FP_CORE_UTIL"] == 30, (pdk, scl)
        assert task.values["SYNTH_STRATEGY"] == "AREA 0"
        assert task.values["PNR_SDC_FILE"] == str(design.design_dir / "src" / "spm.sdc")
        assert task.values["VERILOG_FILES"] == str(design.design_dir / "src" / "spm.v")
    # everything the point does not set is the design's own
    original = read_design_config(design.path, scl="sky130_fd_sc_ls")
    task = read_design_config(path, design_dir=design.design_dir, scl="sky130_fd_sc_ls")
    changed = {k for k in original.values if original.values[k] != task.values.get(k)}
    assert changed == {"CLOCK_PERIOD", "FP_CORE_UTIL"}


def test_swept_value_reaches_expressions_that_use_it(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    (repo / "d" / "config.json").write_text(
        json.dumps(
            {
                "DESIGN_NAME": "x",
                "pdk::sky130*": {"FP_CORE_UTIL": 40},
                "PL_TARGET_DENSITY": "expr::($FP_CORE_UTIL + 10) / 100",
            }
        )
    )
    design = FLOW.find_design(repo, "d")
    assert design.values["PL_TARGET_DENSITY"] == pytest.approx(0.5)
    path = FLOW.write_task_config(design, {"FP_CORE_UTIL": 60}, tmp_path / "t")
    task = read_design_config(path, design_dir=design.design_dir)
    assert task.values["PL_TARGET_DENSITY"] == pytest.approx(0.7)


def test_deprecated_aliases_of_a_swept_variable_are_removed(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    (repo / "d" / "config.json").write_text(
        json.dumps({"DESIGN_NAME": "x", "pdk::sky130*": {"SYNTH_MAX_FANOUT": 5}})
    )
    design = FLOW.find_design(repo, "d")
    path = FLOW.write_task_config(design, {"MAX_FANOUT_CONSTRAINT": 8}, tmp_path / "t")
    text = path.read_text()
    assert "SYNTH_MAX_FANOUT" not in text
    assert json.loads(text)["MAX_FANOUT_CONSTRAINT"] == 8


@pytest.mark.parametrize(
    "params",
    [
        {"clock_period": 1},
        {"CLOCK PERIOD": 1},
        {"A": float("nan")},
        {"A": {"nested": 1}},
        {"A": [[1]]},
        {"A": object()},
        {"A": "nul\x00"},
    ],
)
def test_bad_parameters_are_refused(tmp_path, params):
    repo = make_repo(tmp_path, "spm.json")
    design = FLOW.find_design(repo, "designs/spm")
    with pytest.raises(InvalidParameter):
        FLOW.write_task_config(design, params, tmp_path / "t")
    assert not (tmp_path / "t" / "config.json").exists()


def test_a_design_with_errors_gets_no_task_config(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    (repo / "d" / "config.json").write_text('{"DESIGN_NAME": "x",}')
    design = FLOW.find_design(repo, "d")
    assert not design.ok
    with pytest.raises(UnsupportedConfig, match="line 1"):
        FLOW.write_task_config(design, {"CLOCK_PERIOD": 1}, tmp_path / "t")


# -- per-task Tcl ------------------------------------------------------------------------------

HOSTILE = {
    "SYNTH_STRATEGY": "AREA 0",
    "A1": "$(touch pwned)",
    "A2": "]; exec touch pwned; [",
    "A3": "[exec touch pwned]",
    "A4": "{unbalanced",
    "A5": "back\\slash }",
    "A6": "line\nbreak; exec touch pwned",
    "A7": '" ; exec touch pwned ; "',
    "A8": "$::env(HOME)",
}


def test_tcl_task_config_sources_the_original_and_sets_the_point(tmp_path):
    repo = make_repo(tmp_path, "xtea.tcl", folder="designs/xtea")
    design = FLOW.find_design(repo, "designs/xtea")
    assert design.kind == "tcl"
    path = FLOW.write_task_config(design, {"CLOCK_PERIOD": 15, "FP_CORE_UTIL": 35}, tmp_path / "t")
    assert path.name == "config.tcl"
    lines = path.read_text().splitlines()
    source = "source [file join $::env(DESIGN_DIR) {config.tcl}]"
    assert lines.count(source) == 1
    before, after = lines[: lines.index(source)], lines[lines.index(source) + 1 :]
    for chunk in (before, after):
        assert "set ::env(CLOCK_PERIOD) {15}" in chunk
        assert "set ::env(FP_CORE_UTIL) {35}" in chunk
    # what the portal reads back (without running Tcl) matches
    task = read_design_config(path, design_dir=design.design_dir)
    assert task.values["CLOCK_PERIOD"] == "15"
    assert task.values["DESIGN_NAME"] == "xtea"  # followed into the design's config.tcl


def test_sourcing_the_tcl_task_config_in_real_tclsh_is_inert(tmp_path):
    repo = make_repo(tmp_path, "xtea.tcl", folder="designs/xtea")
    design = FLOW.find_design(repo, "designs/xtea")
    path = FLOW.write_task_config(design, HOSTILE, tmp_path / "task")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    outputs = {name: tmp_path / f"{name}.out" for name in [*HOSTILE, "DESIGN_NAME", "CLOCK_NET"]}
    driver = tmp_path / "driver.tcl"
    driver.write_text(
        # what flow.tcl provides before sourcing a design config
        f"set ::env(DESIGN_DIR) {design.design_dir}\n"
        "set ::env(PDK) sky130A\nset ::env(STD_CELL_LIBRARY) sky130_fd_sc_hd\n"
        f"source {path}\n"
        + "".join(
            f"set f [open {out} w]; fconfigure $f -translation lf -encoding utf-8; "
            f"puts -nonewline $f $::env({name}); close $f\n"
            for name, out in outputs.items()
        )
    )
    run = subprocess.run([TCLSH, str(driver)], cwd=workdir, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert list(workdir.iterdir()) == []  # nothing was executed
    assert not (tmp_path / "pwned").exists()
    for name, value in HOSTILE.items():
        assert outputs[name].read_text(encoding="utf-8") == value
    assert outputs["DESIGN_NAME"].read_text() == "xtea"  # the original really was sourced
    assert outputs["CLOCK_NET"].read_text() == "clock"


def test_tcl_values_are_what_openlane1_would_see():
    assert tcl_value(True) == "1" and tcl_value(False) == "0"
    assert tcl_value(None) == ""
    assert tcl_value(10) == "10" and tcl_value(0.25) == "0.25" and tcl_value(10.0) == "10.0"
    assert tcl_value(["a.v", "b.v"]) == "a.v b.v"


def test_tcl_point_unsets_deprecated_aliases_after_sourcing(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    (repo / "d" / "config.tcl").write_text("set ::env(GLB_RT_ADJUSTMENT) 0.1\n")
    design = FLOW.find_design(repo, "d")
    path = FLOW.write_task_config(design, {"GRT_ADJUSTMENT": 0.3}, tmp_path / "t")
    driver = tmp_path / "driver.tcl"
    driver.write_text(
        f"set ::env(DESIGN_DIR) {design.design_dir}\nsource {path}\n"
        "puts [info exists ::env(GLB_RT_ADJUSTMENT)]/$::env(GRT_ADJUSTMENT)\n"
    )
    out = subprocess.run([TCLSH, str(driver)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0/0.3"


# -- command lines ---------------------------------------------------------------------------


def test_command_words_have_the_flow_tcl_flags(tmp_path):
    design = FLOW.find_design(make_repo(tmp_path, "spm.json"), "designs/spm")
    words = FLOW.command_words(SETTINGS, design, "config.json")
    assert words == [
        "flow.tcl",
        "-design",
        ShellVar("DESIGN_DIR"),
        "-run_path",
        ShellVar("TASK_DIR", "/runs"),
        "-tag",
        ShellVar("TASK_TAG"),
        "-config_file",
        ShellVar("TASK_DIR", "/config.json"),
        "-overwrite",
    ]
    line = shjoin(words)
    assert line == (
        'flow.tcl -design "${DESIGN_DIR}" -run_path "${TASK_DIR}"/runs -tag "${TASK_TAG}" '
        '-config_file "${TASK_DIR}"/config.json -overwrite'
    )
    assert argv_of(words, SCRIPT_ENV) == [
        "flow.tcl",
        "-design",
        "/shared/runs/u u/design/designs/spm",
        "-run_path",
        "/shared/runs/u u/tasks/3/runs",
        "-tag",
        "task-0003",
        "-config_file",
        "/shared/runs/u u/tasks/3/config.json",
        "-overwrite",
    ]
    mismatches = {**SETTINGS, "OPENLANE1_IGNORE_MISMATCHES": True}
    assert FLOW.command_words(mismatches, design, "config.json")[-1] == "-ignore_mismatches"
    with pytest.raises(InvalidParameter):
        FLOW.command_words(SETTINGS, design, "../x.json")


def test_container_words_for_each_runtime(tmp_path):
    design = FLOW.find_design(make_repo(tmp_path, "spm.json"), "designs/spm")
    words = FLOW.task_words(SETTINGS, design)
    argv = argv_of(words, SCRIPT_ENV)
    assert argv[:18] == [
        "apptainer",
        "exec",
        "--containall",
        "--cleanenv",
        "--bind",
        "/shared/runs/u u",
        "--bind",
        "/apps/pdks:/apps/pdks:ro",
        "--pwd",
        "/shared/runs/u u/tasks/3",
        "--env",
        "PDK_ROOT=/apps/pdks",
        "--env",
        "PDK=sky130A",
        "--env",
        "STD_CELL_LIBRARY=sky130_fd_sc_hd",
        "/apps/openlane/openlane.sif",
        "flow.tcl",
    ]
    singularity = FLOW.container_words({**SETTINGS, "CONTAINER_RUNTIME": "singularity"})
    assert singularity[0] == "singularity"
    assert FLOW.container_words(SETTINGS, runtime="singularity", image="/x.sif")[-1] == "/x.sif"
    assert FLOW.container_words({**SETTINGS, "CONTAINER_RUNTIME": "native"}) == []
    with pytest.raises(Exception, match="runtime"):
        FLOW.container_words({**SETTINGS, "CONTAINER_RUNTIME": "docker"})
    with pytest.raises(Exception, match="PDK_ROOT"):
        FLOW.container_words({**SETTINGS, "PDK_ROOT": "relative/pdks"})
    # the design's own PDK choice wins over the site default
    design.pdk = "sky130B"
    assert "PDK=sky130B" in FLOW.container_words(SETTINGS, design=design)


def test_executable_override_means_native_and_replaces_flow_tcl(tmp_path):
    design = FLOW.find_design(make_repo(tmp_path, "spm.json"), "designs/spm")
    settings = {**SETTINGS, "FLOW_EXECUTABLE_OVERRIDE": "/opt/standin/openlane_standin.py"}
    words = FLOW.task_words(settings, design)
    assert words[0] == "/opt/standin/openlane_standin.py"
    assert words[1] == "-design"
    with pytest.raises(Exception, match="absolute"):
        FLOW.task_words({**SETTINGS, "FLOW_EXECUTABLE_OVERRIDE": "standin.py"}, design)
    custom = {**SETTINGS, "OPENLANE1_EXECUTABLE": "/openlane/flow.tcl"}
    assert FLOW.command_words(custom, design, "config.json")[0] == "/openlane/flow.tcl"


def test_outputs_are_under_the_task_run_dir(tmp_path):
    task_dir = tmp_path / "tasks" / "3"
    tag = task_tag(3)
    assert tag == "task-0003"
    assert FLOW.run_dir_for_task(task_dir, tag) == task_dir / "runs" / "task-0003"
    assert FLOW.metrics_path(task_dir, tag) == task_dir / "runs/task-0003/reports/metrics.csv"
    gds = FLOW.gds_path(task_dir, tag, "spm")
    assert gds == task_dir / "runs/task-0003/results/final/gds/spm.gds"
