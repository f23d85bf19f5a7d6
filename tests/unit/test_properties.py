"""Property tests (Hypothesis): no input to the sweep parser or the API's request parser gives
anything but the parser's own user-facing error. The web routes' version is in
tests/integration/test_web_properties.py."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.submit.catalog import ParameterError
from portal.submit.sweeps import SweepError, expand_sweep, parse_cli_sweeps, parse_sweep
from portal.web.api_schema import RequestInvalid, SubmitRequest, parse_body

PROPERTY = settings(
    max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
NAMES = st.sampled_from(["CLOCK_PERIOD", "FP_CORE_UTIL", "SYNTH_STRATEGY", "NOPE", "clock", ""])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e300", "1e-300", "-0", "0x10", "inf", "nan", "1_000", " 5 ", "½"]),
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | NUMBERS | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT | NAMES, inner, max_size=4),
    max_leaves=25,
)
ERRORS = (SweepError, ParameterError)


@PROPERTY
@given(name=NAMES, start=NUMBERS, stop=NUMBERS, step=NUMBERS, sep=st.sampled_from([":", ","]))
def test_cli_sweeps_give_points_or_a_sweep_error(name, start, stop, step, sep):
    text = f"{name}={start}{sep}{stop}{sep}{step}"
    try:
        points = expand_sweep(parse_cli_sweeps([text]), max_points=500)
    except ERRORS as exc:
        # readable: it may quote the input, but adds no number with hundreds of digits
        assert str(exc) and len(str(exc)) < 300 + len(text)
        return
    assert 1 <= len(points) <= 500


@PROPERTY
@given(
    kind=st.sampled_from(["grid", "zip", "list", "random", "single", "matrix", "warp", None]),
    body=st.dictionaries(
        st.sampled_from(["parameters", "points", "ranges", "samples", "seed", "x"]),
        JSON,
        max_size=3,
    ),
)
def test_sweep_documents_give_points_or_a_sweep_error(kind, body):
    document = {"kind": kind, **body} if kind is not None else body
    try:
        points = expand_sweep(parse_sweep(document), max_points=500)
    except ERRORS as exc:
        assert str(exc)
        return
    assert 1 <= len(points) <= 500
    json.dumps(points)  # every point can be stored and sent as JSON


@PROPERTY
@given(
    body=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"repo_url": TEXT},
            optional={
                "resources": st.dictionaries(
                    st.sampled_from(["cpus", "mem_mb", "account", "qos", "throttle", "y"]),
                    JSON,
                    max_size=3,
                ),
                "params": st.dictionaries(NAMES, JSON, max_size=3),
                "sweeps": st.lists(TEXT, max_size=3),
                "dry_run": JSON,
            },
        ),
    )
)
def test_the_submit_body_is_parsed_or_refused_with_a_request_error(body):
    try:
        parsed = parse_body(body, SubmitRequest)
    except RequestInvalid as exc:
        assert exc.message
        return
    assert isinstance(parsed.repo_url, str)
    assert set(parsed.model_dump()) == set(SubmitRequest.model_fields)
