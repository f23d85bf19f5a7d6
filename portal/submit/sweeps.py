"""Sweep specifications and their expansion into points (one point = one array task).

A point is an ordered ``dict`` of catalog parameter -> typed value: the spec's ``base``
overrides first, then the swept values. Every value goes through the parameter catalog.

Kinds (portal format, YAML or JSON, ``kind`` key required)::

    kind: single                     # one point: just `base`
    kind: grid                       # cartesian product; the LAST parameter varies fastest
    kind: zip                        # i-th point takes the i-th value of every list
    kind: list                       # explicit `points: [{...}, ...]` (a point may override base)
    kind: random                     # `seed`, `samples`, `ranges: {NAME: {min, max[, step]} |
                                     #   {choices: [...]} | [...]}`
    kind: matrix                     # OpenLane 1 matrix semantics (below), `preload` + `parameters`

``parameters`` (grid/zip/matrix) maps a name to a list, a single value, a range mapping
``{start, stop, step}`` (inclusive) or a string: ``"10:20:2"`` (range, step defaults to 1) or
``"10,15,20"`` (list) -- the same syntax as the CLI's ``--sweep NAME=...``.

OpenLane 1's ``run_designs.py --matrix`` JSON is accepted as is (detected when there is no
``kind``): an optional ``preload`` object plus keys whose values are lists. As in OpenLane's
``expand_matrix``, it is a cartesian product in which the FIRST key varies fastest (so point i
matches OpenLane's ``<prefix>_<i>.json``), and ``preload`` values are *defaults*: OpenLane layers
preload < the design's config.json < the combination. They are kept apart in
``SweepSpec.defaults`` (see :func:`layer_config`), not merged into the points.

Sizes are computed before anything is expanded: a spec over ``max_points`` fails at once,
however large (a 10^9-point grid costs a multiplication).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from portal.submit.catalog import (
    NAME_RE,
    Catalog,
    Parameter,
    ParameterError,
    Value,
    load_catalog,
)

DEFAULT_MAX_POINTS = 10_000
MAX_SWEEP_FILE_BYTES = 5 * 1024 * 1024
KINDS = ("single", "grid", "zip", "list", "random", "matrix")
RANDOM_FLOAT_DIGITS = 6

Point = dict[str, Value]


class SweepError(ValueError):
    """A sweep specification is invalid or too large; the message is meant for the user."""


# -- numeric ranges -----------------------------------------------------------------------
def _decimal(text: object, what: str) -> Decimal:
    if isinstance(text, bool) or not isinstance(text, int | float | str):
        raise SweepError(f"{what} must be a number, got {text!r}")
    try:
        number = Decimal(str(text).strip())
    except ArithmeticError:
        raise SweepError(f"{what} must be a number, got {text!r}") from None
    if not number.is_finite():
        raise SweepError(f"{what} must be a finite number, got {text!r}")
    return number


def _plain(number: Decimal, integral: bool) -> int | float:
    return int(number) if integral else float(number)


@dataclass(frozen=True)
class NumericRange:
    """An inclusive arithmetic range ``start, start+step, ... <= stop`` (lazy)."""

    start: Decimal
    stop: Decimal
    step: Decimal

    @classmethod
    def create(cls, start: object, stop: object, step: object = 1) -> NumericRange:
        """Build a range from numbers or numeric strings; reject empty or endless ranges."""
        r = cls(_decimal(start, "start"), _decimal(stop, "stop"), _decimal(step, "step"))
        if r.step == 0:
            raise SweepError("range step must not be 0")
        if (r.stop - r.start) * r.step < 0:
            raise SweepError(f"range {r} is empty (step goes the wrong way)")
        return r

    @classmethod
    def parse(cls, text: str) -> NumericRange:
        """Parse the CLI form ``start:stop[:step]``."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
            raise SweepError(f"range {text!r} must look like start:stop or start:stop:step")
        return cls.create(*parts)

    @property
    def integral(self) -> bool:
        """True when every value is an integer (start and step are integers)."""
        return self.start == self.start.to_integral() and self.step == self.step.to_integral()

    @property
    def count(self) -> int:
        """How many values (any size: ``len()`` stops at ``sys.maxsize``)."""
        return int((self.stop - self.start) / self.step) + 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int | float]:
        integral = self.integral
        for i in range(self.count):
            yield _plain(self.start + i * self.step, integral)

    def __str__(self) -> str:
        return f"{self.start}:{self.stop}:{self.step}"

    def to_dict(self) -> dict[str, int | float]:
        """JSON form ``{"start", "stop", "step"}``."""
        integral = self.integral and self.stop == self.stop.to_integral()
        return {
            "start": _plain(self.start, integral),
            "stop": _plain(self.stop, integral),
            "step": _plain(self.step, integral),
        }


