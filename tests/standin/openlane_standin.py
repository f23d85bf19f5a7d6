#!/usr/bin/env python3
"""OpenLane stand-in: a TEST DOUBLE for OpenLane 1 / OpenLane 2. It is NOT OpenLane.

It accepts the command lines the portal's flow adapters generate, reads the per-task config,
prints OpenLane-like progress, and writes the run layout OpenLane would write, with metrics
taken from REAL recorded OpenLane runs (``<repo>/tests/data/openlane``) and varied deterministically
by the sweep point's parameters (tighter clock -> more area/power and less slack; higher
FP_CORE_UTIL -> smaller die; higher PL_TARGET_DENSITY -> shorter wires). No synthesis, placement
or routing happens; the GDS is a few rectangles sized like the die.

Standard library only: it runs inside Slurm jobs with the system ``python3``.
See tests/standin/README.md for the command lines, environment variables and failure injection.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import math
import os
import re
import shutil
import signal
import struct
import sys
import time
from pathlib import Path

BANNER = "OpenLane stand-in: TEST DOUBLE, not OpenLane (metrics derived from recorded real runs)"
OL1_METRICS = ("openlane1", "metrics", "2024-07_sky130_fd_sc_hd.csv")
OL2_METRICS = ("openlane2", "spm_metrics.json")
OL1_STEPS = [
    ("synthesis", "Running Synthesis"),
    ("floorplan", "Running Floorplanning"),
    ("placement", "Running Placement"),
    ("cts", "Running Clock Tree Synthesis"),
    ("routing", "Running Global Routing"),
    ("routing", "Running Detailed Routing"),
    ("signoff", "Running Parasitic Extraction"),
    ("signoff", "Running Magic to generate GDSII"),
    ("signoff", "Running LVS"),
    ("signoff", "Running Magic DRC"),
    ("final", "Generating final set of reports"),
]
OL2_STEPS = [
    "Verilator.Lint",
    "Yosys.Synthesis",
    "OpenROAD.Floorplan",
    "OpenROAD.GlobalPlacement",
    "OpenROAD.DetailedPlacement",
    "OpenROAD.CTS",
    "OpenROAD.GlobalRouting",
    "OpenROAD.DetailedRouting",
    "OpenROAD.STAPostPNR",
    "Magic.StreamOut",
    "Netgen.LVS",
    "Checker.LVS",
]

CELL_COUNT_COLUMNS = [
    "synth_cell_count",
    "cells_pre_abc",
    "TotalCells",
    "NonPhysCells",
    "DecapCells",
    "WelltapCells",
    "FillCells",
    "DiodeCells",
    "wires_count",
    "wire_bits",
    "AND",
    "DFF",
    "NAND",
    "NOR",
    "OR",
    "XOR",
    "XNOR",
    "MUX",
]
OL1_VALUE_OPTIONS = set(
    [
        "-design",
        "-run_path",
        "-tag",
        "-config_file",
        "-override_env",
        "-from",
        "-to",
        "-save_path",
        "-verbose",
        "-test_mismatches",
        "-expose_env",
        "-src",
        "-file",
    ]
)
OL2_VALUE_OPTIONS = set(
    [
        "--run-tag",
        "--design-dir",
        "--pdk-root",
        "--pdk",
        "-p",
        "--scl",
        "-s",
        "--pad",
        "-c",
        "--override-config",
        "-F",
        "--from",
        "-T",
        "--to",
        "--only",
        "-S",
        "--skip",
        "-f",
        "--flow",
        "-j",
        "--jobs",
        "--log-level",
        "-i",
        "--with-initial-state",
        "-e",
        "--initial-state-element-override",
        "--reproducible",
        "--save-views-to",
    ]
)


class StandinError(Exception):
    """A usage problem: printed as an OpenLane-style error, exit status 1 (2 for usage)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


class Invocation:
    """What the command line asked for, whichever OpenLane it mimics."""

    def __init__(self) -> None:
        self.mimic = "openlane1"
        self.design_dir = Path(".")
        self.run_dir = Path(".")
        self.tag = ""
        self.config_files: list[Path] = []
        self.overrides: dict[str, object] = {}
        self.overwrite = False
        self.pdk = os.environ.get("PDK") or "sky130A"
        self.scl = os.environ.get("STD_CELL_LIBRARY") or "sky130_fd_sc_hd"
        self.pdk_root = os.environ.get("PDK_ROOT") or ""


