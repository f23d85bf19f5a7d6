"""Pareto fronts, per-objective bests and objective specs, against hand-computed answers."""

import math
import random
import time
from decimal import Decimal
from pathlib import Path

import pytest

from portal.flows.reports import parse_openlane1_csv
from portal.results.pareto import best_per_objective, pareto_front, parse_objectives

REPO_ROOT = Path(__file__).resolve().parents[2]
METRICS_DIR = REPO_ROOT / "tests" / "data" / "openlane" / "openlane1" / "metrics"
CURRENT = METRICS_DIR / "2024-07_sky130_fd_sc_hd.csv"


def _brute_force(rows, objectives):
    """Reference O(n^2) front: keep every complete row nothing else dominates."""
    sign = {"min": 1, "max": -1}
    points = {}
    for i, row in enumerate(rows):
        values = [row.get(name) for name in objectives]
        if all(isinstance(v, int | float) and not math.isnan(v) for v in values):
            points[i] = [sign[d] * v for d, v in zip(objectives.values(), values, strict=True)]

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b, strict=True)) and a != b

    return sorted(i for i, p in points.items() if not any(dominates(q, p) for q in points.values()))


def test_two_objectives_with_ties_and_missing_values():
    rows = [
        {"area": 1, "power": 5},  # 0 front: smallest area
        {"area": 2, "power": 3},  # 1 front
        {"area": 3, "power": 4},  # 2 dominated by 1
        {"area": 4, "power": 1},  # 3 front: smallest power
        {"area": 2, "power": 3},  # 4 equal to 1: both stay
        {"area": 5, "power": 1},  # 5 dominated by 3 (same power, more area)
        {"area": 1, "power": 6},  # 6 dominated by 0 (same area, more power)
        {"area": None, "power": 0},  # 7 missing area: left out
        {"power": 0},  # 8 no area key: left out
    ]
    assert pareto_front(rows, {"area": "min", "power": "min"}) == [0, 1, 3, 4]


def test_a_max_objective():
    rows = [
        {"area": 10, "freq": 100},  # 0 front
        {"area": 20, "freq": 150},  # 1 front: fastest (tied with 3, smaller)
        {"area": 15, "freq": 90},  # 2 dominated by 0
        {"area": 30, "freq": 150},  # 3 dominated by 1 (same speed, bigger)
        {"area": 5, "freq": 50},  # 4 front: smallest
    ]
    assert pareto_front(rows, {"area": "min", "freq": "max"}) == [0, 1, 4]
    # flipping both directions turns the question around
    assert pareto_front(rows, {"area": "max", "freq": "min"}) == [2, 3, 4]


def test_three_objectives():
    rows = [
        {"area": 100, "power": 1.0, "wns": 0.0},  # 0 front
        {"area": 90, "power": 1.2, "wns": -0.5},  # 1 front: smallest area
        {"area": 100, "power": 1.0, "wns": -0.1},  # 2 dominated by 0 (worse wns only)
        {"area": 120, "power": 0.8, "wns": -1.0},  # 3 front: least power
        {"area": 100, "power": 1.0, "wns": 0.0},  # 4 equal to 0
        {"area": 95, "power": 1.1, "wns": -0.6},  # 5 front: trades area vs 0, power vs 1
        {"area": 130, "power": 0.9, "wns": -1.5},  # 6 dominated by 3
    ]
    objectives = {"area": "min", "power": "min", "wns": "max"}
    assert pareto_front(rows, objectives) == [0, 1, 3, 4, 5]


def test_one_objective_keeps_every_tied_best():
    rows = [{"a": 3}, {"a": 1}, {"a": 2}, {"a": 1}, {"a": None}]
    assert pareto_front(rows, {"a": "min"}) == [1, 3]
    assert pareto_front(rows, {"a": "max"}) == [0]


def test_unusable_values_are_left_out():
    rows = [
        {"a": float("nan"), "b": 0},
        {"a": True, "b": 0},
        {"a": "1", "b": 0},
        {"a": 5, "b": 5},
        {"a": Decimal("4"), "b": 6},
    ]
    assert pareto_front(rows, {"a": "min", "b": "min"}) == [3, 4]


def test_infinite_values_still_compare():
    rows = [{"a": 0, "b": math.inf}, {"a": 1, "b": 5}]
    assert pareto_front(rows, {"a": "min", "b": "min"}) == [0, 1]


def test_nothing_to_compare():
    assert pareto_front([], {"a": "min"}) == []
    assert pareto_front([{"a": None}, {}], {"a": "min", "b": "max"}) == []


