"""The repository manifest: ``openlane-portal.yaml`` at the root of a design repository.

A manifest is optional. When present it tells the portal where the design lives (so repositories
with custom layouts work without the user typing a folder), which flow and image to use, and the
default parameters and sweep offered in the submission form. The portal looks for, in order,
``openlane-portal.yaml``, ``openlane-portal.yml`` and ``openlane-portal.json`` (same schema;
more than one is an error).

Schema (version 1)::

    version: 1                      # optional; only 1 exists
    design: openlane/spm            # REQUIRED: design folder, relative to the repository root
                                    #   ("." = the root); must stay inside the repository
    config: config.json             # optional: config file inside the design folder
                                    #   (default: the flow's own search order, e.g. OpenLane 1
                                    #   tries config.tcl then config.json)
    flow: openlane1                 # optional: openlane1 | openlane2 | librelane
    image: /apps/openlane/ol-2024.sif   # optional: container image; the portal only uses it
                                    #   if the site allows per-repository images
    pdk: sky130A                    # optional: PDK (default: the site's PDK setting)
    scl: sky130_fd_sc_hd            # optional: standard cell library
    parameters:                     # optional: default values of sweep parameters
      CLOCK_PERIOD: 12              #   names are OpenLane variable names (UPPER_CASE);
      SYNTH_STRATEGY: AREA 0        #   values are scalars or flat lists of scalars
    sweep:                          # optional: a default sweep, passed as-is to the sweep
      mode: grid                    #   engine (portal/submit/sweeps.py), which validates it
      parameters:
        CLOCK_PERIOD: [10, 12, 15]
        FP_CORE_UTIL: [30, 40]
    description: Serial-parallel multiplier   # optional, free text shown in the form

Unknown keys are errors (so typos do not silently do nothing). Every error carries the line
number of the offending key when the file is YAML. Parameter names/values are only checked for
shape here; the parameter catalog decides which names a submission may set.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from portal.flows.types import MANIFEST_VERSION, PARAM_NAME_RE, FlowError, Issue, Manifest

MANIFEST_NAMES = ("openlane-portal.yaml", "openlane-portal.yml", "openlane-portal.json")
MAX_MANIFEST_BYTES = 256 * 1024

_FLOWS = ("openlane1", "openlane2", "librelane")
_PDK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CONFIG_RE = re.compile(r"^[A-Za-z0-9_.-][A-Za-z0-9_./-]*\.(json|tcl|yaml|yml)$")
_KEYS = tuple(
    [
        "version",
        "design",
        "config",
        "flow",
        "image",
        "pdk",
        "scl",
        "parameters",
        "sweep",
        "description",
    ]
)


class ManifestError(FlowError):
    """The manifest is malformed; ``errors`` holds (line, message) pairs."""

    def __init__(self, path: Path, errors: list[Issue]) -> None:
        self.path = path
        self.errors = errors
        details = "; ".join(f"line {ln}: {msg}" if ln else msg for ln, msg in errors)
        super().__init__(f"{path.name}: {details}")


def find_manifest(repo_root: Path) -> Path | None:
    """The manifest file at the repository root, or None. Two of them is an error."""
    found = [repo_root / name for name in MANIFEST_NAMES if (repo_root / name).is_file()]
    if len(found) > 1:
        raise ManifestError(
            found[0], [(None, "more than one manifest: " + ", ".join(p.name for p in found))]
        )
    return found[0] if found else None


def load_repo_manifest(repo_root: Path) -> Manifest | None:
    """Find and load the manifest of a checked-out repository (None when there is none)."""
    path = find_manifest(Path(repo_root))
    if path is None:
        return None
    real = os.path.realpath(path)
    root = os.path.realpath(repo_root)
    if not real.startswith(root + os.sep):
        raise ManifestError(path, [(None, "the manifest is a link to outside the repository")])
    return load_manifest(path)


def load_manifest(path: Path | str) -> Manifest:
    """Parse and validate a manifest file; raises :class:`ManifestError` with line numbers."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(path, [(None, "the manifest is too large")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(path, [(None, "the manifest is not UTF-8 text")]) from None
    return parse_manifest(text, path)


