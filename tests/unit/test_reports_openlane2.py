"""OpenLane 2 final/metrics.json -> DesignFeatures, on the real spm metrics."""

import csv
import json
from pathlib import Path

import pytest

from portal.flows.reports import parse_openlane2_json, parse_path

REPO_ROOT = Path(__file__).resolve().parents[2]
SPM_METRICS = REPO_ROOT / "tests" / "data" / "openlane" / "openlane2" / "spm_metrics.json"
METRICS: dict = json.loads(SPM_METRICS.read_text())

# The nine STA corners of the run, with the raw per-corner values read from the file.
SETUP_WS_BY_CORNER = {
    "nom_tt_025C_1v80": 6.80628,
    "nom_ss_100C_1v60": 5.988363,
    "nom_ff_n40C_1v95": 7.120349,
    "min_tt_025C_1v80": 6.816953,
    "min_ss_100C_1v60": 6.005839,
    "min_ff_n40C_1v95": 7.1284,
    "max_tt_025C_1v80": 6.796295,
    "max_ss_100C_1v60": 5.973317,  # the worst (smallest) setup slack
    "max_ff_n40C_1v95": 7.11276,
}
HOLD_WS_BY_CORNER = {
    "nom_tt_025C_1v80": 0.330183,
    "nom_ss_100C_1v60": 0.903557,
    "nom_ff_n40C_1v95": 0.112257,
    "min_tt_025C_1v80": 0.329278,
    "min_ss_100C_1v60": 0.903749,
    "min_ff_n40C_1v95": 0.111121,  # the worst (smallest) hold slack
    "max_tt_025C_1v80": 0.33196,
    "max_ss_100C_1v60": 0.906416,
    "max_ff_n40C_1v95": 0.113495,
}


def _without(*prefixes: str) -> dict:
    """The real metrics minus the design-level (unmodified) keys named."""
    return {k: v for k, v in METRICS.items() if k not in prefixes}


def test_corner_tables_match_the_file():
    for corner, value in SETUP_WS_BY_CORNER.items():
        assert METRICS[f"timing__setup__ws__corner:{corner}"] == value
    for corner, value in HOLD_WS_BY_CORNER.items():
        assert METRICS[f"timing__hold__ws__corner:{corner}"] == value
    assert len(METRICS) == 218


def test_spm_design_level_values():
    rec = parse_openlane2_json(SPM_METRICS)
    assert rec.flow == "openlane2"
    assert rec.flow_status == "unknown"  # a metrics file alone does not say how the run ended
    assert rec.source == str(SPM_METRICS)
    assert rec.die_area_um2 == 11327.4
    assert rec.core_area_um2 == 8092.76
    assert rec.cell_count_final == 451 and rec.cell_count_synth is None
    assert rec.utilization_pct == pytest.approx(44.4341)  # 0.444341 as a fraction
    assert (rec.setup_ws_ns, rec.setup_wns_ns, rec.setup_tns_ns) == (5.973317, 0, 0)
    assert (rec.hold_ws_ns, rec.hold_wns_ns, rec.hold_tns_ns) == (0.111121, 0, 0)
    assert rec.power_total_w == pytest.approx(0.0011071680346503854)
    assert rec.power_internal_w == pytest.approx(0.0007471751305274665)
    assert rec.power_switching_w == pytest.approx(0.00035998804378323257)
    assert rec.power_leakage_w == pytest.approx(4.9222390607894795e-09)
    assert rec.wirelength_um == 6360 and rec.vias == 1979
    assert (rec.drc_route, rec.drc_magic, rec.drc_klayout) == (0, 0, None)  # no KLayout key
    assert rec.lvs_errors == 0  # design__lvs_errors__count in this (older) file
    assert (rec.antenna_violating_nets, rec.antenna_violating_pins) == (0, 0)
    assert rec.design is None and rec.clock_period_ns is None
    assert rec.suggested_clock_period_ns is None
    assert rec.runtime_seconds is None and rec.peak_memory_mb is None
    assert rec.raw == METRICS


def test_design_level_value_is_the_worst_corner():
    # OpenLane 2 itself aggregates: the design-level slack equals the minimum over corners.
    assert METRICS["timing__setup__ws"] == min(SETUP_WS_BY_CORNER.values()) == 5.973317
    assert METRICS["timing__hold__ws"] == min(HOLD_WS_BY_CORNER.values()) == 0.111121


