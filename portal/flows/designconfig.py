"""Reading and checking OpenLane design configs (JSON, YAML, Tcl) without running anything.

JSON/YAML follow OpenLane's own processing rules (OpenLane 1 ``scripts/config/tcl.py``,
OpenLane 2 / LibreLane ``config/preprocessor.py``):

* keys are processed **in document order, last writer wins**;
* ``"pdk::<glob>": {...}`` / ``"scl::<glob>": {...}`` blocks apply only when the PDK / standard
  cell library matches the ``fnmatch`` glob (case-sensitive), and may nest;
* ``dir::x`` = ``ref::$DESIGN_DIR/x`` (the *design folder*, i.e. flow.tcl's ``-design`` or
  OpenLane 2's design dir), ``pdk_dir::x`` = ``ref::$PDKPATH/x``, ``scl_dir::x`` (OpenLane 1) =
  ``ref::$SCLPATH/x``; ``ref::$VAR...`` interpolates one *string* variable defined earlier
  (OpenLane 1 globs it when inside that folder; OpenLane 2 globs only ``dir::``/``refg::``);
* ``expr::`` evaluates ``+ - * / **`` and parentheses over numbers and ``$VAR`` defined earlier.
  OpenLane 1 and OpenLane 2 evaluate a binary ``-`` as ``+`` (an upstream bug, fixed in
  LibreLane): the checker warns about it; ``values`` hold the mathematically correct result;
* OpenLane 1 accepts only scalars and flat lists (objects only as pdk::/scl:: blocks);
  OpenLane 2 also accepts objects and nested lists. ``"//"`` keys are treated as comments;
  OpenLane 2's ``"meta"`` object is not a variable.

Tcl configs are read by :mod:`portal.flows.tclconfig` (never sourced).

:func:`check_config` classifies every variable name against ``portal/data/openlane_variables.yaml``
(known / unknown / deprecated / removed). Unknown, deprecated and removed names are warnings
(OpenLane accepts them); errors are only what OpenLane would reject: malformed JSON/YAML (with
the line), Tcl it cannot parse, objects where OpenLane 1 wants scalars, ``ref::``/``expr::`` to
undefined variables, unsupported ``DIODE_INSERTION_STRATEGY`` values. Run it from a shell:
``python -m portal.flows.designconfig config.json --pdk sky130A --flow openlane1``
(exit status 1 when there are errors).
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import glob
import json
import os
import re
import sys
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from portal.flows.tclconfig import (
    ExpressionError,
    UnresolvedReference,
    evaluate_expression,
    read_tcl_config,
    uses_binary_minus,
)
from portal.flows.types import (
    DEFAULT_PDK,
    DEFAULT_PDK_ROOT,
    DEFAULT_SCL,
    ConfigKind,
    DesignConfig,
    Issue,
    Unresolved,
)

FLOW_NAMES = ("openlane1", "openlane2", "librelane")
VARIABLES_PATH = Path(__file__).resolve().parent.parent / "data" / "openlane_variables.yaml"

_REF_OL1 = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)")
_REF_OL2 = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_.\[\]]*)")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


# ----------------------------------------------------------------------------------------------
# Known variables
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableTable:
    """Known variable names of one flow family (from ``openlane_variables.yaml``)."""

    known: frozenset[str]
    provided: frozenset[str]
    deprecated: Mapping[str, str]
    removed: Mapping[str, str | None]

    def aliases_of(self, name: str) -> list[str]:
        """Deprecated names that the flow translates to ``name``."""
        return list(self._aliases.get(name, ()))

    @cached_property
    def _aliases(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for old, new in self.deprecated.items():
            found.setdefault(new, []).append(old)
        return {new: tuple(sorted(olds)) for new, olds in found.items()}


@lru_cache(maxsize=4)
def load_variables(flow: str = "openlane1", path: str | None = None) -> VariableTable:
    """The variable table for ``flow`` (OpenLane 2's table serves LibreLane too)."""
    family = "openlane1" if flow == "openlane1" else "openlane2"
    with open(path or VARIABLES_PATH, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    section = data[family]
    return VariableTable(
        known=frozenset(section.get("flow", [])) | frozenset(section.get("pdk", [])),
        provided=frozenset(section.get("provided", [])),
        deprecated=dict(section.get("deprecated") or {}),
        removed=dict(section.get("removed") or {}),
    )


# ----------------------------------------------------------------------------------------------
# Ordered documents with line numbers
# ----------------------------------------------------------------------------------------------


class _Obj(list):  # type: ignore[type-arg]
    """An object as (key, value, line) triples in document order (duplicates kept)."""


def _json_tree(text: str) -> _Obj:
    """Parse JSON keeping key order, duplicates and each key's line number."""
    raw = json.loads(text, object_pairs_hook=lambda pairs: _Obj(pairs))
    if not isinstance(raw, _Obj):
        raise ValueError("the top level must be a JSON object")
    newlines = [m.start() for m in re.finditer("\n", text)]
    keys: list[tuple[str, int]] = []
    for m in _JSON_STRING.finditer(text):
        j = m.end()
        while j < len(text) and text[j] in " \t\r\n":
            j += 1
        if j < len(text) and text[j] == ":":
            keys.append((json.loads(m.group(0)), bisect_right(newlines, m.start()) + 1))
    cursor = iter(keys)

    def attach(node: Any) -> Any:
        if isinstance(node, _Obj):
            out = _Obj()
            for key, value in node:
                located = next(cursor, None)
                line = located[1] if located and located[0] == key else None
                out.append((key, attach(value), line))
            return out
        if isinstance(node, list):
            return [attach(v) for v in node]
        return node

    return attach(raw)


class _Yaml12Loader(yaml.SafeLoader):
    """YAML with YAML 1.2 core booleans (only true/false), like OpenLane 2's loader."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _yaml_tree(text: str) -> _Obj:
    loader = _Yaml12Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return _Obj()

        def convert(n: yaml.Node) -> Any:
            if isinstance(n, yaml.MappingNode):
                loader.flatten_mapping(n)
                out = _Obj()
                for key_node, value_node in n.value:
                    key = loader.construct_object(key_node, deep=True)
                    out.append((str(key), convert(value_node), key_node.start_mark.line + 1))
                return out
            if isinstance(n, yaml.SequenceNode):
                return [convert(v) for v in n.value]
            return loader.construct_object(n, deep=True)

        tree = convert(node)
    finally:
        loader.dispose()
    if not isinstance(tree, _Obj):
        raise ValueError("the top level must be a mapping")
    return tree


def _plain(node: Any) -> Any:
    """An _Obj tree as ordinary dicts/lists (the last duplicate key wins, like json.loads)."""
    if isinstance(node, _Obj):
        out: dict[str, Any] = {}
        for key, value, _line in node:
            out[key] = _plain(value)
        return out
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_document(path: Path, kind: ConfigKind, text: str | None = None) -> dict[str, Any]:
    """The JSON/YAML config as an ordered dict (what the per-task writers start from)."""
    if text is None:
        text = Path(path).read_text(encoding="utf-8")
    tree = _json_tree(text) if kind == "json" else _yaml_tree(text)
    return _plain(tree)


# ----------------------------------------------------------------------------------------------
# Resolution of JSON/YAML configs
# ----------------------------------------------------------------------------------------------


class _Rejected(Exception):
    """OpenLane would reject this value."""


class _Resolver:
    def __init__(self, design: DesignConfig, flow: str, pdk: str, scl: str, pdk_root: str):
        self.design = design
        self.ol1 = flow == "openlane1"
        self.flow = flow
        self.pdk = pdk
        self.scl = scl
        pdkpath = os.path.join(pdk_root, pdk)
        self.symbols: dict[str, Any] = {
            "DESIGN_DIR": str(design.design_dir),
            "PDK": pdk,
            "PDKPATH": pdkpath,
            "STD_CELL_LIBRARY": scl,
        }
        if self.ol1:
            self.symbols["SCLPATH"] = os.path.join(pdkpath, scl)
        else:
            self.symbols["PDK_ROOT"] = pdk_root
        self.values: dict[str, Any] = {}

    # -- walking --
    def walk(self, obj: _Obj, active: bool, where: str = "") -> None:
        for key, value, line in obj:
            self.entry(key, value, line, active, where)

    def entry(self, key: str, value: Any, line: int | None, active: bool, where: str) -> None:
        design = self.design
        if key.startswith("//"):
            if not self.ol1 and active:
                design.warnings.append(
                    (line, f"'{key}' is read as a variable by {self.flow} (unknown key)")
                )
            return
        for prefix, current in (("pdk::", self.pdk), ("scl::", self.scl)):
            if key.startswith(prefix):
                if isinstance(value, _Obj):
                    pattern = key[len(prefix) :]
                    matches = fnmatch.fnmatchcase(current, pattern)
                    self.walk(value, active and matches, f"{where}{key} > ")
                    return
                design.warnings.append((line, f"'{key}' should hold an object of variables"))
        if key == "meta" and not self.ol1:
            if not isinstance(value, _Obj):
                self._error(line, active, "'meta' must be an object")
            return
        design.names.append((key, line))
        if not active:
            return
        try:
            resolved = self.value(key, value, line, top=True)
        except _Rejected as exc:
            design.errors.append((line, f"{key}: {exc}"))
            self.values.pop(key, None)
            self.symbols.pop(key, None)
            return
        except UnresolvedReference as exc:
            design.unresolved.append(Unresolved(key, line, str(exc)))
            self.values.pop(key, None)
            self.symbols.pop(key, None)
            return
        self.values[key] = resolved
        self.symbols[key] = resolved
        design.lines[key] = line

    def _error(self, line: int | None, active: bool, message: str) -> None:
        if active:
            self.design.errors.append((line, message))

    def value(self, key: str, value: Any, line: int | None, *, top: bool) -> Any:
        if isinstance(value, _Obj):
            if self.ol1:
                raise _Rejected("only pdk::/scl:: blocks may hold an object in OpenLane 1")
            return {k: self.value(f"{key}.{k}", v, ln, top=False) for k, v, ln in value}
        if isinstance(value, list):
            out: list[Any] = []
            for item in value:
                if self.ol1 and isinstance(item, _Obj | list):
                    raise _Rejected("OpenLane 1 lists may only hold scalars")
                resolved = self.value(key, item, line, top=False)
                if isinstance(resolved, list) and isinstance(item, str):
                    out.extend(resolved)
                else:
                    out.append(resolved)
            return out
        if isinstance(value, str):
            return self.string(key, value, line)
        if value is None or isinstance(value, bool | int | float):
            return value
        raise _Rejected(f"unsupported value type {type(value).__name__}")

    # -- strings --
    def string(self, key: str, value: str, line: int | None) -> Any:
        text, glob_it = value, False
        if text.startswith("dir::"):
            text, glob_it = "ref::$DESIGN_DIR/" + text[5:], True
        elif text.startswith("pdk_dir::"):
            text, glob_it = "ref::$PDKPATH/" + text[9:], True
        elif self.ol1 and text.startswith("scl_dir::"):
            text, glob_it = "ref::$SCLPATH/" + text[9:], True
        if text.startswith("expr::"):
            return self.expression(key, text[6:], line)
        if text.startswith("refg::") and not self.ol1:
            text, glob_it = "ref::" + text[6:], True
        if text.startswith("ref::"):
            return self.reference(text[5:], glob_it)
        return value

    def expression(self, key: str, expression: str, line: int | None) -> Any:
        if self.flow != "librelane" and uses_binary_minus(expression):
            self.design.warnings.append(
                (
                    line,
                    f"{key}: {self.flow} evaluates a binary '-' in expr:: as '+' "
                    "(upstream bug); rewrite it, e.g. with '+ -1 *'",
                )
            )

        def lookup(name: str) -> object:
            if name not in self.symbols:
                raise _Rejected(f"expr:: refers to ${name}, which is not defined before it")
            found = self.symbols[name]
            if isinstance(found, str) and self.ol1:
                try:
                    return float(found)
                except ValueError:
                    raise _Rejected(f"${name} is not numeric: {found!r}") from None
            if isinstance(found, bool) or not isinstance(found, int | float):
                raise _Rejected(f"${name} is not numeric: {found!r}")
            return found

        try:
            result = evaluate_expression(expression, lookup, dialect="openlane")
        except ExpressionError as exc:
            raise _Rejected(f"invalid expression {expression!r}: {exc}") from None
        return float(result) if self.ol1 else result

    def reference(self, reference: str, glob_it: bool) -> Any:
        match = (_REF_OL1 if self.ol1 else _REF_OL2).match(reference)
        if match is None:
            raise _Rejected(f"invalid reference {reference!r}")
        name = match.group(1)
        if name not in self.symbols:
            raise _Rejected(f"ref:: refers to ${name}, which is not defined before it")
        target = self.symbols[name]
        if target is None and not self.ol1:
            return None
        if not isinstance(target, str):
            kind = "a number (use expr::)" if isinstance(target, int | float) else "not a string"
            raise _Rejected(f"${name} is {kind}")
        concatenated = target + reference[match.end() :]
        if self.ol1:
            full = os.path.abspath(concatenated)
            if concatenated.startswith("/") and full.startswith(target):
                files = sorted(glob.glob(full))
                if files:
                    return " ".join(f.replace("$", r"\$") for f in files)
            return concatenated
        if not glob_it:
            return concatenated
        full = os.path.abspath(concatenated)
        if os.path.exists(full):
            return [full]
        return sorted(glob.glob(full)) or [concatenated]


def _diode_rules(design: DesignConfig, flow: str) -> None:
    """DIODE_INSERTION_STRATEGY values OpenLane itself refuses."""
    if "DIODE_INSERTION_STRATEGY" not in design.values:
        return
    raw = design.values["DIODE_INSERTION_STRATEGY"]
    line = design.lines.get("DIODE_INSERTION_STRATEGY")
    try:
        strategy = int(str(raw).strip())
    except ValueError:
        strategy = None
    if flow == "openlane1":
        if strategy in (1, 2, 5):
            design.errors.append(
                (line, f"DIODE_INSERTION_STRATEGY {strategy} is no longer supported by OpenLane 1")
            )
    elif strategy is None or strategy in (1, 2, 5) or strategy > 6:
        design.errors.append((line, f"DIODE_INSERTION_STRATEGY {raw!r} is not available in {flow}"))


def config_kind(path: Path | str) -> ConfigKind:
    """``json`` | ``tcl`` | ``yaml`` from the file name (ValueError otherwise)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix == ".tcl":
        return "tcl"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ValueError(f"{path}: not a .json, .tcl, .yaml or .yml design config")


def read_design_config(
    path: Path | str,
    *,
    design_dir: Path | str | None = None,
    pdk: str = DEFAULT_PDK,
    scl: str = DEFAULT_SCL,
    pdk_root: str = DEFAULT_PDK_ROOT,
    flow: str = "openlane1",
) -> DesignConfig:
    """Read a design config (never executing it) and resolve it for ``pdk``/``scl``.

    ``design_dir`` defaults to the file's folder. Never raises for bad content: problems end up
    in ``errors``/``warnings``/``unresolved`` (only a missing/unreadable file raises OSError).
    """
    if flow not in FLOW_NAMES:
        raise ValueError(f"unknown flow {flow!r}")
    path = Path(path)
    design_dir = Path(design_dir) if design_dir is not None else path.parent
    kind = config_kind(path)
    design = DesignConfig(
        path=path, kind=kind, design_dir=design_dir, resolved_pdk=pdk, resolved_scl=scl
    )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        design.errors.append((raw[: exc.start].count(b"\n") + 1, "the file is not UTF-8 text"))
        return design
    if kind == "tcl":
        _read_tcl(design, text, pdk, scl, pdk_root, flow)
    else:
        _read_mapping(design, text, pdk, scl, pdk_root, flow)
    _diode_rules(design, flow)
    return design


def _read_tcl(design: DesignConfig, text: str, pdk: str, scl: str, pdk_root: str, flow: str):
    provided = {
        "DESIGN_DIR": str(design.design_dir),
        "PDK": pdk,
        "STD_CELL_LIBRARY": scl,
        "PDK_ROOT": pdk_root,
        "PDKPATH": os.path.join(pdk_root, pdk),
        "SCLPATH": os.path.join(pdk_root, pdk, scl),
    }
    result = read_tcl_config(
        design.path, provided=provided, design_dir=design.design_dir, text=text
    )
    design.values = dict(result.values)
    design.lines = dict(result.lines)
    design.names = list(result.names)
    design.unresolved = list(result.unresolved)
    design.warnings.extend(result.warnings)
    design.errors.extend(result.errors)
    if flow != "openlane1":
        design.warnings.append(
            (None, f"{flow} reads Tcl configs only for compatibility (deprecated upstream)")
        )


def _read_mapping(design: DesignConfig, text: str, pdk: str, scl: str, pdk_root: str, flow: str):
    try:
        if design.kind == "json":
            tree = _json_tree(text)
        else:
            if flow == "openlane1":
                design.errors.append((None, "OpenLane 1 does not read YAML configs"))
            tree = _yaml_tree(text)
    except json.JSONDecodeError as exc:
        design.errors.append((exc.lineno, f"malformed JSON: {exc.msg} (column {exc.colno})"))
        return
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        design.errors.append((line, f"malformed YAML: {exc.problem or exc}"))
        return
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        design.errors.append((1, f"malformed {design.kind.upper()}: {exc}"))
        return
    design.document = _plain(tree)
    resolver = _Resolver(design, flow, pdk, scl, pdk_root)
    resolver.walk(tree, active=True)
    design.values = resolver.values


# ----------------------------------------------------------------------------------------------
# The checker
# ----------------------------------------------------------------------------------------------


@dataclass
class ConfigReport:
    """The result of :func:`check_config`; ``ok`` means OpenLane would accept the file."""

    path: str
    kind: str
    flow: str
    pdk: str
    scl: str
    known: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    resolved: dict[str, Any] = field(default_factory=dict)
    unresolved: list[Unresolved] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form (for the API, the UI and the command line)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "flow": self.flow,
            "pdk": self.pdk,
            "scl": self.scl,
            "ok": self.ok,
            "known": list(self.known),
            "unknown": list(self.unknown),
            "deprecated": list(self.deprecated),
            "removed": list(self.removed),
            "resolved": json.loads(json.dumps(self.resolved, default=str)),
            "unresolved": [u.to_dict() for u in self.unresolved],
            "errors": [{"line": line, "message": msg} for line, msg in self.errors],
            "warnings": [{"line": line, "message": msg} for line, msg in self.warnings],
        }


def _sort_key(issue: Issue) -> tuple[int, str]:
    return (issue[0] if issue[0] is not None else 0, issue[1])


def check_config(
    path: Path | str,
    pdk: str = DEFAULT_PDK,
    scl: str = DEFAULT_SCL,
    flow: str = "openlane1",
    *,
    design_dir: Path | str | None = None,
    pdk_root: str = DEFAULT_PDK_ROOT,
) -> ConfigReport:
    """Check a design config for ``flow`` with ``pdk``/``scl``; see the module docstring."""
    design = read_design_config(
        path, design_dir=design_dir, pdk=pdk, scl=scl, pdk_root=pdk_root, flow=flow
    )
    return report_for(design, flow)


def report_for(design: DesignConfig, flow: str) -> ConfigReport:
    """Classify the names of an already-read design config (see :func:`check_config`)."""
    table = load_variables(flow)
    report = ConfigReport(
        path=str(design.path),
        kind=design.kind,
        flow=flow,
        pdk=design.resolved_pdk,
        scl=design.resolved_scl,
        resolved=dict(design.values),
        unresolved=list(design.unresolved),
        errors=list(design.errors),
        warnings=list(design.warnings),
    )
    candidates = sorted(table.known)
    seen: set[str] = set()
    for name, line in design.names:
        if name in seen:
            continue
        seen.add(name)
        if name in table.deprecated:
            report.deprecated.append(name)
            report.warnings.append(
                (line, f"{name} is deprecated; the flow translates it to {table.deprecated[name]}")
            )
        elif name in table.removed:
            report.removed.append(name)
            replacement = table.removed[name]
            hint = f"; use {replacement}" if replacement else ""
            report.warnings.append((line, f"{name} is no longer used by {flow} (ignored){hint}"))
        elif name in table.known or name in table.provided:
            report.known.append(name)
        else:
            report.unknown.append(name)
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.85)
            hint = f"; did you mean {close[0]}?" if close else ""
            report.warnings.append((line, f"unknown variable {name}{hint}"))
    report.errors.sort(key=_sort_key)
    report.warnings.sort(key=_sort_key)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m portal.flows.designconfig FILE [--pdk P] [--scl S] [--flow F]``."""
    parser = argparse.ArgumentParser(description="Check an OpenLane design config.")
    parser.add_argument("config", type=Path)
    parser.add_argument("--pdk", default=DEFAULT_PDK)
    parser.add_argument("--scl", default=DEFAULT_SCL)
    parser.add_argument("--flow", default="openlane1", choices=FLOW_NAMES)
    parser.add_argument("--design-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    report = check_config(args.config, args.pdk, args.scl, args.flow, design_dir=args.design_dir)
    json.dump(report.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())


# ----------------------------------------------------------------------------------------------
# Overlaying a sweep point on a JSON/YAML document
# ----------------------------------------------------------------------------------------------

_CONDITIONAL = ("pdk::", "scl::")


def overlay_document(
    document: Mapping[str, Any],
    params: Mapping[str, Any],
    drop: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The design document with a sweep point applied so that the point always wins.

    OpenLane processes keys in document order, last writer wins, and pdk::/scl:: blocks may set
    the same variable again. So every assignment of a swept variable (top level and inside every
    pdk::/scl:: block, active or not) is *replaced in place* by the point's value, and variables
    the design does not set at top level are *added first*, so ``expr::$NAME``/``ref::$NAME``
    anywhere in the file see the swept value. Keys in ``drop`` (deprecated aliases that would
    otherwise compete with the swept variable) are removed everywhere.
    """

    def replace(obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            if key in drop:
                continue
            if isinstance(value, Mapping) and key.startswith(_CONDITIONAL):
                inner = replace(value)
                if inner:
                    out[key] = inner
            elif key in params:
                out[key] = params[key]
            else:
                out[key] = value
        return out

    top = replace(document)
    added = {key: value for key, value in params.items() if key not in top}
    return {**added, **top}


def alias_names(table: VariableTable, name: str) -> set[str]:
    """Deprecated names that compete with ``name`` (either direction), for ``drop``."""
    aliases = set(table.aliases_of(name))
    if name in table.deprecated:
        aliases.add(table.deprecated[name])
    aliases.discard(name)
    return aliases - {"DIODE_INSERTION_STRATEGY"}
