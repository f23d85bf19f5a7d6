"""OpenLane 1 metrics CSVs -> DesignFeatures, checked on every row of the real reference files."""

import csv
import json
import math
import re
from pathlib import Path

import pytest

from portal.flows.features import DesignFeatures
from portal.flows.reports import (
    parse_duration,
    parse_openlane1_csv,
    parse_path,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = REPO_ROOT / "tests" / "data" / "openlane"
METRICS_DIR = DATA / "openlane1" / "metrics"
CSV_FILES = sorted(METRICS_DIR.glob("*.csv"))
CURRENT = METRICS_DIR / "2024-07_sky130_fd_sc_hd.csv"
MID_2022 = METRICS_DIR / "2022-07_sky130_fd_sc_hd.csv"
OLD_2021 = METRICS_DIR / "2021-08_sky130_fd_sc_hdll.csv"


def _raw_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


RAW = {path.name: _raw_rows(path) for path in CSV_FILES}
PARSED = {path.name: parse_openlane1_csv(path) for path in CSV_FILES}
CASES = [
    pytest.param(name, index, id=f"{name[:7]}-{index:02d}-{row['design_name']}")
    for name, rows in RAW.items()
    for index, row in enumerate(rows)
]


def _cell(row: dict[str, str], *names: str) -> float | None:
    """The test's own reading of a numeric cell: -1 is OpenLane 1's "not measured"."""
    for name in names:
        if name in row:
            value = float(row[name])
            return None if value == -1 else value
    return None


def _seconds(text: str) -> float:
    """The test's own reading of an OpenLane 1 runtime ("1h2m3s" or "1h2m3s4ms")."""
    h, m, s, ms = re.fullmatch(r"(\d+)h(\d+)m(\d+)s(?:(\d+)ms)?", text).groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms or 0) / 1000


def _never_routed(row: dict[str, str]) -> bool:
    return "fail" in row["flow_status"] and row["routed_runtime"] == "-1"


def _record(file: Path, design: str) -> DesignFeatures:
    (found,) = [r for r in PARSED[file.name] if r.design == design]
    return found


def test_reference_files_are_all_there():
    assert [p.name for p in CSV_FILES] == [OLD_2021.name, MID_2022.name, CURRENT.name]
    assert [len(RAW[p.name]) for p in CSV_FILES] == [42, 44, 21]


def test_one_record_per_row_in_order():
    for name, rows in RAW.items():
        assert [r.design for r in PARSED[name]] == [row["design_name"] for row in rows]


