"""OpenLane 2 (``openlane``) adapter; LibreLane (:mod:`portal.flows.librelane`) reuses it.

Command run for each array task (flags from ``openlane/flows/cli.py``/``__main__.py``)::

    openlane --manual-pdk --pdk-root <PDK_ROOT> --pdk <PDK> --scl <SCL> \\
             --run-tag "$TASK_TAG" --overwrite --hide-progress-bar \\
             --design-dir "$TASK_DIR" "$TASK_DIR"/config.json

``--manual-pdk`` uses the site PDK under ``--pdk-root`` instead of downloading one with
Volare/Ciel. OpenLane 2 runs in ``<design dir>/runs/<tag>``, so with ``--design-dir
"$TASK_DIR"`` the run lands in ``$TASK_DIR/runs/$TASK_TAG`` (final/metrics.json,
final/gds/<design>.gds), next to the task's config.

Per-task configuration: one complete ``config.json`` (JSON and YAML designs; Tcl designs are
refused with :class:`~portal.flows.types.UnsupportedConfig`, as they are deprecated upstream):

* **paths**: OpenLane 2 resolves ``dir::x`` against the design dir, which is now the task folder.
  The writer creates a relative symlink ``$TASK_DIR/design -> ../../design/<path>`` and rewrites
  ``dir::x`` to ``dir::design/x`` (and ``ref::``/``refg::$DESIGN_DIR/x`` to
  ``.../design/x``). A symlink rather than ``dir::../../...`` because OpenLane 2 only globs
  (``dir::src/*.v``) below the design dir; the link keeps the task folder relocatable.
* **the sweep point** is applied by :func:`~portal.flows.designconfig.overlay_document`
  (replaced in place everywhere, including ``pdk::``/``scl::`` blocks, added first when absent).
  OpenLane 1 names are translated by :data:`OL1_TO_OL2` (e.g. ``PL_TARGET_DENSITY`` 0.55 ->
  ``PL_TARGET_DENSITY_PCT`` 55), and every deprecated alias of a swept variable is removed from
  the document: OpenLane 2 lets a deprecated name *win* over its replacement.
* YAML designs keep their meaning: a ``"meta": {"version": 2}`` is added when the YAML had no
  ``meta`` (YAML defaults to version 2, JSON to version 1).

``-c KEY=VALUE`` overrides were not used: per-task values must live in files the array script
picks by ``$TASK_ID``, and the config file is what a user inspects and re-runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from portal.flows.base import Flow, check_config_file_name, check_params, require_usable
from portal.flows.designconfig import alias_names, load_variables, overlay_document
from portal.flows.types import DEFAULT_PDK, DEFAULT_SCL, DesignConfig, ParamValue, UnsupportedConfig
from portal.shell import ShellVar, Word

#: Where the task folder links to the checked-out design (``$TASK_DIR/design``).
DESIGN_LINK = "design"

#: OpenLane 1 names the portal translates for OpenLane 2/LibreLane: old -> (new, scale).
#: Only plain renames (and the one unit change) used by sweepable parameters; OpenLane 2
#: translates the rest of its deprecated names itself.
OL1_TO_OL2: dict[str, tuple[str, int | None]] = {
    "PL_TARGET_DENSITY": ("PL_TARGET_DENSITY_PCT", 100),  # fraction -> percent
    "SYNTH_BUFFERING": ("SYNTH_ABC_BUFFERING", None),
    "PL_RESIZER_TIMING_OPTIMIZATIONS": ("RUN_POST_CTS_RESIZER_TIMING", None),
    "GLB_RESIZER_TIMING_OPTIMIZATIONS": ("RUN_POST_GRT_RESIZER_TIMING", None),
    "GRT_REPAIR_ANTENNAS": ("RUN_ANTENNA_REPAIR", None),
    "ROUTING_CORES": ("DRT_THREADS", None),
    "SYNTH_MAX_FANOUT": ("MAX_FANOUT_CONSTRAINT", None),
    "SYNTH_MAX_TRAN": ("MAX_TRANSITION_CONSTRAINT", None),
    "SYNTH_CAP_LOAD": ("OUTPUT_CAP_LOAD", None),
    "GLB_RT_ADJUSTMENT": ("GRT_ADJUSTMENT", None),
}

_DESIGN_DIR_REF = re.compile(r"^(ref|refg)::\$DESIGN_DIR(?=/|$)")


def translate_params(params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
    """Rename OpenLane 1 parameters to their OpenLane 2 names (scaling where the unit changed)."""
    out: dict[str, ParamValue] = {}
    for name, value in params.items():
        new, scale = OL1_TO_OL2.get(name, (name, None))
        if scale is not None and isinstance(value, int | float) and not isinstance(value, bool):
            scaled = Decimal(str(value)) * scale
            value = int(scaled) if scaled == scaled.to_integral_value() else float(scaled)
        if new in out and out[new] != value:
            raise UnsupportedConfig(f"{name} and {new} are both set, to different values")
        out[new] = value
    return out


#: OL2 name -> the OpenLane 1 names translated to it (dropped from a config that sets it).
_OL1_NAMES_OF: dict[str, set[str]] = {}
for _old, (_new, _scale) in OL1_TO_OL2.items():
    _OL1_NAMES_OF.setdefault(_new, set()).add(_old)


def rebase_paths(value: Any, link: str = DESIGN_LINK) -> Any:
    """Point design-relative paths through the task folder's ``design`` link."""
    if isinstance(value, str):
        if value.startswith("dir::"):
            rest = value[len("dir::") :]
            rest = rest[2:] if rest.startswith("./") else rest
            return f"dir::{link}/{rest}" if rest else f"dir::{link}"
        return _DESIGN_DIR_REF.sub(lambda m: f"{m.group(1)}::$DESIGN_DIR/{link}", value)
    if isinstance(value, Mapping):
        return {key: rebase_paths(item, link) for key, item in value.items()}
    if isinstance(value, list):
        return [rebase_paths(item, link) for item in value]
    return value