def test_bad_objectives_are_refused():
    with pytest.raises(ValueError, match="at least one"):
        pareto_front([{"a": 1}], {})
    with pytest.raises(ValueError, match="'min' or 'max'"):
        pareto_front([{"a": 1}], {"a": "up"})
    with pytest.raises(ValueError, match="'min' or 'max'"):
        best_per_objective([{"a": 1}], {"a": "lowest"})


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_matches_brute_force_on_random_grids_with_ties(count):
    rng = random.Random(count)
    names = ["a", "b", "c", "d"][:count]
    for _ in range(30):
        rows = [
            {n: (None if rng.random() < 0.05 else rng.randint(0, 6)) for n in names}
            for _ in range(rng.randint(0, 60))
        ]
        objectives = {n: rng.choice(["min", "max"]) for n in names}
        assert pareto_front(rows, objectives) == _brute_force(rows, objectives)


def test_ten_thousand_rows_three_objectives_is_quick():
    rng = random.Random(7)
    rows = [{"a": rng.random(), "b": rng.random(), "c": rng.random()} for _ in range(10_000)]
    start = time.perf_counter()
    front = pareto_front(rows, {"a": "min", "b": "max", "c": "min"})
    assert time.perf_counter() - start < 2.0
    _assert_is_front(rows, front)


def _assert_is_front(rows, front):
    """Front members are mutually non-dominated, and sampled others are dominated."""
    vectors = {i: (rows[i]["a"], -rows[i]["b"], rows[i]["c"]) for i in range(len(rows))}

    def dominates(p, q):
        return all(x <= y for x, y in zip(p, q, strict=True)) and p != q

    members = [vectors[i] for i in front]
    assert not any(dominates(p, q) for p in members for q in members)
    others = [i for i in range(0, len(rows), 97) if i not in set(front)]
    assert all(any(dominates(p, vectors[i]) for p in members) for i in others)


def test_ten_thousand_rows_all_on_a_two_objective_front_is_quick():
    rows = [{"area": i, "wns": i} for i in range(10_000)]  # bigger but faster: all trade-offs
    start = time.perf_counter()
    assert pareto_front(rows, {"area": "min", "wns": "max"}) == list(range(10_000))
    assert time.perf_counter() - start < 1.0


def test_best_per_objective():
    rows = [
        {"area": 10, "freq": 100, "power": None},
        {"area": 20, "freq": 150},
        {"area": 15, "freq": 90},
        {"area": 30, "freq": 150},
        {"area": 5, "freq": 50},
    ]
    best = best_per_objective(rows, {"area": "min", "freq": "max", "power": "min"})
    assert best == {"area": 4, "freq": 1}  # freq tie 1/3 -> lowest index; no power at all


def test_front_over_real_openlane1_features():
    records = parse_openlane1_csv(CURRENT)
    rows = [rec.numeric() for rec in records]
    area_speed = parse_objectives("area:min,frequency:max")
    # inverter (row 8) has the smallest die, 1970.64 um^2, and the top suggested frequency,
    # 100 MHz (clock 10 ns, WNS 0), so it dominates every other design
    assert pareto_front(rows, area_speed) == [8]
    assert records[8].design == "inverter"
    # without it, adding runtime: spm (row 13: 11465 um^2, 100 MHz, 70 s) dominates all but
    # manual_macro_placement_test (row 9), the only faster run left (46 s); rows 4, 6 and 14
    # lack an area or a frequency
    rows[8] = {}
    area_speed_time = parse_objectives("area:min,frequency:max,runtime:min")
    assert pareto_front(rows, area_speed_time) == [9, 13]
    assert [records[i].design for i in (9, 13)] == ["manual_macro_placement_test", "spm"]
    assert pareto_front(rows, area_speed_time) == _brute_force(rows, area_speed_time)


def test_parse_objectives_canonical_names_in_order():
    assert parse_objectives("area:min,power:min,setup_wns:max") == {
        "die_area_um2": "min",
        "power_total_w": "min",
        "setup_wns_ns": "max",
    }
    assert list(parse_objectives(" setup_wns:MAX , area:min ")) == ["setup_wns_ns", "die_area_um2"]


def test_parse_objectives_default_direction_from_catalog():
    assert parse_objectives("area,frequency,runtime") == {
        "die_area_um2": "min",
        "suggested_frequency_mhz": "max",
        "runtime_seconds": "min",
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("areaa:min", "unknown feature 'areaa' \\(did you mean area"),
        ("area:up", "direction must be 'min' or 'max'"),
        ("design:min", "not a numeric feature"),
        ("flow_status:max", "not a numeric feature"),
        ("area:min,die_area:max", "given twice"),
        ("utilization", "no default direction"),
        ("", "no objectives"),
        (" , ", "no objectives"),
    ],
)
def test_parse_objectives_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_objectives(spec)