@pytest.mark.parametrize(("name", "index"), CASES)
def test_every_row_parses_to_sensible_values(name, index):
    row, rec = RAW[name][index], PARSED[name][index]
    assert rec.flow == "openlane1"
    assert rec.design == row["design_name"]
    assert rec.flow_status == ("failed" if "fail" in row["flow_status"] else "completed")
    assert rec.source == str(METRICS_DIR / name)

    # areas: positive, converted from the raw cell; OpenLane's -1 / -1e-06 markers are None
    die_mm2 = float(row["DIEAREA_mm^2"])
    if die_mm2 > 0:
        assert rec.die_area_um2 == pytest.approx(die_mm2 * 1e6)
    else:
        assert rec.die_area_um2 is None
    if rec.core_area_um2 is not None:
        assert rec.core_area_um2 == pytest.approx(float(row["CoreArea_um^2"]))
        assert rec.core_area_um2 > 0
        if rec.die_area_um2 is not None:
            assert rec.core_area_um2 <= rec.die_area_um2

    # cell counts: positive ints read from the right column for this format
    synth = _cell(row, "synth_cell_count", "cell_count")
    assert rec.cell_count_synth == (None if synth is None else int(synth))
    for count in (rec.cell_count_synth, rec.cell_count_final):
        assert count is None or (type(count) is int and count > 0)

    # runtime: every row has one, in seconds
    assert rec.runtime_seconds == pytest.approx(_seconds(row["total_runtime"]))
    assert rec.runtime_seconds > 0

    # utilization in percent
    assert rec.utilization_pct is None or 0 <= rec.utilization_pct <= 100
    if rec.utilization_pct is not None and _cell(row, "Final_Util") is None:
        assert rec.utilization_pct == pytest.approx(float(row["OpenDP_Util"]))

    # power: watts, never negative, total = sum of parts
    parts = [rec.power_internal_w, rec.power_switching_w, rec.power_leakage_w]
    assert all(p is None or p >= 0 for p in [*parts, rec.power_total_w])
    if rec.power_total_w is not None:
        assert rec.power_total_w == pytest.approx(sum(parts))

    # timing from post-route STA: WNS clamps at 0, TNS sums negative slacks so TNS <= WNS
    if rec.setup_wns_ns is not None:
        assert rec.setup_wns_ns <= 0
        assert rec.setup_wns_ns == float(row["spef_wns"])
    if rec.setup_wns_ns is not None and rec.setup_tns_ns is not None:
        assert rec.setup_tns_ns <= rec.setup_wns_ns
    assert rec.clock_period_ns == pytest.approx(float(row["CLOCK_PERIOD"]))
    if rec.suggested_clock_period_ns is not None:
        assert rec.suggested_clock_period_ns >= rec.clock_period_ns
        assert rec.suggested_frequency_mhz * rec.suggested_clock_period_ns == pytest.approx(1000)
        if "suggested_clock_period" in row:  # OpenLane's own figure agrees when STA ran
            assert rec.suggested_clock_period_ns == pytest.approx(
                float(row["suggested_clock_period"])
            )
    else:
        assert rec.setup_wns_ns is None

    # counts are non-negative ints; lengths and memory positive
    for count in (
        rec.vias,
        rec.drc_route,
        rec.drc_magic,
        rec.drc_klayout,
        rec.lvs_errors,
        rec.antenna_violating_nets,
        rec.antenna_violating_pins,
    ):
        assert count is None or (type(count) is int and count >= 0)
    assert rec.wirelength_um is None or rec.wirelength_um >= 0
    assert rec.peak_memory_mb is None or rec.peak_memory_mb > 0

    # a failed run that never routed has no post-route measurement at all
    if _never_routed(row):
        assert rec.setup_wns_ns is None and rec.setup_tns_ns is None
        assert rec.lvs_errors is None and rec.drc_route is None and rec.drc_magic is None
        assert rec.antenna_violating_pins is None and rec.wirelength_um is None

    # the original record travels along, minus the pandas index column
    assert rec.raw == {k: v for k, v in row.items() if k}
    assert "CLOCK_PERIOD" in rec.params and "HPWL" not in rec.params and "AND" not in rec.params


@pytest.mark.parametrize("name", [p.name for p in CSV_FILES])
def test_every_runtime_cell_in_the_data_parses(name):
    for row in RAW[name]:
        for column in ("total_runtime", "routed_runtime"):
            seconds = parse_duration(row[column])
            if row[column] == "-1":
                assert seconds is None
            else:
                assert seconds == pytest.approx(_seconds(row[column])) and seconds > 0


def test_current_format_spm_hand_checked():
    rec = _record(CURRENT, "spm")
    assert rec.die_area_um2 == pytest.approx(11465.2545)  # DIEAREA_mm^2 0.0114652544999999
    assert rec.core_area_um2 == pytest.approx(8134.0512)  # CoreArea_um^2 8134.051200000001
    assert (rec.cell_count_synth, rec.cell_count_final) == (301, 1216)
    assert rec.utilization_pct == 45.0  # Final_Util wins over OpenDP_Util 47.85
    assert rec.runtime_seconds == 70.0  # 0h1m10s0ms
    assert rec.peak_memory_mb == 521.98
    assert (rec.wirelength_um, rec.vias) == (10140.0, 2035)
    assert (rec.drc_route, rec.drc_magic, rec.drc_klayout, rec.lvs_errors) == (0, 0, None, 0)
    assert (rec.antenna_violating_pins, rec.antenna_violating_nets) == (0, 0)
    assert (rec.setup_wns_ns, rec.setup_tns_ns, rec.clock_period_ns) == (0.0, 0.0, 10.0)
    assert (rec.suggested_clock_period_ns, rec.suggested_frequency_mhz) == (10.0, 100.0)
    assert rec.hold_wns_ns is None and rec.setup_ws_ns is None  # OpenLane 1 has neither
    assert rec.power_total_w is None  # every power cell of the reference file is -1
    assert rec.params["SYNTH_STRATEGY"] == "AREA 0"