def detect_mimic(argv0: str, args: list[str]) -> tuple[str, list[str]]:
    """--mimic flag > OPENLANE_STANDIN_MIMIC > program name > argument style."""
    rest: list[str] = []
    chosen = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--mimic" and i + 1 < len(args):
            chosen = args[i + 1]
            i += 2
            continue
        if arg.startswith("--mimic="):
            chosen = arg.split("=", 1)[1]
            i += 1
            continue
        rest.append(arg)
        i += 1
    chosen = chosen or os.environ.get("OPENLANE_STANDIN_MIMIC") or None
    if chosen is None:
        name = os.path.basename(argv0)
        if name.startswith("flow.tcl"):
            chosen = "openlane1"
        elif name in ("openlane", "librelane"):
            chosen = name if name == "librelane" else "openlane2"
    if chosen is None:
        ol1_flags = {"-design", "-run_path", "-tag", "-config_file"}
        chosen = "openlane1" if any(a in ol1_flags for a in rest) else "openlane2"
    if chosen not in ("openlane1", "openlane2", "librelane"):
        raise StandinError(f"--mimic must be openlane1, openlane2 or librelane, not {chosen}", 2)
    return chosen, rest


def parse_ol1(args: list[str], inv: Invocation) -> None:
    values: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in OL1_VALUE_OPTIONS:
            if i + 1 >= len(args):
                raise StandinError(f"flow.tcl: option {arg} needs a value", 2)
            values[arg] = args[i + 1]
            i += 2
            continue
        if arg == "-overwrite":
            inv.overwrite = True
        elif not arg.startswith("-"):
            raise StandinError(f"flow.tcl: unexpected argument {arg!r}", 2)
        i += 1
    if "-override_env" in values:
        for item in values["-override_env"].split(","):
            if "=" in item:
                key, value = item.split("=", 1)
                inv.overrides[key] = value
    inv.pdk = str(inv.overrides.get("PDK", inv.pdk))
    inv.scl = str(inv.overrides.get("STD_CELL_LIBRARY", inv.scl))
    inv.design_dir = Path(os.path.abspath(values.get("-design", ".")))
    if not inv.design_dir.is_dir():
        raise StandinError(f"Design {values.get('-design', '.')} not found.", 255)
    inv.tag = values.get("-tag") or time.strftime("RUN_%Y.%m.%d_%H.%M.%S")
    run_path = values.get("-run_path")
    base = Path(os.path.abspath(run_path)) if run_path else inv.design_dir / "runs"
    inv.run_dir = base / inv.tag
    if "-config_file" in values:
        inv.config_files = [Path(os.path.abspath(values["-config_file"]))]
    else:
        for name in ("config.tcl", "config.json"):
            if (inv.design_dir / name).is_file():
                inv.config_files = [inv.design_dir / name]
                break
        else:
            raise StandinError(
                f"No design configuration (config.json/config.tcl) found in {inv.design_dir}."
            )


def parse_ol2(args: list[str], inv: Invocation) -> None:
    values: dict[str, list[str]] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            values.setdefault(key, []).append(value)
            i += 1
            continue
        if arg in OL2_VALUE_OPTIONS:
            if i + 1 >= len(args):
                raise StandinError(f"Option '{arg}' requires an argument.", 2)
            values.setdefault(arg, []).append(args[i + 1])
            i += 2
            continue
        if arg == "--overwrite":
            inv.overwrite = True
        elif arg.startswith("-"):
            pass  # flags such as --manual-pdk, --hide-progress-bar, --condensed
        else:
            positional.append(arg)
        i += 1

    def last(*keys: str) -> str | None:
        for key in keys:
            if key in values:
                return values[key][-1]
        return None

    inv.pdk = last("--pdk", "-p") or inv.pdk
    inv.scl = last("--scl", "-s") or inv.scl
    inv.pdk_root = last("--pdk-root") or inv.pdk_root
    if not positional:
        raise StandinError("No config file(s) have been provided.")
    inv.config_files = [Path(os.path.abspath(p)) for p in positional]
    for path in inv.config_files:
        if not path.exists():
            raise StandinError(f"Path '{path}' does not exist.", 2)
    design_dir = last("--design-dir")
    inv.design_dir = (
        Path(os.path.abspath(design_dir)) if design_dir else inv.config_files[-1].parent
    )
    inv.tag = last("--run-tag") or time.strftime("RUN_%Y-%m-%d_%H-%M-%S")
    inv.run_dir = inv.design_dir / "runs" / inv.tag
    for item in values.get("-c", []) + values.get("--override-config", []):
        if "=" not in item:
            raise StandinError(f"Invalid override {item!r}: expected KEY=VALUE", 2)
        key, raw = item.split("=", 1)
        try:
            inv.overrides[key] = json.loads(raw)
        except ValueError:
            inv.overrides[key] = raw


