"""The parameter catalog: the OpenLane variables a submission may set or sweep.

The catalog lives in ``portal/data/parameters.yaml``. Every user-supplied parameter goes through
:meth:`Catalog.coerce`, which turns raw input (form strings, YAML/JSON scalars) into a typed value
or raises :class:`ParameterError` with a message meant for the user.

Validation is deliberately strict: a string value can only be one of a choice's values, match a
short pattern (``RT_MAX_LAYER``) or be numbers (``DIE_AREA``). Shell and Tcl metacharacters
(``$ ` ; | & ' " \\ [ ] { } ( ) < >``, newlines...) never survive, which matters because
OpenLane 1 evaluates its configuration as Tcl. Values are shell-quoted downstream anyway.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

Value = int | float | str | bool
Flow = Literal["openlane1", "openlane2"]

PARAMETER_TYPES = ("int", "float", "str", "choice", "bool", "area")
FLOWS: tuple[Flow, ...] = ("openlane1", "openlane2")
DEFAULT_CATALOG_PATH = Path(__file__).parents[1] / "data" / "parameters.yaml"

# Always used with fullmatch(): "$" alone would accept a trailing newline.
NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
# The only characters any string value may contain (before type-specific checks).
_SAFE_CHARS_RE = re.compile(r"[A-Za-z0-9 ._+-]*")
_MAX_VALUE_LEN = 200
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ParameterError(ValueError):
    """A parameter name or value was rejected; the message is meant for the user."""


class UnknownParameter(ParameterError):
    """The name is not in the catalog (``suggestions`` holds close matches)."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"unknown parameter {name!r}{hint}")


class CatalogError(RuntimeError):
    """The catalog file itself is malformed (a programming/deployment error)."""


def _describe_char(char: str) -> str:
    named = {"\n": "newline", "\r": "carriage return", "\t": "tab", "\0": "NUL", "`": "backtick"}
    if char in named:
        return named[char]
    if not char.isprintable():
        return f"control character U+{ord(char):04X}"
    return repr(char)


def _check_safe_string(name: str, text: str) -> str:
    """Reject anything but plain words/numbers before a string is interpreted at all."""
    if len(text) > _MAX_VALUE_LEN:
        raise ParameterError(f"{name}: value is too long ({len(text)} > {_MAX_VALUE_LEN} chars)")
    if "$(" in text:
        raise ParameterError(f"{name}: command substitution '$(' is not allowed in values")
    if not _SAFE_CHARS_RE.fullmatch(text):
        bad = next(c for c in text if not _SAFE_CHARS_RE.fullmatch(c))
        raise ParameterError(
            f"{name}: character {_describe_char(bad)} is not allowed in values "
            "(only letters, digits, space and . _ + -)"
        )
    return text.strip()


def _format_number(number: float | int) -> str:
    """``10``, ``0.5``; a huge number in short form (``1e+300``), never hundreds of digits."""
    if isinstance(number, int) and abs(number) >= 10**15:
        return f"{Decimal(number):.2e}"
    value = float(number)
    if abs(value) >= 1e15:
        return f"{value:.3g}"
    return str(int(number)) if value.is_integer() else repr(value)


