"""Record genuine Slurm output for the cluster-status parsers (run by hand on a live cluster).

    .venv/bin/python tests/data/slurm/status/record.py

Submits four short jobs named ``olp-status-recording-*`` (a 6-task array throttled to 2, a
held 100-task array in partition ``long``, a plain job, and a job asking for every CPU of the
node, which waits for resources), takes one ``squeue`` (queue summary format) and one ``sinfo``
snapshot while they are queued and running, cancels them, and records ``sinfo`` and ``squeue``
against a copy of slurm.conf whose controller port has nothing listening (the running
cluster is not touched). Output goes to ``<name>.stdout`` / ``<name>.stderr`` next to this
file, argv and exit status to ``manifest.json``.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from portal.slurm import commands, status  # noqa: E402
from portal.slurm.transports import CommandResult, LocalTransport  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = Path(tempfile.mkdtemp(prefix="olp-status-recording-"))
MANIFEST: dict[str, dict[str, object]] = {}
LOCAL = LocalTransport()

JOB = """#!/bin/bash
#SBATCH --job-name=olp-status-recording-{name}
#SBATCH --time=1
#SBATCH --mem=64M
#SBATCH --output=/dev/null
{options}
sleep 40
"""
JOBS = {
    "throttled": "#SBATCH --array=0-5%2\n#SBATCH --partition=debug",
    "held": "#SBATCH --array=0-99%10\n#SBATCH --hold\n#SBATCH --partition=long",
    "plain": "#SBATCH --partition=debug",
    "wide": "#SBATCH --cpus-per-task=8\n#SBATCH --partition=debug",
}


def record(name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> CommandResult:
    """Run ``argv`` and keep its output under ``name``."""
    full = [*argv] if env is None else ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
    result = LOCAL.run(full, timeout=180)
    for stream in ("stdout", "stderr"):
        text = getattr(result, stream)
        path = HERE / f"{name}.{stream}"
        if text:
            path.write_text(text)
        elif path.exists():
            path.unlink()
    MANIFEST[name] = {
        "argv": list(argv),
        "env": env or {},
        "returncode": result.returncode,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(f"{name}: exit {result.returncode}, {len(result.stdout.splitlines())} lines")
    return result


def submit(name: str, options: str) -> str:
    result = LOCAL.run(commands.sbatch_argv(), stdin=JOB.format(name=name, options=options))
    return commands.parse_sbatch(result.stdout)


def controller_down_conf() -> str:
    """A copy of slurm.conf whose SlurmctldPort has nothing listening."""
    text = Path("/etc/slurm/slurm.conf").read_text()
    text = re.sub(r"^SlurmctldPort=.*$", "SlurmctldPort=9", text, flags=re.MULTILINE)
    path = WORK / "controller-down.conf"
    path.write_text(text)
    return str(path)


def main() -> None:
    job_ids = [submit(name, options) for name, options in JOBS.items()]
    try:
        time.sleep(5)
        record("squeue_queue", status.queue_argv())
        record("sinfo_nodes_busy", commands.sinfo_argv())
    finally:
        for job_id in job_ids:
            LOCAL.run(commands.scancel_argv(job_id))
    down = {"SLURM_CONF": controller_down_conf()}
    record("sinfo_controller_down", commands.sinfo_argv(), env=down)
    record("squeue_controller_down", status.queue_argv(), env=down)
    (HERE / "manifest.json").write_text(json.dumps(MANIFEST, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
