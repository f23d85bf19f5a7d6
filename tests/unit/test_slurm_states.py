"""Task state normalization and the submission state derived from all tasks of an array."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.slurm.commands import parse_sacct, parse_squeue
from portal.slurm.states import (
    TERMINAL,
    derive_submission_state,
    is_terminal,
    normalize_state,
)
from portal.slurm.testing import recorded_result

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("CANCELLED by 0", "CANCELLED"),
        ("CANCELLED by 1000", "CANCELLED"),
        ("COMPLETED", "COMPLETED"),
        ("completed", "COMPLETED"),
        (" RUNNING ", "RUNNING"),
        ("RUNNING+", "RUNNING"),
        ("CD", "COMPLETED"),
        ("PD", "PENDING"),
        ("OOM", "OUT_OF_MEMORY"),
        ("TO", "TIMEOUT"),
        ("NF", "NODE_FAIL"),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
    ],
)
def test_normalize_state(raw: str, state: str) -> None:
    assert normalize_state(raw) == state


@pytest.mark.parametrize(
    "state",
    [
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
        "CANCELLED",
        "CANCELLED by 0",
    ],
)
def test_terminal_states(state: str) -> None:
    assert is_terminal(state)


@pytest.mark.parametrize(
    "state",
    [
        "PENDING",
        "RUNNING",
        "COMPLETING",
        "CONFIGURING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_HOLD",
        "SPECIAL_EXIT",
        "RESIZING",
        "SOMETHING_NEW",
    ],
)
def test_non_terminal_states(state: str) -> None:
    assert not is_terminal(state)


@pytest.mark.parametrize(
    ("tasks", "submission"),
    [
        ([], "QUEUED"),
        (["PENDING"], "QUEUED"),
        (["PENDING", "PENDING"], "QUEUED"),
        (["PENDING", "RUNNING"], "RUNNING"),
        (["CONFIGURING", "PENDING"], "RUNNING"),
        (["COMPLETING", "COMPLETED"], "RUNNING"),
        (["SUSPENDED"], "RUNNING"),
        # a throttled array between waves: started, so RUNNING rather than back to QUEUED
        (["COMPLETED", "COMPLETED", "PENDING"], "RUNNING"),
        (["FAILED", "PENDING"], "RUNNING"),
        (["REQUEUED", "PENDING"], "RUNNING"),
        (["COMPLETED", "SOMETHING_NEW"], "RUNNING"),
        (["COMPLETED"], "COMPLETED"),
        (["COMPLETED"] * 5, "COMPLETED"),
        (["COMPLETED", "FAILED"], "PARTIAL"),
        (["COMPLETED", "TIMEOUT", "CANCELLED"], "PARTIAL"),
        (["COMPLETED", "OUT_OF_MEMORY"], "PARTIAL"),
        (["FAILED"], "FAILED"),
        (["FAILED", "TIMEOUT", "NODE_FAIL"], "FAILED"),
        (["FAILED", "CANCELLED"], "FAILED"),
        (["PREEMPTED", "BOOT_FAIL", "DEADLINE"], "FAILED"),
        (["CANCELLED"], "CANCELLED"),
        (["CANCELLED by 0", "CANCELLED"], "CANCELLED"),
        # a mixed outcome is PARTIAL whatever ended the other tasks (issue 15, point 7)
        (["COMPLETED", "COMPLETED", "CANCELLED"], "PARTIAL"),
        (["COMPLETED", "CANCELLED by 0"], "PARTIAL"),
        (["COMPLETED", "REVOKED"], "PARTIAL"),
        (["CANCELLED", "REVOKED"], "CANCELLED"),
        (["CANCELLED", "TIMEOUT"], "FAILED"),
        (["CD", "F"], "PARTIAL"),
    ],
)
def test_derive_submission_state(tasks: list[str], submission: str) -> None:
    assert derive_submission_state(tasks) == submission


def test_derive_accepts_any_iterable() -> None:
    assert derive_submission_state(state for state in ["COMPLETED", "FAILED"]) == "PARTIAL"


def test_every_recorded_final_state_is_terminal() -> None:
    rows = parse_sacct(recorded_result(DATA, "sacct_final").stdout)
    assert rows and all(row.state in TERMINAL for row in rows)


def test_recorded_arrays_derive_to_the_expected_submission_states() -> None:
    def job(name: str) -> str:
        return recorded_result(DATA, name).stdout.strip()

    def states(recording: str, job_id: str, parse=parse_sacct) -> list[str]:
        rows = parse(recorded_result(DATA, recording).stdout)
        return [row.state for row in rows if row.job_id == job_id]

    outcomes, throttled, plain = (
        job("sbatch_outcomes"),
        job("sbatch_throttled"),
        job("sbatch_plain"),
    )
    assert (
        derive_submission_state(states("squeue_just_submitted", outcomes, parse_squeue)) == "QUEUED"
    )
    assert derive_submission_state(states("sacct_running", outcomes)) == "RUNNING"
    assert derive_submission_state(states("sacct_running", throttled)) == "RUNNING"
    assert derive_submission_state(states("sacct_final", outcomes)) == "PARTIAL"
    assert derive_submission_state(states("sacct_final", throttled)) == "COMPLETED"
    assert derive_submission_state(states("sacct_final", plain)) == "COMPLETED"
