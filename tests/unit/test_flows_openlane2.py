"""OpenLane 2 / LibreLane adapters: per-task config.json, the design link, command lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from portal.flows.designconfig import read_design_config
from portal.flows.librelane import LibreLane
from portal.flows.openlane2 import OpenLane2, rebase_paths, translate_params
from portal.flows.registry import UnknownFlow, flow_names, get_flow
from portal.flows.types import UnsupportedConfig
from portal.shell import ShellVar, shjoin

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIGS = REPO_ROOT / "tests" / "data" / "openlane" / "openlane1" / "configs"
FLOW = OpenLane2()
SETTINGS = {
    "OPENLANE2_IMAGE": "/apps/openlane/openlane2.sif",
    "LIBRELANE_IMAGE": "/apps/openlane/librelane.sif",
    "PDK_ROOT": "/apps/pdks",
    "PDK": "sky130A",
    "STD_CELL_LIBRARY": "sky130_fd_sc_hd",
    "CONTAINER_RUNTIME": "apptainer",
}


def staged(tmp_path: Path, config: str = "spm.json") -> tuple[Path, Path]:
    """A submission run dir: design checkout under design/, task folders under tasks/."""
    run_dir = tmp_path / "runs" / "uuid"
    design = run_dir / "design" / "designs" / "spm"
    (design / "src").mkdir(parents=True)
    for name in ("spm.v", "spm_helper.v", "spm.sdc"):
        (design / "src" / name).write_text("// test\n")
    (design / "pin_order.cfg").write_text("#N\n")
    shutil.copyfile(CONFIGS / config, design / "config.json")
    return run_dir, design


def test_task_config_resolves_through_the_design_link(tmp_path):
    run_dir, design_dir = staged(tmp_path)
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    task_dir = run_dir / "tasks" / "0"
    path = FLOW.write_task_config(design, {"CLOCK_PERIOD": 7}, task_dir)
    assert path == task_dir / "config.json"
    link = task_dir / "design"
    assert link.is_symlink()
    assert os.readlink(link) == "../../design/designs/spm"  # relative: the run dir can move
    document = json.loads(path.read_text())
    assert document["VERILOG_FILES"] == "dir::design/src/*.v"
    assert document["FP_PIN_ORDER_CFG"] == "dir::design/pin_order.cfg"
    # OpenLane 2's design dir is now the task folder (--design-dir "$TASK_DIR")
    task = read_design_config(path, design_dir=task_dir, flow="openlane2")
    assert task.errors == []
    assert task.values["CLOCK_PERIOD"] == 7
    files = task.values["VERILOG_FILES"]
    assert files == [str(task_dir / "design/src/spm.v"), str(task_dir / "design/src/spm_helper.v")]
    assert all(Path(f).is_file() for f in files)
    assert all(os.path.abspath(f).startswith(str(task_dir)) for f in files)  # globbable in OL2
    assert Path(task.values["PNR_SDC_FILE"][0]).resolve() == design_dir / "src" / "spm.sdc"
    # writing again (a resubmission) keeps the same link
    FLOW.write_task_config(design, {"CLOCK_PERIOD": 8}, task_dir)
    assert os.readlink(link) == "../../design/designs/spm"


def test_the_task_folder_is_relocatable(tmp_path):
    run_dir, _ = staged(tmp_path)
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    FLOW.write_task_config(design, {"CLOCK_PERIOD": 7}, run_dir / "tasks" / "0")
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved, symlinks=True)
    shutil.rmtree(run_dir)
    task = read_design_config(
        moved / "tasks/0/config.json", design_dir=moved / "tasks/0", flow="openlane2"
    )
    assert all(Path(f).is_file() for f in task.values["VERILOG_FILES"])


def test_openlane1_names_are_translated_and_aliases_removed(tmp_path):
    run_dir, _ = staged(tmp_path, "aes.json")  # aes sets PL_TARGET_DENSITY in scl:: blocks
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    path = FLOW.write_task_config(
        design, {"PL_TARGET_DENSITY": 0.55, "FP_CORE_UTIL": 20}, run_dir / "tasks" / "1"
    )
    text = path.read_text()
    assert '"PL_TARGET_DENSITY"' not in text  # OpenLane 2 would let the old name win
    document = json.loads(text)
    assert document["PL_TARGET_DENSITY_PCT"] == 55
    for scl in ("sky130_fd_sc_hd", "sky130_fd_sc_hdll", "sky130_fd_sc_ms"):
        task = read_design_config(path, design_dir=run_dir / "tasks/1", flow="openlane2", scl=scl)
        assert task.values["PL_TARGET_DENSITY_PCT"] == 55
        assert task.values["FP_CORE_UTIL"] == 20
        assert "PL_TARGET_DENSITY" not in task.values


def test_sweeping_the_new_name_removes_the_old_one_too(tmp_path):
    run_dir, _ = staged(tmp_path, "picorv32a.json")  # GLB_RESIZER_TIMING_OPTIMIZATIONS: true
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    path = FLOW.write_task_config(
        design, {"RUN_POST_GRT_RESIZER_TIMING": False}, run_dir / "tasks" / "0"
    )
    document = json.loads(path.read_text())
    assert "GLB_RESIZER_TIMING_OPTIMIZATIONS" not in document
    assert document["RUN_POST_GRT_RESIZER_TIMING"] is False


def test_translate_params():
    assert translate_params({"PL_TARGET_DENSITY": 0.57}) == {"PL_TARGET_DENSITY_PCT": 57}
    assert translate_params({"PL_TARGET_DENSITY": 0.555}) == {"PL_TARGET_DENSITY_PCT": 55.5}
    assert translate_params({"SYNTH_BUFFERING": True}) == {"SYNTH_ABC_BUFFERING": True}
    assert translate_params({"CLOCK_PERIOD": 10}) == {"CLOCK_PERIOD": 10}
    with pytest.raises(UnsupportedConfig):
        translate_params({"PL_TARGET_DENSITY": 0.5, "PL_TARGET_DENSITY_PCT": 60})


def test_rebase_paths():
    assert rebase_paths("dir::src/a.v") == "dir::design/src/a.v"
    assert rebase_paths("dir::./a.v") == "dir::design/a.v"
    assert rebase_paths("ref::$DESIGN_DIR/x") == "ref::$DESIGN_DIR/design/x"
    assert rebase_paths("refg::$DESIGN_DIR/*.v") == "refg::$DESIGN_DIR/design/*.v"
    assert rebase_paths("ref::$DESIGN_DIR_OTHER/x") == "ref::$DESIGN_DIR_OTHER/x"
    assert rebase_paths("pdk_dir::libs.ref") == "pdk_dir::libs.ref"
    nested = {"MACROS": {"m": {"gds": ["dir::m.gds"]}}, "N": 1}
    assert rebase_paths(nested) == {"MACROS": {"m": {"gds": ["dir::design/m.gds"]}}, "N": 1}


def test_yaml_designs_keep_meta_version_2(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d" / "src").mkdir(parents=True)
    (repo / "d" / "src" / "a.v").write_text("//\n")
    (repo / "d" / "config.yaml").write_text(
        "DESIGN_NAME: a\nVERILOG_FILES: dir::src/*.v\nCLOCK_PORT: clk\nCLOCK_PERIOD: 10\n"
    )
    design = FLOW.find_design(repo, "d")
    assert design.kind == "yaml"
    path = FLOW.write_task_config(design, {"CLOCK_PERIOD": 12}, tmp_path / "t")
    document = json.loads(path.read_text())
    assert document["meta"] == {"version": 2}
    assert document["CLOCK_PERIOD"] == 12
    assert document["VERILOG_FILES"] == "dir::design/src/*.v"


def test_tcl_designs_are_refused_for_openlane2(tmp_path):
    repo = tmp_path / "repo"
    (repo / "d").mkdir(parents=True)
    shutil.copyfile(CONFIGS / "xtea.tcl", repo / "d" / "config.tcl")
    design = FLOW.find_design(repo, "d")
    assert not design.ok
    with pytest.raises(UnsupportedConfig, match="convert config.tcl to config.json"):
        FLOW.write_task_config(design, {"CLOCK_PERIOD": 1}, tmp_path / "t")


def test_something_else_named_design_in_the_task_folder_is_not_replaced(tmp_path):
    run_dir, _ = staged(tmp_path)
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    task_dir = run_dir / "tasks" / "0"
    (task_dir / "design").mkdir(parents=True)
    with pytest.raises(UnsupportedConfig, match="not the portal's design link"):
        FLOW.write_task_config(design, {}, task_dir)


def test_command_words_have_the_openlane2_flags(tmp_path):
    run_dir, _ = staged(tmp_path)
    design = FLOW.find_design(run_dir / "design", "designs/spm")
    words = FLOW.command_words(SETTINGS, design, "config.json")
    assert words == [
        "openlane",
        "--manual-pdk",
        "--pdk-root",
        "/apps/pdks",
        "--pdk",
        "sky130A",
        "--scl",
        "sky130_fd_sc_hd",
        "--run-tag",
        ShellVar("TASK_TAG"),
        "--overwrite",
        "--hide-progress-bar",
        "--design-dir",
        ShellVar("TASK_DIR"),
        ShellVar("TASK_DIR", "/config.json"),
    ]
    script = (
        f'TASK_DIR="/r u/tasks/2"; TASK_TAG=task-0002; set -- {shjoin(words)}; echo "$#|${{15}}"'
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "15|/r u/tasks/2/config.json"
    full = FLOW.task_words(SETTINGS, design)
    assert full[0] == "apptainer" and "/apps/openlane/openlane2.sif" in full


def test_librelane_differs_only_by_executable_and_image(tmp_path):
    run_dir, _ = staged(tmp_path)
    flow = LibreLane()
    design = flow.find_design(run_dir / "design", "designs/spm")
    words = flow.task_words(SETTINGS, design)
    image_at = words.index("/apps/openlane/librelane.sif")
    assert words[image_at + 1] == "librelane"
    assert words[image_at + 2 :] == FLOW.command_words(SETTINGS, design, "config.json")[1:]
    override = {**SETTINGS, "FLOW_EXECUTABLE_OVERRIDE": "/opt/standin.py"}
    assert flow.task_words(override, design)[0] == "/opt/standin.py"
    assert flow.metrics_path(tmp_path, "t") == tmp_path / "runs/t/final/metrics.json"
    assert flow.gds_path(tmp_path, "t", "spm") == tmp_path / "runs/t/final/gds/spm.gds"


def test_registry():
    assert flow_names() == ["openlane1", "openlane2", "librelane"]
    assert get_flow().name == "openlane1"
    assert isinstance(get_flow("openlane2"), OpenLane2)
    assert get_flow("librelane").image_setting == "LIBRELANE_IMAGE"
    with pytest.raises(UnknownFlow):
        get_flow("openlane3")
