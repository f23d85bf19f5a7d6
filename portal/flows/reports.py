"""Parse OpenLane 1 and OpenLane 2 reports into :class:`~portal.flows.features.DesignFeatures`.

Sources understood:

* OpenLane 1 ``runs/<tag>/reports/metrics.csv`` (``final_summary_report.csv`` before April 2022)
  and the benchmark CSVs that concatenate many of them. Three column sets are handled: 2021
  (``cell_count``, ``GLB_RT_ADJUSTMENT``, computed ``suggested_clock_*`` columns, a pandas index
  column), mid-2022 (``GRT_ADJUSTMENT``) and the 2024 set (``synth_cell_count``, ``Final_Util``,
  ``CoreArea_um^2``, ``pin/net_antenna_violations``, ``power_*``). ``-1`` means "not measured".
* OpenLane 2 ``runs/<tag>/final/metrics.json`` (or the ``Metric,Value`` ``final/metrics.csv``
  written beside it): keys ``category__metric__sub`` with ``__corner:<name>`` / ``__iter:<n>``
  modifiers.

Column / key mapping, as ``field (unit): OpenLane 1 column | OpenLane 2 key``:

* design: ``design_name`` | resolved.json ``DESIGN_NAME``
* flow_status: ``flow_status`` | see :func:`parse_run_dir`
* die_area_um2 (µm²): ``DIEAREA_mm^2`` x 1e6 | ``design__die__area``
* core_area_um2 (µm²): ``CoreArea_um^2`` | ``design__core__area``
* cell_area_um2 (µm²): -- | ``design__instance__area__stdcell``, else ``design__instance__area``
* cell_count_synth: ``synth_cell_count`` or ``cell_count`` (yosys "Number of cells") |
  ``design__instance__count`` when no floorplan ran (no die or core area: a flow cut after
  synthesis)
* cell_count_final: ``TotalCells`` (final DEF components) | ``design__instance__count__stdcell``,
  else ``design__instance__count``, when a floorplan ran
* utilization_pct (%): ``Final_Util``, else ``OpenDP_Util`` | ``design__instance__utilization``
  x 100
* setup_ws_ns: -- | ``timing__setup__ws``; hold_ws/wns/tns_ns: -- | ``timing__hold__*``
* setup_wns_ns / setup_tns_ns (ns): ``spef_wns`` / ``spef_tns`` | ``timing__setup__wns`` /
  ``timing__setup__tns``
* clock_period_ns: ``CLOCK_PERIOD`` | resolved.json ``CLOCK_PERIOD``
* power_internal/switching/leakage_w (W): ``power_typical_{internal,switching,leakage}_uW`` |
  ``power__{internal,switching,leakage}__total``; power_total_w: their sum | ``power__total``
* wirelength_um (µm): ``wire_length`` | ``route__wirelength``; vias: ``vias`` | ``route__vias``
* drc_route: ``tritonRoute_violations`` | ``route__drc_errors``
* drc_magic: ``Magic_violations`` | ``magic__drc_error__count``
* drc_klayout: ``klayout_violations`` | ``klayout__drc_error__count``
* lvs_errors: ``lvs_total_errors`` | ``design__lvs_error__count`` (older:
  ``design__lvs_errors__count``)
* antenna_violating_nets: ``net_antenna_violations`` | ``antenna__violating__nets``
* antenna_violating_pins: ``pin_antenna_violations`` or ``antenna_violations`` |
  ``antenna__violating__pins``
* runtime_seconds (s): ``total_runtime`` | ``runtime.yaml`` or the steps' ``runtime.txt`` sum
* peak_memory_mb (MB): ``Peak_Memory_Usage_MB`` (detailed-routing peak) | --

Decisions worth knowing:

* OpenLane 1 timing comes from the post-route, parasitics-annotated STA (``spef_*``); the
  ``wns``/``tns`` columns are synthesis-time estimates and are kept in ``raw`` only. A real
  slack of exactly -1 ns is indistinguishable from the "not measured" marker and reads as None.
* ``suggested_clock_period_ns`` = clock period - setup WNS (OpenLane 1's own definition), computed
  here for every version; the CSV's ``suggested_clock_period`` column is not trusted because
  OpenLane 1 computed it from ``spef_wns == -1`` when STA did not run.
* The ``power_*_uW`` columns hold OpenSTA ``report_power`` totals, which OpenSTA prints in watts
  (OpenLane 1 does no unit conversion despite the column name); the typical corner is used and
  the total is internal + switching + leakage.
* The old ``antenna_violations`` column counted violating *pins* (ARC "Number of pins violated").
* A failed OpenLane 1 run that never finished routing (``routed_runtime`` is -1) gets None for
  every post-route metric: the 2021 report script wrote 0 for missing LVS reports and fell back
  to synthesis timing for a missing post-route STA, so those numbers were never measured.
* ``params`` holds the OpenLane 1 config columns (upper-case names) as written. OpenLane 1 writes
  the header sorted but the values in config order, so they can be misaligned; the portal's own
  sweep record is the authority on parameters.
* Nothing that is not a finite number becomes one: ``?`` (what LibreLane's STA steps print
  when OpenSTA cannot answer), empty values, infinities and OpenSTA's 1e30 "no path" slack
  read as None; a negative area, power, wirelength or count reads as None.
* OpenLane 2: a design-level key wins; without it the worst value over ``__corner:`` variants is
  taken (minimum for slacks and TNS, maximum for counts and power), and for ``__iter:`` variants
  the value of the last iteration.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from portal.flows.features import DesignFeatures

PathOrText = str | os.PathLike[str]

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_LOG_TAIL_BYTES = 16384

# --------------------------------------------------------------------------- durations

_UNIT_DURATION = re.compile(
    r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+)ms)?"
)
_CLOCK_DURATION = re.compile(
    r"(?:(?P<d>\d+)(?:-|\s*days?,\s*))?"
    r"(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)"
)
_NOT_MEASURED = {"", "-1", "-1.0", "n/a", "na", "none", "null", "unknown"}


def parse_duration(text: str | float | None) -> float | None:
    """Convert an OpenLane or Slurm runtime to seconds; None when it was not measured.

    Accepts ``0h4m26s0ms`` and ``1h3m47s`` (OpenLane 1), ``00:01:10.250`` (OpenLane 2 step
    ``runtime.txt``), ``1-02:03:04`` / ``MM:SS`` (Slurm), a day part such as ``1d2h``, and plain
    seconds (``70.5``). ``-1``, empty and negative values mean "not measured". Raises
    ``ValueError`` for anything else.
    """
    if text is None:
        return None
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        return float(text) if math.isfinite(text) and text >= 0 else None
    value = str(text).strip()
    if value.lower() in _NOT_MEASURED:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    match = _UNIT_DURATION.fullmatch(value) or _CLOCK_DURATION.fullmatch(value)
    if match is None or not any(match.groupdict().values()):
        raise ValueError(f"not a duration: {text!r}")
    parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
    return (
        parts.get("d", 0.0) * 86400
        + parts.get("h", 0.0) * 3600
        + parts.get("m", 0.0) * 60
        + parts.get("s", 0.0)
        + parts.get("ms", 0.0) / 1000
    )


def _duration_or_none(text: Any) -> float | None:
    try:
        return parse_duration(text)
    except ValueError:
        return None


def normalize_flow_status(text: str | None) -> str:
    """Map OpenLane's status strings to ``completed`` / ``failed`` / ``unknown``.

    ``flow completed``, ``flow_completed`` -> completed; ``flow failed``, ``flow_failed``,
    ``flow_exceptional_failure`` -> failed; anything else (or nothing) -> unknown.
    """
    value = (text or "").strip().lower().replace("_", " ")
    if "fail" in value or "error" in value:
        return "failed"
    if "complete" in value or "success" in value:
        return "completed"
    return "unknown"


# --------------------------------------------------------------------------- numbers


#: OpenSTA's "no constrained path" slack is 1e30 (s or ns): never a measurement.
_NO_PATH = 1e29


def _float(value: Any) -> float | None:
    """A finite float, or None for empty / non-numeric (``?``) / infinite values and OpenSTA's
    1e30 "no path" marker."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            return None
    return number if math.isfinite(number) and abs(number) < _NO_PATH else None