class OpenLane2(Flow):
    """OpenLane 2: the ``openlane`` command with the Classic flow (or the config's meta.flow)."""

    name = "openlane2"
    title = "OpenLane 2"
    image_setting = "OPENLANE2_IMAGE"
    executable = "openlane"
    executable_setting = "OPENLANE2_EXECUTABLE"
    config_names = ("config.json", "config.yaml", "config.yml", "config.tcl")
    supported_kinds = ("json", "yaml")
    design_link = DESIGN_LINK

    def task_config_name(self, design: DesignConfig) -> str:
        return "config.json"

    def task_config_text(
        self,
        design: DesignConfig,
        params: Mapping[str, object],
        *,
        steps: Sequence[str] | None = None,
    ) -> str:
        """``config.json`` for one sweep point; its paths go through the ``design`` link.

        ``steps`` becomes ``meta.flow`` (the design's other ``meta`` keys are kept).
        """
        if design.kind == "tcl":
            raise UnsupportedConfig(
                f"{self.title}: Tcl design configs are deprecated upstream and not supported "
                "by the portal; convert config.tcl to config.json"
            )
        require_usable(design, self.title, self.supported_kinds)
        assert design.document is not None
        checked = translate_params(check_params(params))
        table = load_variables(self.name)
        drop: set[str] = set()
        for name in checked:
            drop |= alias_names(table, name)
            drop |= _OL1_NAMES_OF.get(name, set())
        document = overlay_document(
            rebase_paths(design.document), rebase_paths(checked), drop - set(checked)
        )
        if design.kind == "yaml" and "meta" not in document:
            document = {"meta": {"version": 2}, **document}
        if steps is not None:
            meta = document.get("meta")
            meta = dict(meta) if isinstance(meta, Mapping) else {}
            rest = {key: value for key, value in document.items() if key != "meta"}
            document = {"meta": {**meta, "flow": list(steps)}, **rest}
        return json.dumps(document, indent=4) + "\n"

    def command_words(
        self, settings: Mapping[str, object], design: DesignConfig, config_file_name: str
    ) -> list[Word]:
        env = self.flow_env(settings, design)
        return [
            self.flow_executable(settings),
            "--manual-pdk",
            "--pdk-root",
            env["PDK_ROOT"],
            "--pdk",
            env["PDK"] or DEFAULT_PDK,
            "--scl",
            env["STD_CELL_LIBRARY"] or DEFAULT_SCL,
            "--run-tag",
            ShellVar("TASK_TAG"),
            "--overwrite",
            "--hide-progress-bar",
            "--design-dir",
            ShellVar("TASK_DIR"),
            ShellVar("TASK_DIR", "/" + check_config_file_name(config_file_name)),
        ]

    def metrics_path(self, task_dir: Path, task_tag: str) -> Path:
        return self.run_dir_for_task(task_dir, task_tag) / "final" / "metrics.json"

    def gds_path(self, task_dir: Path, task_tag: str, design_name: str) -> Path:
        return self.run_dir_for_task(task_dir, task_tag) / "final" / "gds" / f"{design_name}.gds"
