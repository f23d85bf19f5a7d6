"""LibreLane (``librelane``), the continuation of OpenLane 2.

Same command line and configuration rules as :mod:`portal.flows.openlane2` (LibreLane keeps
``--manual-pdk``, ``--pdk-root``, ``--pdk``, ``--scl``, ``--run-tag``, ``--overwrite``,
``--design-dir`` and the ``<design dir>/runs/<tag>`` layout); the executable and the image
differ, and LibreLane also fixed the ``expr::`` minus bug, which the checker knows.

Two site settings fit LibreLane to what a cluster can run:

* ``LIBRELANE_STEPS``: the steps the site supports. Empty means all of them (the design's own
  flow). ``"synthesis"`` (:data:`SYNTHESIS_STEPS`) is for sites without OpenROAD: lint, Yosys
  synthesis with its checks, then pre-layout timing and power with a stand-alone OpenSTA
  (``Portal.PrePnRSTA``, the plugin in ``tools/librelane/``). Each task's ``meta.flow`` is cut
  to these steps; a design whose own ``meta.flow`` lists a step the site cannot run is refused.
* ``LIBRELANE_YOSYS``: the yosys program LibreLane runs as ``yosys -y script.py``, exported to
  the task as ``_LLN_OVERRIDE_YOSYS`` (the ``yosys-pyosys`` wrapper where Yosys comes as the
  ``pyosys`` wheel, which has no such program).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from portal.flows.base import setting
from portal.flows.openlane2 import OpenLane2
from portal.flows.types import DesignConfig, FlowError, UnsupportedConfig

#: LibreLane's Classic flow up to synthesis (every step that needs no OpenROAD), in order,
#: then the portal's pre-layout STA with a stand-alone OpenSTA.
SYNTHESIS_STEPS: tuple[str, ...] = (
    "Verilator.Lint",
    "Checker.LintTimingConstructs",
    "Checker.LintErrors",
    "Checker.LintWarnings",
    "Yosys.JsonHeader",
    "Yosys.Synthesis",
    "Checker.YosysUnmappedCells",
    "Checker.YosysSynthChecks",
    "Checker.NetlistAssignStatements",
    "Portal.PrePnRSTA",
)
#: Named step sets accepted by ``LIBRELANE_STEPS``.
STEP_PRESETS: dict[str, tuple[str, ...]] = {"synthesis": SYNTHESIS_STEPS}
#: The flows a design may name in ``meta.flow`` and still be cut to the site's steps.
_CUTTABLE_FLOWS = (None, "Classic")


def _step_list(value: Any) -> tuple[str, ...] | None:
    """``LIBRELANE_STEPS`` as a tuple of step ids (None: every step)."""
    if value in (None, "", "all", [], ()):
        return None
    if isinstance(value, str):
        if value in STEP_PRESETS:
            return STEP_PRESETS[value]
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) and s for s in value):
        raise FlowError(
            f"LIBRELANE_STEPS must be empty, one of {', '.join(STEP_PRESETS)} or a list of "
            f"step ids, got {value!r}"
        )
    return tuple(value)


def describe_steps(steps: Sequence[str] | None) -> str | None:
    """What a cut flow does, for pages and mail ("stops after synthesis on this cluster")."""
    if steps is None:
        return None
    if set(steps) <= set(SYNTHESIS_STEPS):
        timing = (
            ", with pre-layout timing and power from OpenSTA" if "Portal.PrePnRSTA" in steps else ""
        )
        return f"stops after synthesis on this cluster{timing} (no floorplan, placement or routing)"
    return f"runs {len(steps)} steps on this cluster, up to {steps[-1]}"


class LibreLane(OpenLane2):
    """LibreLane: the ``librelane`` command."""

    name = "librelane"
    title = "LibreLane"
    image_setting = "LIBRELANE_IMAGE"
    executable = "librelane"
    executable_setting = "LIBRELANE_EXECUTABLE"

    def site_steps(self, settings: Mapping[str, object]) -> tuple[str, ...] | None:
        """The steps this site runs (``LIBRELANE_STEPS``); None means every step."""
        if setting(settings, "FLOW_EXECUTABLE_OVERRIDE"):
            return None  # the stand-in ignores meta.flow
        return _step_list(setting(settings, "LIBRELANE_STEPS"))

    def task_steps(
        self, design: DesignConfig, settings: Mapping[str, object]
    ) -> tuple[str, ...] | None:
        """The ``meta.flow`` every task config gets, or None to keep the design's.

        A design without ``meta.flow`` (or with ``Classic``) is cut to the site's steps; one
        that lists its own steps keeps them when the site runs them all, and is refused
        (:class:`UnsupportedConfig`) otherwise.
        """
        supported = self.site_steps(settings)
        if supported is None:
            return None
        meta = (design.document or {}).get("meta")
        wanted = meta.get("flow") if isinstance(meta, Mapping) else None
        if isinstance(wanted, list):
            missing = [str(step) for step in wanted if step not in supported]
            if missing:
                raise UnsupportedConfig(
                    f"{design.file_name} asks for {', '.join(missing)} in meta.flow, which this "
                    f"cluster cannot run: LibreLane {describe_steps(supported)}"
                )
            return tuple(str(step) for step in wanted)
        if wanted not in _CUTTABLE_FLOWS:
            raise UnsupportedConfig(
                f"{design.file_name} asks for the flow {wanted!r} in meta.flow, which this "
                f"cluster cannot run: LibreLane {describe_steps(supported)}"
            )
        return supported

    def task_env(self, settings: Mapping[str, object]) -> dict[str, str]:
        if setting(settings, "FLOW_EXECUTABLE_OVERRIDE"):
            return {}
        env = {
            name: str(setting(settings, key))
            for name, key in (
                ("_LLN_OVERRIDE_YOSYS", "LIBRELANE_YOSYS"),
                ("PORTAL_STA", "LIBRELANE_STA"),
            )
            if setting(settings, key)
        }
        return self.runtime_env(settings, env)
