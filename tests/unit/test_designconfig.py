"""Design-config reading and checking on the real OpenLane configs in tests/data/openlane."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.flows.designconfig import (
    check_config,
    load_document,
    load_variables,
    main,
    overlay_document,
    read_design_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data" / "openlane"
CONFIGS = DATA / "openlane1" / "configs"
ALL_CONFIGS = sorted(p.name for p in CONFIGS.iterdir() if p.suffix in (".json", ".tcl"))


def test_the_reference_configs_are_there():
    assert len(ALL_CONFIGS) == 14
    assert "xtea.tcl" in ALL_CONFIGS


@pytest.mark.parametrize("name", ALL_CONFIGS)
@pytest.mark.parametrize("flow", ["openlane1", "openlane2", "librelane"])
def test_every_reference_config_passes_the_checker(name, flow):
    report = check_config(CONFIGS / name, flow=flow)
    assert report.errors == []
    assert report.ok
    assert report.resolved["DESIGN_NAME"]
    json.dumps(report.to_dict())  # serializable
    assert report.to_dict()["ok"] is True


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_variable_of_the_reference_configs_is_classified(name):
    report = check_config(CONFIGS / name)
    design = read_design_config(CONFIGS / name)
    names = {n for n, _ in design.names}
    classified = set(report.known) | set(report.unknown) | set(report.deprecated)
    assert names == classified | set(report.removed)
    # the standard variables are known to the table
    for standard in ("DESIGN_NAME", "VERILOG_FILES", "CLOCK_PORT"):
        if standard in names:
            assert standard in report.known


def test_known_variable_table_is_large_and_covers_the_basics():
    table = load_variables("openlane1")
    assert len(table.known) > 300
    basics = "CLOCK_PERIOD FP_CORE_UTIL PL_TARGET_DENSITY SYNTH_STRATEGY MAX_FANOUT_CONSTRAINT"
    for name in basics.split() + ["FP_PDN_VPITCH", "DIE_AREA", "GRT_REPAIR_ANTENNAS"]:
        assert name in table.known
    assert table.deprecated["SYNTH_MAX_FANOUT"] == "MAX_FANOUT_CONSTRAINT"
    assert table.deprecated["GLB_RT_ADJUSTMENT"] == "GRT_ADJUSTMENT"
    ol2 = load_variables("openlane2")
    assert "PL_TARGET_DENSITY_PCT" in ol2.known
    assert ol2.deprecated["PL_TARGET_DENSITY"] == "PL_TARGET_DENSITY_PCT"
    assert load_variables("librelane") is ol2 or load_variables("librelane") == ol2


# -- resolved values, checked by hand against the files ------------------------------------


def test_spm_values_for_sky130a_hd():
    design = read_design_config(CONFIGS / "spm.json")
    values = design.values
    assert values["CLOCK_PERIOD"] == 10
    assert values["FP_CORE_UTIL"] == 45  # from the pdk::sky130* block
    assert values["FP_PDN_VPITCH"] == 30
    assert values["FP_PDN_SKIPTRIM"] is True
    assert "MAX_FANOUT_CONSTRAINT" not in values  # only in the scl::sky130_fd_sc_ls block
    assert "MAX_FANOUT_CONSTRAINT" in design.assigned  # ... which the file does set
    assert values["PNR_SDC_FILE"] == str(CONFIGS / "src" / "spm.sdc")
    assert values["FP_PIN_ORDER_CFG"] == str(CONFIGS / "pin_order.cfg")
    assert design.lines["DESIGN_NAME"] == 3


def test_spm_nested_scl_block_and_other_pdk():
    hs = read_design_config(CONFIGS / "spm.json", scl="sky130_fd_sc_hs")
    assert hs.values["CLOCK_PERIOD"] == 8
    ls = read_design_config(CONFIGS / "spm.json", scl="sky130_fd_sc_ls")
    assert ls.values["MAX_FANOUT_CONSTRAINT"] == 5
    assert ls.values["CLOCK_PERIOD"] == 10
    gf = read_design_config(CONFIGS / "spm.json", pdk="gf180mcuD", scl="gf180mcu_fd_sc_mcu7t5v0")
    assert gf.values["CLOCK_PERIOD"] == 24.0
    assert gf.values["FP_CORE_UTIL"] == 40
    assert gf.values["PL_TARGET_DENSITY"] == 0.5


def test_document_order_decides_between_block_and_top_level():
    # salsa20: pdk::sky130* sets 36.73, its scl::sky130_fd_sc_hd sub-block 38
    assert read_design_config(CONFIGS / "salsa20.json").values["CLOCK_PERIOD"] == 38
    ls = read_design_config(CONFIGS / "salsa20.json", scl="sky130_fd_sc_ls")
    assert ls.values["CLOCK_PERIOD"] == 36.73
    aes_hdll = read_design_config(CONFIGS / "aes.json", scl="sky130_fd_sc_hdll")
    assert aes_hdll.values["CLOCK_PERIOD"] == 25.9
    assert "PL_RESIZER_HOLD_SLACK_MARGIN" not in aes_hdll.values
    wbq = read_design_config(CONFIGS / "wbqspiflash.json")
    assert wbq.values["MAX_FANOUT_CONSTRAINT"] == 4
    assert wbq.values["SYNTH_STRATEGY"] == "DELAY 0"


def test_xtea_tcl_values_and_unresolved_parts():
    design = read_design_config(CONFIGS / "xtea.tcl", design_dir="/work/d")
    assert design.kind == "tcl"
    assert design.values["DESIGN_NAME"] == "xtea"
    assert design.values["VERILOG_FILES"] == "/work/d/src/xtea.v"
    assert design.values["CLOCK_NET"] == "clock"  # set ::env(CLOCK_NET) $::env(CLOCK_PORT)
    assert design.lines["CLOCK_NET"] == 8
    unresolved = {(u.name, u.line) for u in design.unresolved}
    assert ("if", 11) in unresolved
    assert ("source", 12) in unresolved
    assert design.errors == []
    assert {"DESIGN_NAME", "CLOCK_NET", "SDC_FILE"} <= design.assigned


def test_check_config_reports_typos_deprecations_and_removals():
    apu = check_config(CONFIGS / "APU.json")
    assert apu.unknown == ["RUN_HEURISITC_DIODE_INSERTION"]
    assert any("did you mean RUN_HEURISTIC_DIODE_INSERTION" in m for _, m in apu.warnings)
    gcd = check_config(CONFIGS / "gcd.json")
    assert "PLACE_DENSITY" in gcd.unknown
    assert "DIODE_INSERTION_STRATEGY" in gcd.deprecated
    assert gcd.resolved["SYNTH_STRATEGY"] == "DELAY 4"
    assert gcd.resolved["DIE_AREA"] == "0 0 279.96 280.128"
    xtea = check_config(CONFIGS / "xtea.tcl")
    assert xtea.removed == ["SDC_FILE"]
    ol2 = check_config(CONFIGS / "inverter.json", flow="openlane2")
    assert "PL_RANDOM_GLB_PLACEMENT" in ol2.removed
    assert "PL_TARGET_DENSITY" in ol2.deprecated


def test_unknown_lines_point_at_the_key(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "DESIGN_NAME": "x",\n\n  "CLOK_PERIOD": 10\n}\n')
    report = check_config(path)
    assert report.unknown == ["CLOK_PERIOD"]
    assert (4, "unknown variable CLOK_PERIOD; did you mean CLOCK_PERIOD?") in report.warnings


# -- errors OpenLane itself would raise ----------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_malformed_json_reports_the_line(tmp_path):
    path = write(tmp_path, '{\n  "DESIGN_NAME": "x",\n  "CLOCK_PERIOD": 10,\n}\n')
    report = check_config(path)
    assert not report.ok
    assert report.errors[0][0] == 4
    assert "malformed JSON" in report.errors[0][1]


def test_objects_are_rejected_by_openlane1_but_not_openlane2(tmp_path):
    path = write(tmp_path, '{"DESIGN_NAME": "x", "MACROS": {"a": {"gds": ["dir::a.gds"]}}}')
    assert check_config(path).errors
    ol2 = check_config(path, flow="openlane2")
    assert ol2.ok
    assert ol2.resolved["MACROS"]["a"]["gds"] == [str(tmp_path / "a.gds")]


def test_references_must_exist_before_use(tmp_path):
    path = write(tmp_path, '{"A": "ref::$B", "B": "vdd gnd", "C": "ref::$B", "D": "expr::$E * 2"}')
    report = check_config(path)
    messages = [m for _, m in report.errors]
    assert any(m.startswith("A: ref:: refers to $B") for m in messages)
    assert any(m.startswith("D: expr:: refers to $E") for m in messages)
    assert report.resolved["C"] == "vdd gnd"
    assert "A" not in report.resolved


def test_expressions_and_the_upstream_minus_bug(tmp_path):
    path = write(
        tmp_path,
        '{"FP_CORE_UTIL": 40, "PL_TARGET_DENSITY": "expr::($FP_CORE_UTIL + 5.0) / 100.0",'
        ' "X": "expr::$FP_CORE_UTIL - 10", "Y": "expr::2 ** 3 ** 2"}',
    )
    report = check_config(path)
    assert report.ok
    assert report.resolved["PL_TARGET_DENSITY"] == pytest.approx(0.45)
    assert report.resolved["X"] == 30.0
    assert report.resolved["Y"] == 512.0
    assert any("binary '-'" in m for _, m in report.warnings)
    librelane = check_config(path, flow="librelane")
    assert not any("binary '-'" in m for _, m in librelane.warnings)


def test_ref_to_a_number_is_an_error(tmp_path):
    path = write(tmp_path, '{"A": 10, "B": "ref::$A"}')
    assert any("is a number" in m for _, m in check_config(path).errors)


def test_unsupported_diode_strategies_are_errors(tmp_path):
    path = write(tmp_path, '{"DESIGN_NAME": "x", "DIODE_INSERTION_STRATEGY": 5}')
    assert any("no longer supported" in m for _, m in check_config(path).errors)
    ok = write(tmp_path, '{"DESIGN_NAME": "x", "DIODE_INSERTION_STRATEGY": 3}', "b.json")
    assert check_config(ok).ok


def test_dir_globs_expand_when_the_files_exist(tmp_path):
    (tmp_path / "src").mkdir()
    for name in ("b.v", "a.v"):
        (tmp_path / "src" / name).write_text("module m; endmodule\n")
    path = write(tmp_path, '{"VERILOG_FILES": "dir::src/*.v"}')
    ol1 = read_design_config(path)
    assert ol1.values["VERILOG_FILES"] == f"{tmp_path}/src/a.v {tmp_path}/src/b.v"
    ol2 = read_design_config(path, flow="openlane2")
    assert ol2.values["VERILOG_FILES"] == [f"{tmp_path}/src/a.v", f"{tmp_path}/src/b.v"]


def test_duplicate_keys_behave_like_json_loads(tmp_path):
    path = write(tmp_path, '{"A": 1, "B": 2, "A": 3}')
    assert load_document(path, "json") == {"A": 3, "B": 2}
    assert read_design_config(path).values["A"] == 3


def test_yaml_configs_use_yaml_1_2_booleans_and_line_numbers(tmp_path):
    path = write(
        tmp_path,
        "DESIGN_NAME: spm\nVERILOG_FILES: dir::src/*.v\nCLOCK_PORT: on\nRUN_LINTER: true\n"
        "pdk::sky130*:\n  CLOCK_PERIOD: 12.5\n",
        "config.yaml",
    )
    design = read_design_config(path, flow="openlane2")
    assert design.kind == "yaml"
    assert design.values["CLOCK_PORT"] == "on"  # YAML 1.1 would say True
    assert design.values["RUN_LINTER"] is True
    assert design.values["CLOCK_PERIOD"] == 12.5
    assert design.lines["CLOCK_PERIOD"] == 6
    assert any("YAML" in m for _, m in check_config(path, flow="openlane1").errors)
    bad = write(tmp_path, "A: [1, 2\nB: 3\n", "bad.yaml")
    report = check_config(bad, flow="openlane2")
    assert report.errors and report.errors[0][0] in (2, 3)


def test_non_utf8_file_is_an_error_not_a_crash(tmp_path):
    path = tmp_path / "config.json"
    path.write_bytes(b'{"A": "\xff"}')
    assert check_config(path).errors


def test_command_line_exit_status(tmp_path, capsys):
    assert main([str(CONFIGS / "spm.json")]) == 0
    assert json.loads(capsys.readouterr().out)["resolved"]["CLOCK_PERIOD"] == 10
    bad = write(tmp_path, "{")
    assert main([str(bad)]) == 1


# -- overlay ---------------------------------------------------------------------------------


def test_overlay_replaces_everywhere_and_adds_missing_keys_first():
    document = load_document(CONFIGS / "spm.json", "json")
    out = overlay_document(document, {"CLOCK_PERIOD": 7, "PL_TARGET_DENSITY": 0.6}, {"X"})
    assert list(out)[0] == "PL_TARGET_DENSITY"  # added first: expr::/ref:: can see it
    assert out["CLOCK_PERIOD"] == 7
    assert out["pdk::sky130*"]["CLOCK_PERIOD"] == 7
    assert out["pdk::sky130*"]["scl::sky130_fd_sc_hs"]["CLOCK_PERIOD"] == 7
    assert out["pdk::gf180mcu*"]["PL_TARGET_DENSITY"] == 0.6
    assert document["CLOCK_PERIOD"] == 10  # the input is untouched