@dataclass(frozen=True)
class Parameter:
    """One catalog entry (see the field list at the top of parameters.yaml)."""

    name: str
    type: str
    help: str
    stage: str = "general"
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    default: Value | None = None
    pdk_default: bool = False
    ol2_name: str | None = None
    ol2_scale: float | None = None
    ol2_default: Value | None = None
    flows: tuple[Flow, ...] = FLOWS
    _pattern_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    # -- coercion -------------------------------------------------------------------------
    def coerce(self, raw: object) -> Value:
        """Turn raw input into this parameter's typed value, or raise ParameterError."""
        if isinstance(raw, str):
            raw = _check_safe_string(self.name, raw)
            if raw == "":
                raise ParameterError(f"{self.name}: empty value")
        elif raw is None:
            raise ParameterError(f"{self.name}: a value is required")
        coercer = getattr(self, f"_coerce_{self.type}")
        return coercer(raw)

    def _coerce_int(self, raw: object) -> int:
        if isinstance(raw, bool):
            raise self._type_error(raw)
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, str) and _INT_RE.fullmatch(raw):
            raw = int(raw)
        if not isinstance(raw, int):
            raise self._type_error(raw)
        self._check_range(raw)
        return raw

    def _coerce_float(self, raw: object) -> int | float:
        number = self._parse_number(raw)
        self._check_range(number)
        return number

    def _parse_number(self, raw: object) -> int | float:
        """Numbers keep their kind: ``30`` and ``"30"`` stay int, ``"0.5"`` becomes float."""
        if isinstance(raw, bool):
            raise self._type_error(raw)
        if isinstance(raw, str):
            if _INT_RE.fullmatch(raw):
                return int(raw)
            if not _DECIMAL_RE.fullmatch(raw):
                raise self._type_error(raw)
            raw = float(raw)
        if isinstance(raw, Decimal):
            raw = float(raw)
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float):
            if not math.isfinite(raw):
                raise ParameterError(f"{self.name} must be a finite number, got {raw}")
            return raw
        raise self._type_error(raw)

    def _coerce_bool(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, int) and raw in (0, 1):
            return bool(raw)
        if isinstance(raw, str):
            word = raw.lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
        raise ParameterError(
            f"{self.name} must be a boolean (true/false, 1/0, yes/no, on/off), got {raw!r}"
        )

    def _coerce_choice(self, raw: object) -> str:
        if isinstance(raw, str):
            wanted = " ".join(raw.split()).upper()
            for choice in self.choices:
                if choice.upper() == wanted:
                    return choice
        allowed = ", ".join(repr(c) for c in self.choices)
        raise ParameterError(f"{self.name} must be one of {allowed}, got {raw!r}")

    def _coerce_str(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise self._type_error(raw)
        if self._pattern_re is None or not self._pattern_re.fullmatch(raw):
            raise ParameterError(f"{self.name} must match {self.pattern!r}, got {raw!r}")
        return raw

    def _coerce_area(self, raw: object) -> str:
        """``"x0 y0 x1 y1"`` or a 4-item list of numbers -> canonical ``"x0 y0 x1 y1"``."""
        parts: list[object]
        if isinstance(raw, str):
            parts = list(raw.split())
        elif isinstance(raw, list | tuple):
            parts = list(raw)
        else:
            raise self._type_error(raw)
        if len(parts) != 4:
            raise ParameterError(
                f'{self.name} must be four numbers "x0 y0 x1 y1" in µm, got {len(parts)} item(s)'
            )
        coords = []
        for part in parts:
            if isinstance(part, str):
                part = _check_safe_string(self.name, part)
            try:
                coords.append(self._parse_number(part))
            except ParameterError:
                raise ParameterError(
                    f'{self.name} must be four numbers "x0 y0 x1 y1" in µm, got {raw!r}'
                ) from None
        for coord in coords:
            self._check_range(coord)
        x0, y0, x1, y1 = coords
        if not (x1 > x0 and y1 > y0):
            raise ParameterError(f"{self.name} needs x1 > x0 and y1 > y0, got {raw!r}")
        return " ".join(_format_number(c) for c in coords)

    def _check_range(self, number: int | float) -> None:
        low_ok = self.min is None or number >= self.min
        high_ok = self.max is None or number <= self.max
        if low_ok and high_ok:
            return
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            bounds = f"between {_format_number(self.min)} and {_format_number(self.max)}{unit}"
        elif self.min is not None:
            bounds = f"at least {_format_number(self.min)}{unit}"
        else:
            bounds = f"at most {_format_number(self.max or 0)}{unit}"
        raise ParameterError(f"{self.name} must be {bounds}, got {_format_number(number)}")

    def _type_error(self, raw: object) -> ParameterError:
        expected = {"int": "an integer", "float": "a number", "str": "a string"}
        what = expected.get(self.type, f"a valid {self.type}")
        return ParameterError(f"{self.name} must be {what}, got {raw!r}")

    # -- flow-specific output ---------------------------------------------------------------
    def flow_item(self, value: Value, flow: Flow) -> tuple[str, Any]:
        """The (name, JSON value) this parameter is written as in a flow's config.json.

        OpenLane 1 evaluates its config as Tcl, so booleans become 1/0 there; OpenLane 2 takes
        the renamed variable, JSON booleans, scaled values and DIE_AREA as a list of numbers.
        """
        if flow not in self.flows:
            raise ParameterError(f"{self.name} is not an {flow} variable")
        if flow == "openlane1":
            return self.name, (int(value) if isinstance(value, bool) else value)
        name = self.ol2_name or self.name
        if self.type == "area":
            return name, [self._parse_number(p) for p in str(value).split()]
        if self.ol2_scale is not None and not isinstance(value, bool | str):
            scaled = Decimal(str(value)) * Decimal(str(self.ol2_scale))
            return name, int(scaled) if scaled == scaled.to_integral() else float(scaled)
        return name, value

    def range_text(self) -> str:
        """Human-readable domain, e.g. ``1..99 %`` or ``AREA 0 | AREA 1``."""
        if self.type == "choice":
            return " | ".join(self.choices)
        if self.type == "bool":
            return "true | false"
        if self.type == "str":
            return f"matches {self.pattern}"
        unit = f" {self.unit}" if self.unit else ""
        low = "" if self.min is None else _format_number(self.min)
        high = "" if self.max is None else _format_number(self.max)
        prefix = "x0 y0 x1 y1, each " if self.type == "area" else ""
        return f"{prefix}{low}..{high}{unit}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable description (for the web form / API)."""
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "stage": self.stage,
            "unit": self.unit,
            "default": self.default,
            "pdk_default": self.pdk_default,
            "help": self.help,
            "range": self.range_text(),
            "flows": list(self.flows),
        }
        optional = {
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices) or None,
            "pattern": self.pattern,
            "ol2_name": self.ol2_name,
            "ol2_scale": self.ol2_scale,
            "ol2_default": self.ol2_default,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
        return data


