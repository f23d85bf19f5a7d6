"""Record genuine Slurm output for the parser tests (run by hand on a live cluster).

    .venv/bin/python tests/data/slurm/record.py

Submits three small jobs named ``olp-slurm-recording-*`` (a 6-task array with one task per
outcome, a 10-task array throttled to 2, one plain job), takes sacct/squeue snapshots while
they move, cancels some tasks, waits for the end and writes ``<name>.stdout`` /
``<name>.stderr`` next to this file plus ``manifest.json`` (argv and exit status of each).
The argv come from :mod:`portal.slurm.commands`, so the recordings have exactly the format the
parsers read. Two failure modes are recorded without touching the cluster by pointing the
clients at modified copies of slurm.conf: accounting switched off, and slurmdbd unreachable.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from portal.slurm import commands  # noqa: E402
from portal.slurm.states import is_terminal  # noqa: E402
from portal.slurm.transports import CommandResult, LocalTransport  # noqa: E402

HERE = Path(__file__).resolve().parent
WORK = Path(tempfile.mkdtemp(prefix="olp-slurm-recording-"))
MANIFEST: dict[str, dict[str, object]] = {}
LOCAL = LocalTransport()

OUTCOMES = """#!/bin/bash
#SBATCH --job-name=olp-slurm-recording-outcomes
#SBATCH --array=0-5
#SBATCH --time=1
#SBATCH --mem=64M
#SBATCH --output={work}/outcomes_%A_%a.out
case "$SLURM_ARRAY_TASK_ID" in
  0) exit 0 ;;
  1) exit 3 ;;
  2) kill -TERM $$ ;;
  3) sleep 600 ;;
  4) sleep 600 ;;
  5) sleep 20 ;;
