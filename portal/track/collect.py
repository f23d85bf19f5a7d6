"""Collect a finished task's OpenLane reports into its design-features record, and say why
there are none when the portal can tell: the task's folder was deleted, or the run folder's
filesystem is full."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from portal import rundir
from portal.flows.base import task_tag
from portal.flows.features import DesignFeatures
from portal.flows.registry import get_flow
from portal.flows.reports import parse_run_dir
from portal.runfolder import RunFolder

log = logging.getLogger(__name__)


#: Below this much free space no flow can write its results (the array script says the same).
FULL_BELOW_BYTES = 1 << 20


def collect_task_metrics(
    flow_name: str,
    run_dir: str | Path,
    index: int,
    *,
    started: bool = False,
    failed: bool = False,
) -> dict[str, Any] | None:
    """The normalized features of task ``index`` (no raw record), or None if it wrote none
    and nothing can be said about why. A task that ``started`` (in Slurm) whose folder lost the
    array script's ``started`` record, and a ``failed`` task on a full filesystem, get the
    reason in ``errors``."""
    flow = get_flow(flow_name)
    try:
        folder = RunFolder(run_dir).task(index)  # a folder swapped for a link out: refused
    except rundir.PathRefused as exc:
        log.warning("not reading the reports of task %s of %s: %s", index, run_dir, exc)
        return None
    full = filesystem_full(run_dir) if failed else None
    reasons = [full] if full else []
    # The array script writes `started` first thing; a flow may make its own folders again.
    if started and not full and not (folder / "started").is_file():
        reasons.append(
            f"the task's folder tasks/{index} was deleted while the task ran or after: its "
            "reports and logs are lost or incomplete; resubmit the task to run it again"
        )
    run = flow.run_dir_for_task(folder, task_tag(index))
    features = None
    try:
        features = parse_run_dir(run, flow=flow_name)
    except (OSError, ValueError) as exc:
        log.warning("could not read the reports of %s: %s", run, exc)
    if features is None:
        if not reasons:
            return None
        features = DesignFeatures(flow=flow_name)
    prefix = f"{Path(run_dir)}/"
    features.errors = reasons + [line.replace(prefix, "") for line in features.errors]
    return features.to_dict(include_raw=False)


def filesystem_full(run_dir: str | Path) -> str | None:
    """What to tell the designer when the run folder's filesystem has (almost) no room left."""
    try:
        free = shutil.disk_usage(run_dir).free
    except OSError:
        return None
    if free >= FULL_BELOW_BYTES:
        return None
    return (
        f"no space left on device: the run folder's filesystem has {free // 1024} KiB free, "
        "so the task could not write its results; once the site's admins have made room, "
        "resubmit the failed tasks"
    )
