"""Rendered job-array scripts against the real local Slurm (sbatch --test-only and real runs)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from portal.shell import ShellVar
from portal.submit.sbatch import (
    ArrayScript,
    chunk_scripts,
    job_name_for,
    render_array_script,
)
from portal.submit.taskconfigs import write_task_configs

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]

UUID = "7c1e0d2a-5b9f-4c3e-8a61-2f4d6b8e0c91"
HOSTILE = "$(touch pwned) `touch pwned` ; touch pwned | 'q' \"dq\" \\ # x"


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60)


def make_ctx(run_dir: Path, **changes) -> ArrayScript:
    values = dict(
        submission_uuid=UUID,
        job_name=job_name_for(UUID),
        run_dir=str(run_dir),
        design_dir=str(run_dir / "design"),
        array_indices=[0, 1, 2],
        throttle=2,
        cpus_per_task=1,
        mem_mb=64,
        time_limit_minutes=2,
        container_words=[],
        flow_words=["printf", "%s", HOSTILE],
        flow_name="test-double",
        portal_version="0.1.0",
    )
    values.update(changes)
    return ArrayScript(**values)


def stage(ctx: ArrayScript, task_ids) -> Path:
    run_dir = Path(ctx.run_dir)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    Path(ctx.design_dir).mkdir(parents=True, exist_ok=True)
    write_task_configs(run_dir, ctx.config_name, ((i, f"config {i}\n") for i in task_ids))
    script = run_dir / "job.sbatch"
    script.write_text(render_array_script(ctx))
    return script


def max_array_size() -> int:
    config = run("scontrol", "show", "config").stdout
    return int(re.search(r"^MaxArraySize\s*=\s*(\d+)", config, re.M).group(1))


def submit(script: Path) -> str:
    result = run("sbatch", "--parsable", str(script))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def wait_terminal(job_id: str, count: int, timeout: float = 120) -> dict[str, tuple[str, str]]:
    """JobID -> (State, ExitCode) once accounting shows all `count` array tasks terminal."""
    deadline = time.monotonic() + timeout
    rows: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        out = run(
            "sacct", "--jobs", job_id, "--allocations", "--parsable2", "--noheader",
            "--format=JobID,State,ExitCode",
        ).stdout  # fmt: skip
        rows = {
            line.split("|")[0]: (line.split("|")[1], line.split("|")[2])
            for line in out.splitlines()
            if line
        }
        if len(rows) == count and all(
            state not in ("PENDING", "RUNNING", "REQUEUED") for state, _ in rows.values()
        ):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish: {rows}")


# -- sbatch --test-only -------------------------------------------------------------------------
def test_rendered_script_is_accepted_by_sbatch_test_only(tmp_path):
    ctx = make_ctx(
        tmp_path / "run $(touch pwned)",
        partition="debug",
        comment=f"portal submission {UUID} $(touch pwned) # literal",
        env={"APPTAINERENV_PDK_ROOT": "/apps/pdks"},
    )
    script = stage(ctx, [0, 1, 2])
    result = run("sbatch", "--test-only", str(script))
    assert result.returncode == 0, result.stderr
    assert "to start at" in result.stderr and "partition debug" in result.stderr
    assert not list(tmp_path.rglob("pwned*"))


def test_impossible_request_is_rejected_by_sbatch(tmp_path):
    script = stage(make_ctx(tmp_path / "run", cpus_per_task=10**6), [0])
    result = run("sbatch", "--test-only", str(script))
    assert result.returncode != 0
    assert "Requested node configuration is not available" in result.stderr


def test_compressed_indices_with_throttle_are_valid_slurm(tmp_path):
    script = stage(make_ctx(tmp_path / "run", array_indices=[0, 1, 2, 3, 7, 9]), [])
    assert "#SBATCH --array=0-3,7,9%2" in script.read_text()
    result = run("sbatch", "--test-only", str(script))
    assert result.returncode == 0, result.stderr


def test_max_array_size_bounds_the_index_not_the_count(tmp_path):
    """The premise of the splitting design, checked on the real controller."""
    limit = max_array_size()
    at_limit = stage(make_ctx(tmp_path / "a", array_indices=[limit]), [])
    assert run("sbatch", "--test-only", str(at_limit)).returncode != 0
    below = stage(make_ctx(tmp_path / "b", array_indices=[limit - 1]), [])
    result = run("sbatch", "--test-only", str(below))
    assert result.returncode == 0, result.stderr


# -- real runs ---------------------------------------------------------------------------------
def test_array_runs_with_hostile_values_literal_and_exit_codes_recorded(tmp_path):
    run_dir = tmp_path / "run $(touch pwned) `touch pwned`"
    ctx = make_ctx(
        run_dir,
        comment="$(touch pwned) literal",
        flow_words=["sh", "-c", 'printf "%s" "$1"; [ "$TASK_ID" != 2 ]', "sh", HOSTILE],
    )
    script = stage(ctx, [0, 1, 2])
    job_id = submit(script)
    rows = wait_terminal(job_id, 3)
    assert rows[f"{job_id}_0"] == ("COMPLETED", "0:0")
    assert rows[f"{job_id}_1"] == ("COMPLETED", "0:0")
    assert rows[f"{job_id}_2"] == ("FAILED", "1:0")
    for index, code in ((0, "0"), (1, "0"), (2, "1")):
        task_dir = run_dir / "tasks" / str(index)
        assert (task_dir / "exit_code").read_text() == f"{code}\n"
        assert f"job={job_id}_{index}" in (task_dir / "started").read_text()
        assert (run_dir / "logs" / f"{job_id}_{index}.out").read_text() == HOSTILE
    # Finished jobs stay visible to scontrol for MinJobAge (300 s by default).
    shown = run("scontrol", "show", "job", f"{job_id}_0").stdout
    assert f"JobName=olp-{UUID}" in shown
    assert "Comment=$(touch pwned) literal" in shown
    assert not list(tmp_path.rglob("pwned*"))


def test_split_arrays_cover_every_task_with_offsets(tmp_path):
    run_dir = tmp_path / "run"
    base = make_ctx(
        run_dir,
        array_indices=[0, 1, 2, 3, 4],
        flow_words=["printf", "%s %s", ShellVar("TASK_ID"), ShellVar("TASK_TAG")],
    )
    chunks = chunk_scripts(base, 2)
    assert [c.index_offset for c in chunks] == [0, 2, 4]
    job_ids = []
    for i, chunk in enumerate(chunks):
        script = stage(chunk, range(5))
        script = script.rename(run_dir / f"job-{i}.sbatch")
        assert "--array=0-1" in script.read_text() or "--array=0%" in script.read_text()
        job_ids.append((submit(script), chunk))
    for job_id, chunk in job_ids:
        rows = wait_terminal(job_id, len(chunk.array_indices))
        assert all(state == "COMPLETED" for state, _ in rows.values()), rows
        for array_index in chunk.array_indices:
            task = array_index + chunk.index_offset
            log = run_dir / "logs" / f"{job_id}_{array_index}.out"
            assert log.read_text() == f"{task} task-{task:04d}"
            assert (run_dir / "tasks" / str(task) / "exit_code").read_text() == "0\n"
    names = {
        run("sacct", "-j", job_id, "-X", "-n", "-P", "--format=JobName").stdout.split()[0]
        for job_id, _ in job_ids
    }
    assert names == {f"olp-{UUID}", f"olp-{UUID}-o2", f"olp-{UUID}-o4"}
