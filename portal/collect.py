"""Collect a finished task's OpenLane reports into its design-features record."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from portal.flows.base import task_tag
from portal.flows.registry import get_flow
from portal.flows.reports import parse_run_dir

log = logging.getLogger(__name__)


def task_dir(run_dir: str | Path, index: int) -> Path:
    """``<run_dir>/tasks/<index>``."""
    return Path(run_dir) / "tasks" / str(index)


def collect_task_metrics(flow_name: str, run_dir: str | Path, index: int) -> dict[str, Any] | None:
    """The normalized features of task ``index`` (no raw record), or None if it wrote none."""
    flow = get_flow(flow_name)
    run = flow.run_dir_for_task(task_dir(run_dir, index), task_tag(index))
    try:
        features = parse_run_dir(run, flow=flow_name)
    except (OSError, ValueError) as exc:
        log.warning("could not read the reports of %s: %s", run, exc)
        return None
    if features is None:
        return None
    prefix = f"{Path(run_dir)}/"
    features.errors = [line.replace(prefix, "") for line in features.errors]
    return features.to_dict(include_raw=False)