def test_without_design_level_keys_the_worst_corner_is_taken():
    metrics = _without(
        "timing__setup__ws",
        "timing__hold__ws",
        "timing__setup__tns",
        "timing__setup__wns",
    )
    rec = parse_openlane2_json(metrics)
    assert rec.setup_ws_ns == 5.973317  # max_ss_100C_1v60, smallest of the nine
    assert rec.hold_ws_ns == 0.111121  # min_ff_n40C_1v95, smallest of the nine
    assert (rec.setup_tns_ns, rec.setup_wns_ns) == (0, 0)


def test_design_level_key_wins_over_corners():
    rec = parse_openlane2_json({**METRICS, "timing__setup__ws": 6.5})
    assert rec.setup_ws_ns == 6.5


def test_worst_corner_for_negative_slack_and_for_power():
    metrics = {
        "timing__setup__ws__corner:a": -0.2,
        "timing__setup__ws__corner:b": -1.5,
        "timing__setup__ws__corner:c": 0.4,
        "timing__setup__tns__corner:a": -0.2,
        "timing__setup__tns__corner:b": -7.0,
        "power__total__corner:a": 1e-3,
        "power__total__corner:b": 3e-3,
    }
    rec = parse_openlane2_json(metrics)
    assert rec.setup_ws_ns == -1.5  # min over corners
    assert rec.setup_tns_ns == -7.0  # min over corners
    assert rec.power_total_w == 3e-3  # worst power is the largest


def test_every_slack_and_tns_takes_the_worst_corner_not_the_least_negative():
    """The real spm run has equal WNS on every corner, so it cannot catch taking the least
    negative corner: here each corner differs, for setup and hold alike."""
    metrics = {}
    for check in ("setup", "hold"):
        for key in ("ws", "wns", "tns"):
            metrics[f"timing__{check}__{key}__corner:nom_tt_025C_1v80"] = -0.05
            metrics[f"timing__{check}__{key}__corner:max_ss_100C_1v60"] = -0.75
            metrics[f"timing__{check}__{key}__corner:min_ff_n40C_1v95"] = -0.25
    rec = parse_openlane2_json(metrics)
    for name in ("ws", "wns", "tns"):
        assert getattr(rec, f"setup_{name}_ns") == -0.75, name
        assert getattr(rec, f"hold_{name}_ns") == -0.75, name


def test_without_design_level_keys_the_last_iteration_is_taken():
    rec = parse_openlane2_json(_without("route__wirelength", "route__drc_errors"))
    assert rec.wirelength_um == 6360  # route__wirelength__iter:4 (iter:1 was 6379)
    assert rec.drc_route == 0  # route__drc_errors__iter:4 (74, 13, 4 before)


def test_last_iteration_is_numeric_not_textual_nor_key_order():
    metrics = {
        "route__drc_errors__iter:10": 0,
        "route__drc_errors__iter:9": 3,
        "route__drc_errors__iter:2": 40,
    }
    assert parse_openlane2_json(metrics).drc_route == 0


def test_newer_lvs_key_name_and_klayout_count():
    metrics = {**METRICS, "design__lvs_error__count": 2, "klayout__drc_error__count": 5}
    rec = parse_openlane2_json(metrics)
    assert rec.lvs_errors == 2  # design__lvs_error__count preferred over the older name
    assert rec.drc_klayout == 5


def test_resolved_config_supplies_design_and_clock():
    rec = parse_openlane2_json(METRICS, config={"DESIGN_NAME": "spm", "CLOCK_PERIOD": 10})
    assert rec.design == "spm" and rec.clock_period_ns == 10.0
    assert rec.suggested_clock_period_ns == 10.0  # timing met: setup WNS is 0
    assert rec.suggested_frequency_mhz == 100.0
    failing = {**METRICS, "timing__setup__wns": -1.25}
    rec = parse_openlane2_json(failing, config={"CLOCK_PERIOD": 10})
    assert rec.suggested_clock_period_ns == 11.25
    assert rec.suggested_frequency_mhz == pytest.approx(1000 / 11.25)


def test_string_and_non_finite_values():
    rec = parse_openlane2_json(
        {"route__vias": "1979", "timing__setup__ws": float("inf"), "design__die__area": "N/A"}
    )
    assert rec.vias == 1979
    assert rec.setup_ws_ns is None  # unconstrained: no finite slack
    assert rec.die_area_um2 is None