# --------------------------------------------------------------------------------------------
# Config reading (enough of OpenLane's rules to find the point's parameters)
# --------------------------------------------------------------------------------------------


def resolve_json(document: dict, pdk: str, scl: str, out: dict) -> None:
    """Document order, last writer wins, pdk::/scl:: blocks matched with fnmatch."""
    for key, value in document.items():
        if isinstance(value, dict) and key.startswith("pdk::"):
            if fnmatch.fnmatchcase(pdk, key[5:]):
                resolve_json(value, pdk, scl, out)
        elif isinstance(value, dict) and key.startswith("scl::"):
            if fnmatch.fnmatchcase(scl, key[5:]):
                resolve_json(value, pdk, scl, out)
        elif not key.startswith("//") and key != "meta":
            out[key] = value


_TCL_SET = re.compile(r"^\s*set\s+(?:::)?env\(([A-Za-z0-9_]+)\)\s+(.*?)\s*;?\s*$")
_TCL_SOURCE = re.compile(r"^\s*source\s+\[file join \$::env\(DESIGN_DIR\) \{([^{}]+)\}\]\s*$")
_TCL_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def tcl_word(text: str) -> str:
    """The value of one simple Tcl word: {braced}, "quoted" (escapes only) or bare."""
    if text.startswith("{") and text.endswith("}"):
        return text[1:-1]
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        text = text[1:-1]
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u" and re.match(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_TCL_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def read_tcl(path: Path, design_dir: Path, out: dict, depth: int = 0) -> None:
    """``set ::env(X) value`` lines, following the portal's ``source [file join ...]`` line."""
    if depth > 4:
        return
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _TCL_SOURCE.match(line)
        if m:
            target = design_dir / m.group(1)
            if target.is_file():
                read_tcl(target, design_dir, out, depth + 1)
            continue
        m = _TCL_SET.match(line)
        if m:
            out[m.group(1)] = tcl_word(m.group(2))


def read_config(inv: Invocation) -> dict:
    values: dict = {}
    for path in inv.config_files:
        if not path.is_file():
            raise StandinError(f"{path} error: file not found")
        if path.suffix == ".json":
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise StandinError(f"{path}: malformed JSON: {exc}") from None
            resolve_json(document, inv.pdk, inv.scl, values)
        elif path.suffix == ".tcl":
            read_tcl(path, inv.design_dir, values)
        else:
            raise StandinError(f"{path}: the stand-in reads .json and .tcl configs only")
    values.update(inv.overrides)
    return values


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """``OPENLANE_STANDIN_DATA``, else ``<repo>/tests/data/openlane`` beside this script."""
    explicit = os.environ.get("OPENLANE_STANDIN_DATA")
    if explicit:
        return Path(explicit)
    # <repo>/tests/standin/openlane_standin.py -> <repo>/tests/data/openlane
    return Path(os.path.realpath(__file__)).parents[1] / "data" / "openlane"


def number(value: object, default: float) -> float:
    try:
        result = float(str(value).strip())
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) and result > 0 else default