def test_current_format_takes_signoff_timing_not_synthesis_estimate():
    rec = _record(CURRENT, "aes")  # wns -26.68 / tns -77174.7 at synthesis, 0.0 after routing
    assert (rec.setup_wns_ns, rec.setup_tns_ns) == (0.0, 0.0)
    assert (rec.antenna_violating_pins, rec.antenna_violating_nets) == (75, 70)
    assert rec.runtime_seconds == 31 * 60 + 18
    assert rec.cell_count_final == 172059


def test_current_format_not_measured_markers():
    wrapper = _record(CURRENT, "aes_user_project_wrapper")
    assert wrapper.die_area_um2 == pytest.approx(10_278_400)  # 10.2784 mm^2
    assert wrapper.setup_wns_ns is None and wrapper.setup_tns_ns is None  # spef_wns -1.0
    assert wrapper.suggested_clock_period_ns is None
    assert wrapper.utilization_pct == pytest.approx(6.44782)  # OpenDP_Util is -1.0
    caravel = _record(CURRENT, "user_project_wrapper")
    assert caravel.die_area_um2 is None  # DIEAREA_mm^2 -1.0
    assert caravel.core_area_um2 == pytest.approx(10_173_980.1536)


def test_mid_2022_format_hand_checked():
    rec = _record(MID_2022, "xtea")
    assert rec.die_area_um2 == pytest.approx(58056)  # 0.058055999999999996 mm^2
    assert rec.core_area_um2 is None and rec.cell_count_final is None
    assert rec.cell_count_synth == 2523  # `cell_count`
    assert rec.utilization_pct == 47.0  # OpenDP_Util
    assert (rec.setup_wns_ns, rec.setup_tns_ns) == (-0.9, -2.75)  # spef_*, not wns -3.65
    assert rec.suggested_clock_period_ns == pytest.approx(26.93)  # 26.03 + 0.9
    assert rec.suggested_frequency_mhz == pytest.approx(37.13330857779428)
    assert rec.antenna_violating_pins == 19 and rec.antenna_violating_nets is None
    assert rec.runtime_seconds == 12 * 60 + 43  # 0h12m43s
    assert rec.params["GRT_ADJUSTMENT"] == "0.15"


def test_mid_2022_failed_run_that_never_routed():
    rec = _record(MID_2022, "ldpc_decoder_802_3an")
    assert rec.flow_status == "failed"  # flow_failed
    assert rec.runtime_seconds == 5 * 3600 + 59 * 60 + 10
    assert rec.cell_count_synth == 90211 and rec.utilization_pct == 17.0
    assert rec.die_area_um2 is None  # -1e-06 = (-1 um^2) / 1e6
    assert rec.lvs_errors is None  # raw 0 was never measured
    assert rec.setup_wns_ns is None and rec.suggested_clock_period_ns is None  # raw 0.0 / 77.0
    assert rec.peak_memory_mb is None


def test_mid_2022_file_mixes_runtime_formats_and_status_spellings():
    gcd = _record(MID_2022, "gcd")
    assert gcd.runtime_seconds == 111  # 0h1m51s0ms among "0h12m43s" rows
    assert gcd.flow_status == "completed"  # "flow completed" among "flow_completed"
    assert gcd.cell_count_synth is None  # -1


def test_2021_format_hand_checked():
    failed = _record(OLD_2021, "digital_pll")
    assert failed.flow_status == "failed" and failed.runtime_seconds == 2
    assert failed.die_area_um2 is None and failed.cell_count_synth is None
    assert failed.clock_period_ns == 15.8
    assert failed.suggested_clock_period_ns is None  # CSV says 16.8 = 15.8 - (-1 marker)
    pico = _record(OLD_2021, "picorv32a")
    assert (pico.setup_wns_ns, pico.setup_tns_ns) == (-1.99, -9.65)
    assert pico.suggested_clock_period_ns == pytest.approx(26.72)
    assert pico.antenna_violating_pins == 67
    assert pico.die_area_um2 == pytest.approx(690536)
    assert pico.params["GLB_RT_ADJUSTMENT"] == "0.1"
    assert _record(OLD_2021, "sound").runtime_seconds == 10 * 3600 + 47 * 60 + 8