Axis = tuple[Value, ...] | NumericRange


def _count_text(count: int) -> str:
    """``1,000,000``; past a quadrillion ``about 1e+302`` rather than 300 digits."""
    return f"{count:,}" if count < 10**15 else f"about {Decimal(count):.2e}"


def axis_count(axis: Axis) -> int:
    """How many values an axis has (a range of any size)."""
    return axis.count if isinstance(axis, NumericRange) else len(axis)


def _axis_values(axis: Axis, param: Parameter) -> list[Value]:
    if isinstance(axis, NumericRange):
        return [param.coerce(v) for v in axis]
    return list(axis)


# -- random sampling ----------------------------------------------------------------------
@dataclass(frozen=True)
class RandomDomain:
    """Where one parameter of a random sweep is sampled from: choices, or [low, high]."""

    choices: tuple[Value, ...] = ()
    low: Decimal | None = None
    high: Decimal | None = None
    step: Decimal | None = None
    integer: bool = False

    def sample(self, rng: random.Random) -> Value:
        """Draw one value; only ``rng.random()`` is used, so seeds are stable across Pythons."""
        if self.choices:
            return self.choices[_index(rng, len(self.choices))]
        assert self.low is not None and self.high is not None
        if self.step is not None:
            count = int((self.high - self.low) / self.step) + 1
            value = self.low + _index(rng, count) * self.step
            return _plain(value, self.integer)
        if self.integer:
            return int(self.low) + _index(rng, int(self.high - self.low) + 1)
        span = float(self.high - self.low)
        return round(float(self.low) + span * rng.random(), RANDOM_FLOAT_DIGITS)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as accepted by :func:`parse_sweep`."""
        if self.choices:
            return {"choices": list(self.choices)}
        data: dict[str, Any] = {"min": _num(self.low), "max": _num(self.high)}
        if self.step is not None:
            data["step"] = _num(self.step)
        return data


def _index(rng: random.Random, count: int) -> int:
    return min(int(rng.random() * count), count - 1)


def _num(number: Decimal | None) -> int | float:
    assert number is not None
    return _plain(number, number == number.to_integral())


# -- the spec ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep. Build it with :func:`parse_sweep`, expand it with :func:`expand_sweep`.

    ``defaults`` only comes from an OpenLane matrix ``preload``: values to apply *beneath* the
    design's own config (see :func:`layer_config`); ``base`` and swept values override it.
    """

    kind: str
    base: dict[str, Value] = field(default_factory=dict)
    axes: dict[str, Axis] = field(default_factory=dict)
    points: tuple[Point, ...] = ()
    seed: int | None = None
    samples: int = 0
    ranges: dict[str, RandomDomain] = field(default_factory=dict)
    defaults: dict[str, Value] = field(default_factory=dict)
    source_format: str = "portal"

    def with_base(
        self, values: Mapping[str, object], *, catalog: Catalog | None = None
    ) -> SweepSpec:
        """Add fixed values (e.g. the CLI's --set) beneath the spec's own ``base``.

        Works for every kind, OpenLane matrices included. Values are validated; a name that the
        spec sweeps is an error (a ``list`` point may still override it, as it overrides base).
        """
        extra = _coerce_values(values, catalog or load_catalog(), "base")
        _check_base_overlap(extra, [*self.axes, *self.ranges])
        return dataclasses.replace(self, base={**extra, **self.base})

    def to_dict(self) -> dict[str, Any]:
        """The spec in portal format (JSON-serializable; parse_sweep(to_dict()) round-trips)."""
        data: dict[str, Any] = {"kind": self.kind}
        if self.base:
            data["base"] = dict(self.base)
        if self.kind == "matrix":
            data["preload"] = dict(self.defaults)
        if self.axes:
            data["parameters"] = {
                name: axis.to_dict() if isinstance(axis, NumericRange) else list(axis)
                for name, axis in self.axes.items()
            }
        if self.kind == "list":
            data["points"] = [dict(p) for p in self.points]
        if self.kind == "random":
            data.update(seed=self.seed, samples=self.samples)
            data["ranges"] = {name: dom.to_dict() for name, dom in self.ranges.items()}
        return data