class Model:
    """Deterministic scale factors for one sweep point relative to the recorded run."""

    def __init__(
        self,
        config: dict,
        base_cp: float,
        base_util: float,
        base_density: float,
        base_strategy: str,
    ) -> None:
        self.cp = number(config.get("CLOCK_PERIOD"), base_cp)
        self.util = number(config.get("FP_CORE_UTIL"), base_util)
        density = config.get("PL_TARGET_DENSITY")
        if density is None and config.get("PL_TARGET_DENSITY_PCT") is not None:
            density = number(config.get("PL_TARGET_DENSITY_PCT"), base_density * 100) / 100
        self.density = number(density, base_density)
        self.strategy = str(config.get("SYNTH_STRATEGY") or base_strategy)
        self.absolute = str(config.get("FP_SIZING", "relative")).strip() == "absolute"
        speed = base_cp / self.cp
        self.speed = speed
        effort = min(max(speed, 0.25), 4.0)
        strategy_area, strategy_delay = _strategy(self.strategy, base_strategy)
        seed = json.dumps({k: str(config.get(k)) for k in sorted(config)}, sort_keys=True)
        digest = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16)
        self.jitter = 1.0 + ((digest % 1000) / 1000.0 - 0.5) * 0.01  # +-0.5 %
        self.cell_area = effort**0.35 * strategy_area * self.jitter
        self.delay = effort**-0.25 * strategy_delay
        self.die = 1.0 if self.absolute else self.cell_area * base_util / self.util
        wire_density = max(0.2, 1.0 + 0.6 * (base_density - self.density))
        self.wire = math.sqrt(self.cell_area) * math.sqrt(self.die) * wire_density
        self.power = speed * self.cell_area
        self.util_ratio = self.cell_area / self.die


def _strategy(strategy: str, base: str) -> tuple[float, float]:
    def factors(text: str) -> tuple[float, float]:
        if text.upper().startswith("DELAY"):
            return 1.08, 0.90
        return 1.0, 1.0

    a, d = factors(strategy)
    a0, d0 = factors(base)
    return a / a0, d / d0


def fmt_like(value: float, original: str) -> str:
    if re.fullmatch(r"-?\d+", original.strip()):
        return str(int(round(value)))
    return repr(round(value, 6))


def read_csv(source: Path) -> tuple[str, list[str], list[dict]]:
    text = source.read_text(encoding="utf-8")
    header_line = text.splitlines(keepends=True)[0]
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    header = list(reader.fieldnames or [])
    return header_line, header, rows


