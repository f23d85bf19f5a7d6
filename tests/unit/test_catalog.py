"""The parameter catalog: loading, coercion of every type, and rejection of hostile input."""

from __future__ import annotations

import json

import pytest

from portal.submit.catalog import (
    PARAMETER_TYPES,
    CatalogError,
    ParameterError,
    UnknownParameter,
    load_catalog,
    parse_catalog,
)

REQUIRED = {
    "CLOCK_PERIOD": "float",
    "FP_CORE_UTIL": "float",
    "PL_TARGET_DENSITY": "float",
    "PL_TARGET_DENSITY_PCT": "float",
    "SYNTH_STRATEGY": "choice",
    "FP_ASPECT_RATIO": "float",
    "GRT_ADJUSTMENT": "float",
    "FP_PDN_VPITCH": "float",
    "FP_PDN_HPITCH": "float",
    "MAX_FANOUT_CONSTRAINT": "int",
    "FP_SIZING": "choice",
    "DIE_AREA": "area",
    "GLB_RESIZER_TIMING_OPTIMIZATIONS": "bool",
    "RUN_HEURISTIC_DIODE_INSERTION": "bool",
    "RT_MAX_LAYER": "str",
}

HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "10; touch pwned",
    "10 | tee pwned",
    "10 && touch pwned",
    "'10'",
    '"10"',
    "10\ntouch pwned",
    "AREA 0\r",
    "DELAY 1\n",
    "[exec touch pwned]",
    "${HOME}",
    "10 > pwned",
    "met5\\",
    "10\x00",
]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_catalog_is_cached_and_has_the_required_parameters(catalog):
    assert load_catalog() is catalog
    for name, ptype in REQUIRED.items():
        assert catalog.get(name).type == ptype, name
    assert set(p.type for p in catalog) == set(PARAMETER_TYPES)


def test_every_entry_is_documented_with_a_valid_default(catalog):
    for param in catalog:
        assert len(param.help) > 20, param.name
        if param.default is not None:
            assert param.coerce(param.default) == param.default or param.type in ("bool",)
        if param.type in ("int", "float", "area"):
            assert param.min is not None and param.max is not None, param.name


def test_units_and_ol2_names(catalog):
    assert catalog.get("CLOCK_PERIOD").unit == "ns"
    assert catalog.get("FP_CORE_UTIL").unit == "%"
    assert catalog.get("FP_PDN_VPITCH").unit == "µm"
    assert catalog.get("PL_TARGET_DENSITY").ol2_name == "PL_TARGET_DENSITY_PCT"
    assert catalog.get("GLB_RESIZER_TIMING_OPTIMIZATIONS").ol2_name == (
        "RUN_POST_GRT_RESIZER_TIMING"
    )
    assert catalog.get("PL_TARGET_DENSITY_PCT").flows == ("openlane2",)
    assert catalog.get("SYNTH_STRATEGY").choices == (
        "AREA 0",
        "AREA 1",
        "AREA 2",
        "AREA 3",
        "DELAY 0",
        "DELAY 1",
        "DELAY 2",
        "DELAY 3",
        "DELAY 4",
    )


# -- names ------------------------------------------------------------------------------------
def test_unknown_parameter_suggests_the_closest_name(catalog):
    with pytest.raises(UnknownParameter) as info:
        catalog.get("CLOCK_PERIDO")
    assert info.value.suggestions == ["CLOCK_PERIOD"]
    assert "did you mean CLOCK_PERIOD?" in str(info.value)


def test_unknown_parameter_without_close_match(catalog):
    with pytest.raises(UnknownParameter, match="unknown parameter 'VERILOG_FILES'$"):
        catalog.coerce("VERILOG_FILES", "x.v")


def test_ol2_name_points_to_the_catalog_name(catalog):
    with pytest.raises(UnknownParameter, match="GLB_RESIZER_TIMING_OPTIMIZATIONS"):
        catalog.get("RUN_POST_GRT_RESIZER_TIMING")


@pytest.mark.parametrize(
    "name", ["clock_period", "CLOCK PERIOD", "1CLOCK", "CLOCK_PERIOD;id", "CLOCK_PERIOD\n", ""]
)
def test_malformed_names_are_rejected(catalog, name):
    with pytest.raises(ParameterError, match="invalid parameter name"):
        catalog.get(name)


def test_lowercase_name_suggests_the_upper_case_one(catalog):
    with pytest.raises(ParameterError, match="did you mean CLOCK_PERIOD"):
        catalog.get("clock_period")


def test_non_string_name(catalog):
    with pytest.raises(ParameterError, match="must be strings"):
        catalog.get(12)