def test_json_text_and_path_inputs_agree():
    from_path = parse_openlane2_json(SPM_METRICS)
    from_text = parse_openlane2_json(SPM_METRICS.read_text())
    from_str_path = parse_openlane2_json(str(SPM_METRICS))
    assert from_text.to_dict() | {"source": None} == from_path.to_dict() | {"source": None}
    assert from_str_path == from_path


def test_parse_path_json_and_metric_value_csv(tmp_path):
    (from_json,) = parse_path(SPM_METRICS)
    assert from_json == parse_openlane2_json(SPM_METRICS)
    # OpenLane 2 writes final/metrics.csv ("Metric,Value") beside metrics.json
    csv_path = tmp_path / "metrics.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Metric", "Value"])
        writer.writerows(METRICS.items())
    (from_csv,) = parse_path(csv_path)
    assert from_csv.source == str(csv_path)
    skip = {"raw", "source"}
    assert {k: v for k, v in from_csv.to_dict().items() if k not in skip} == {
        k: v for k, v in from_json.to_dict().items() if k not in skip
    }


def test_a_json_array_is_refused(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        parse_openlane2_json(path)


# --------------------------------------------------------------------------- synthesis only

#: What a LibreLane run cut after synthesis wrote (counter, CLOCK_PERIOD 10, DELAY 0), with the
#: Portal.PrePnRSTA metrics; recorded on this project's test machine.
SYNTH_ONLY = {
    "design__lint_error__count": 0,
    "design__instance__count": 37,
    "design__instance__area": 431.664,
    "design__instance_unmapped__count": 0,
    "synthesis__check_error__count": 0,
    "timing__setup__ws": 7.03597,
    "timing__setup__ws__corner:nom_tt_025C_1v80": 7.03597,
    "timing__setup__wns": 0,
    "timing__setup__tns": 0,
    "timing__hold__ws": 0.329842,
    "timing__hold__wns": 0,
    "timing__hold__tns": 0,
    "power__internal__total": 0,
    "power__switching__total": 1.05003e-05,
    "power__leakage__total": 1.3e-10,
    "power__total": 1.05004e-05,
}


def test_a_run_cut_after_synthesis_has_synthesis_cells_and_cell_area_only():
    features = parse_openlane2_json(SYNTH_ONLY, config={"CLOCK_PERIOD": 10})
    assert features.cell_count_synth == 37 and features.cell_count_final is None
    assert features.cell_area_um2 == 431.664
    assert features.die_area_um2 is None and features.core_area_um2 is None
    assert features.setup_ws_ns == 7.03597 and features.hold_ws_ns == 0.329842
    assert features.power_total_w == 1.05004e-05
    assert features.suggested_clock_period_ns == 10.0


def test_a_full_run_keeps_final_cells_and_has_cell_area():
    features = parse_openlane2_json(METRICS)
    assert features.cell_count_final == 451 and features.cell_count_synth is None
    assert features.cell_area_um2 == 3595.95


@pytest.mark.parametrize("marker", ["?", "", "nan", "inf", "-inf", None, "1e30", 1e30, -1e30])
def test_what_is_not_a_measurement_never_becomes_a_number(marker):
    """LibreLane's STA with an old OpenSTA writes '?'; OpenSTA's "no path" slack is 1e30."""
    metrics = {
        **SYNTH_ONLY,
        "timing__setup__ws": marker,
        "timing__hold__tns": marker,
        "power__total": marker,
        "design__instance__area": marker,
    }
    features = parse_openlane2_json(metrics)
    assert features.setup_ws_ns is None and features.hold_tns_ns is None
    assert features.power_total_w is None and features.cell_area_um2 is None


def test_negative_areas_counts_and_power_are_markers_not_numbers():
    metrics = {
        **SYNTH_ONLY,
        "design__instance__area": -1,
        "design__instance__count": -1,
        "power__total": -1,
        "design__die__area": -1,
    }
    features = parse_openlane2_json(metrics)
    assert features.cell_area_um2 is None and features.cell_count_synth is None
    assert features.power_total_w is None and features.die_area_um2 is None
    assert features.setup_ws_ns == 7.03597  # a slack may be negative: only markers go