class Catalog:
    """The set of parameters, keyed by OpenLane 1 name (file order preserved)."""

    def __init__(self, parameters: Mapping[str, Parameter]) -> None:
        self._params = dict(parameters)
        self._ol2_aliases = {p.ol2_name: p.name for p in self._params.values() if p.ol2_name}

    def __contains__(self, name: object) -> bool:
        return name in self._params

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params.values())

    def __len__(self) -> int:
        return len(self._params)

    def names(self) -> list[str]:
        """All parameter names, in catalog order."""
        return list(self._params)

    def get(self, name: object) -> Parameter:
        """Look a parameter up; raise UnknownParameter (with suggestions) or ParameterError."""
        if not isinstance(name, str):
            raise ParameterError(f"parameter names must be strings, got {name!r}")
        if name in self._params:
            return self._params[name]
        if not NAME_RE.fullmatch(name):
            suggestions = self._suggest(name.strip().upper()) if name.isprintable() else []
            hint = f"; did you mean {' or '.join(suggestions)}?" if suggestions else ""
            shown = name if len(name) <= 60 else name[:60] + "..."
            raise ParameterError(
                f"invalid parameter name {shown!r}: names are upper-case letters, digits and "
                f"underscores, starting with a letter{hint}"
            )
        raise UnknownParameter(name, self._suggest(name))

    def _suggest(self, name: str) -> list[str]:
        if name in self._params:
            return [name]
        if name in self._ol2_aliases:
            return [f"{self._ol2_aliases[name]} (its OpenLane 1 name)"]
        return difflib.get_close_matches(name, list(self._params), n=3, cutoff=0.6)

    def coerce(self, name: object, raw: object) -> Value:
        """Validate a name and a raw value; return the typed value."""
        return self.get(name).coerce(raw)

    def coerce_mapping(self, values: Mapping[str, object]) -> dict[str, Value]:
        """Validate every item of a mapping (order preserved)."""
        if not isinstance(values, Mapping):
            raise ParameterError(f"expected a mapping of parameters, got {type(values).__name__}")
        return {name: self.coerce(name, raw) for name, raw in values.items()}

    def flow_config(self, values: Mapping[str, Value], flow: Flow) -> dict[str, Any]:
        """Translate validated values into a flow's config.json overrides (names and values)."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            key, converted = self.get(name).flow_item(value, flow)
            if key in out:
                raise ParameterError(f"{name} and another parameter both set {key} for {flow}")
            out[key] = converted
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable catalog: ``{"parameters": [...]}`` in catalog order."""
        return {"parameters": [p.to_dict() for p in self]}

    def to_json(self) -> str:
        """The catalog as JSON text, for the web form."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)


# -- loading ------------------------------------------------------------------------------
_ALLOWED_KEYS = {
    "type",
    "help",
    "stage",
    "unit",
    "min",
    "max",
    "choices",
    "pattern",
    "default",
    "pdk_default",
    "ol2_name",
    "ol2_scale",
    "ol2_default",
    "flows",
}


def _build_parameter(name: str, spec: Mapping[str, Any]) -> Parameter:
    where = f"catalog entry {name}"
    if not NAME_RE.fullmatch(name):
        raise CatalogError(f"{where}: invalid name")
    unknown = set(spec) - _ALLOWED_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown keys {sorted(unknown)}")
    ptype = spec.get("type")
    if ptype not in PARAMETER_TYPES:
        raise CatalogError(f"{where}: type must be one of {PARAMETER_TYPES}")
    if not spec.get("help"):
        raise CatalogError(f"{where}: help text is required")
    pattern = spec.get("pattern")
    if ptype == "str" and not pattern:
        raise CatalogError(f"{where}: a str parameter needs a pattern")
    choices = tuple(str(c) for c in spec.get("choices") or ())
    if (ptype == "choice") != bool(choices):
        raise CatalogError(f"{where}: choices are required for (and only for) type choice")
    flows = tuple(spec.get("flows") or FLOWS)
    if any(f not in FLOWS for f in flows):
        raise CatalogError(f"{where}: flows must be among {FLOWS}")
    ol2_name = spec.get("ol2_name")
    if ol2_name is not None and not NAME_RE.fullmatch(ol2_name):
        raise CatalogError(f"{where}: invalid ol2_name")
    low, high = spec.get("min"), spec.get("max")
    if low is not None and high is not None and low > high:
        raise CatalogError(f"{where}: min > max")
    param = Parameter(
        name=name,
        type=ptype,
        help=" ".join(str(spec["help"]).split()),
        stage=str(spec.get("stage", "general")),
        unit=spec.get("unit"),
        min=low,
        max=high,
        choices=choices,
        pattern=pattern,
        default=spec.get("default"),
        pdk_default=bool(spec.get("pdk_default", False)),
        ol2_name=ol2_name,
        ol2_scale=spec.get("ol2_scale"),
        ol2_default=spec.get("ol2_default"),
        flows=flows,
        _pattern_re=re.compile(pattern) if pattern else None,
    )
    if param.default is not None:
        try:
            param.coerce(param.default)
        except ParameterError as exc:
            raise CatalogError(f"{where}: default is invalid: {exc}") from exc
    return param


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    """Build a Catalog from the parsed YAML document (validating it)."""
    if not isinstance(data, Mapping) or data.get("version") != 1:
        raise CatalogError("catalog must be a mapping with version: 1")
    entries = data.get("parameters")
    if not isinstance(entries, Mapping) or not entries:
        raise CatalogError("catalog needs a non-empty 'parameters' mapping")
    return Catalog({name: _build_parameter(name, spec) for name, spec in entries.items()})


@lru_cache(maxsize=8)
def _load_cached(path: Path) -> Catalog:
    with path.open(encoding="utf-8") as handle:
        return parse_catalog(yaml.safe_load(handle))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load (and cache) the catalog; the packaged parameters.yaml by default."""
    return _load_cached(Path(path) if path is not None else DEFAULT_CATALOG_PATH)
