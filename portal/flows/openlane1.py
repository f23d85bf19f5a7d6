"""OpenLane 1 (``flow.tcl``) adapter.

Command run for each array task (inside the image; flags from OpenLane 1's ``flow.tcl``/``prep``)::

    flow.tcl -design "$DESIGN_DIR" -run_path "$TASK_DIR"/runs -tag "$TASK_TAG" \\
             -config_file "$TASK_DIR"/config.json -overwrite [-ignore_mismatches]

``-design`` sets ``::env(DESIGN_DIR)``; ``-run_path`` + ``-tag`` put the run in
``$TASK_DIR/runs/$TASK_TAG`` (reports/metrics.csv, results/final/gds/<design>.gds);
``-config_file`` picks the per-task config by extension (.json or .tcl). ``-ignore_mismatches``
is added when the OPENLANE1_IGNORE_MISMATCHES setting is true (site PDK builds that differ from
the version the image expects). The executable name can be changed with OPENLANE1_EXECUTABLE.

Per-task configuration (written into ``tasks/<i>/`` before submission):

* **JSON designs** -> ``config.json``: the design's config with the sweep point applied by
  :func:`~portal.flows.designconfig.overlay_document` (every assignment of a swept variable,
  top level and inside every ``pdk::``/``scl::`` block, is replaced in place; variables the
  design does not set are added at the top, so ``expr::``/``ref::`` see them). ``dir::`` paths
  are kept **unchanged**: OpenLane 1 expands ``dir::x`` to ``$DESIGN_DIR/x`` and ``DESIGN_DIR``
  is the ``-design`` folder, not the folder of the ``-config_file``, so they still point into
  the checked-out design (and the task folder stays relocatable). ``pdk::``/``scl::`` blocks are
  kept, so the file behaves the same for any PDK. Deprecated aliases of a swept variable are
  removed (OpenLane 1 stops with "Conflicting values" when an old and a new name disagree).
* **Tcl designs** -> ``config.tcl``: sets the point's values, ``source``s the design's own
  config through ``$::env(DESIGN_DIR)`` and sets the values again: the design sees them (e.g. in
  ``info exists`` defaults) and they win in the end. Every value is one inert Tcl word
  (:func:`~portal.flows.tclconfig.tcl_quote`): nothing in a value is ever substituted or run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from portal.flows.base import Flow, check_config_file_name, check_params, require_usable, setting
from portal.flows.designconfig import alias_names, load_variables, overlay_document
from portal.flows.tclconfig import format_tcl_number, tcl_quote
from portal.flows.types import DesignConfig, ParamValue, UnsupportedConfig
from portal.shell import ShellVar, Word


class OpenLane1(Flow):
    """OpenLane 1: ``flow.tcl`` non-interactive runs."""

    name = "openlane1"
    title = "OpenLane 1"
    image_setting = "OPENLANE1_IMAGE"
    executable = "flow.tcl"
    executable_setting = "OPENLANE1_EXECUTABLE"
    # OpenLane 1 prefers config.tcl over config.json when both exist.
    config_names = ("config.tcl", "config.json")
    supported_kinds = ("json", "tcl")

    def task_config_name(self, design: DesignConfig) -> str:
        return "config.tcl" if design.kind == "tcl" else "config.json"

    def task_config_text(
        self,
        design: DesignConfig,
        params: Mapping[str, object],
        *,
        steps: Sequence[str] | None = None,
    ) -> str:
        """``config.json`` or ``config.tcl`` for one sweep point (see module docstring).

        OpenLane 1 has no step list: ``steps`` must be None.
        """
        if steps is not None:
            raise UnsupportedConfig(f"{self.title} cannot run a chosen list of steps")
        checked = check_params(params)
        require_usable(design, self.title, self.supported_kinds)
        if design.kind == "tcl":
            return render_tcl_task_config(design, checked)
        assert design.document is not None
        table = load_variables("openlane1")
        drop: set[str] = set()
        for name in checked:
            drop |= alias_names(table, name)
        document = overlay_document(design.document, checked, drop - set(checked))
        return json.dumps(document, indent=4) + "\n"

    def command_words(
        self, settings: Mapping[str, object], design: DesignConfig, config_file_name: str
    ) -> list[Word]:
        words: list[Word] = [
            self.flow_executable(settings),
            "-design",
            ShellVar("DESIGN_DIR"),
            "-run_path",
            ShellVar("TASK_DIR", "/runs"),
            "-tag",
            ShellVar("TASK_TAG"),
            "-config_file",
            ShellVar("TASK_DIR", "/" + check_config_file_name(config_file_name)),
            "-overwrite",
        ]
        if setting(settings, "OPENLANE1_IGNORE_MISMATCHES", False) is True:
            words.append("-ignore_mismatches")
        return words

    def metrics_path(self, task_dir: Path, task_tag: str) -> Path:
        return self.run_dir_for_task(task_dir, task_tag) / "reports" / "metrics.csv"

    def gds_path(self, task_dir: Path, task_tag: str, design_name: str) -> Path:
        run = self.run_dir_for_task(task_dir, task_tag)
        return run / "results" / "final" / "gds" / f"{design_name}.gds"


def tcl_value(value: ParamValue) -> str:
    """A parameter value as the string OpenLane 1 would see (bools 1/0, lists space-joined)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return format_tcl_number(value)
    if isinstance(value, list | tuple):
        return " ".join(tcl_value(v) for v in value)
    return str(value)


def render_tcl_task_config(design: DesignConfig, params: Mapping[str, Any]) -> str:
    """The per-task ``config.tcl`` for a Tcl design (values set, design sourced, set again)."""
    sets = [f"set ::env({name}) {tcl_quote(tcl_value(value))}" for name, value in params.items()]
    table = load_variables("openlane1")
    unsets: list[str] = []
    for name in params:
        unsets += [
            f"unset -nocomplain ::env({alias})" for alias in sorted(alias_names(table, name))
        ]
    lines = [
        "# OpenLane Portal: configuration of one sweep point (generated, do not edit).",
        "# The design's own config is sourced between two copies of the point's values:",
        "# the design can read them, and they win in the end.",
        *sets,
        f"source [file join $::env(DESIGN_DIR) {tcl_quote(design.file_name)}]",
        *unsets,
        *sets,
        "",
    ]
    return "\n".join(lines)