def _ol1(value: Any) -> float | None:
    """An OpenLane 1 cell: -1 is the "not measured" marker."""
    number = _float(value)
    return None if number is None or number == -1 else number


def _nonneg(number: float | None) -> float | None:
    return number if number is not None and number >= 0 else None


def _positive(number: float | None) -> float | None:
    return number if number is not None and number > 0 else None


def _count(number: float | None) -> int | None:
    if number is None or number < 0 or number != int(number):
        return None
    return int(number)


def _suggested_period(clock: float | None, wns: float | None) -> float | None:
    if clock is None or wns is None or clock <= 0:
        return None
    return clock - min(wns, 0.0)


def _frequency_mhz(period_ns: float | None) -> float | None:
    return 1000.0 / period_ns if period_ns else None


# --------------------------------------------------------------------------- OpenLane 1

# Upper-case columns that are metrics, not config variables.
_OL1_UPPERCASE_METRICS = frozenset(
    {"AND", "DFF", "NAND", "NOR", "OR", "XOR", "XNOR", "MUX", "NOT", "HPWL"}
)
_OL1_PARAM = re.compile(r"[A-Z][A-Z0-9_]*")
_OL2_CSV_HEADER = ["Metric", "Value"]

_POST_ROUTE_FIELDS = (
    "cell_count_final",
    "setup_ws_ns",
    "setup_wns_ns",
    "setup_tns_ns",
    "suggested_clock_period_ns",
    "suggested_frequency_mhz",
    "power_total_w",
    "power_internal_w",
    "power_switching_w",
    "power_leakage_w",
    "wirelength_um",
    "vias",
    "drc_route",
    "drc_magic",
    "drc_klayout",
    "lvs_errors",
    "antenna_violating_nets",
    "antenna_violating_pins",
)


