"""Why a task waits: squeue's reason (``%r``) on pending tasks, asked with at most ONE squeue
per query and only when sacct shows pending tasks (recorded Slurm 22.05 output, see
tests/data/slurm/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.slurm.client import PENDING_REASON_MAX_AGE, SlurmClient
from portal.slurm.commands import MAX_REASON_LENGTH, TaskRow, parse_sacct, pending_reason
from portal.slurm.testing import ScriptedTransport, recorded_result
from portal.slurm.transports import CommandResult

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"


def rec(name: str) -> CommandResult:
    return recorded_result(DATA, name)


def client_for(**script: CommandResult) -> tuple[SlurmClient, ScriptedTransport]:
    transport = ScriptedTransport(script)
    return SlurmClient(transport, timeout=30), transport


def option(argv: list[str], name: str) -> str | None:
    return next((w.split("=", 1)[1] for w in argv if w.startswith(name + "=")), None)


def reasons(rows: list[TaskRow]) -> dict[tuple[str, int | None], str | None]:
    return {(row.job_id, row.task_index): pending_reason(row) for row in rows}


def test_a_throttled_array_s_waiting_tasks_say_so() -> None:
    # Recorded together: sacct lists the rest of the throttled array 45 pending with Reason
    # None; squeue says JobArrayTaskLimit (the array's %2 throttle).
    client, transport = client_for(sacct=rec("sacct_running"), squeue=rec("squeue_running"))
    rows = client.query(["44", "45", "46"])
    assert transport.programs() == ["sacct", "squeue"]
    argv = transport.calls[1][0]
    assert option(argv, "--jobs") == "45"  # only the job with pending tasks
    assert option(argv, "--states") == "PENDING,RUNNING"
    got = reasons(rows)
    assert {got[("45", i)] for i in range(2, 10)} == {"JobArrayTaskLimit"}
    assert got[("45", 0)] is None and got[("44", 3)] is None  # running: no reason
    # the recording also lists finished tasks: squeue's rows never replace sacct's final ones
    sacct = {(r.job_id, r.task_index): r for r in parse_sacct(rec("sacct_running").stdout)}
    assert [r for r in rows if r.state != "PENDING"] == [
        r for r in sacct.values() if r.state != "PENDING"
    ]


@pytest.mark.parametrize("reason", ["Priority", "Resources", "QOSMaxJobsPerUserLimit"])
def test_squeue_s_reason_replaces_sacct_s(reason: str) -> None:
    sacct = "77_[0-2]|77|PENDING|0:0|None assigned|Unknown|Unknown|00:00:00|None|olp-x\n"
    squeue = f"77|0-2|77|PENDING||N/A|N/A|0:00|{reason}|olp-x\n"
    client, _ = client_for(sacct=CommandResult(0, sacct, ""), squeue=CommandResult(0, squeue, ""))
    rows = client.query(["77"])
    assert [(row.task_index, pending_reason(row)) for row in rows] == [
        (0, reason),
        (1, reason),
        (2, reason),
    ]


def test_no_pending_task_no_squeue() -> None:
    client, transport = client_for(sacct=rec("sacct_final"))
    rows = client.query(["44", "45", "46"])
    assert transport.programs() == ["sacct"]
    assert all(pending_reason(row) is None for row in rows)


def test_a_held_array_sacct_does_not_know_yet_takes_squeue_s_rows() -> None:
    # Recorded: a held array is not in sacct at all; squeue's compact line says JobHeldUser.
    client, transport = client_for(sacct=CommandResult(0, "", ""), squeue=rec("squeue_held_array"))
    rows = client.query(["60"])
    assert transport.programs() == ["sacct", "squeue"]  # the one squeue for unknown ids
    assert len(rows) == 10000 and {pending_reason(row) for row in rows} == {"JobHeldUser"}


def test_a_plain_job_waiting_for_priority() -> None:
    client, _ = client_for(sacct=CommandResult(0, "", ""), squeue=rec("squeue_just_submitted"))
    got = reasons(client.query(["44", "45", "46"]))
    assert got[("46", None)] == "Priority"
    assert got[("44", 0)] is None  # squeue printed "None": no reason


def test_a_failing_squeue_keeps_sacct_s_reason() -> None:
    sacct = "77_[0-1]|77|PENDING|0:0|None assigned|Unknown|Unknown|00:00:00|JobHeldUser|x\n"
    client, _ = client_for(
        sacct=CommandResult(0, sacct, ""),
        squeue=CommandResult(1, "", "slurm_load_jobs error: Socket timed out"),
    )
    assert {pending_reason(row) for row in client.query(["77"])} == {"JobHeldUser"}


def test_pending_reason_only_for_pending_tasks_and_bounded() -> None:
    done = TaskRow("5", 0, "5", "FAILED", 1, None, reason="NonZeroExitCode")
    assert pending_reason(done) is None
    waiting = TaskRow("5", 1, "5", "PENDING", reason="X" * 400)
    assert pending_reason(waiting) == "X" * MAX_REASON_LENGTH
    assert pending_reason(TaskRow("5", 2, "5", "PENDING")) is None


def test_an_unchanged_queue_reuses_squeue_s_reasons_for_a_while() -> None:
    """While sacct answers the same, squeue is asked again only after PENDING_REASON_MAX_AGE
    seconds: a queue waiting unchanged costs one sacct per cycle, like before reasons."""
    line = "77_[0-1]|77|PENDING|0:0||Unknown|Unknown|00:00:00|None|x\n"
    other = "78_0|78|PENDING|0:0||Unknown|Unknown|00:00:00|None|x\n"
    held = CommandResult(0, "77|0-1|77|PENDING||N/A|N/A|0:00|JobHeldUser|x\n", "")
    queued = CommandResult(0, "77|0-1|77|PENDING||N/A|N/A|0:00|Priority|x\n", "")
    now = [100.0]
    transport = ScriptedTransport(
        {
            "sacct": [CommandResult(0, line, "")] * 3 + [CommandResult(0, line + other, "")],
            "squeue": [held, queued, queued],
        }
    )
    client = SlurmClient(transport, clock=lambda: now[0])
    first = client.query(["77"])
    now[0] += PENDING_REASON_MAX_AGE - 1
    second = client.query(["77"])
    assert transport.programs() == ["sacct", "squeue", "sacct"]  # reused: no squeue
    assert second == first and second is not first
    assert all(a is b for a, b in zip(first, second, strict=True))  # merged once
    first.clear()  # a caller changing its list changes nothing for the next one
    assert {pending_reason(row) for row in second} == {"JobHeldUser"}
    now[0] += 1
    assert {pending_reason(row) for row in client.query(["77"])} == {"Priority"}  # too old
    assert transport.programs()[3:] == ["sacct", "squeue"]
    rows = client.query(["77", "78"])  # a new sacct answer: squeue is asked at once
    assert transport.programs()[5:] == ["sacct", "squeue"]
    assert {(row.job_id, pending_reason(row)) for row in rows} == {
        ("77", "Priority"),
        ("78", None),
    }


def test_a_start_sacct_has_half_recorded_is_checked_every_time() -> None:
    lagging = "77|77|PENDING|0:0|vm|2026-11-23T13:00:00|Unknown|00:00:00|None|allocation\n"
    running = "77|0|79|RUNNING|vm|2026-11-23T13:00:00|N/A|0:05|None|x\n"
    client, transport = client_for(
        sacct=CommandResult(0, lagging, ""), squeue=CommandResult(0, running, "")
    )
    for _ in range(3):
        rows = client.query(["77"])
        assert {(row.task_index, row.state) for row in rows} == {
            (None, "PENDING"),
            (0, "RUNNING"),
        }
    assert transport.programs() == ["sacct", "squeue"] * 3