# -- every type -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("MAX_FANOUT_CONSTRAINT", 8, 8),
        ("MAX_FANOUT_CONSTRAINT", "12", 12),
        ("MAX_FANOUT_CONSTRAINT", 6.0, 6),
        ("CLOCK_PERIOD", 12.5, 12.5),
        ("CLOCK_PERIOD", "12.5", 12.5),
        ("CLOCK_PERIOD", " 10 ", 10),
        ("FP_CORE_UTIL", "1e1", 10.0),
        ("GRT_ADJUSTMENT", 0, 0),
        ("GRT_ADJUSTMENT", "1", 1),
        ("SYNTH_STRATEGY", "DELAY 4", "DELAY 4"),
        ("SYNTH_STRATEGY", "delay  2", "DELAY 2"),
        ("FP_SIZING", "Absolute", "absolute"),
        ("GLB_RESIZER_TIMING_OPTIMIZATIONS", True, True),
        ("GLB_RESIZER_TIMING_OPTIMIZATIONS", 0, False),
        ("GLB_RESIZER_TIMING_OPTIMIZATIONS", "yes", True),
        ("RUN_HEURISTIC_DIODE_INSERTION", "0", False),
        ("RUN_HEURISTIC_DIODE_INSERTION", "TRUE", True),
        ("RT_MAX_LAYER", "met4", "met4"),
        ("DIE_AREA", "0 0 100 200.5", "0 0 100 200.5"),
        ("DIE_AREA", "  0.0   0 1e2 50 ", "0 0 100 50"),
        ("DIE_AREA", [0, 0, 300, 300], "0 0 300 300"),
    ],
)
def test_valid_values_are_coerced(catalog, name, raw, expected):
    value = catalog.coerce(name, raw)
    assert value == expected
    assert type(value) is type(expected)


def test_ints_stay_ints_for_float_parameters(catalog):
    assert type(catalog.coerce("FP_CORE_UTIL", 40)) is int
    assert type(catalog.coerce("FP_CORE_UTIL", "40")) is int
    assert type(catalog.coerce("FP_CORE_UTIL", "40.0")) is float


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("FP_CORE_UTIL", 150, "FP_CORE_UTIL must be between 1 and 99 %, got 150"),
        ("FP_CORE_UTIL", "0", "FP_CORE_UTIL must be between 1 and 99 %, got 0"),
        ("PL_TARGET_DENSITY", 1.5, "PL_TARGET_DENSITY must be between 0.01 and 1, got 1.5"),
        ("GRT_ADJUSTMENT", -0.1, "GRT_ADJUSTMENT must be between 0 and 1, got -0.1"),
        ("MAX_FANOUT_CONSTRAINT", 0, "MAX_FANOUT_CONSTRAINT must be between 1 and 1000 cells"),
        ("MAX_FANOUT_CONSTRAINT", 2.5, "MAX_FANOUT_CONSTRAINT must be an integer, got 2.5"),
        ("MAX_FANOUT_CONSTRAINT", "ten", "must be an integer, got 'ten'"),
        ("MAX_FANOUT_CONSTRAINT", True, "must be an integer, got True"),
        ("CLOCK_PERIOD", "fast", "CLOCK_PERIOD must be a number, got 'fast'"),
        ("CLOCK_PERIOD", "inf", "CLOCK_PERIOD must be a number"),
        ("CLOCK_PERIOD", float("nan"), "CLOCK_PERIOD must be a finite number"),
        ("CLOCK_PERIOD", [10], "CLOCK_PERIOD must be a number"),
        ("CLOCK_PERIOD", None, "CLOCK_PERIOD: a value is required"),
        ("CLOCK_PERIOD", "", "CLOCK_PERIOD: empty value"),
        ("CLOCK_PERIOD", "1e999", "CLOCK_PERIOD must be a finite number"),
        ("SYNTH_STRATEGY", "AREA 9", "SYNTH_STRATEGY must be one of 'AREA 0'"),
        ("SYNTH_STRATEGY", 0, "SYNTH_STRATEGY must be one of"),
        ("FP_SIZING", "auto", "FP_SIZING must be one of 'relative', 'absolute', got 'auto'"),
        ("RUN_HEURISTIC_DIODE_INSERTION", 2, "must be a boolean"),
        ("RUN_HEURISTIC_DIODE_INSERTION", "maybe", "must be a boolean"),
        ("RT_MAX_LAYER", "met 5", "RT_MAX_LAYER must match"),
        ("RT_MAX_LAYER", 5, "RT_MAX_LAYER must be a string"),
        ("DIE_AREA", "0 0 100", 'DIE_AREA must be four numbers "x0 y0 x1 y1"'),
        ("DIE_AREA", "0 0 a 100", "DIE_AREA must be four numbers"),
        ("DIE_AREA", "-1 0 100 100", "DIE_AREA must be between 0 and 1000000 µm, got -1"),
        ("DIE_AREA", "100 0 10 100", "DIE_AREA needs x1 > x0 and y1 > y0"),
        ("DIE_AREA", "0 50 100 50", "DIE_AREA needs x1 > x0 and y1 > y0"),
        ("DIE_AREA", 100, "DIE_AREA must be a valid area"),
        ("DIE_AREA", [0, 0, "$(id)", 1], "DIE_AREA: command substitution"),
        ("FP_SIZING", "x" * 300, "too long"),
    ],
)
def test_invalid_values_are_rejected_clearly(catalog, name, raw, message):
    with pytest.raises(ParameterError) as info:
        catalog.coerce(name, raw)
    assert message in str(info.value)


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize(
    "name",
    [
        "CLOCK_PERIOD",
        "MAX_FANOUT_CONSTRAINT",
        "SYNTH_STRATEGY",
        "FP_SIZING",
        "RUN_HEURISTIC_DIODE_INSERTION",
        "RT_MAX_LAYER",
        "DIE_AREA",
    ],
)
def test_hostile_strings_never_survive(catalog, name, hostile):
    with pytest.raises(ParameterError) as info:
        catalog.coerce(name, hostile)
    message = str(info.value)
    assert message.startswith(name)
    assert "not allowed" in message or "command substitution" in message