def ol1_metrics(config: dict, inv: Invocation, design_name: str) -> tuple[str, float]:
    """(metrics.csv text: the source's header line + one row, die area in um^2)."""
    header_line, header, rows = read_csv(data_dir().joinpath(*OL1_METRICS))
    row = next((r for r in rows if r.get("design_name") == design_name), None)
    row = row or next((r for r in rows if r.get("design_name") == "spm"), rows[0])
    row = dict(row)
    model = Model(
        config,
        number(row.get("CLOCK_PERIOD"), 10.0),
        number(row.get("FP_CORE_UTIL"), 50.0),
        number(row.get("PL_TARGET_DENSITY"), 0.5),
        row.get("SYNTH_STRATEGY") or "AREA 0",
    )

    def scale(column: str, factor: float) -> None:
        original = row.get(column)
        if original is None:
            return
        try:
            value = float(original)
        except ValueError:
            return
        if value == -1:
            return  # "not measured" stays not measured
        row[column] = fmt_like(value * factor, original)

    for column in CELL_COUNT_COLUMNS:
        scale(column, model.cell_area)
    for column in ("DIEAREA_mm^2", "CoreArea_um^2"):
        scale(column, model.die)
    for column in ("OpenDP_Util", "Final_Util"):
        scale(column, model.util_ratio)
    for column in ("wire_length", "vias", "HPWL"):
        scale(column, model.wire)
    for column in [c for c in header if c.startswith("power_") and not c.endswith("leakage_uW")]:
        scale(column, model.power)
    for column in [c for c in header if c.startswith("power_") and c.endswith("leakage_uW")]:
        scale(column, model.cell_area)
    critical = number(row.get("critical_path_ns"), model.cp / 2) * model.delay
    row["critical_path_ns"] = repr(round(critical, 4))
    slack = model.cp - critical
    wns = min(0.0, slack)
    for column in ("wns", "spef_wns", "pl_wns", "fastroute_wns"):
        if column in row and row[column] != "-1":
            row[column] = repr(round(wns, 4))
    for column in ("tns", "spef_tns", "pl_tns", "fastroute_tns"):
        if column in row and row[column] != "-1":
            row[column] = repr(round(wns * max(1.0, model.cell_area * 20), 4))
    scale("CellPer_mm^2", model.cell_area / model.die)
    row["design"] = str(inv.design_dir)
    row["design_name"] = design_name
    row["config"] = inv.tag
    row["flow_status"] = "flow completed"
    row["CLOCK_PERIOD"] = repr(model.cp)
    row["FP_CORE_UTIL"] = fmt_like(model.util, row.get("FP_CORE_UTIL", "0"))
    row["PL_TARGET_DENSITY"] = repr(model.density)
    row["SYNTH_STRATEGY"] = model.strategy
    row["STD_CELL_LIBRARY"] = inv.scl
    if config.get("MAX_FANOUT_CONSTRAINT") is not None and "MAX_FANOUT_CONSTRAINT" in row:
        row["MAX_FANOUT_CONSTRAINT"] = str(config["MAX_FANOUT_CONSTRAINT"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([row.get(c, "") for c in header])
    die_mm2 = number(row.get("DIEAREA_mm^2"), 0.01)
    return header_line + buffer.getvalue(), die_mm2 * 1e6


def ol2_metrics(config: dict) -> tuple[str, float]:
    """(metrics.json text with the source's key order, die area in um^2)."""
    source = data_dir().joinpath(*OL2_METRICS)
    metrics = json.loads(source.read_text(encoding="utf-8"))
    base_util = float(metrics.get("design__instance__utilization", 0.45)) * 100
    model = Model(config, 10.0, base_util, 0.55, "AREA 0")
    out = {}
    for key, value in metrics.items():
        out[key] = _ol2_value(key, value, model)
    parts = ("power__internal__total", "power__switching__total", "power__leakage__total")
    if "power__total" in out and all(isinstance(out.get(k), float) for k in parts):
        out["power__total"] = sum(out[k] for k in parts)
    for key in [k for k in out if k.startswith("design__") and k.endswith("__bbox")]:
        parts = str(metrics[key]).split()
        if len(parts) == 4:
            side = math.sqrt(model.die)
            x0, y0, x1, y1 = (float(p) for p in parts)
            out[key] = f"{x0 * side:.3f} {y0 * side:.3f} {x1 * side:.3f} {y1 * side:.3f}"
    text = json.dumps(out, indent=2) + "\n"
    return text, float(out.get("design__die__area", 10000.0))


def _ol2_value(key: str, value: object, model: Model) -> object:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    factor = None
    if key.startswith(("design__instance__count", "design__instance__area")):
        factor = model.cell_area
    elif key.startswith(("design__die__area", "design__core__area")):
        factor = model.die
    elif key.startswith("design__instance__utilization"):
        factor = model.util_ratio
    elif key.startswith("route__wirelength"):
        factor = model.wire
    elif key.startswith("power__leakage"):
        factor = model.cell_area
    elif key.startswith(("power__internal", "power__switching")):
        factor = model.power
    elif key.startswith("timing__setup__ws"):
        path = (10.0 - float(value)) * model.delay
        return round(model.cp - path, 6)
    elif key.startswith("timing__setup__wns") or key.startswith("timing__setup__tns"):
        return value  # recomputed below from ws when negative
    if factor is None:
        return value
    if isinstance(value, int):
        return int(round(value * factor))
    return value * factor


def fix_ol2_negative_slack(text: str) -> str:
    metrics = json.loads(text)
    for key in list(metrics):
        if key.startswith("timing__setup__ws"):
            ws = float(metrics[key])
            suffix = key[len("timing__setup__ws") :]
            if ws < 0:
                for name, value in (("wns", ws), ("tns", ws * 10), ("vio__count", 10)):
                    target = (
                        f"timing__setup_{name}{suffix}"
                        if name == "vio__count"
                        else f"timing__setup__{name}{suffix}"
                    )
                    if target in metrics:
                        metrics[target] = value
    return json.dumps(metrics, indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# GDSII (a tiny, valid stream written by hand)
# --------------------------------------------------------------------------------------------


def _gds_real8(value: float) -> bytes:
    if value == 0:
        return b"\x00" * 8
    sign = 0x80 if value < 0 else 0
    value = abs(value)
    exponent = 64
    while value >= 1:
        value /= 16
        exponent += 1
    while value < 1 / 16:
        value *= 16
        exponent -= 1
    mantissa = int(round(value * (1 << 56)))
    if mantissa >= 1 << 56:
        mantissa >>= 4
        exponent += 1
    return bytes([sign | exponent]) + mantissa.to_bytes(7, "big")


def _gds_record(rtype: int, dtype: int, data: bytes = b"") -> bytes:
    return struct.pack(">HBB", 4 + len(data), rtype, dtype) + data


def _gds_string(text: str) -> bytes:
    raw = re.sub(r"[^A-Za-z0-9_$?]", "_", text)[:32].encode("ascii") or b"TOP"
    return raw + (b"\x00" if len(raw) % 2 else b"")


def write_gds(path: Path, design_name: str, die_area_um2: float, cells: int) -> None:
    """A GDSII file with one structure: die outline, core outline and a grid of cell boxes."""
    side_nm = max(1000, int(math.sqrt(max(die_area_um2, 1.0)) * 1000))
    date = struct.pack(">6h", 2024, 1, 1, 0, 0, 0) * 2
    boxes = [(235, 4, 0, 0, side_nm, side_nm)]  # prBoundary
    margin = side_nm // 20
    boxes.append((236, 0, margin, margin, side_nm - margin, side_nm - margin))
    count = max(1, min(64, cells // 20))
    grid = math.ceil(math.sqrt(count))
    pitch = (side_nm - 2 * margin) // grid
    for k in range(count):
        x = margin + (k % grid) * pitch
        y = margin + (k // grid) * pitch
        boxes.append(
            (68, 20, x + pitch // 8, y + pitch // 8, x + pitch * 7 // 8, y + pitch * 7 // 8)
        )
    out = bytearray()
    out += _gds_record(0x00, 0x02, struct.pack(">h", 600))
    out += _gds_record(0x01, 0x02, date)
    out += _gds_record(0x02, 0x06, _gds_string(design_name + "_lib"))
    out += _gds_record(0x03, 0x05, _gds_real8(1e-3) + _gds_real8(1e-9))
    out += _gds_record(0x05, 0x02, date)
    out += _gds_record(0x06, 0x06, _gds_string(design_name))
    for layer, datatype, x0, y0, x1, y1 in boxes:
        out += _gds_record(0x08, 0x00)
        out += _gds_record(0x0D, 0x02, struct.pack(">h", layer))
        out += _gds_record(0x0E, 0x02, struct.pack(">h", datatype))
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
        out += _gds_record(0x10, 0x03, b"".join(struct.pack(">ii", x, y) for x, y in points))
        out += _gds_record(0x11, 0x00)
    out += _gds_record(0x07, 0x00)
    out += _gds_record(0x04, 0x00)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


class Console:
    """Prints progress lines (flushed) and keeps them for flow.log/openlane.log."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, flush=True)


def control_value(config: dict, key: str) -> str | None:
    value = config.get(key)
    if value is None or value == "":
        value = os.environ.get("OPENLANE_" + key)
    return None if value is None or value == "" else str(value)


def prepare_run_dir(inv: Invocation) -> None:
    if inv.run_dir.exists() and any(inv.run_dir.iterdir()):
        if inv.overwrite:
            shutil.rmtree(inv.run_dir)
        elif inv.mimic == "openlane1":
            raise StandinError(
                f"A run for this design with tag '{inv.tag}' already exists. "
                "Pass the -overwrite option to overwrite it."
            )
    inv.run_dir.mkdir(parents=True, exist_ok=True)


def run(inv: Invocation) -> int:
    console = Console()
    console.say(BANNER)
    source = data_dir().joinpath(*(OL1_METRICS if inv.mimic == "openlane1" else OL2_METRICS))
    if not source.is_file():
        raise StandinError(f"recorded metrics not found: {source} (set OPENLANE_STANDIN_DATA)")
    config = read_config(inv)
    design_name = str(config.get("DESIGN_NAME") or inv.design_dir.name)
    prepare_run_dir(inv)
    log_name = "openlane.log" if inv.mimic == "openlane1" else "flow.log"

    def write_logs(status: str) -> None:
        text = "\n".join(console.lines + [status]) + "\n"
        (inv.run_dir / "flow.log").write_text(text, encoding="utf-8")
        if log_name != "flow.log":
            (inv.run_dir / log_name).write_text(text, encoding="utf-8")

    def on_term(signum: int, _frame: object) -> None:
        console.say(f"[ERROR]: received signal {signum}; the stand-in run was cancelled.")
        write_logs("Flow cancelled.")
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    exit_code = int(control_value(config, "STANDIN_EXIT_CODE") or 0)
    extra_sleep = float(control_value(config, "STANDIN_SLEEP") or 0)
    seconds = float(os.environ.get("OPENLANE_STANDIN_SECONDS", "1") or 0)
    steps = OL1_STEPS if inv.mimic == "openlane1" else [(s, s) for s in OL2_STEPS]
    pause = max(0.0, seconds) / len(steps)
    flow = {"openlane1": "OpenLane 1", "openlane2": "OpenLane 2", "librelane": "LibreLane"}
    console.say(f"[INFO]: Mimicking {flow[inv.mimic]} for design '{design_name}'")
    console.say(f"[INFO]: Run Directory: {inv.run_dir}")
    console.say(f"[INFO]: PDK: {inv.pdk}, standard cell library: {inv.scl}")
    fail_at = len(steps) // 2 if exit_code else None
    for index, (stage, title) in enumerate(steps, start=1):
        if fail_at is not None and index > fail_at:
            console.say(f"[ERROR]: stand-in failure injected (STANDIN_EXIT_CODE={exit_code}).")
            write_logs(f"Flow failed (exit code {exit_code}).")
            return exit_code
        if inv.mimic == "openlane1":
            console.say(f"[STEP {index}]")
            log = f"logs/{stage}/{index}-{stage}.log"
            console.say(f"[INFO]: {title} (log: {inv.run_dir.name}/{log})...")
        else:
            log = f"{index:02d}-{title.lower().replace('.', '-')}/{title.split('.')[-1]}.log"
            console.say(f"[INFO] Starting step {index}: {title}…")
        log_path = inv.run_dir / log
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"{BANNER}\n{title}: nothing was run.\n", encoding="utf-8")
        time.sleep(pause)
        if "Detailed Routing" in title or title == "OpenROAD.DetailedRouting":
            waited = 0.0
            while waited < extra_sleep:
                chunk = min(1.0, extra_sleep - waited)
                time.sleep(chunk)
                waited += chunk
                console.say(f"[INFO]: detailed routing... {waited:.0f}s")
    write_outputs(inv, config, design_name)
    console.say("[SUCCESS]: Flow complete.")
    write_logs("Flow complete.")
    return 0


def write_outputs(inv: Invocation, config: dict, design_name: str) -> None:
    run_dir = inv.run_dir
    for path in inv.config_files:
        shutil.copyfile(path, run_dir / f"config_in{path.suffix}")
    (run_dir / "resolved.json").write_text(json.dumps(config, indent=2, default=str) + "\n")
    if inv.mimic == "openlane1":
        text, die_um2 = ol1_metrics(config, inv, design_name)
        reports = run_dir / "reports"
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "metrics.csv").write_text(text, encoding="utf-8")
        cells = int(number(list(csv.DictReader(io.StringIO(text)))[0].get("TotalCells"), 100))
        gds = run_dir / "results" / "final" / "gds" / f"{design_name}.gds"
        write_gds(gds, design_name, die_um2, cells)
        lines = [f"set ::env({k}) {{{v}}}" for k, v in config.items() if "{" not in str(v)]
        (run_dir / "config.tcl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        text, die_um2 = ol2_metrics(config)
        text = fix_ol2_negative_slack(text)
        final = run_dir / "final"
        final.mkdir(parents=True, exist_ok=True)
        (final / "metrics.json").write_text(text, encoding="utf-8")
        cells = int(json.loads(text).get("design__instance__count", 100))
        write_gds(final / "gds" / f"{design_name}.gds", design_name, die_um2, cells)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(__doc__)
        return 0
    try:
        mimic, args = detect_mimic(argv[0], argv[1:])
        inv = Invocation()
        inv.mimic = mimic
        if mimic == "openlane1":
            parse_ol1(args, inv)
        else:
            parse_ol2(args, inv)
        return run(inv)
    except StandinError as exc:
        print(f"[ERROR]: {exc}", file=sys.stderr, flush=True)
        return exc.status


if __name__ == "__main__":
    sys.exit(main())
