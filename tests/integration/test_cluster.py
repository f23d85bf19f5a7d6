"""The local cluster built by the project's Ansible roles, exercised with the real Slurm CLI."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, **kwargs)


def wait_for_job(job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not run("squeue", "--noheader", "--jobs", job_id).stdout.strip():
            return
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still queued after {timeout}s")


def sacct_rows(job_id: str, count: int) -> dict[str, tuple[str, str]]:
    """JobID -> (State, ExitCode); waits until accounting has all `count` tasks terminal."""
    for _ in range(60):
        out = run(
            "sacct",
            "--jobs",
            job_id,
            "--allocations",
            "--parsable2",
            "--noheader",
            "--format=JobID,State,ExitCode",
        ).stdout
        rows = {
            line.split("|")[0]: tuple(line.split("|")[1:3]) for line in out.splitlines() if line
        }
        if len(rows) == count and all(
            state not in ("PENDING", "RUNNING") for state, _ in rows.values()
        ):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"sacct never showed job {job_id} finished: {out!r}")


def test_node_is_idle_and_takes_jobs():
    states = run("sinfo", "--noheader", "--Node", "--format=%T").stdout.split()
    assert states and all(s in ("idle", "mixed", "allocated", "completing") for s in states)


def test_munge_round_trip():
    encoded = run("munge", "--string", "olp-round-trip")
    assert encoded.returncode == 0, encoded.stderr
    decoded = run("unmunge", input=encoded.stdout)
    assert decoded.returncode == 0, decoded.stderr
    assert "olp-round-trip" in decoded.stdout
    assert "STATUS:          Success (0)" in decoded.stdout


def test_array_completes_and_failing_task_reports_exit_code(tmp_path: Path):
    script = tmp_path / "array.sbatch"
    script.write_text(
        "#!/bin/bash\n"
        f"#SBATCH --output={tmp_path}/%A_%a.out\n"
        "#SBATCH --time=00:02:00\n"
        'if [ "$SLURM_ARRAY_TASK_ID" = 4 ]; then exit 3; fi\n'
        'echo "task $SLURM_ARRAY_TASK_ID"\n'
    )
    sub = run("sbatch", "--parsable", "--array=0-4", str(script))
    assert sub.returncode == 0, sub.stderr
    job_id = sub.stdout.strip().split(";")[0]
    wait_for_job(job_id)
    rows = sacct_rows(job_id, 5)
    assert {rows[f"{job_id}_{i}"] for i in range(4)} == {("COMPLETED", "0:0")}
    assert rows[f"{job_id}_4"] == ("FAILED", "3:0")
    assert (tmp_path / f"{job_id}_2.out").read_text() == "task 2\n"


def test_test_only_accepts_valid_and_rejects_impossible(tmp_path: Path):
    script = tmp_path / "job.sbatch"
    script.write_text("#!/bin/bash\ntrue\n")
    ok = run("sbatch", "--test-only", "--time=00:01:00", str(script))
    assert ok.returncode == 0, ok.stderr
    assert "to start at" in ok.stderr
    bad = run("sbatch", "--test-only", "--cpus-per-task=100000", str(script))
    assert bad.returncode != 0
    assert "Requested node configuration is not available" in bad.stderr


def test_job_records_count_every_array_task_like_squeue_expands_them(tmp_path: Path):
    """The portal's MaxJobCount headroom check counts records from squeue's compact output."""
    from portal.slurm.client import SlurmClient
    from portal.slurm.transports import LocalTransport

    client = SlurmClient(LocalTransport())
    job_id = run(
        "sbatch", "--parsable", "--hold", "--array=0-2999%5", "--time=1", "--mem=64M",
        "--output=/dev/null", "--wrap", "true",
    ).stdout.strip()  # fmt: skip
    try:
        for _attempt in range(5):  # a finished job may age out between the two calls
            counted = client.job_records()
            expanded = run("squeue", "--noheader", "--array", "--states=all", "--format=%i")
            if counted == len(expanded.stdout.split()):
                break
        assert counted == len(expanded.stdout.split())
        assert counted >= 3000
    finally:
        run("scancel", job_id)


def test_a_sweep_that_would_fill_the_job_records_is_refused():
    from portal.slurm.client import SlurmClient
    from portal.slurm.transports import LocalTransport
    from portal.submit import SubmissionError, check_job_room

    client = SlurmClient(LocalTransport())
    max_jobs = client.max_job_count()
    big = max_jobs // 100 + 1  # just over 1 %: the check asks squeue
    check_job_room(client, {"SLURM_JOB_COUNT_SHARE": 1.0}, big)
    with pytest.raises(SubmissionError, match=f"MaxJobCount {max_jobs:,}.*adds {big:,}"):
        check_job_room(client, {"SLURM_JOB_COUNT_SHARE": 0.0}, big)
    check_job_room(client, {"SLURM_JOB_COUNT_SHARE": 0.0}, max_jobs // 100)  # small: no query