_KIND_KEYS: dict[str, set[str]] = {
    "single": set(),
    "grid": {"parameters"},
    "zip": {"parameters"},
    "list": {"points"},
    "random": {"seed", "samples", "ranges"},
    "matrix": {"parameters", "preload"},
}
_COMMON_KEYS = {"kind", "base", "description"}


def parse_sweep(data: Mapping[str, Any], *, catalog: Catalog | None = None) -> SweepSpec:
    """Validate a sweep document (portal format or OpenLane matrix JSON) into a SweepSpec."""
    catalog = catalog or load_catalog()
    if not isinstance(data, Mapping):
        raise SweepError(f"a sweep must be a mapping, got {type(data).__name__}")
    if "kind" not in data:
        if _looks_like_matrix(data):
            return _parse_matrix(data, catalog)
        raise SweepError(
            "a sweep needs a 'kind' (one of " + ", ".join(KINDS) + "), or must be an OpenLane "
            "matrix: an optional 'preload' object plus parameter names mapped to lists"
        )
    kind = data["kind"]
    if kind not in KINDS:
        raise SweepError(f"unknown sweep kind {kind!r}; expected one of {', '.join(KINDS)}")
    unknown = set(data) - _COMMON_KEYS - _KIND_KEYS[kind]
    if unknown:
        raise SweepError(f"unexpected key(s) for a {kind} sweep: {', '.join(sorted(unknown))}")
    if "description" in data and not isinstance(data["description"], str):
        raise SweepError("description must be a string")
    base = _coerce_values(data.get("base") or {}, catalog, "base")
    if kind == "matrix":
        return _parse_matrix(
            {"preload": data.get("preload") or {}, **_require(data, "parameters", Mapping)},
            catalog,
            base=base,
            source_format="portal",
        )
    if kind == "single":
        return SweepSpec(kind="single", base=base)
    if kind in ("grid", "zip"):
        return _parse_axes_spec(kind, data, base, catalog)
    if kind == "list":
        return _parse_list_spec(data, base, catalog)
    return _parse_random_spec(data, base, catalog)