def parse_manifest(text: str, path: Path | str = MANIFEST_NAMES[0]) -> Manifest:
    """Validate manifest ``text`` (YAML, or JSON when ``path`` ends in .json)."""
    path = Path(path)
    data, lines = _load(text, path)
    errors: list[Issue] = []

    def err(key: str | None, message: str) -> None:
        errors.append((lines.get(key) if key else None, message))

    if not isinstance(data, Mapping):
        raise ManifestError(path, [(None, "the manifest must be a mapping of keys")])
    for key in data:
        if key not in _KEYS:
            err(str(key), f"unknown key {key!r} (allowed: {', '.join(_KEYS)})")
    version = data.get("version", MANIFEST_VERSION)
    if version != MANIFEST_VERSION or isinstance(version, bool):
        err("version", f"unsupported version {version!r} (expected {MANIFEST_VERSION})")
    design = data.get("design")
    if not isinstance(design, str) or not design.strip():
        err("design", "'design' (the design folder, relative to the repository root) is required")
        design = "."
    else:
        design = _relative(design, "design", err)
    config = _optional_str(data, "config", err)
    if config is not None and (not _CONFIG_RE.match(config) or ".." in config.split("/")):
        err("config", f"'config' must be a relative .json/.tcl/.yaml file name, got {config!r}")
    flow = _optional_str(data, "flow", err)
    if flow is not None and flow not in _FLOWS:
        err("flow", f"'flow' must be one of {', '.join(_FLOWS)}, got {flow!r}")
    image = _optional_str(data, "image", err)
    if image is not None and (image.startswith("-") or any(c in image for c in "\n\x00")):
        err("image", f"invalid image {image!r}")
    pdk = _optional_str(data, "pdk", err)
    scl = _optional_str(data, "scl", err)
    for key, value in (("pdk", pdk), ("scl", scl)):
        if value is not None and not _PDK_RE.match(value):
            err(key, f"invalid {key} name {value!r}")
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        err("parameters", "'parameters' must be a mapping of NAME: value")
        parameters = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
            err("parameters", f"invalid parameter name {name!r} (expected e.g. CLOCK_PERIOD)")
        elif not _scalar_or_flat_list(value):
            err("parameters", f"{name}: values must be scalars or flat lists of scalars")
    sweep = data.get("sweep")
    if sweep is not None and not isinstance(sweep, Mapping):
        err("sweep", "'sweep' must be a mapping (see the sweep documentation)")
        sweep = None
    description = _optional_str(data, "description", err)
    if errors:
        raise ManifestError(path, errors)
    return Manifest(
        path=path,
        design=design,
        config=config,
        flow=flow,
        image=image,
        pdk=pdk,
        scl=scl,
        parameters=dict(parameters),
        sweep=json.loads(json.dumps(sweep)) if sweep is not None else None,
        description=description,
    )


def _load(text: str, path: Path) -> tuple[Any, dict[str, int]]:
    """Parse; also return the line of each top-level key (YAML only)."""
    if path.suffix == ".json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise ManifestError(path, [(exc.lineno, f"malformed JSON: {exc.msg}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ManifestError(path, [(line, f"malformed YAML: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise ManifestError(path, [(None, f"malformed YAML: {exc}")]) from None
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, _value in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                lines.setdefault(str(key_node.value), key_node.start_mark.line + 1)
    return data, lines


def _optional_str(data: Mapping[str, Any], key: str, err: Any) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        err(key, f"'{key}' must be a non-empty string")
        return None
    return value.strip()


def _relative(value: str, key: str, err: Any) -> str:
    posix = value.strip().replace("\\", "/")
    if posix.startswith("/") or "\x00" in posix:
        err(key, f"'{key}' must be relative to the repository root, got {value!r}")
        return "."
    normalized = os.path.normpath(posix).replace(os.sep, "/")
    if normalized == ".." or normalized.startswith("../"):
        err(key, f"'{key}' must stay inside the repository, got {value!r}")
        return "."
    return "" if normalized == "." else normalized


def _scalar_or_flat_list(value: Any) -> bool:
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, scalar):
        return True
    return isinstance(value, list) and all(isinstance(v, scalar) for v in value)