def test_hostile_message_names_the_character(catalog):
    with pytest.raises(ParameterError, match="character ';' is not allowed"):
        catalog.coerce("FP_SIZING", "relative;id")
    with pytest.raises(ParameterError, match="newline is not allowed"):
        catalog.coerce("FP_SIZING", "relative\nid")
    with pytest.raises(ParameterError, match="backtick is not allowed"):
        catalog.coerce("FP_SIZING", "`id`")
    with pytest.raises(ParameterError, match=r"command substitution '\$\(' is not allowed"):
        catalog.coerce("SYNTH_STRATEGY", "$(id)")


def test_coerce_mapping_keeps_order(catalog):
    values = catalog.coerce_mapping({"FP_CORE_UTIL": "45", "CLOCK_PERIOD": "10"})
    assert list(values.items()) == [("FP_CORE_UTIL", 45), ("CLOCK_PERIOD", 10)]


# -- output -----------------------------------------------------------------------------------
def test_to_json_for_the_web_form(catalog):
    data = json.loads(catalog.to_json())
    by_name = {p["name"]: p for p in data["parameters"]}
    assert list(by_name) == catalog.names()
    util = by_name["FP_CORE_UTIL"]
    assert (util["min"], util["max"], util["unit"], util["default"]) == (1, 99, "%", 50)
    assert util["range"] == "1..99 %"
    assert by_name["SYNTH_STRATEGY"]["choices"][0] == "AREA 0"
    assert by_name["PL_TARGET_DENSITY"]["ol2_name"] == "PL_TARGET_DENSITY_PCT"
    assert "pattern" not in util


def test_flow_config_translates_names_and_values(catalog):
    point = {
        "PL_TARGET_DENSITY": 0.55,
        "DIE_AREA": "0 0 10.5 10",
        "GLB_RESIZER_TIMING_OPTIMIZATIONS": True,
        "CLOCK_PERIOD": 10,
    }
    assert catalog.flow_config(point, "openlane1") == {
        "PL_TARGET_DENSITY": 0.55,
        "DIE_AREA": "0 0 10.5 10",
        "GLB_RESIZER_TIMING_OPTIMIZATIONS": 1,
        "CLOCK_PERIOD": 10,
    }
    assert catalog.flow_config(point, "openlane2") == {
        "PL_TARGET_DENSITY_PCT": 55,
        "DIE_AREA": [0, 0, 10.5, 10],
        "RUN_POST_GRT_RESIZER_TIMING": True,
        "CLOCK_PERIOD": 10,
    }


def test_flow_config_rejects_ol2_only_variable_for_ol1_and_collisions(catalog):
    with pytest.raises(ParameterError, match="not an openlane1 variable"):
        catalog.flow_config({"PL_TARGET_DENSITY_PCT": 60}, "openlane1")
    with pytest.raises(ParameterError, match="both set PL_TARGET_DENSITY_PCT"):
        catalog.flow_config({"PL_TARGET_DENSITY": 0.6, "PL_TARGET_DENSITY_PCT": 60}, "openlane2")


# -- the file format --------------------------------------------------------------------------
def _doc(**entry):
    spec = {"type": "int", "help": "some help", "min": 0, "max": 10}
    spec.update(entry)
    return {"version": 1, "parameters": {"SOME_VAR": spec}}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"parameters": {}}, "version: 1"),
        ({"version": 1, "parameters": {}}, "non-empty"),
        ({"version": 1, "parameters": {"bad name": {"type": "int", "help": "h"}}}, "invalid name"),
        (_doc(type="list"), "type must be one of"),
        (_doc(help=""), "help text is required"),
        (_doc(colour="red"), "unknown keys"),
        (_doc(type="str"), "needs a pattern"),
        (_doc(type="choice"), "choices are required"),
        (_doc(min=5, max=1), "min > max"),
        (_doc(default=50), "default is invalid"),
        (_doc(flows=["openlane3"]), "flows must be among"),
        (_doc(ol2_name="bad-name"), "invalid ol2_name"),
    ],
)
def test_malformed_catalog_is_rejected(doc, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(doc)


def test_custom_catalog_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("version: 1\nparameters:\n  MY_VAR: {type: bool, help: a flag, default: 1}\n")
    catalog = load_catalog(path)
    assert catalog.names() == ["MY_VAR"]
    assert catalog.coerce("MY_VAR", "off") is False
