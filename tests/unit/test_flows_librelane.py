"""LibreLane on a site: the steps it supports (LIBRELANE_STEPS), native runs, site checks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from portal.flows.librelane import SYNTHESIS_STEPS, LibreLane, describe_steps
from portal.flows.openlane1 import OpenLane1
from portal.flows.registry import run_note, site_notes
from portal.flows.types import FlowError, UnsupportedConfig
from portal.submit.sbatch import ArrayScript, render_array_script

REPO_ROOT = Path(__file__).resolve().parents[2]
FLOW = LibreLane()
SYNTH = {"LIBRELANE_STEPS": "synthesis"}


def design_with(tmp_path: Path, meta: object = None):
    folder = tmp_path / "repo" / "designs" / "counter"
    shutil.copytree(REPO_ROOT / "examples" / "counter", folder)
    if meta is not None:
        config = json.loads((folder / "config.json").read_text())
        config["meta"] = meta
        (folder / "config.json").write_text(json.dumps(config))
    return FLOW.find_design(tmp_path / "repo", "designs/counter")


def test_every_step_by_default_keeps_the_design_flow(tmp_path):
    design = design_with(tmp_path)
    assert FLOW.site_steps({}) is None and FLOW.task_steps(design, {}) is None
    document = json.loads(FLOW.task_config_text(design, {"CLOCK_PERIOD": 5}))
    assert "meta" not in document


def test_synthesis_cuts_meta_flow_and_keeps_the_other_meta_keys(tmp_path):
    design = design_with(tmp_path, {"version": 2})
    steps = FLOW.task_steps(design, SYNTH)
    assert steps == SYNTHESIS_STEPS and steps[-1] == "Portal.PrePnRSTA"
    document = json.loads(FLOW.task_config_text(design, {"CLOCK_PERIOD": 5}, steps=steps))
    assert document["meta"] == {"version": 2, "flow": list(SYNTHESIS_STEPS)}
    assert document["CLOCK_PERIOD"] == 5


def test_classic_is_cut_too(tmp_path):
    design = design_with(tmp_path, {"version": 2, "flow": "Classic"})
    assert FLOW.task_steps(design, SYNTH) == SYNTHESIS_STEPS


def test_a_design_listing_supported_steps_keeps_its_own_list(tmp_path):
    own = ["Verilator.Lint", "Yosys.Synthesis"]
    design = design_with(tmp_path, {"version": 2, "flow": own})
    assert FLOW.task_steps(design, SYNTH) == tuple(own)


def test_a_design_asking_for_a_step_the_site_lacks_is_refused(tmp_path):
    design = design_with(tmp_path, {"version": 2, "flow": ["Yosys.Synthesis", "OpenROAD.CTS"]})
    with pytest.raises(UnsupportedConfig, match=r"asks for OpenROAD\.CTS in meta\.flow"):
        FLOW.task_steps(design, SYNTH)
    other = design_with(tmp_path / "b", {"version": 2, "flow": "OpenInKLayout"})
    with pytest.raises(UnsupportedConfig, match="asks for the flow 'OpenInKLayout'"):
        FLOW.task_steps(other, SYNTH)


@pytest.mark.parametrize(
    ("value", "steps"),
    [
        (None, None),
        ("", None),
        ("all", None),
        ([], None),
        ("synthesis", SYNTHESIS_STEPS),
        ("Verilator.Lint, Yosys.Synthesis", ("Verilator.Lint", "Yosys.Synthesis")),
        (["Yosys.Synthesis"], ("Yosys.Synthesis",)),
    ],
)
def test_the_steps_setting(value, steps):
    assert FLOW.site_steps({"LIBRELANE_STEPS": value}) == steps


@pytest.mark.parametrize("value", [3, ["Yosys.Synthesis", ""], {"a": 1}, [None]])
def test_a_bad_steps_setting_is_refused(value):
    with pytest.raises(FlowError, match="LIBRELANE_STEPS must be"):
        FLOW.site_steps({"LIBRELANE_STEPS": value})


def test_the_stand_in_ignores_the_steps_and_says_what_it_is():
    settings = {**SYNTH, "FLOW_EXECUTABLE_OVERRIDE": "/x/openlane_standin.py"}
    assert FLOW.site_steps(settings) is None
    assert site_notes(settings) == {}
    note = run_note(FLOW, settings, None)
    assert note == "the stand-in flow openlane_standin.py (a test double, not LibreLane) ran"


def test_what_a_cut_flow_is_called_everywhere():
    assert describe_steps(None) is None
    assert describe_steps(SYNTHESIS_STEPS).startswith(
        "stops after synthesis on this cluster, with pre-layout timing and power from OpenSTA"
    )
    assert describe_steps(("Verilator.Lint", "Yosys.Synthesis")) == (
        "stops after synthesis on this cluster (no floorplan, placement or routing)"
    )
    assert describe_steps(("Yosys.Synthesis", "OpenROAD.Floorplan")) == (
        "runs 2 steps on this cluster, up to OpenROAD.Floorplan"
    )
    assert site_notes(SYNTH) == {"LibreLane": describe_steps(SYNTHESIS_STEPS)}
    assert run_note(FLOW, {}, None) is None
    assert run_note(FLOW, SYNTH, SYNTHESIS_STEPS).startswith("LibreLane stops after synthesis")


def test_openlane1_has_no_step_list(tmp_path):
    design = design_with(tmp_path)
    flow = OpenLane1()
    assert flow.site_steps(SYNTH) is None
    with pytest.raises(UnsupportedConfig, match="cannot run a chosen list of steps"):
        flow.task_config_text(design, {}, steps=("Yosys.Synthesis",))


def test_native_env_is_exported_as_is_and_through_apptainer_prefixed():
    settings = {"LIBRELANE_YOSYS": "/opt/ll/bin/yosys-pyosys", "LIBRELANE_STA": "/usr/bin/sta"}
    native = FLOW.task_env({**settings, "CONTAINER_RUNTIME": "native"})
    assert native == {
        "_LLN_OVERRIDE_YOSYS": "/opt/ll/bin/yosys-pyosys",
        "PORTAL_STA": "/usr/bin/sta",
    }
    boxed = FLOW.task_env({**settings, "CONTAINER_RUNTIME": "apptainer"})
    assert boxed == {
        "APPTAINERENV__LLN_OVERRIDE_YOSYS": "/opt/ll/bin/yosys-pyosys",
        "APPTAINERENV_PORTAL_STA": "/usr/bin/sta",
    }
    assert FLOW.task_env({"CONTAINER_RUNTIME": "native"}) == {}
    assert FLOW.task_env({**settings, "FLOW_EXECUTABLE_OVERRIDE": "/x/standin.py"}) == {}


def test_native_command_has_no_container_and_the_script_exports_the_wrapper(tmp_path):
    design = design_with(tmp_path)
    settings = {
        "CONTAINER_RUNTIME": "native",
        "LIBRELANE_EXECUTABLE": "/opt/ll/bin/librelane",
        "LIBRELANE_YOSYS": "/opt/ll/bin/yosys-pyosys",
        "PDK_ROOT": "/opt/pdks",
    }
    assert FLOW.container_words(settings, design=design) == []
    script = render_array_script(
        ArrayScript(
            submission_uuid="0d6f3c1e-8a51-4cbe-9d55-3d3a1f9d6b7a",
            job_name="olp-0d6f3c1e-8a51-4cbe-9d55-3d3a1f9d6b7a",
            run_dir="/runs/x",
            design_dir="/runs/x/design/designs/counter",
            array_indices=[0, 1],
            flow_words=FLOW.command_words(settings, design, "config.json"),
            env=FLOW.task_env(settings),
            note=run_note(FLOW, SYNTH, SYNTHESIS_STEPS),
        )
    )
    assert "export _LLN_OVERRIDE_YOSYS=/opt/ll/bin/yosys-pyosys" in script
    assert "/opt/ll/bin/librelane --manual-pdk --pdk-root /opt/pdks" in script
    assert "apptainer" not in script
    assert "# What runs: LibreLane stops after synthesis on this cluster" in script
    assert 'echo "openlane-portal: "\'LibreLane stops after synthesis' in script


def test_a_site_without_the_pdk_or_the_program_is_refused(tmp_path):
    (tmp_path / "pdks" / "sky130A").mkdir(parents=True)
    program = tmp_path / "librelane"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    ok = {"PDK_ROOT": str(tmp_path / "pdks"), "CONTAINER_RUNTIME": "native"}
    FLOW.check_site({**ok, "LIBRELANE_EXECUTABLE": str(program)})
    with pytest.raises(FlowError, match=r"^this cluster has no sky130A PDK under its PDK root"):
        FLOW.check_site({**ok, "PDK_ROOT": str(tmp_path / "none")})
    with pytest.raises(FlowError, match=r"^LibreLane is not installed on this cluster"):
        FLOW.check_site({**ok, "LIBRELANE_EXECUTABLE": str(tmp_path / "missing")})
    with pytest.raises(FlowError, match="not installed"):
        FLOW.check_site({**ok, "LIBRELANE_EXECUTABLE": "no-such-librelane-program"})
    # A container site is not asked for a program on the portal host; the stand-in needs nothing.
    FLOW.check_site({"PDK_ROOT": str(tmp_path / "pdks"), "CONTAINER_RUNTIME": "apptainer"})
    FLOW.check_site({"PDK_ROOT": "/nowhere", "FLOW_EXECUTABLE_OVERRIDE": "/x/standin.py"})
