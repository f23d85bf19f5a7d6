"""The configured flow images, PDK root and container runtime, as seen from the portal host.

Images live on shared storage; the portal host normally mounts it like the compute nodes do, so
a missing file here usually means a missing file there. Nothing is read beyond ``stat``: a
sandbox image (a directory) is not walked, it can hold hundreds of thousands of files.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal.flows.registry import FLOW_CLASSES

#: Sub-folders of PDK_ROOT listed on the page at most.
MAX_PDK_ENTRIES = 50


@dataclass(frozen=True)
class PathFacts:
    """What ``stat`` says about one configured path."""

    setting: str
    label: str
    path: str | None
    kind: str  # "file", "directory", "other", "missing", "unset" or "unreadable"
    size_bytes: int | None = None
    modified: datetime | None = None
    error: str | None = None
    entries: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        """True when the path is there (whatever it is)."""
        return self.kind in ("file", "directory", "other")


@dataclass(frozen=True)
class ImageReport:
    """Everything the images page shows."""

    images: tuple[PathFacts, ...]
    pdk_root: PathFacts
    pdk: str
    runtime: str
    runtime_path: str | None
    override: PathFacts | None = None
    missing: tuple[str, ...] = field(default_factory=tuple)

    @property
    def standin(self) -> bool:
        """True when FLOW_EXECUTABLE_OVERRIDE replaces OpenLane (a test double runs)."""
        return self.override is not None


def inspect_path(setting: str, label: str, value: Any, list_entries: bool = False) -> PathFacts:
    """Facts about the path in setting ``setting`` (never raises for file-system trouble)."""
    if value in (None, ""):
        return PathFacts(setting, label, None, "unset")
    path = Path(str(value))
    try:
        info = path.stat()
    except FileNotFoundError:
        return PathFacts(setting, label, str(path), "missing")
    except OSError as exc:
        return PathFacts(setting, label, str(path), "unreadable", error=exc.strerror or str(exc))
    modified = datetime.fromtimestamp(info.st_mtime, UTC)
    if stat.S_ISREG(info.st_mode):
        return PathFacts(setting, label, str(path), "file", info.st_size, modified)
    if not stat.S_ISDIR(info.st_mode):
        return PathFacts(setting, label, str(path), "other", None, modified)
    entries: tuple[str, ...] = ()
    error = None
    if list_entries:
        try:
            names = sorted(e.name for e in os.scandir(path) if e.is_dir() and e.name[0] != ".")
            entries = tuple(names[:MAX_PDK_ENTRIES])
        except OSError as exc:
            error = exc.strerror or str(exc)
    return PathFacts(setting, label, str(path), "directory", None, modified, error, entries)


def image_report(settings: Mapping[str, Any]) -> ImageReport:
    """The images page's facts from the portal settings."""
    images = tuple(
        inspect_path(cls.image_setting, f"{cls.title} ({name})", settings.get(cls.image_setting))
        for name, cls in FLOW_CLASSES.items()
    )
    pdk_root = inspect_path("PDK_ROOT", "PDK root", settings.get("PDK_ROOT"), list_entries=True)
    runtime = str(settings.get("CONTAINER_RUNTIME") or "apptainer")
    override_value = settings.get("FLOW_EXECUTABLE_OVERRIDE")
    override = (
        inspect_path("FLOW_EXECUTABLE_OVERRIDE", "Flow executable override", override_value)
        if override_value
        else None
    )
    missing = tuple(f.setting for f in (*images, pdk_root) if not f.exists)
    return ImageReport(
        images=images,
        pdk_root=pdk_root,
        pdk=str(settings.get("PDK") or ""),
        runtime=runtime,
        runtime_path=None if runtime == "native" else shutil.which(runtime),
        override=override,
        missing=missing,
    )


def human_size(size: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None -> an empty string."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns
