"""The DesignFeatures record and its FIELDS catalog."""

import dataclasses
import json

import pytest

from portal.flows.features import (
    ALIASES,
    FIELDS,
    FLOW_STATUSES,
    NUMERIC_FIELDS,
    DesignFeatures,
    resolve_field,
)


def test_catalog_covers_exactly_the_record_fields():
    record_fields = [f.name for f in dataclasses.fields(DesignFeatures)]
    assert list(FIELDS) == [
        n for n in record_fields if n not in ("errors", "params", "raw", "source")
    ]
    for name, spec in FIELDS.items():
        assert spec.name == name and spec.label
        assert spec.better in (None, "min", "max")
        if spec.better is not None:
            assert spec.numeric


@pytest.mark.parametrize(
    ("name", "unit", "better"),
    [
        ("die_area_um2", "µm²", "min"),
        ("utilization_pct", "%", None),
        ("setup_wns_ns", "ns", "max"),
        ("setup_tns_ns", "ns", "max"),
        ("power_total_w", "W", "min"),
        ("suggested_frequency_mhz", "MHz", "max"),
        ("runtime_seconds", "s", "min"),
        ("lvs_errors", "errors", "min"),
    ],
)
def test_units_and_directions(name, unit, better):
    assert (FIELDS[name].unit, FIELDS[name].better) == (unit, better)


def test_numeric_fields_exclude_text():
    assert "design" not in NUMERIC_FIELDS and "flow_status" not in NUMERIC_FIELDS
    assert "die_area_um2" in NUMERIC_FIELDS and "vias" in NUMERIC_FIELDS


def test_aliases_resolve_to_real_fields():
    assert all(target in FIELDS for target in ALIASES.values())
    assert resolve_field("area") == "die_area_um2"
    assert resolve_field(" Setup_WNS ") == "setup_wns_ns"
    assert resolve_field("power_total_w") == "power_total_w"


def test_unknown_field_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean area"):
        resolve_field("arae")


def test_defaults_are_not_measured():
    record = DesignFeatures()
    assert all(getattr(record, name) is None for name in FIELDS)
    assert record.params == {} and record.raw == {}
    assert "unknown" in FLOW_STATUSES


def test_dict_round_trip_and_numeric_view():
    record = DesignFeatures(
        design="spm",
        flow="openlane2",
        flow_status="completed",
        die_area_um2=11327.4,
        vias=1979,
        raw={"route__vias": 1979},
        params={"CLOCK_PERIOD": "10"},
    )
    data = json.loads(json.dumps(record.to_dict()))
    assert DesignFeatures.from_dict(data) == record
    assert "raw" not in record.to_dict(include_raw=False)
    numeric = record.numeric()
    assert set(numeric) == set(NUMERIC_FIELDS)
    assert numeric["die_area_um2"] == 11327.4 and numeric["power_total_w"] is None


def test_from_dict_ignores_unknown_keys_and_restores_int_counts():
    record = DesignFeatures.from_dict({"vias": 12.0, "lvs_errors": 0.0, "future_field": 1})
    assert record.vias == 12 and type(record.vias) is int
    assert record.lvs_errors == 0 and type(record.lvs_errors) is int
