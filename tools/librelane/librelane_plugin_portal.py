"""LibreLane plugin of OpenLane Portal: pre-layout timing and power with a plain OpenSTA.

LibreLane imports every top-level module named ``librelane_plugin_*`` it finds on ``sys.path``;
this one registers the step ``Portal.PrePnRSTA``. It exists because LibreLane's own
``OpenROAD.STAPrePNR`` needs the ``openroad`` program's OpenSTA: run with an older stand-alone
``sta`` (Debian's) it reports every metric as ``?`` and still succeeds. This step runs the
``sta`` program given by ``PORTAL_STA`` (default ``sta``) on the synthesised netlist with the
default corner's liberty files and constraints built from the design's configuration
(``CLOCK_PORT``, ``CLOCK_PERIOD``, ``CLOCK_UNCERTAINTY_CONSTRAINT``,
``CLOCK_TRANSITION_CONSTRAINT``, ``IO_DELAY_CONSTRAINT``, ``OUTPUT_CAP_LOAD``,
``SYNTH_DRIVING_CELL``), and records LibreLane's own metric names:

* ``timing__setup__ws``, ``timing__setup__wns``, ``timing__setup__tns`` and the ``hold``
  ones, in ns, each also with ``__corner:<DEFAULT_CORNER>``;
* ``power__internal__total``, ``power__switching__total``, ``power__leakage__total``,
  ``power__total``, in W (default switching activity).

A value OpenSTA does not give as a finite number fails the step: nothing that is not a
measured number reaches ``metrics.json``. The netlist is ideal-clocked (no clock tree yet).
"""

from __future__ import annotations

import math
import os
import shutil
from decimal import Decimal
from typing import Any

from librelane.state import DesignFormat, State
from librelane.steps.step import MetricsUpdate, Step, StepError, ViewsUpdate

#: What the Tcl script writes, one "<name> <value in SI units>" per line.
_VALUES_FILE = "sta-values.txt"
#: OpenSTA's "no path" slack (1e30 s): not a measurement.
_NO_PATH = 1e29

_TCL = """\
foreach lib {{{libs}}} {{ read_liberty $lib }}
read_verilog {{{netlist}}}
link_design {{{design}}}
{clock}
set_clock_uncertainty {uncertainty} [all_clocks]
set_clock_transition {transition} [all_clocks]
set portal_inputs [all_inputs]
{remove_clock_ports}
set_input_delay {io_delay} -clock [lindex [all_clocks] 0] $portal_inputs
set_output_delay {io_delay} -clock [lindex [all_clocks] 0] [all_outputs]
set_load {load_pf} [all_outputs]
{driving_cell}
set out [open {{{values}}} w]
puts $out "setup_ws [sta::worst_slack_cmd max]"
puts $out "setup_tns [sta::total_negative_slack_cmd max]"
puts $out "hold_ws [sta::worst_slack_cmd min]"
puts $out "hold_tns [sta::total_negative_slack_cmd min]"
puts $out "power [sta::design_power [sta::cmd_corner]]"
close $out
report_checks -path_delay max -digits 4
report_checks -path_delay min -digits 4
report_power
"""


def _tcl_word(value: object) -> str:
    """``value`` as one braced Tcl word (braces and backslashes refused)."""
    text = str(value)
    if any(c in text for c in "{}\\\n"):
        raise StepError(f"cannot pass {text!r} to OpenSTA")
    return text