def _read_source(source: PathOrText) -> tuple[str, str | None]:
    """Return (text, path) for a path or literal text (a str containing a newline is text)."""
    if isinstance(source, str) and "\n" in source:
        return source, None
    path = Path(source)
    return path.read_text(encoding="utf-8-sig"), str(path)


def _col(row: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present in ``row`` (None if none is)."""
    for name in names:
        if name in row:
            return row[name]
    return None


def _ol1_params(row: Mapping[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in row.items()
        if k not in _OL1_UPPERCASE_METRICS and _OL1_PARAM.fullmatch(k) and v is not None
    }


def _ol1_power(row: Mapping[str, str]) -> dict[str, float | None]:
    parts = {
        part: _nonneg(_ol1(row.get(f"power_typical_{part}_uW")))
        for part in ("internal", "switching", "leakage")
    }
    known = [v for v in parts.values() if v is not None]
    total = sum(known) if len(known) == len(parts) else None
    return {
        "power_internal_w": parts["internal"],
        "power_switching_w": parts["switching"],
        "power_leakage_w": parts["leakage"],
        "power_total_w": total,
    }


def _ol1_design(row: Mapping[str, str]) -> str | None:
    name = (row.get("design_name") or "").strip()
    if name:
        return name
    path = (row.get("design") or "").strip().rstrip("/")
    return path.rsplit("/", 1)[-1] or None


def _ol1_die_area_um2(row: Mapping[str, str]) -> float | None:
    mm2 = _positive(_ol1(row.get("DIEAREA_mm^2")))  # -1e-06 = "-1 um^2" / 1e6
    return mm2 * 1e6 if mm2 is not None else None


def features_from_openlane1_row(
    row: Mapping[str, str], source: str | None = None
) -> DesignFeatures:
    """Normalize one OpenLane 1 metrics row (column name -> cell text)."""
    clock = _positive(_ol1(row.get("CLOCK_PERIOD")))
    setup_wns = _ol1(row.get("spef_wns"))
    period = _suggested_period(clock, setup_wns)
    utilization = _nonneg(_ol1(row.get("Final_Util")))
    if utilization is None:
        utilization = _nonneg(_ol1(row.get("OpenDP_Util")))
    features = DesignFeatures(
        design=_ol1_design(row),
        flow="openlane1",
        flow_status=normalize_flow_status(row.get("flow_status")),
        die_area_um2=_ol1_die_area_um2(row),
        core_area_um2=_positive(_ol1(row.get("CoreArea_um^2"))),
        cell_count_synth=_count(_ol1(_col(row, "synth_cell_count", "cell_count"))),
        cell_count_final=_count(_ol1(row.get("TotalCells"))),
        utilization_pct=utilization,
        setup_wns_ns=setup_wns,
        setup_tns_ns=_ol1(row.get("spef_tns")),
        clock_period_ns=clock,
        suggested_clock_period_ns=period,
        suggested_frequency_mhz=_frequency_mhz(period),
        wirelength_um=_nonneg(_ol1(row.get("wire_length"))),
        vias=_count(_ol1(row.get("vias"))),
        drc_route=_count(_ol1(row.get("tritonRoute_violations"))),
        drc_magic=_count(_ol1(row.get("Magic_violations"))),
        drc_klayout=_count(_ol1(row.get("klayout_violations"))),
        lvs_errors=_count(_ol1(row.get("lvs_total_errors"))),
        antenna_violating_nets=_count(_ol1(row.get("net_antenna_violations"))),
        antenna_violating_pins=_count(
            _ol1(_col(row, "pin_antenna_violations", "antenna_violations"))
        ),
        runtime_seconds=_duration_or_none(row.get("total_runtime")),
        peak_memory_mb=_positive(_ol1(row.get("Peak_Memory_Usage_MB"))),
        params=_ol1_params(row),
        raw=dict(row),
        source=source,
        **_ol1_power(row),
    )
    if _never_routed(features, row):
        for name in _POST_ROUTE_FIELDS:
            setattr(features, name, None)
    return features


def _never_routed(features: DesignFeatures, row: Mapping[str, str]) -> bool:
    return (
        features.flow_status == "failed"
        and "routed_runtime" in row
        and _duration_or_none(row["routed_runtime"]) is None
    )


def _csv_rows(text: str) -> tuple[list[str], list[dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        row: dict[str, Any] = {}
        for name, value in zip(header, values, strict=False):
            if name:  # an unnamed first column is a pandas index, not OpenLane data
                row[name] = value
        if len(values) > len(header):
            row["__extra__"] = values[len(header) :]
        rows.append(row)
    return header, rows


def _parse_openlane1_text(text: str, path: str | None) -> list[DesignFeatures]:
    header, rows = _csv_rows(text)
    if header[:2] == _OL2_CSV_HEADER:
        raise ValueError("this is an OpenLane 2 metrics.csv (Metric,Value); use parse_path()")
    if "flow_status" not in header and "design_name" not in header:
        raise ValueError(f"not an OpenLane 1 metrics CSV: {path or 'text'}")
    return [features_from_openlane1_row(row, path) for row in rows]


def parse_openlane1_csv(source: PathOrText) -> list[DesignFeatures]:
    """Parse an OpenLane 1 ``metrics.csv`` / ``final_summary_report.csv``: one record per row.

    ``source`` is a path, or the CSV text itself (a ``str`` containing a newline).
    Raises ``ValueError`` for an OpenLane 2 ``Metric,Value`` CSV (use :func:`parse_path`).
    """
    text, path = _read_source(source)
    return _parse_openlane1_text(text, path)


# --------------------------------------------------------------------------- OpenLane 2

# field -> (candidate keys, worst-over-corners aggregation)
_OL2_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "die_area_um2": (("design__die__area",), "max"),
    "core_area_um2": (("design__core__area",), "max"),
    "cell_area_um2": (("design__instance__area__stdcell", "design__instance__area"), "max"),
    "cell_count_final": (("design__instance__count__stdcell", "design__instance__count"), "max"),
    "utilization_pct": (("design__instance__utilization",), "max"),
    "setup_ws_ns": (("timing__setup__ws",), "min"),
    "setup_wns_ns": (("timing__setup__wns",), "min"),
    "setup_tns_ns": (("timing__setup__tns",), "min"),
    "hold_ws_ns": (("timing__hold__ws",), "min"),
    "hold_wns_ns": (("timing__hold__wns",), "min"),
    "hold_tns_ns": (("timing__hold__tns",), "min"),
    "power_total_w": (("power__total",), "max"),
    "power_internal_w": (("power__internal__total",), "max"),
    "power_switching_w": (("power__switching__total",), "max"),
    "power_leakage_w": (("power__leakage__total",), "max"),
    "wirelength_um": (("route__wirelength",), "max"),
    "vias": (("route__vias",), "max"),
    "drc_route": (("route__drc_errors",), "max"),
    "drc_magic": (("magic__drc_error__count",), "max"),
    "drc_klayout": (("klayout__drc_error__count",), "max"),
    "lvs_errors": (("design__lvs_error__count", "design__lvs_errors__count"), "max"),
    "antenna_violating_nets": (("antenna__violating__nets",), "max"),
    "antenna_violating_pins": (("antenna__violating__pins",), "max"),
}
#: Fields that are never negative: a negative value is a "not measured" marker, not a number.
_OL2_NONNEGATIVE_FIELDS = frozenset(
    {
        "die_area_um2",
        "core_area_um2",
        "cell_area_um2",
        "utilization_pct",
        "power_total_w",
        "power_internal_w",
        "power_switching_w",
        "power_leakage_w",
        "wirelength_um",
    }
)
_OL2_INT_FIELDS = frozenset(
    {
        "cell_count_final",
        "vias",
        "drc_route",
        "drc_magic",
        "drc_klayout",
        "lvs_errors",
        "antenna_violating_nets",
        "antenna_violating_pins",
    }
)


class _OpenLane2Metrics:
    """Look-ups in an OpenLane 2 metrics dict, resolving ``__corner:``/``__iter:`` variants."""

    def __init__(self, metrics: Mapping[str, Any]) -> None:
        self.metrics = metrics

    def get(self, keys: Iterable[str], worst: str) -> float | None:
        for key in keys:
            if key in self.metrics:
                return _float(self.metrics[key])
        for key in keys:
            value = self._from_variants(key, worst)
            if value is not None:
                return value
        return None

    def _variants(self, base: str) -> list[tuple[dict[str, str], Any]]:
        prefix = base + "__"
        found = []
        for key, value in self.metrics.items():
            if key.startswith(prefix) and ":" in key:
                key_base, modifiers = _split_modifiers(key)
                if key_base == base:
                    found.append((modifiers, value))
        return found

    def _from_variants(self, base: str, worst: str) -> float | None:
        variants = self._variants(base)
        corners = [_float(v) for mods, v in variants if set(mods) == {"corner"}]
        corners = [v for v in corners if v is not None]
        if corners:
            return min(corners) if worst == "min" else max(corners)
        iterations = [(int(mods["iter"]), v) for mods, v in variants if _is_iter(mods)]
        if iterations:
            return _float(max(iterations)[1])
        return None


def _is_iter(modifiers: Mapping[str, str]) -> bool:
    return set(modifiers) == {"iter"} and modifiers["iter"].isdigit()


def _split_modifiers(key: str) -> tuple[str, dict[str, str]]:
    """``timing__setup__ws__corner:nom`` -> (``timing__setup__ws``, {``corner``: ``nom``})."""
    segments = key.split("__")
    base: list[str] = []
    modifiers: dict[str, str] = {}
    for segment in segments:
        if ":" in segment:
            name, _, value = segment.partition(":")
            modifiers[name] = value
        elif not modifiers:
            base.append(segment)
    return "__".join(base), modifiers


def _load_ol2_metrics(source: PathOrText | Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    if isinstance(source, Mapping):
        return dict(source), None
    if isinstance(source, str) and source.lstrip().startswith("{"):
        return json.loads(source), None
    path = Path(source)
    with path.open("rb") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an OpenLane 2 metrics.json holds a JSON object")
    return data, str(path)


def parse_openlane2_json(
    source: PathOrText | Mapping[str, Any], *, config: Mapping[str, Any] | None = None
) -> DesignFeatures:
    """Parse an OpenLane 2 ``final/metrics.json`` (a path, JSON text or the decoded dict).

    ``config`` is the run's resolved configuration (``resolved.json``) when known; it supplies
    ``DESIGN_NAME`` and ``CLOCK_PERIOD``. ``flow_status`` is left ``unknown``: a metrics file
    alone does not say how the run ended (see :func:`parse_run_dir`).
    """
    metrics, path = _load_ol2_metrics(source)
    lookup = _OpenLane2Metrics(metrics)
    values: dict[str, Any] = {}
    for name, (keys, worst) in _OL2_KEYS.items():
        value = lookup.get(keys, worst)
        if name in _OL2_INT_FIELDS:
            value = _count(value)
        elif name in _OL2_NONNEGATIVE_FIELDS:
            value = _nonneg(value)
        values[name] = value
    if values["die_area_um2"] is None and values["core_area_um2"] is None:
        # No floorplan ran (a flow cut after synthesis): the instance count is synthesis's.
        values["cell_count_synth"], values["cell_count_final"] = values["cell_count_final"], None
    if values["utilization_pct"] is not None:
        values["utilization_pct"] *= 100.0
    config = config or {}
    clock = _positive(_float(config.get("CLOCK_PERIOD")))
    period = _suggested_period(clock, values["setup_wns_ns"])
    design = config.get("DESIGN_NAME")
    return DesignFeatures(
        design=str(design) if design else None,
        flow="openlane2",
        flow_status="unknown",
        clock_period_ns=clock,
        suggested_clock_period_ns=period,
        suggested_frequency_mhz=_frequency_mhz(period),
        raw=metrics,
        source=path,
        **values,
    )


def _ol2_metrics_from_csv(text: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    for name, value in list(csv.reader(io.StringIO(text)))[1:]:
        number = _float(value)
        metrics[name] = value if number is None else number
    return metrics


# --------------------------------------------------------------------------- run directories

_OL2_METRICS = ("final", "metrics.json")
_OL1_METRICS = (("reports", "metrics.csv"), ("reports", "final_summary_report.csv"))
_METRIC_MARKERS = (
    "final/metrics.json",
    "reports/metrics.csv",
    "reports/final_summary_report.csv",
)
_RUN_MARKERS = (*_METRIC_MARKERS, "runtime.yaml", "resolved.json", "openlane.log", "flow.log")
_LOG_FAILED = re.compile(r"flow failed|\berror\b|traceback", re.IGNORECASE)
_LOG_COMPLETED = re.compile(r"flow complete", re.IGNORECASE)


def _has_any(path: str, markers: Iterable[str]) -> bool:
    return any(os.path.isfile(os.path.join(path, marker)) for marker in markers)


def _newest_tag(base: str) -> str | None:
    try:
        entries = [
            e
            for e in os.scandir(os.path.join(base, "runs"))
            if e.is_dir() and _has_any(e.path, _RUN_MARKERS)
        ]
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not entries:
        return None
    return max(entries, key=lambda e: (e.stat().st_mtime, e.name)).path


def find_run_dir(path: PathOrText) -> Path | None:
    """The OpenLane run directory for ``path``, or None.

    ``path`` itself when it holds metrics; else the newest ``path/runs/<tag>`` that looks like a
    run (by modification time, then name); else ``path`` when it holds only run logs/state
    (a task directory's own console ``flow.log`` does not hide a ``runs/<tag>`` below it).
    """
    base = os.fspath(path)
    if _has_any(base, _METRIC_MARKERS):
        return Path(base)
    tag = _newest_tag(base)
    if tag is not None:
        return Path(tag)
    if _has_any(base, _RUN_MARKERS):
        return Path(base)
    return None


def _read_tail(path: str, size: int = _LOG_TAIL_BYTES) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def status_from_log(text: str) -> str:
    """``completed``/``failed``/``unknown`` from a log tail: the last verdict in it wins."""
    failed = [m.start() for m in _LOG_FAILED.finditer(text)]
    completed = [m.start() for m in _LOG_COMPLETED.finditer(text)]
    if not failed and not completed:
        return "unknown"
    if not completed:
        return "failed"
    if not failed:
        return "completed"
    return "failed" if failed[-1] > completed[-1] else "completed"


def _runtime_yaml(run_dir: str) -> tuple[str, float | None] | None:
    """(status, seconds) from a concluded ``runtime.yaml``: its last non-``routed`` entry."""
    try:
        with open(os.path.join(run_dir, "runtime.yaml"), encoding="utf-8") as handle:
            docs = list(yaml.load_all(handle, Loader=_YAML_LOADER))
    except (OSError, yaml.YAMLError):
        return None
    entries: list[Any] = []
    for doc in docs:
        entries.extend(doc if isinstance(doc, list) else [doc])
    for entry in reversed(entries):
        if not isinstance(entry, dict) or "status" not in entry:
            continue
        status = str(entry["status"])
        if status.strip().lower() == "routed":
            continue
        seconds = _duration_or_none(entry.get("runtime_s"))
        if seconds is None:
            seconds = _duration_or_none(entry.get("runtime_ts"))
        return normalize_flow_status(status), seconds
    return None


def _status_from_logs(run_dir: str, names: Iterable[str]) -> str:
    for name in names:
        tail = _read_tail(os.path.join(run_dir, name))
        if tail is not None:
            status = status_from_log(tail)
            if status != "unknown":
                return status
    return "unknown"


def _ol2_step_runtime(run_dir: str) -> float | None:
    """Sum of the ``<n>-<step>/runtime.txt`` files OpenLane 2 writes for every step."""
    total, found = 0.0, False
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return None
    for entry in entries:
        if not entry.name[:1].isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "runtime.txt"), encoding="utf-8") as handle:
                seconds = _duration_or_none(handle.read())
        except OSError:
            continue
        if seconds is not None:
            total, found = total + seconds, True
    return total if found else None


def _read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


#: Tool error lines worth showing from a failed step's logs (Verilator, Yosys, OpenROAD/STA).
_TOOL_ERROR = re.compile(r"^(%Error\b|ERROR:|\[ERROR)")
MAX_ERROR_LINES = 20
_MAX_STEP_LOG_BYTES = 1 << 20


def run_errors(run_dir: str | os.PathLike[str]) -> list[str]:
    """The error messages of a failed OpenLane 2 / LibreLane run: ``error.log``'s lines, then
    the tool error lines (``%Error``, ``ERROR:``) of the step folders' logs, last step first;
    at most :data:`MAX_ERROR_LINES`, duplicates dropped."""
    base = os.fspath(run_dir)
    found: list[str] = []
    tail = _read_tail(os.path.join(base, "error.log"))
    if tail:
        found += [line.strip() for line in tail.splitlines() if line.strip()]
    steps = sorted(
        (e for e in _scandir(base) if e.is_dir() and e.name[:1].isdigit()),
        key=lambda e: int(e.name.split("-", 1)[0]) if e.name.split("-", 1)[0].isdigit() else -1,
    )
    for step in reversed(steps):
        if len(found) >= MAX_ERROR_LINES:
            break
        for entry in sorted(_scandir(step.path), key=lambda e: e.name):
            if not entry.name.endswith(".log") or entry.stat().st_size > _MAX_STEP_LOG_BYTES:
                continue
            with open(entry.path, encoding="utf-8", errors="replace") as handle:
                found += [line.strip() for line in handle if _TOOL_ERROR.match(line)]
    unique = list(dict.fromkeys(found))
    return unique[:MAX_ERROR_LINES]


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(path))
    except OSError:
        return []


def _openlane2_run(run_dir: str, step_runtimes: bool) -> DesignFeatures:
    config = _read_json(os.path.join(run_dir, "resolved.json"))
    metrics_path = os.path.join(run_dir, *_OL2_METRICS)
    if os.path.isfile(metrics_path):
        features = parse_openlane2_json(metrics_path, config=config)
    else:
        name = (config or {}).get("DESIGN_NAME")
        features = DesignFeatures(design=str(name) if name else None, flow="openlane2")
    concluded = _runtime_yaml(run_dir)
    if concluded is not None:
        features.flow_status, features.runtime_seconds = concluded
    elif os.path.isfile(metrics_path):
        features.flow_status = "completed"  # final/ is only written after the last step
    else:
        errors = os.path.join(run_dir, "error.log")  # LibreLane logs every ERROR there
        failed = os.path.isfile(errors) and os.path.getsize(errors) > 0
        features.flow_status = (
            "failed" if failed else _status_from_logs(run_dir, ("flow.log", "error.log"))
        )
    if features.runtime_seconds is None and step_runtimes:
        features.runtime_seconds = _ol2_step_runtime(run_dir)
    if features.flow_status != "completed":
        features.errors = run_errors(run_dir)
    return features


def _openlane1_run(run_dir: str) -> DesignFeatures:
    features = None
    for parts in _OL1_METRICS:
        path = os.path.join(run_dir, *parts)
        if os.path.isfile(path):
            rows = parse_openlane1_csv(Path(path))
            features = rows[0] if rows else None
            break
    if features is None:
        features = DesignFeatures(flow="openlane1", flow_status="unknown")
    if features.flow_status == "unknown" or features.runtime_seconds is None:
        concluded = _runtime_yaml(run_dir)
        if concluded is not None:
            status, seconds = concluded
            if features.flow_status == "unknown":
                features.flow_status = status
            if features.runtime_seconds is None:
                features.runtime_seconds = seconds
    if features.flow_status == "unknown":
        features.flow_status = _status_from_logs(run_dir, ("openlane.log", "flow.log"))
    return features


def _is_openlane2_run(run_dir: str, flow: str | None = None) -> bool:
    if os.path.isfile(os.path.join(run_dir, *_OL2_METRICS)):
        return True
    if any(os.path.isfile(os.path.join(run_dir, *parts)) for parts in _OL1_METRICS):
        return False
    if flow is not None:  # no report yet (a run cut short): the flow that ran decides
        return flow != "openlane1"
    return os.path.isfile(os.path.join(run_dir, "resolved.json")) or os.path.isfile(
        os.path.join(run_dir, "flow.log")
    )


def parse_run_dir(
    path: PathOrText, *, step_runtimes: bool = False, flow: str | None = None
) -> DesignFeatures | None:
    """Features of the OpenLane run at ``path`` (the run dir, or a dir holding ``runs/<tag>/``).

    Returns None when no run is found. Found files, in order: OpenLane 2
    ``final/metrics.json`` (+ ``resolved.json``), OpenLane 1 ``reports/metrics.csv`` or
    ``reports/final_summary_report.csv``. A run without metrics still yields a record with its
    status. ``flow_status``: OpenLane 1 takes the metrics' ``flow_status``, else the concluded
    ``runtime.yaml``, else the verdict at the end of ``openlane.log``. OpenLane 2 takes a
    ``runtime.yaml`` when one exists, else ``completed`` when ``final/metrics.json`` exists
    (OpenLane 2 writes ``final/`` only after the last step), else ``failed`` when
    ``error.log`` is not empty (LibreLane logs every ERROR there; ``errors`` then holds them,
    see :func:`run_errors`), else the verdict at the end of ``flow.log``/``error.log``
    ("Flow complete" vs an ERROR/"Flow failed"/traceback line);
    ``unknown`` when nothing tells.

    ``flow`` (``openlane1``, ``openlane2``, ``librelane``), when known, decides the layout of a
    run that wrote no metrics file yet (a task that timed out, say); otherwise it is guessed
    from the files present.

    Runtime: OpenLane 1 ``total_runtime`` (else ``runtime.yaml``); OpenLane 2 ``runtime.yaml``
    if present, else, only with ``step_runtimes=True``, the sum of the steps' ``runtime.txt``
    (one small read per step, ~70 for the Classic flow: too slow for bulk collection, where
    Slurm's elapsed time is the better figure anyway).
    """
    run_dir = find_run_dir(path)
    if run_dir is None:
        return None
    base = os.fspath(run_dir)
    if _is_openlane2_run(base, flow):
        return _openlane2_run(base, step_runtimes)
    return _openlane1_run(base)


# --------------------------------------------------------------------------- any path


def parse_path(path: PathOrText) -> list[DesignFeatures]:
    """Parse a report file or a run directory (backs ``portal reports parse PATH``).

    A ``.csv`` gives one record per row (OpenLane 1) or one record (an OpenLane 2
    ``Metric,Value`` CSV); a ``.json`` is an OpenLane 2 metrics file; a directory goes to
    :func:`parse_run_dir` with ``step_runtimes`` on (an empty list when it holds no run).
    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for an unsupported file.
    """
    target = Path(path)
    if target.is_dir():
        features = parse_run_dir(target, step_runtimes=True)
        return [features] if features is not None else []
    if not target.is_file():
        raise FileNotFoundError(f"no such file or directory: {target}")
    suffix = target.suffix.lower()
    if suffix == ".csv":
        text = target.read_text(encoding="utf-8-sig")
        if text.split("\n", 1)[0].strip().split(",")[:2] == _OL2_CSV_HEADER:
            features = parse_openlane2_json(_ol2_metrics_from_csv(text))
            features.source = str(target)
            return [features]
        return _parse_openlane1_text(text, str(target))
    if suffix == ".json":
        return [parse_openlane2_json(target)]
    raise ValueError(f"unsupported report file (want .csv, .json or a run directory): {target}")