def _single_run_csv(source: Path, design: str, **overrides: str) -> str:
    """Header + one real row (as OpenLane 1 writes a run's metrics.csv), cells overridable."""
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        row = next(r for r in reader if r["design_name"] == design)
        header = reader.fieldnames
    row.update(overrides)
    lines = [",".join(header), ",".join(row[h] for h in header)]
    return "\n".join(lines) + "\n"


def test_csv_text_input_gives_the_same_record():
    (rec,) = parse_openlane1_csv(_single_run_csv(CURRENT, "spm"))
    assert rec.to_dict() | {"source": None} == _record(CURRENT, "spm").to_dict() | {"source": None}


def test_power_columns_are_read_as_watts_from_the_typical_corner():
    # Copy of the real spm row with the (all -1) power cells filled in: OpenSTA's report_power
    # prints watts, and OpenLane 1 stores that number unconverted under the *_uW names.
    text = _single_run_csv(
        CURRENT,
        "spm",
        power_typical_internal_uW="7.47e-04",
        power_typical_switching_uW="3.6e-04",
        power_typical_leakage_uW="4.92e-09",
        power_slowest_internal_uW="9.9e-01",
    )
    (rec,) = parse_openlane1_csv(text)
    assert rec.power_internal_w == pytest.approx(7.47e-4)
    assert rec.power_switching_w == pytest.approx(3.6e-4)
    assert rec.power_leakage_w == pytest.approx(4.92e-9)
    assert rec.power_total_w == pytest.approx(7.47e-4 + 3.6e-4 + 4.92e-9)


def test_missing_power_part_leaves_total_unknown():
    text = _single_run_csv(
        CURRENT, "spm", power_typical_internal_uW="1e-3", power_typical_switching_uW="1e-3"
    )
    (rec,) = parse_openlane1_csv(text)
    assert rec.power_internal_w == 1e-3 and rec.power_leakage_w is None
    assert rec.power_total_w is None


def test_openlane2_metric_value_csv_is_refused_with_a_pointer():
    with pytest.raises(ValueError, match="OpenLane 2"):
        parse_openlane1_csv("Metric,Value\ndesign__die__area,11327.4\n")


def test_unrelated_csv_is_refused():
    with pytest.raises(ValueError, match="not an OpenLane 1"):
        parse_openlane1_csv("a,b\n1,2\n")


def test_parse_path_reads_every_row_of_a_csv():
    records = parse_path(MID_2022)
    assert len(records) == 44
    assert records[9].to_dict() == _record(MID_2022, "xtea").to_dict()


def test_records_round_trip_through_json():
    for records in PARSED.values():
        for rec in records:
            data = json.loads(json.dumps(rec.to_dict()))
            assert DesignFeatures.from_dict(data) == rec


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0h4m26s0ms", 266),
        ("0h1m39s", 99),
        ("10h47m8s", 38828),
        ("1h2m3s450ms", 3723.45),
        ("2m", 120),
        ("45s", 45),
        ("1d2h", 93600),
        ("00:01:10.250", 70.25),  # OpenLane 2 step runtime.txt
        ("1-02:03:04", 93784),  # Slurm elapsed with days
        ("12:34", 754),  # Slurm MM:SS
        ("70.5", 70.5),
        (70, 70.0),
        ("-1", None),
        ("-1.0", None),
        ("", None),
        (None, None),
        (-3, None),
    ],
)
def test_parse_duration(text, seconds):
    result = parse_duration(text)
    if seconds is None:
        assert result is None
    else:
        assert math.isclose(result, seconds)


@pytest.mark.parametrize("text", ["abc", "1x", "h", "1h-2m", "::", True])
def test_parse_duration_rejects_garbage(text):
    with pytest.raises(ValueError):
        parse_duration(text)