def _require(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or not value:
        what = {Mapping: "a non-empty mapping", list: "a non-empty list"}.get(kind, kind.__name__)
        raise SweepError(f"'{key}' must be {what}")
    return value


def _coerce_values(values: object, catalog: Catalog, where: str) -> dict[str, Value]:
    if not isinstance(values, Mapping):
        raise SweepError(f"'{where}' must be a mapping of parameter names to values")
    try:
        return catalog.coerce_mapping(values)
    except ParameterError as exc:
        raise SweepError(f"{where}: {exc}") from None


def _param(catalog: Catalog, name: object, where: str) -> Parameter:
    try:
        return catalog.get(name)
    except ParameterError as exc:
        raise SweepError(f"{where}: {exc}") from None


def parse_axis(param: Parameter, raw: object) -> Axis:
    """Parse the values of one swept parameter (list, range mapping, CLI string, scalar)."""
    try:
        if isinstance(raw, Mapping):
            return _range_axis(param, NumericRange.create(**_range_args(raw)))
        if isinstance(raw, str) and ":" in raw:
            return _range_axis(param, NumericRange.parse(raw))
        if isinstance(raw, str):
            items: Sequence[object] = [s for s in raw.split(",")]
        elif isinstance(raw, list | tuple):
            items = raw
        else:
            items = [raw]
        if not items:
            raise SweepError(f"{param.name}: the list of values is empty")
        return tuple(param.coerce(item) for item in items)
    except ParameterError as exc:
        raise SweepError(str(exc)) from None
    except SweepError as exc:
        raise SweepError(f"{param.name}: {exc}") from None


def _range_args(raw: Mapping[str, Any]) -> dict[str, Any]:
    if set(raw) - {"start", "stop", "step"} or not {"start", "stop"} <= set(raw):
        raise SweepError("a range must be {start, stop[, step]} (inclusive)")
    return dict(raw)


def _range_axis(param: Parameter, rng: NumericRange) -> NumericRange:
    """Check a range once, without expanding it: numeric type, integrality, both ends."""
    if param.type not in ("int", "float"):
        raise SweepError(f"ranges only apply to numeric parameters ({param.type})")
    if param.type == "int" and not rng.integral:
        raise SweepError(f"an integer parameter needs an integer start and step, got {rng}")
    param.coerce(_plain(rng.start, rng.integral))
    last = rng.start + (rng.count - 1) * rng.step
    param.coerce(_plain(last, rng.integral))
    return rng


def _parse_axes(raw: Mapping[str, Any], catalog: Catalog) -> dict[str, Axis]:
    return {
        name: parse_axis(_param(catalog, name, "parameters"), values)
        for name, values in raw.items()
    }


def _check_base_overlap(base: Mapping[str, Value], swept: Iterable[str]) -> None:
    both = [name for name in swept if name in base]
    if both:
        raise SweepError(f"{', '.join(both)}: set in base and swept at the same time")


def _parse_axes_spec(
    kind: str, data: Mapping[str, Any], base: dict[str, Value], catalog: Catalog
) -> SweepSpec:
    axes = _parse_axes(_require(data, "parameters", Mapping), catalog)
    _check_base_overlap(base, axes)
    if kind == "zip":
        lengths = {name: axis_count(axis) for name, axis in axes.items()}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{n}={length}" for n, length in lengths.items())
            raise SweepError(f"zip needs lists of equal length, got {shown}")
    return SweepSpec(kind=kind, base=base, axes=axes)


def _parse_list_spec(
    data: Mapping[str, Any], base: dict[str, Value], catalog: Catalog
) -> SweepSpec:
    raw_points = _require(data, "points", list)
    points = tuple(_coerce_values(p, catalog, f"points[{i}]") for i, p in enumerate(raw_points))
    return SweepSpec(kind="list", base=base, points=points)


def _parse_random_spec(
    data: Mapping[str, Any], base: dict[str, Value], catalog: Catalog
) -> SweepSpec:
    seed, samples = data.get("seed"), data.get("samples")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise SweepError("a random sweep needs an integer 'seed' (0 <= seed < 2^63)")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise SweepError("a random sweep needs 'samples', a positive integer")
    raw_ranges = _require(data, "ranges", Mapping)
    ranges = {
        name: _parse_domain(_param(catalog, name, "ranges"), raw)
        for name, raw in raw_ranges.items()
    }
    _check_base_overlap(base, ranges)
    return SweepSpec(kind="random", base=base, seed=seed, samples=samples, ranges=ranges)


def _parse_domain(param: Parameter, raw: object) -> RandomDomain:
    try:
        if isinstance(raw, list):
            raw = {"choices": raw}
        if not isinstance(raw, Mapping):
            raise SweepError("must be {min, max[, step]}, {choices: [...]} or a list")
        if "choices" in raw:
            choices = raw["choices"]
            if set(raw) != {"choices"} or not isinstance(choices, list) or not choices:
                raise SweepError("choices must be a non-empty list (and alone)")
            return RandomDomain(choices=tuple(param.coerce(c) for c in choices))
        return _numeric_domain(param, raw)
    except ParameterError as exc:
        raise SweepError(f"ranges: {exc}") from None
    except SweepError as exc:
        raise SweepError(f"ranges: {param.name}: {exc}") from None


def _numeric_domain(param: Parameter, raw: Mapping[str, Any]) -> RandomDomain:
    if set(raw) - {"min", "max", "step"} or not {"min", "max"} <= set(raw):
        raise SweepError("must be {min, max[, step]} or {choices: [...]}")
    if param.type not in ("int", "float"):
        raise SweepError(f"min/max only apply to numeric parameters; use choices for {param.type}")
    low, high = _decimal(raw["min"], "min"), _decimal(raw["max"], "max")
    step = _decimal(raw["step"], "step") if "step" in raw else None
    if low > high:
        raise SweepError(f"min ({low}) is greater than max ({high})")
    if step is not None and step <= 0:
        raise SweepError("step must be positive")
    integer = param.type == "int" or (
        step is not None and low == low.to_integral() and step == step.to_integral()
    )
    if param.type == "int" and any(v != v.to_integral() for v in (low, high, step or Decimal(1))):
        raise SweepError("an integer parameter needs integer min, max and step")
    param.coerce(_plain(low, integer))
    param.coerce(_plain(high, low == low.to_integral() and high == high.to_integral()))
    return RandomDomain(low=low, high=high, step=step, integer=integer)


# -- OpenLane 1 matrix -----------------------------------------------------------------------
def _looks_like_matrix(data: Mapping[str, Any]) -> bool:
    if "preload" in data:
        return True
    return bool(data) and all(isinstance(k, str) and NAME_RE.fullmatch(k) for k in data)


def _parse_matrix(
    data: Mapping[str, Any],
    catalog: Catalog,
    *,
    base: dict[str, Value] | None = None,
    source_format: str = "openlane-matrix",
) -> SweepSpec:
    preload = _coerce_values(data.get("preload") or {}, catalog, "preload")
    axes: dict[str, Axis] = {}
    for name, values in data.items():
        if name == "preload":
            continue
        param = _param(catalog, name, "matrix")
        if source_format != "portal" and not isinstance(values, list):
            raise SweepError(
                f"matrix: {name} must be a list of values (put fixed values in 'preload')"
            )
        axes[name] = parse_axis(param, values)
    if not axes:
        raise SweepError("matrix: no swept parameters")
    _check_base_overlap(base or {}, axes)
    return SweepSpec(
        kind="matrix",
        base=base or {},
        axes=axes,
        defaults=preload,
        source_format=source_format,
    )


# -- files and the CLI ------------------------------------------------------------------------
def load_sweep_file(path: str | Path, *, catalog: Catalog | None = None) -> SweepSpec:
    """Read a sweep from a .json/.yaml/.yml file (portal format or OpenLane matrix JSON)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SWEEP_FILE_BYTES:
            raise SweepError(f"{path.name}: sweep file too large ({size} bytes)")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"cannot read sweep file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SweepError(f"{path.name}: sweep file is not UTF-8 text") from None
    data = _parse_text(text, path)
    try:
        return parse_sweep(data, catalog=catalog)
    except SweepError as exc:
        raise SweepError(f"{path.name}: {exc}") from None


def _parse_text(text: str, path: Path) -> Any:
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        fmt = "JSON" if path.suffix.lower() == ".json" else "YAML"
        raise SweepError(f"{path.name}: not valid {fmt}: {exc}") from None


def _split_assignment(arg: str, flag: str) -> tuple[str, str]:
    name, sep, value = arg.partition("=")
    if not sep or not name.strip():
        raise SweepError(f"{flag} expects NAME=VALUE, got {arg!r}")
    return name.strip(), value


def parse_cli_sets(args: Iterable[str], *, catalog: Catalog | None = None) -> dict[str, Value]:
    """``["FP_CORE_UTIL=40", ...]`` (the CLI's --set) -> validated values, order preserved."""
    catalog = catalog or load_catalog()
    values: dict[str, Value] = {}
    for arg in args:
        name, raw = _split_assignment(arg, "--set")
        if name in values:
            raise SweepError(f"--set {name} given twice")
        try:
            values[name] = catalog.coerce(name, raw)
        except ParameterError as exc:
            raise SweepError(f"--set: {exc}") from None
    return values


def parse_cli_sweeps(
    args: Iterable[str],
    *,
    kind: str = "grid",
    base: Mapping[str, Value] | None = None,
    catalog: Catalog | None = None,
) -> SweepSpec:
    """``["CLOCK_PERIOD=10,15,20", "FP_CORE_UTIL=30:50:10"]`` (--sweep) -> a grid/zip spec.

    With no sweep arguments the result is a ``single`` spec holding ``base``.
    """
    catalog = catalog or load_catalog()
    if kind not in ("grid", "zip", "matrix"):
        raise SweepError(f"--sweep builds grid, zip or matrix sweeps, not {kind!r}")
    parameters: dict[str, str] = {}
    for arg in args:
        name, raw = _split_assignment(arg, "--sweep")
        if name in parameters:
            raise SweepError(f"--sweep {name} given twice")
        parameters[name] = raw
    doc: dict[str, Any] = {"kind": kind if parameters else "single", "base": dict(base or {})}
    if parameters:
        doc["parameters"] = parameters
    return parse_sweep(doc, catalog=catalog)


# -- counting and expansion -------------------------------------------------------------------
def count_points(spec: SweepSpec) -> int:
    """How many points the spec expands to, computed without expanding anything."""
    if spec.kind == "single":
        return 1
    if spec.kind in ("grid", "matrix"):
        return math.prod(axis_count(axis) for axis in spec.axes.values())
    if spec.kind == "zip":
        return min((axis_count(axis) for axis in spec.axes.values()), default=0)
    if spec.kind == "list":
        return len(spec.points)
    if spec.kind == "random":
        return spec.samples
    raise SweepError(f"unknown sweep kind {spec.kind!r}")


def expand_sweep(
    spec: SweepSpec,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    catalog: Catalog | None = None,
) -> list[Point]:
    """Expand into points (base first, then swept values); fail fast past ``max_points``."""
    count = count_points(spec)
    if count > max_points:
        raise SweepError(
            f"the sweep has {_count_text(count)} points, more than the limit of {max_points:,}; "
            "narrow the ranges or split the sweep"
        )
    if count == 0:
        raise SweepError("the sweep has no points")
    if spec.kind == "single":
        return [dict(spec.base)]
    if spec.kind == "list":
        return [{**spec.base, **point} for point in spec.points]
    catalog = catalog or load_catalog()
    if spec.kind == "random":
        return _sample(spec, catalog)
    names = list(spec.axes)
    columns = [_axis_values(spec.axes[n], catalog.get(n)) for n in names]
    if spec.kind == "zip":
        combos: Iterable[tuple[Value, ...]] = zip(*columns, strict=True)
    elif spec.kind == "grid":
        combos = itertools.product(*columns)
    else:  # matrix: the first key varies fastest, as in OpenLane's expand_matrix
        combos = (tuple(reversed(c)) for c in itertools.product(*reversed(columns)))
    return [{**spec.base, **dict(zip(names, combo, strict=True))} for combo in combos]


def _sample(spec: SweepSpec, catalog: Catalog) -> list[Point]:
    rng = random.Random(spec.seed)  # noqa: S311 -- reproducible sampling, not security
    points = []
    for _ in range(spec.samples):
        point = dict(spec.base)
        for name, domain in spec.ranges.items():
            point[name] = catalog.get(name).coerce(domain.sample(rng))
        points.append(point)
    return points


def layer_config(
    design_config: Mapping[str, Any],
    point: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One task's configuration: ``defaults`` < the design's config.json < the point.

    This is OpenLane's matrix layering (preload, then config.json, then the combination); for
    portal sweeps ``defaults`` is empty and the point simply overrides the design config.
    """
    return {**(defaults or {}), **design_config, **point}


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value) if isinstance(value, float) else str(value)
    return " ".join(text.split())  # no tab/newline can break the table


def sweep_table(points: Sequence[Mapping[str, Value]]) -> str:
    """``sweep.tsv``: a header ``index<TAB>NAME...`` then one row per point (0-based index)."""
    columns: list[str] = []
    for point in points:
        columns.extend(name for name in point if name not in columns)
    lines = ["\t".join(["index", *columns])]
    for index, point in enumerate(points):
        cells = [_cell(point[name]) if name in point else "" for name in columns]
        lines.append("\t".join([str(index), *cells]))
    return "\n".join(lines) + "\n"
