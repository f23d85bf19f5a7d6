"""One normalized record of design features per task, whatever OpenLane version produced it.

Units are fixed per field and listed in :data:`FIELDS` (the catalog the UI and the Pareto code
use). ``None`` always means "not measured"; the parsers turn OpenLane 1's ``-1`` marker into
``None`` and never invent a value. Conventions:

* areas in µm², times in seconds, power in watts, lengths in µm, timing in ns;
* ``utilization_pct`` is the core utilization in percent (0-100), as OpenLane 1 prints it;
  OpenLane 2's fraction is multiplied by 100;
* ``*_ws_ns`` is the worst slack (signed: positive means margin left); ``*_wns_ns`` is the
  worst *negative* slack (``min(0, ws)``, so 0 when timing is met) and ``*_tns_ns`` the total
  negative slack (<= 0). OpenLane 1 reports only setup WNS/TNS;
* ``flow_status`` is one of :data:`FLOW_STATUSES`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Direction = Literal["min", "max"]

FLOWS = ("openlane1", "openlane2")
FLOW_STATUSES = ("completed", "failed", "unknown")


@dataclass(frozen=True)
class FieldSpec:
    """How to show and compare one feature: label, unit, kind and which direction is better."""

    name: str
    label: str
    unit: str | None
    kind: type
    better: Direction | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float)


def _spec(
    name: str, label: str, unit: str | None, kind: type, better: Direction | None = None
) -> tuple[str, FieldSpec]:
    return name, FieldSpec(name, label, unit, kind, better)


FIELDS: dict[str, FieldSpec] = dict(
    [
        _spec("design", "Design", None, str),
        _spec("flow", "Flow", None, str),
        _spec("flow_status", "Flow status", None, str),
        _spec("die_area_um2", "Die area", "µm²", float, "min"),
        _spec("core_area_um2", "Core area", "µm²", float, "min"),
        _spec("cell_area_um2", "Standard-cell area", "µm²", float, "min"),
        _spec("cell_count_synth", "Cells after synthesis", "cells", int, "min"),
        _spec("cell_count_final", "Cells in final layout", "cells", int, "min"),
        _spec("utilization_pct", "Core utilization", "%", float),
        _spec("setup_ws_ns", "Setup worst slack", "ns", float, "max"),
        _spec("setup_wns_ns", "Setup WNS", "ns", float, "max"),
        _spec("setup_tns_ns", "Setup TNS", "ns", float, "max"),
        _spec("hold_ws_ns", "Hold worst slack", "ns", float, "max"),
        _spec("hold_wns_ns", "Hold WNS", "ns", float, "max"),
        _spec("hold_tns_ns", "Hold TNS", "ns", float, "max"),
        _spec("clock_period_ns", "Clock period (target)", "ns", float),
        _spec("suggested_clock_period_ns", "Suggested clock period", "ns", float, "min"),
        _spec("suggested_frequency_mhz", "Suggested frequency", "MHz", float, "max"),
        _spec("power_total_w", "Total power", "W", float, "min"),
        _spec("power_internal_w", "Internal power", "W", float, "min"),
        _spec("power_switching_w", "Switching power", "W", float, "min"),
        _spec("power_leakage_w", "Leakage power", "W", float, "min"),
        _spec("wirelength_um", "Routed wirelength", "µm", float, "min"),
        _spec("vias", "Vias", "vias", int, "min"),
        _spec("drc_route", "Routing DRC errors", "errors", int, "min"),
        _spec("drc_magic", "Magic DRC errors", "errors", int, "min"),
        _spec("drc_klayout", "KLayout DRC errors", "errors", int, "min"),
        _spec("lvs_errors", "LVS errors", "errors", int, "min"),
        _spec("antenna_violating_nets", "Antenna-violating nets", "nets", int, "min"),
        _spec("antenna_violating_pins", "Antenna-violating pins", "pins", int, "min"),
        _spec("runtime_seconds", "Flow runtime", "s", float, "min"),
        _spec("peak_memory_mb", "Peak memory", "MB", float, "min"),
    ]
)

NUMERIC_FIELDS: tuple[str, ...] = tuple(n for n, s in FIELDS.items() if s.numeric)

#: Short names accepted wherever a field name is typed by a person (objectives, sort keys).
ALIASES: dict[str, str] = {
    "area": "die_area_um2",
    "die_area": "die_area_um2",
    "core_area": "core_area_um2",
    "cell_area": "cell_area_um2",
    "stdcell_area": "cell_area_um2",
    "cells": "cell_count_final",
    "cell_count": "cell_count_final",
    "synth_cells": "cell_count_synth",
    "utilization": "utilization_pct",
    "util": "utilization_pct",
    "setup_ws": "setup_ws_ns",
    "setup_wns": "setup_wns_ns",
    "setup_tns": "setup_tns_ns",
    "wns": "setup_wns_ns",
    "tns": "setup_tns_ns",
    "hold_ws": "hold_ws_ns",
    "hold_wns": "hold_wns_ns",
    "hold_tns": "hold_tns_ns",
    "clock_period": "clock_period_ns",
    "suggested_clock_period": "suggested_clock_period_ns",
    "period": "suggested_clock_period_ns",
    "frequency": "suggested_frequency_mhz",
    "fmax": "suggested_frequency_mhz",
    "power": "power_total_w",
    "power_total": "power_total_w",
    "power_internal": "power_internal_w",
    "power_switching": "power_switching_w",
    "leakage": "power_leakage_w",
    "power_leakage": "power_leakage_w",
    "wirelength": "wirelength_um",
    "runtime": "runtime_seconds",
    "memory": "peak_memory_mb",
    "antenna_nets": "antenna_violating_nets",
    "antenna_pins": "antenna_violating_pins",
    "lvs": "lvs_errors",
}


def resolve_field(name: str) -> str:
    """Return the canonical field name for ``name`` (a field name or an alias).

    Raises ``KeyError`` with the list of accepted names when ``name`` is unknown.
    """
    key = name.strip().lower()
    if key in FIELDS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    names = sorted([*FIELDS, *ALIASES])
    close = difflib.get_close_matches(key, names, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise KeyError(f"unknown feature {name!r}{hint}; known: {', '.join(names)}")


@dataclass
class DesignFeatures:
    """Normalized design features of one OpenLane run (one task). ``None`` = not measured."""

    design: str | None = None
    flow: str | None = None
    flow_status: str | None = None
    die_area_um2: float | None = None
    core_area_um2: float | None = None
    cell_area_um2: float | None = None
    cell_count_synth: int | None = None
    cell_count_final: int | None = None
    utilization_pct: float | None = None
    setup_ws_ns: float | None = None
    setup_wns_ns: float | None = None
    setup_tns_ns: float | None = None
    hold_ws_ns: float | None = None
    hold_wns_ns: float | None = None
    hold_tns_ns: float | None = None
    clock_period_ns: float | None = None
    suggested_clock_period_ns: float | None = None
    suggested_frequency_mhz: float | None = None
    power_total_w: float | None = None
    power_internal_w: float | None = None
    power_switching_w: float | None = None
    power_leakage_w: float | None = None
    wirelength_um: float | None = None
    vias: int | None = None
    drc_route: int | None = None
    drc_magic: int | None = None
    drc_klayout: int | None = None
    lvs_errors: int | None = None
    antenna_violating_nets: int | None = None
    antenna_violating_pins: int | None = None
    runtime_seconds: float | None = None
    peak_memory_mb: float | None = None
    #: The flow's own error messages when it failed (LibreLane/OpenLane 2 ``error.log`` and the
    #: tools' ``%Error``/``ERROR:`` lines), paths shown relative to the run folder.
    errors: list[str] = field(default_factory=list)
    #: Flow parameters the report itself carries (OpenLane 1 config columns), as raw strings.
    params: dict[str, str] = field(default_factory=dict)
    #: The whole original record (CSV row as strings, or the metrics JSON object).
    raw: dict[str, Any] = field(default_factory=dict)
    #: Path of the file the record was parsed from, when known.
    source: str | None = None

    def numeric(self) -> dict[str, float | int | None]:
        """The numeric features only, keyed by field name (rows for
        :mod:`portal.results.pareto`)."""
        return {name: getattr(self, name) for name in NUMERIC_FIELDS}

    def to_dict(self, *, include_raw: bool = True) -> dict[str, Any]:
        """A JSON-serializable dict of every field (``raw`` left out if ``include_raw`` is off)."""
        data = asdict(self)
        if not include_raw:
            data.pop("raw")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesignFeatures:
        """Rebuild a record from :meth:`to_dict` output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name, spec in FIELDS.items():
            value = values.get(name)
            if value is not None and spec.kind is int and isinstance(value, float):
                values[name] = int(value) if math.isfinite(value) else None
        values["errors"] = [str(e) for e in values.get("errors") or []]
        values["params"] = dict(values.get("params") or {})
        values["raw"] = dict(values.get("raw") or {})
        return cls(**values)