def _ports(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _number(text: str, name: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise StepError(f"OpenSTA gave no number for {name}: {text!r}") from None
    if not math.isfinite(number):
        raise StepError(f"OpenSTA gave no finite number for {name}: {text!r}")
    return number


def read_values(path: str) -> dict[str, list[str]]:
    """The Tcl script's "<name> <values...>" lines."""
    values: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            name, *rest = line.split()
            values[name] = rest
    return values


def metrics_from_values(values: dict[str, list[str]], corner: str) -> dict[str, Decimal]:
    """LibreLane metrics (ns, W) from the raw OpenSTA values (s, W)."""
    metrics: dict[str, Decimal] = {}
    for check in ("setup", "hold"):
        ws = _number(values[f"{check}_ws"][0], f"{check} slack")
        tns = _number(values[f"{check}_tns"][0], f"{check} TNS")
        if abs(ws) >= _NO_PATH:
            continue  # no constrained path of this kind
        for key, number in (("ws", ws), ("wns", min(ws, 0.0)), ("tns", min(tns, 0.0))):
            value = Decimal(f"{number * 1e9:.6g}")
            metrics[f"timing__{check}__{key}"] = value
            metrics[f"timing__{check}__{key}__corner:{corner}"] = value
    power = [_number(v, "power") for v in values["power"][:4]]
    if len(power) < 4:
        raise StepError(f"OpenSTA gave no total power: {values['power']!r}")
    for key, number in zip(("internal", "switching", "leakage"), power, strict=False):
        metrics[f"power__{key}__total"] = Decimal(f"{number:.6g}")
    metrics["power__total"] = Decimal(f"{power[3]:.6g}")
    return metrics


@Step.factory.register()
class PrePnRSTA(Step):
    """Static timing and power of the synthesised netlist with a stand-alone OpenSTA."""

    id = "Portal.PrePnRSTA"
    name = "STA (pre-PnR, OpenSTA)"
    long_name = "Pre-layout timing and power with a stand-alone OpenSTA"
    inputs = [DesignFormat.NETLIST]
    outputs = []

    def run(self, state_in: State, **kwargs) -> tuple[ViewsUpdate, MetricsUpdate]:
        sta = shutil.which(os.environ.get("PORTAL_STA", "sta"))
        if sta is None:
            raise StepError("the OpenSTA program (sta) is not on PATH; set PORTAL_STA")
        config = self.config
        corner = str(config["DEFAULT_CORNER"])
        libs = [str(p) for p in self.toolbox.filter_views(config, config["LIB"])]
        period = float(config["CLOCK_PERIOD"])
        ports = _ports(config.get("CLOCK_PORT"))
        if ports:
            clock = "\n".join(
                f"create_clock -name {_tcl_word(p)} -period {period} [get_ports {{{_tcl_word(p)}}}]"
                for p in ports
            )
            remove = "\n".join(
                "set portal_inputs [delete_from_list $portal_inputs "
                f"[get_ports {{{_tcl_word(p)}}}]]"
                for p in ports
            )
        else:
            clock = f"create_clock -name virtual_clock -period {period}"
            remove = ""
        driving = ""
        cell = config.get("SYNTH_DRIVING_CELL")
        if cell and "/" in str(cell):
            cell_name, pin = str(cell).split("/", 1)
            driving = (
                f"set_driving_cell -lib_cell {_tcl_word(cell_name)} -pin {_tcl_word(pin)} "
                "$portal_inputs"
            )
        values_path = os.path.join(self.step_dir, _VALUES_FILE)
        script = _TCL.format(
            libs=" ".join(_tcl_word(lib) for lib in libs),
            netlist=_tcl_word(state_in[DesignFormat.NETLIST]),
            design=_tcl_word(config["DESIGN_NAME"]),
            clock=clock,
            remove_clock_ports=remove,
            uncertainty=float(config.get("CLOCK_UNCERTAINTY_CONSTRAINT") or 0),
            transition=float(config.get("CLOCK_TRANSITION_CONSTRAINT") or 0),
            io_delay=period * float(config.get("IO_DELAY_CONSTRAINT") or 0) / 100,
            load_pf=float(config.get("OUTPUT_CAP_LOAD") or 0) / 1000,  # fF -> pF
            driving_cell=driving,
            values=_tcl_word(values_path),
        )
        script_path = os.path.join(self.step_dir, "sta.tcl")
        with open(script_path, "w", encoding="utf-8") as handle:
            handle.write(script)
        self.run_subprocess([sta, "-no_splash", "-exit", script_path])
        if not os.path.isfile(values_path):
            raise StepError("OpenSTA ended without writing its results")
        return {}, metrics_from_values(read_values(values_path), corner)
