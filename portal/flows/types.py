"""The data the flow adapters work on, and their errors: a design config as read, its issues,
the manifest's settings, the site defaults.

Kept apart from :mod:`portal.flows.base` (the :class:`~portal.flows.base.Flow` adapters) so that
the readers it calls (:mod:`~portal.flows.designconfig`, :mod:`~portal.flows.tclconfig`,
:mod:`~portal.flows.manifest`) import these types without importing the adapters back. Nothing
here imports anything of the portal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MANIFEST_VERSION = 1

ConfigKind = Literal["json", "tcl", "yaml"]

#: (line number or None, message). Line numbers are 1-based.
Issue = tuple[int | None, str]

DEFAULT_PDK_ROOT = "/apps/pdks"
DEFAULT_PDK = "sky130A"
DEFAULT_SCL = "sky130_fd_sc_hd"

#: Names a sweep point may set: OpenLane variable names (the catalog uses the same rule).
PARAM_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")

Scalar = str | int | float | bool | None
ParamValue = Scalar | list[Scalar] | tuple[Scalar, ...]


class FlowError(Exception):
    """Base class of every error raised by the flow adapters."""


class DesignNotFound(FlowError):
    """No design configuration at the requested place; ``looked_for`` lists every path tried."""

    def __init__(self, design_dir: Path, looked_for: Sequence[Path], detail: str = "") -> None:
        self.design_dir = design_dir
        self.looked_for = list(looked_for)
        tried = ", ".join(str(p) for p in self.looked_for) or "(nothing)"
        message = f"no design configuration found in {design_dir}: looked for {tried}"
        if detail:
            message += f" ({detail})"
        super().__init__(message)


class UnsupportedConfig(FlowError):
    """The design's configuration cannot be used with this flow (e.g. Tcl with OpenLane 2)."""


class InvalidParameter(FlowError):
    """A sweep parameter name or value cannot be written safely into a task configuration."""


@dataclass(frozen=True)
class Unresolved:
    """Something in a design config the portal could not evaluate without running it.

    ``name`` is the variable (or, for a statement such as ``source``, the command word);
    ``reason`` says why, e.g. "set inside an if block (conditions are not evaluated)".
    """

    name: str
    line: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "line": self.line, "reason": self.reason}


@dataclass
class DesignConfig:
    """A design configuration file, read (never executed) and resolved as far as possible.

    ``values`` maps each variable to its value for the chosen PDK/SCL, with ``dir::`` paths made
    absolute, ``ref::``/``expr::`` and Tcl ``$::env(...)``/``[expr ...]`` evaluated where
    possible. Anything that could not be evaluated is listed in ``unresolved`` (and absent from
    ``values``). ``errors`` are problems OpenLane itself would reject; ``warnings`` are not.
    """

    path: Path
    kind: ConfigKind
    design_dir: Path
    values: dict[str, Any] = field(default_factory=dict)
    unresolved: list[Unresolved] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    errors: list[Issue] = field(default_factory=list)
    #: line of the last assignment of each variable (None when unknown)
    lines: dict[str, int | None] = field(default_factory=dict)
    #: every variable name the file mentions, with its line, including inactive pdk::/scl:: blocks
    names: list[tuple[str, int | None]] = field(default_factory=list)
    #: the parsed JSON/YAML mapping in file order (None for Tcl)
    document: dict[str, Any] | None = None
    #: PDK/SCL chosen explicitly (manifest or caller); None means "the site default"
    pdk: str | None = None
    scl: str | None = None
    #: the PDK/SCL the values were resolved for
    resolved_pdk: str = DEFAULT_PDK
    resolved_scl: str = DEFAULT_SCL
    manifest: Manifest | None = None

    @property
    def ok(self) -> bool:
        """True when nothing in the file would make OpenLane reject it."""
        return not self.errors

    @property
    def design_name(self) -> str:
        """``DESIGN_NAME`` when resolved, else the design folder's name."""
        value = self.values.get("DESIGN_NAME")
        return str(value) if isinstance(value, str) and value else self.design_dir.name

    @property
    def assigned(self) -> frozenset[str]:
        """Every variable the file sets somewhere (resolved or not, any pdk::/scl:: block)."""
        return frozenset(name for name, _line in self.names) | frozenset(self.values)

    @property
    def file_name(self) -> str:
        """The config file's path relative to the design folder (usually ``config.json``)."""
        try:
            return self.path.relative_to(self.design_dir).as_posix()
        except ValueError:
            return self.path.name

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary (for the API and the submission page)."""
        return {
            "path": str(self.path),
            "kind": self.kind,
            "design_dir": str(self.design_dir),
            "design_name": self.design_name,
            "pdk": self.resolved_pdk,
            "scl": self.resolved_scl,
            "values": _jsonable(self.values),
            "unresolved": [u.to_dict() for u in self.unresolved],
            "warnings": [{"line": line, "message": msg} for line, msg in self.warnings],
            "errors": [{"line": line, "message": msg} for line, msg in self.errors],
        }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


@dataclass
class Manifest:
    """A validated manifest (paths are POSIX-style and relative to the repository root)."""

    path: Path
    design: str
    config: str | None = None
    flow: str | None = None
    image: str | None = None
    pdk: str | None = None
    scl: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    sweep: dict[str, Any] | None = None
    description: str | None = None
    version: int = MANIFEST_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "design": self.design,
            "config": self.config,
            "flow": self.flow,
            "image": self.image,
            "pdk": self.pdk,
            "scl": self.scl,
            "parameters": dict(self.parameters),
            "sweep": self.sweep,
            "description": self.description,
        }