esac
"""

THROTTLED = """#!/bin/bash
#SBATCH --job-name=olp-slurm-recording-throttled
#SBATCH --array=0-9%2
#SBATCH --time=2
#SBATCH --mem=64M
#SBATCH --output={work}/throttled_%A_%a.out
sleep 8
"""

HELD = """#!/bin/bash
#SBATCH --job-name=olp-slurm-recording-held
#SBATCH --array=0-9999%10
#SBATCH --hold
#SBATCH --time=1
#SBATCH --mem=64M
#SBATCH --output=/dev/null
true
"""

STARTING = """#!/bin/bash
#SBATCH --job-name=olp-slurm-recording-starting
#SBATCH --array=0-1
#SBATCH --time=1
#SBATCH --mem=64M
#SBATCH --output=/dev/null
sleep 10
"""

PLAIN = """#!/bin/bash
#SBATCH --job-name=olp-slurm-recording-plain
#SBATCH --time=1
#SBATCH --mem=64M
#SBATCH --output={work}/plain_%j.out
sleep 3
"""


def record(
    name: str, argv: Sequence[str], stdin: str | None = None, env: dict[str, str] | None = None
) -> CommandResult:
    """Run ``argv`` and keep its output under ``name``."""
    full = [*argv] if env is None else ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
    result = LOCAL.run(full, stdin=stdin, timeout=120)
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


def submit(name: str, script: str) -> str:
    result = record(name, commands.sbatch_argv(), stdin=script.format(work=WORK))
    return commands.parse_sbatch(result.stdout)


def snapshot(name: str, job_ids: list[str]) -> None:
    record(f"sacct_{name}", commands.sacct_argv(job_ids))
    record(f"squeue_{name}", commands.squeue_argv(job_ids))


def wait_until_terminal(job_ids: list[str], limit: float = 300) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        out = LOCAL.run(commands.sacct_argv(job_ids)).stdout
        rows = commands.parse_sacct(out)
        if rows and all(is_terminal(row.state) for row in rows):
            return
        time.sleep(5)
    raise SystemExit("jobs did not finish in time")


def record_permission_denied() -> None:
    """scancel of root's job by ``nobody`` (through the sudo prefix of LocalTransport)."""
    job_id = submit("sbatch_for_other_user", PLAIN)
    as_nobody = LocalTransport(run_as="nobody")
    result = as_nobody.run(commands.scancel_argv(job_id))
    (HERE / "scancel_permission_denied.stderr").write_text(result.stderr)
    MANIFEST["scancel_permission_denied"] = {
        "argv": as_nobody.command(commands.scancel_argv(job_id)),
        "env": {},
        "returncode": result.returncode,
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    LOCAL.run(commands.scancel_argv(job_id))


def record_held_array() -> None:
    """A held 10,000-task array: one pending sacct/squeue line standing for every task."""
    job_id = submit("sbatch_held", HELD)
    time.sleep(3)
    snapshot("held_array", [job_id])
    LOCAL.run(commands.scancel_argv(job_id))


def record_start_lag(limit: float = 30) -> None:
    """The moment slurmctld runs tasks that sacct still reports PENDING (slurmdbd is late)."""
    job_id = submit("sbatch_starting", STARTING)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        sacct = LOCAL.run(commands.sacct_argv([job_id])).stdout
        squeue = LOCAL.run(commands.squeue_argv([job_id], states=["RUNNING"])).stdout
        pending = [row for row in commands.parse_sacct(sacct) if row.state == "PENDING"]
        if pending and commands.parse_squeue(squeue):
            record("sacct_start_lag", commands.sacct_argv([job_id]))
            record("squeue_start_lag_running", commands.squeue_argv([job_id], states=["RUNNING"]))
            break
        time.sleep(0.05)
    else:
        print("start lag not caught: sacct recorded the start before squeue was asked")
    LOCAL.run(commands.scancel_argv(job_id))


def modified_conf(name: str, replacements: dict[str, str]) -> str:
    """A copy of slurm.conf with some ``Key=value`` lines replaced."""
    text = Path("/etc/slurm/slurm.conf").read_text()
    for key, value in replacements.items():
        text = re.sub(rf"^{key}=.*$", f"{key}={value}", text, flags=re.MULTILINE)
    path = WORK / f"{name}.conf"
    path.write_text(text)
    return str(path)


def main() -> None:
    record("sinfo_version", commands.version_argv())
    record("sinfo_nodes", commands.sinfo_argv())
    record("scontrol_show_config", commands.scontrol_config_argv())
    record("scontrol_show_partition", commands.scontrol_partitions_argv())
    record("sbatch_test_only", commands.sbatch_argv(test_only=True), stdin=PLAIN.format(work=WORK))
    record(
        "sbatch_bad_partition",
        [*commands.sbatch_argv(), "--partition=no-such-partition"],
        stdin=PLAIN.format(work=WORK),
    )

    outcomes = submit("sbatch_outcomes", OUTCOMES)
    throttled = submit("sbatch_throttled", THROTTLED)
    plain = submit("sbatch_plain", PLAIN)
    cluster = commands.parse_scontrol_config(LOCAL.run(commands.scontrol_config_argv()).stdout)
    record(
        "sbatch_with_cluster",
        [*commands.sbatch_argv(), "--clusters=" + cluster["ClusterName"]],
        stdin=PLAIN.format(work=WORK),
    )
    jobs = [outcomes, throttled, plain]
    snapshot("just_submitted", jobs)
    time.sleep(4)
    snapshot("running", jobs)

    record("scancel_pending_tasks", commands.scancel_argv(throttled, [3, 5]))
    record("scancel_running_task", commands.scancel_argv(outcomes, [4]))
    time.sleep(2)
    snapshot("after_cancel", jobs)

    wait_until_terminal(jobs)
    snapshot("final", jobs)
    record("sacct_final_with_steps", commands.sacct_argv(jobs, allocations_only=False))
    record("sacct_by_name", commands.sacct_argv(names=["olp-slurm-recording-throttled"]))
    record("squeue_by_name", commands.squeue_argv(names=["olp-slurm-recording-throttled"]))
    record("scancel_finished", commands.scancel_argv(plain))
    record("scancel_unknown_job", commands.scancel_argv("99999999"))
    record_permission_denied()
    record_held_array()
    record("squeue_unknown_job", commands.squeue_argv(["99999999"]))
    record_start_lag()

    no_accounting = modified_conf(
        "no-accounting", {"AccountingStorageType": "accounting_storage/none"}
    )
    record(
        "sacct_accounting_disabled", commands.sacct_argv(jobs), env={"SLURM_CONF": no_accounting}
    )
    dbd_down = modified_conf("dbd-down", {"AccountingStoragePort": "9"})
    record("sacct_slurmdbd_down", commands.sacct_argv(jobs), env={"SLURM_CONF": dbd_down})

    (HERE / "manifest.json").write_text(json.dumps(MANIFEST, indent=2, sort_keys=True) + "\n")
    print(f"job ids: outcomes={outcomes} throttled={throttled} plain={plain}; work dir {WORK}")


if __name__ == "__main__":
    os.umask(0o022)
    main()
