"""Sweep specs: every kind, ranges, files, the OpenLane matrix format, limits and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from portal.submit.sweeps import (
    DEFAULT_MAX_POINTS,
    NumericRange,
    SweepError,
    count_points,
    expand_sweep,
    layer_config,
    load_sweep_file,
    parse_cli_sets,
    parse_cli_sweeps,
    parse_sweep,
    sweep_table,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sweeps"


# -- grid / zip / list / single ---------------------------------------------------------------
def test_grid_is_a_cartesian_product_with_the_last_parameter_fastest():
    spec = parse_sweep(
        {
            "kind": "grid",
            "base": {"FP_SIZING": "relative"},
            "parameters": {"CLOCK_PERIOD": [10, 20], "SYNTH_STRATEGY": ["AREA 0", "DELAY 1"]},
        }
    )
    assert count_points(spec) == 4
    assert expand_sweep(spec) == [
        {"FP_SIZING": "relative", "CLOCK_PERIOD": 10, "SYNTH_STRATEGY": "AREA 0"},
        {"FP_SIZING": "relative", "CLOCK_PERIOD": 10, "SYNTH_STRATEGY": "DELAY 1"},
        {"FP_SIZING": "relative", "CLOCK_PERIOD": 20, "SYNTH_STRATEGY": "AREA 0"},
        {"FP_SIZING": "relative", "CLOCK_PERIOD": 20, "SYNTH_STRATEGY": "DELAY 1"},
    ]


def test_point_key_order_is_base_then_swept_in_spec_order():
    spec = parse_sweep(
        {
            "kind": "grid",
            "base": {"SYNTH_STRATEGY": "AREA 1", "FP_ASPECT_RATIO": 2},
            "parameters": {"GRT_ADJUSTMENT": [0.1], "CLOCK_PERIOD": [5]},
        }
    )
    (point,) = expand_sweep(spec)
    assert list(point) == ["SYNTH_STRATEGY", "FP_ASPECT_RATIO", "GRT_ADJUSTMENT", "CLOCK_PERIOD"]


def test_grid_values_are_validated_through_the_catalog():
    spec = parse_sweep({"kind": "grid", "parameters": {"FP_CORE_UTIL": ["40", 50.5]}})
    assert expand_sweep(spec) == [{"FP_CORE_UTIL": 40}, {"FP_CORE_UTIL": 50.5}]
    with pytest.raises(SweepError, match="FP_CORE_UTIL must be between 1 and 99 %, got 150"):
        parse_sweep({"kind": "grid", "parameters": {"FP_CORE_UTIL": [40, 150]}})


def test_zip_pairs_values():
    spec = parse_sweep(
        {
            "kind": "zip",
            "parameters": {"CLOCK_PERIOD": [10, 15, 20], "FP_CORE_UTIL": [30, 40, 50]},
        }
    )
    assert expand_sweep(spec) == [
        {"CLOCK_PERIOD": 10, "FP_CORE_UTIL": 30},
        {"CLOCK_PERIOD": 15, "FP_CORE_UTIL": 40},
        {"CLOCK_PERIOD": 20, "FP_CORE_UTIL": 50},
    ]


def test_zip_with_unequal_lengths_is_a_clear_error():
    with pytest.raises(SweepError, match="zip needs lists of equal length, got CLOCK_PERIOD=3, "):
        parse_sweep(
            {
                "kind": "zip",
                "parameters": {"CLOCK_PERIOD": [10, 15, 20], "FP_CORE_UTIL": "30:40:10"},
            }
        )


def test_list_points_may_override_base():
    spec = load_sweep_file(DATA / "list.yaml")
    assert expand_sweep(spec) == [
        {"FP_CORE_UTIL": 40, "CLOCK_PERIOD": 10},
        {"FP_CORE_UTIL": 60, "CLOCK_PERIOD": 20},
        {"FP_CORE_UTIL": 40, "FP_SIZING": "absolute", "DIE_AREA": "0 0 300 300"},
    ]


def test_list_point_errors_say_which_point():
    with pytest.raises(SweepError, match=r"points\[1\]: unknown parameter 'CLK_PERIOD'"):
        parse_sweep({"kind": "list", "points": [{"CLOCK_PERIOD": 1}, {"CLK_PERIOD": 2}]})


def test_single_is_just_the_base():
    spec = parse_sweep({"kind": "single", "base": {"CLOCK_PERIOD": "25"}})
    assert count_points(spec) == 1
    assert expand_sweep(spec) == [{"CLOCK_PERIOD": 25}]


# -- ranges -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"start": 10, "stop": 20, "step": 2}, [10, 12, 14, 16, 18, 20]),
        ("10:20:2", [10, 12, 14, 16, 18, 20]),
        ("10:20:3", [10, 13, 16, 19]),
        ("10:13", [10, 11, 12, 13]),
        ("20:10:-5", [20, 15, 10]),
        ("7.5:10:1.25", [7.5, 8.75, 10.0]),
        ("10,12.5,15", [10, 12.5, 15]),
        (12, [12]),
    ],
)
def test_range_forms_are_inclusive(raw, expected):
    spec = parse_sweep({"kind": "grid", "parameters": {"CLOCK_PERIOD": raw}})
    values = [p["CLOCK_PERIOD"] for p in expand_sweep(spec)]
    assert values == expected
    assert [type(v) for v in values] == [type(v) for v in expected]


def test_decimal_ranges_have_no_float_drift():
    spec = parse_sweep({"kind": "grid", "parameters": {"PL_TARGET_DENSITY": "0.5:0.7:0.1"}})
    assert [p["PL_TARGET_DENSITY"] for p in expand_sweep(spec)] == [0.5, 0.6, 0.7]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("10:20:0", "step must not be 0"),
        ("20:10:1", "is empty"),
        ("10:", "must look like start:stop"),
        ("1:2:3:4", "must look like start:stop"),
        ("a:b", "start must be a number"),
        ({"start": 1}, r"a range must be \{start, stop\[, step\]\}"),
        ({"start": 1, "stop": 5, "stride": 1}, "a range must be"),
        ("50:120:10", "FP_CORE_UTIL must be between 1 and 99 %, got 120"),
        ("0:50:10", "FP_CORE_UTIL must be between 1 and 99 %, got 0"),
        ([], "the list of values is empty"),
    ],
)
def test_bad_ranges(raw, message):
    with pytest.raises(SweepError, match=message):
        parse_sweep({"kind": "grid", "parameters": {"FP_CORE_UTIL": raw}})


def test_ranges_need_numeric_parameters_and_integer_steps_for_ints():
    with pytest.raises(SweepError, match="ranges only apply to numeric parameters"):
        parse_sweep({"kind": "grid", "parameters": {"SYNTH_STRATEGY": "1:3"}})
    with pytest.raises(SweepError, match="integer parameter needs an integer start and step"):
        parse_sweep({"kind": "grid", "parameters": {"MAX_FANOUT_CONSTRAINT": "4:8:0.5"}})


def test_numeric_range_length_without_expanding():
    rng = NumericRange.parse("0:1000000000:1")
    assert len(rng) == 1_000_000_001
    assert NumericRange.parse("0.1:0.3:0.1").to_dict() == {"start": 0.1, "stop": 0.3, "step": 0.1}


# -- random -----------------------------------------------------------------------------------
RANDOM = {
    "kind": "random",
    "seed": 1,
    "samples": 20,
    "ranges": {
        "CLOCK_PERIOD": {"min": 5, "max": 20},
        "MAX_FANOUT_CONSTRAINT": {"min": 4, "max": 16},
        "FP_CORE_UTIL": {"min": 30, "max": 60, "step": 5},
        "SYNTH_STRATEGY": {"choices": ["AREA 0", "DELAY 4"]},
        "RUN_HEURISTIC_DIODE_INSERTION": [True, False],
    },
}


def test_random_is_reproducible_with_the_seed():
    first = expand_sweep(parse_sweep(RANDOM))
    second = expand_sweep(parse_sweep(json.loads(json.dumps(RANDOM))))
    assert first == second
    assert len(first) == 20
    other = expand_sweep(parse_sweep({**RANDOM, "seed": 2}))
    assert other != first


def test_random_values_respect_types_and_ranges():
    points = expand_sweep(parse_sweep(RANDOM))
    for point in points:
        assert list(point) == list(RANDOM["ranges"])
        assert type(point["MAX_FANOUT_CONSTRAINT"]) is int
        assert 4 <= point["MAX_FANOUT_CONSTRAINT"] <= 16
        assert type(point["CLOCK_PERIOD"]) is float
        assert 5 <= point["CLOCK_PERIOD"] <= 20
        assert point["FP_CORE_UTIL"] in (30, 35, 40, 45, 50, 55, 60)
        assert type(point["FP_CORE_UTIL"]) is int
        assert point["SYNTH_STRATEGY"] in ("AREA 0", "DELAY 4")
        assert type(point["RUN_HEURISTIC_DIODE_INSERTION"]) is bool
    # 20 draws spread over the domain rather than repeating one value.
    assert len({p["CLOCK_PERIOD"] for p in points}) == 20
    assert len({p["MAX_FANOUT_CONSTRAINT"] for p in points}) > 5


def test_random_steps_and_integers_reach_both_ends_and_every_value_between():
    """A sampler that can never draw ``max`` (an off-by-one in the step count) must fail."""
    spec = {
        "kind": "random",
        "seed": 3,
        "samples": 400,
        "ranges": {
            "FP_CORE_UTIL": {"min": 30, "max": 60, "step": 5},
            "MAX_FANOUT_CONSTRAINT": {"min": 4, "max": 8},
            "SYNTH_STRATEGY": {"choices": ["AREA 0", "AREA 1", "DELAY 4"]},
        },
    }
    points = expand_sweep(parse_sweep(spec))
    assert {p["FP_CORE_UTIL"] for p in points} == {30, 35, 40, 45, 50, 55, 60}
    assert {p["MAX_FANOUT_CONSTRAINT"] for p in points} == {4, 5, 6, 7, 8}
    assert {p["SYNTH_STRATEGY"] for p in points} == {"AREA 0", "AREA 1", "DELAY 4"}


def test_random_sequence_is_pinned():
    """Only Random.random() is used, so this sequence is stable across Python versions."""
    spec = parse_sweep(
        {"kind": "random", "seed": 7, "samples": 3, "ranges": {"MAX_FANOUT_CONSTRAINT": [1, 2, 3]}}
    )
    expected = [int(v * 3) + 1 for v in _random_floats(7, 3)]
    assert [p["MAX_FANOUT_CONSTRAINT"] for p in expand_sweep(spec)] == expected


def _random_floats(seed: int, n: int) -> list[float]:
    import random

    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": None}, "needs an integer 'seed'"),
        ({"seed": "1"}, "needs an integer 'seed'"),
        ({"samples": 0}, "'samples', a positive integer"),
        ({"ranges": {}}, "'ranges' must be a non-empty mapping"),
        ({"ranges": {"CLOCK_PERIOD": {"min": 20, "max": 5}}}, "min .20. is greater than max"),
        ({"ranges": {"CLOCK_PERIOD": {"min": 5}}}, r"must be \{min, max"),
        ({"ranges": {"FP_CORE_UTIL": {"min": 50, "max": 150}}}, "between 1 and 99"),
        ({"ranges": {"SYNTH_STRATEGY": {"min": 1, "max": 2}}}, "use choices for choice"),
        ({"ranges": {"SYNTH_STRATEGY": {"choices": []}}}, "non-empty list"),
        ({"ranges": {"SYNTH_STRATEGY": ["AREA 7"]}}, "SYNTH_STRATEGY must be one of"),
        ({"ranges": {"MAX_FANOUT_CONSTRAINT": {"min": 1, "max": 5.5}}}, "integer min, max"),
        ({"ranges": {"CLOCK_PERIOD": {"min": 1, "max": 5, "step": 0}}}, "step must be positive"),
        ({"ranges": {"CLOCK_PERIOD": 5}}, "must be"),
        ({"ranges": {"CLOCKPERIOD": [5]}}, "did you mean CLOCK_PERIOD"),
        ({"base": {"CLOCK_PERIOD": 5}}, "CLOCK_PERIOD: set in base and swept"),
    ],
)
def test_random_errors(change, message):
    with pytest.raises(SweepError, match=message):
        parse_sweep({**RANDOM, **change})


# -- files -----------------------------------------------------------------------------------
def test_yaml_grid_file():
    spec = load_sweep_file(DATA / "grid.yaml")
    points = expand_sweep(spec)
    assert len(points) == 9
    assert points[0] == {
        "FP_SIZING": "relative",
        "SYNTH_STRATEGY": "DELAY 1",
        "CLOCK_PERIOD": 10,
        "FP_CORE_UTIL": 30,
    }
    assert points[-1]["CLOCK_PERIOD"] == 15 and points[-1]["FP_CORE_UTIL"] == 50


def test_json_zip_file_with_cli_style_strings():
    points = expand_sweep(load_sweep_file(DATA / "zip.json"))
    assert points == [
        {"CLOCK_PERIOD": 10, "PL_TARGET_DENSITY": 0.5},
        {"CLOCK_PERIOD": 15, "PL_TARGET_DENSITY": 0.6},
        {"CLOCK_PERIOD": 20, "PL_TARGET_DENSITY": 0.7},
    ]


def test_yaml_random_file_is_reproducible():
    first = expand_sweep(load_sweep_file(DATA / "random.yaml"))
    assert first == expand_sweep(load_sweep_file(DATA / "random.yaml"))
    assert len(first) == 20


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(SweepError, match="cannot read sweep file"):
        load_sweep_file(tmp_path / "missing.yaml")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    with pytest.raises(SweepError, match="bad.json: not valid JSON"):
        load_sweep_file(bad_json)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("kind: [grid\n")
    with pytest.raises(SweepError, match="bad.yaml: not valid YAML"):
        load_sweep_file(bad_yaml)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(SweepError, match="list.yaml: a sweep must be a mapping"):
        load_sweep_file(not_mapping)


# -- OpenLane 1 matrix ------------------------------------------------------------------------
def test_openlane_matrix_json_is_detected_and_expanded_like_openlane():
    spec = load_sweep_file(DATA / "openlane_matrix.json")
    assert spec.kind == "matrix" and spec.source_format == "openlane-matrix"
    assert spec.defaults == {"FP_CORE_UTIL": 35, "RUN_HEURISTIC_DIODE_INSERTION": True}
    points = expand_sweep(spec)
    assert len(points) == 2 * 3 * 2 == count_points(spec)
    # OpenLane's expand_matrix: the first key varies fastest.
    assert [(p["CLOCK_PERIOD"], p["SYNTH_STRATEGY"], p["PL_TARGET_DENSITY"]) for p in points] == [
        (10, "AREA 0", 0.45),
        (20, "AREA 0", 0.45),
        (10, "DELAY 2", 0.45),
        (20, "DELAY 2", 0.45),
        (10, "DELAY 4", 0.45),
        (20, "DELAY 4", 0.45),
        (10, "AREA 0", 0.55),
        (20, "AREA 0", 0.55),
        (10, "DELAY 2", 0.55),
        (20, "DELAY 2", 0.55),
        (10, "DELAY 4", 0.55),
        (20, "DELAY 4", 0.55),
    ]
    # preload is not merged into the points: it sits beneath the design config.
    assert "FP_CORE_UTIL" not in points[0]


def test_matrix_layering_is_preload_then_design_config_then_point():
    spec = load_sweep_file(DATA / "openlane_matrix.json")
    design = {"DESIGN_NAME": "spm", "FP_CORE_UTIL": 50, "CLOCK_PERIOD": 25}
    config = layer_config(design, expand_sweep(spec)[1], spec.defaults)
    assert config["FP_CORE_UTIL"] == 50  # the design's value beats preload
    assert config["RUN_HEURISTIC_DIODE_INSERTION"] is True  # preload fills the gap
    assert config["CLOCK_PERIOD"] == 20  # the combination beats the design


def test_matrix_without_preload_and_matrix_errors():
    spec = parse_sweep({"CLOCK_PERIOD": [10, 20]})
    assert spec.kind == "matrix" and spec.defaults == {}
    with pytest.raises(SweepError, match="CLOCK_PERIOD must be a list of values"):
        parse_sweep({"preload": {}, "CLOCK_PERIOD": 10})
    with pytest.raises(SweepError, match="matrix: no swept parameters"):
        parse_sweep({"preload": {"CLOCK_PERIOD": 10}})
    with pytest.raises(SweepError, match="matrix: unknown parameter 'STD_CELL_LIBRARY'"):
        parse_sweep({"STD_CELL_LIBRARY": ["sky130_fd_sc_hd"]})
    with pytest.raises(SweepError, match="preload: FP_CORE_UTIL must be between"):
        parse_sweep({"preload": {"FP_CORE_UTIL": 0}, "CLOCK_PERIOD": [10]})
    with pytest.raises(SweepError, match="needs a 'kind'"):
        parse_sweep({"grid": {"CLOCK_PERIOD": [1]}})


def test_with_base_adds_fixed_values_to_any_spec():
    matrix = load_sweep_file(DATA / "openlane_matrix.json").with_base({"FP_ASPECT_RATIO": "2"})
    assert expand_sweep(matrix)[0] == {
        "FP_ASPECT_RATIO": 2,
        "CLOCK_PERIOD": 10,
        "SYNTH_STRATEGY": "AREA 0",
        "PL_TARGET_DENSITY": 0.45,
    }
    grid = load_sweep_file(DATA / "grid.yaml").with_base(
        {"FP_SIZING": "absolute", "GRT_ADJUSTMENT": 0.2}
    )
    first = expand_sweep(grid)[0]
    assert first["FP_SIZING"] == "relative"  # the file's own base wins
    assert first["GRT_ADJUSTMENT"] == 0.2
    with pytest.raises(SweepError, match="CLOCK_PERIOD: set in base and swept"):
        grid.with_base({"CLOCK_PERIOD": 5})
    with pytest.raises(SweepError, match="base: FP_CORE_UTIL must be between"):
        grid.with_base({"FP_CORE_UTIL": 0})
    listed = load_sweep_file(DATA / "list.yaml").with_base({"CLOCK_PERIOD": 30})
    assert [p["CLOCK_PERIOD"] for p in expand_sweep(listed)] == [10, 20, 30]


def test_matrix_round_trips_through_portal_format():
    spec = load_sweep_file(DATA / "openlane_matrix.json")
    again = parse_sweep(json.loads(json.dumps(spec.to_dict())))
    assert again.kind == "matrix" and again.defaults == spec.defaults
    assert expand_sweep(again) == expand_sweep(spec)


# -- limits ------------------------------------------------------------------------------------
def test_huge_grid_fails_fast_before_expanding():
    spec = parse_sweep(
        {
            "kind": "grid",
            "parameters": {
                "CLOCK_PERIOD": "1:1000:0.001",
                "FP_CORE_UTIL": "1:99:0.01",
                "GRT_ADJUSTMENT": "0:1:0.001",
            },
        }
    )
    assert count_points(spec) == 999_001 * 9_801 * 1_001
    started = time.perf_counter()
    with pytest.raises(
        SweepError, match="the sweep has 9,801,000,009,801 points, more than the limit of 10,000"
    ):
        expand_sweep(spec)
    assert time.perf_counter() - started < 0.5


def test_max_points_parameter():
    spec = parse_sweep(
        {"kind": "grid", "parameters": {"CLOCK_PERIOD": "1:10", "GRT_ADJUSTMENT": [0, 1]}}
    )
    assert count_points(spec) == 20
    assert len(expand_sweep(spec, max_points=20)) == 20
    with pytest.raises(SweepError, match="has 20 points, more than the limit of 19"):
        expand_sweep(spec, max_points=19)
    random_spec = parse_sweep({**RANDOM, "samples": DEFAULT_MAX_POINTS + 1})
    with pytest.raises(SweepError, match="more than the limit of 10,000"):
        expand_sweep(random_spec)


def test_default_limit_allows_exactly_ten_thousand():
    spec = parse_sweep(
        {
            "kind": "grid",
            "parameters": {
                "CLOCK_PERIOD": "1:100",
                "FP_CORE_UTIL": "1:99:1",
                "GRT_ADJUSTMENT": [0],
            },
        }
    )
    assert count_points(spec) == 9_900
    assert len(expand_sweep(spec)) == 9_900


# -- CLI helpers --------------------------------------------------------------------------------
def test_cli_sweeps_and_sets():
    base = parse_cli_sets(["FP_SIZING=relative", "SYNTH_STRATEGY=DELAY 3"])
    assert base == {"FP_SIZING": "relative", "SYNTH_STRATEGY": "DELAY 3"}
    spec = parse_cli_sweeps(["CLOCK_PERIOD=10,15,20", "FP_CORE_UTIL=30:50:10"], base=base)
    assert spec.kind == "grid" and count_points(spec) == 9
    points = expand_sweep(spec)
    assert points[1] == {
        "FP_SIZING": "relative",
        "SYNTH_STRATEGY": "DELAY 3",
        "CLOCK_PERIOD": 10,
        "FP_CORE_UTIL": 40,
    }
    zipped = parse_cli_sweeps(["CLOCK_PERIOD=10,20", "SYNTH_STRATEGY=AREA 0,DELAY 4"], kind="zip")
    assert expand_sweep(zipped)[1] == {"CLOCK_PERIOD": 20, "SYNTH_STRATEGY": "DELAY 4"}


def test_cli_without_sweeps_is_a_single_point():
    spec = parse_cli_sweeps([], base={"CLOCK_PERIOD": 10})
    assert spec.kind == "single"
    assert expand_sweep(spec) == [{"CLOCK_PERIOD": 10}]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["CLOCK_PERIOD"], "--set expects NAME=VALUE"),
        (["=10"], "--set expects NAME=VALUE"),
        (["CLOCK_PERIOD=1", "CLOCK_PERIOD=2"], "given twice"),
        (["CLOCK_PERIOD=$(touch pwned)"], "command substitution"),
        (["FP_CORE_UTIL=150"], "FP_CORE_UTIL must be between 1 and 99 %, got 150"),
        (["CLOCK_PERIDO=10"], "did you mean CLOCK_PERIOD"),
    ],
)
def test_cli_set_errors(sets, message):
    with pytest.raises(SweepError, match=message):
        parse_cli_sets(sets)


def test_cli_sweep_errors():
    with pytest.raises(SweepError, match="--sweep expects NAME=VALUE"):
        parse_cli_sweeps(["CLOCK_PERIOD"])
    with pytest.raises(SweepError, match="--sweep CLOCK_PERIOD given twice"):
        parse_cli_sweeps(["CLOCK_PERIOD=1", "CLOCK_PERIOD=2"])
    with pytest.raises(SweepError, match="set in base and swept"):
        parse_cli_sweeps(["CLOCK_PERIOD=1,2"], base={"CLOCK_PERIOD": 3})
    with pytest.raises(SweepError, match="not 'random'"):
        parse_cli_sweeps(["CLOCK_PERIOD=1,2"], kind="random")
    with pytest.raises(SweepError, match="character ';' is not allowed"):
        parse_cli_sweeps(["SYNTH_STRATEGY=AREA 0;id"])


# -- spec errors and the table ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "a sweep must be a mapping"),
        ({"kind": "cube"}, "unknown sweep kind 'cube'"),
        ({"kind": "grid"}, "'parameters' must be a non-empty mapping"),
        ({"kind": "grid", "parameters": {"X": [1]}, "seed": 1}, "unexpected key.*seed"),
        ({"kind": "list", "points": []}, "'points' must be a non-empty list"),
        ({"kind": "single", "base": [1]}, "'base' must be a mapping"),
        ({"kind": "single", "base": {"FP_SIZING": "`id`"}}, "base: FP_SIZING: character backtick"),
        ({"kind": "grid", "parameters": {"CLOCK_PERIOD": [1], "clock": [2]}}, "invalid parameter"),
        ({"kind": "single", "description": 5}, "description must be a string"),
    ],
)
def test_spec_errors(doc, message):
    with pytest.raises(SweepError, match=message):
        parse_sweep(doc)


@pytest.mark.parametrize("name", ["grid.yaml", "zip.json", "list.yaml", "random.yaml"])
def test_specs_round_trip_through_to_dict(name):
    spec = load_sweep_file(DATA / name)
    again = parse_sweep(json.loads(json.dumps(spec.to_dict())))
    assert expand_sweep(again) == expand_sweep(spec)


def test_sweep_table_is_tsv_with_union_of_columns():
    points = [
        {"CLOCK_PERIOD": 10, "GLB_RESIZER_TIMING_OPTIMIZATIONS": True},
        {"CLOCK_PERIOD": 12.5, "SYNTH_STRATEGY": "DELAY 1"},
    ]
    assert sweep_table(points) == (
        "index\tCLOCK_PERIOD\tGLB_RESIZER_TIMING_OPTIMIZATIONS\tSYNTH_STRATEGY\n"
        "0\t10\ttrue\t\n"
        "1\t12.5\t\tDELAY 1\n"
    )


def test_sweep_table_of_an_expanded_file_has_one_row_per_point():
    points = expand_sweep(load_sweep_file(DATA / "grid.yaml"))
    rows = [line.split("\t") for line in sweep_table(points).splitlines()]
    assert rows[0] == ["index", "FP_SIZING", "SYNTH_STRATEGY", "CLOCK_PERIOD", "FP_CORE_UTIL"]
    assert len(rows) == 10
    assert rows[5] == ["4", "relative", "DELAY 1", "12.5", "40"]
