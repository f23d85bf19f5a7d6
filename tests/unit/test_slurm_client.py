"""SlurmClient on recorded Slurm 22.05 answers (ScriptedTransport), plus one run on the cluster."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from portal.slurm.client import SlurmClient, SlurmError, accounting_disabled, program_name
from portal.slurm.commands import Node, parse_sacct, parse_squeue
from portal.slurm.states import is_terminal
from portal.slurm.testing import ScriptedTransport, recorded_result
from portal.slurm.transports import CommandResult, LocalTransport, SSHTransport, TransportError

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
EMPTY = CommandResult(0, "", "")


def rec(name: str) -> CommandResult:
    return recorded_result(DATA, name)


def job(name: str) -> str:
    return rec(name).stdout.strip()


OUTCOMES, THROTTLED, PLAIN = job("sbatch_outcomes"), job("sbatch_throttled"), job("sbatch_plain")
ALL_JOBS = [OUTCOMES, THROTTLED, PLAIN]


def client_for(**script: object) -> tuple[SlurmClient, ScriptedTransport]:
    transport = ScriptedTransport(script)  # type: ignore[arg-type]
    return SlurmClient(transport, timeout=30), transport


def option(argv: list[str], name: str) -> str | None:
    for word in argv:
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


# --------------------------------------------------------------------------- submit


def test_submit_script_text_goes_to_sbatch_stdin() -> None:
    client, transport = client_for(sbatch=rec("sbatch_outcomes"))
    assert client.submit(script_text="#!/bin/bash\ntrue\n") == OUTCOMES
    [(argv, stdin)] = transport.calls
    assert argv == ["sbatch", "--parsable"] and stdin == "#!/bin/bash\ntrue\n"


def test_submit_script_path() -> None:
    client, transport = client_for(sbatch=rec("sbatch_with_cluster"))
    assert client.submit("/shared/runs/u1/job.sbatch") == "64"
    assert transport.calls == [(["sbatch", "--parsable", "/shared/runs/u1/job.sbatch"], None)]


def test_submit_test_only_returns_the_estimate() -> None:
    client, transport = client_for(sbatch=rec("sbatch_test_only"))
    message = client.submit(script_text="#!/bin/bash\n", test_only=True)
    assert message.startswith("Job ") and "in partition debug" in message
    assert "--test-only" in transport.calls[0][0]


def test_submit_refusal_carries_slurms_message() -> None:
    client, _ = client_for(sbatch=rec("sbatch_bad_partition"))
    with pytest.raises(SlurmError) as raised:
        client.submit(script_text="#!/bin/bash\n")
    error = raised.value
    assert error.returncode == 1
    assert error.argv == ["sbatch", "--parsable"]
    assert "Invalid partition name specified" in error.message
    assert str(error).startswith("sbatch failed: ")


def test_submit_success_without_job_id_is_an_error() -> None:
    client, _ = client_for(sbatch=CommandResult(0, "", "sbatch: warning: odd\n"))
    with pytest.raises(SlurmError, match="no job id"):
        client.submit(script_text="#!/bin/bash\n")


@pytest.mark.parametrize(("path", "text"), [(None, None), ("/a.sbatch", "#!/bin/bash\n")])
def test_submit_needs_exactly_one_script(path: str | None, text: str | None) -> None:
    client, transport = client_for()
    with pytest.raises(ValueError):
        client.submit(path, text)
    assert transport.calls == []


# --------------------------------------------------------------------------- query


def test_query_uses_one_sacct_call_for_all_jobs() -> None:
    client, transport = client_for(sacct=rec("sacct_final"))
    rows = client.query([PLAIN, THROTTLED, OUTCOMES, OUTCOMES])
    assert transport.programs() == ["sacct"]
    argv = transport.calls[0][0]
    assert option(argv, "--jobs") == ",".join(sorted(ALL_JOBS, key=int))
    assert rows == parse_sacct(rec("sacct_final").stdout)


def test_query_without_jobs_runs_nothing() -> None:
    client, transport = client_for()
    assert client.query([]) == []
    assert transport.calls == []


def test_query_passes_since() -> None:
    client, transport = client_for(sacct=rec("sacct_final"))
    client.query([PLAIN], since="now-2days")
    assert option(transport.calls[0][0], "--starttime") == "now-2days"


def test_jobs_not_yet_in_accounting_are_read_from_squeue() -> None:
    # Recorded: sacct printed nothing right after sbatch; squeue already knew the jobs.
    client, transport = client_for(
        sacct=rec("sacct_just_submitted"), squeue=rec("squeue_just_submitted")
    )
    rows = client.query(ALL_JOBS)
    assert transport.programs() == ["sacct", "squeue"]
    assert option(transport.calls[1][0], "--jobs") == ",".join(sorted(ALL_JOBS, key=int))
    assert len(rows) == 6 + 10 + 1 and {row.state for row in rows} == {"PENDING"}


def test_only_missing_jobs_go_to_squeue() -> None:
    sacct = rec("sacct_final")
    without_plain = "".join(
        line + "\n" for line in sacct.stdout.splitlines() if not line.startswith(PLAIN + "|")
    )
    client, transport = client_for(
        sacct=CommandResult(0, without_plain, ""), squeue=rec("squeue_final")
    )
    client.query(ALL_JOBS)
    assert option(transport.calls[1][0], "--jobs") == PLAIN


def test_squeue_failure_for_missing_jobs_is_not_fatal() -> None:
    client, _ = client_for(sacct=rec("sacct_just_submitted"), squeue=rec("squeue_unknown_job"))
    assert client.query(["99999999"]) == []


def test_accounting_disabled_falls_back_to_squeue(caplog: pytest.LogCaptureFixture) -> None:
    assert accounting_disabled(rec("sacct_accounting_disabled").stderr)
    client, transport = client_for(
        sacct=rec("sacct_accounting_disabled"), squeue=rec("squeue_final")
    )
    with caplog.at_level(logging.WARNING, logger="portal.slurm.client"):
        rows = client.query(ALL_JOBS)
    assert transport.programs() == ["sacct", "squeue"]
    assert rows == parse_squeue(rec("squeue_final").stdout)
    assert "accounting is disabled" in caplog.text


def test_slurmdbd_down_raises_and_does_not_guess() -> None:
    client, transport = client_for(sacct=rec("sacct_slurmdbd_down"))
    with pytest.raises(SlurmError) as raised:
        client.query(ALL_JOBS)
    assert not accounting_disabled(rec("sacct_slurmdbd_down").stderr)
    assert "Problem talking to the database" in raised.value.message
    assert str(raised.value).startswith("sacct failed: ")
    assert transport.programs() == ["sacct"]


def test_transport_errors_pass_through_unwrapped(tmp_path: Path) -> None:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = SSHTransport("127.0.0.1", port=port, known_hosts=str(known_hosts))
    with pytest.raises(TransportError, match="cannot connect"):
        SlurmClient(transport, timeout=5).query(["1"])


# --------------------------------------------------------------------------- find_by_name


def test_find_by_name_merges_squeue_and_sacct() -> None:
    client, transport = client_for(squeue=rec("squeue_by_name"), sacct=rec("sacct_by_name"))
    found = client.find_by_name("olp-slurm-recording-throttled")
    expected = {row.job_id for row in parse_sacct(rec("sacct_by_name").stdout)}
    expected |= {row.job_id for row in parse_squeue(rec("squeue_by_name").stdout)}
    assert found == sorted(expected, key=int)
    assert THROTTLED in found
    squeue_argv, sacct_argv = (argv for argv, _ in transport.calls)
    assert option(squeue_argv, "--name") == "olp-slurm-recording-throttled"
    assert option(sacct_argv, "--name") == "olp-slurm-recording-throttled"
    assert option(sacct_argv, "--starttime") == "now-30days"


def test_find_by_name_ignores_other_names_sacct_returns() -> None:
    client, _ = client_for(squeue=EMPTY, sacct=rec("sacct_final"))
    assert client.find_by_name("olp-slurm-recording-plain") == [PLAIN]


def test_find_by_name_nothing_found() -> None:
    client, _ = client_for(squeue=EMPTY, sacct=EMPTY)
    assert client.find_by_name("olp-never-submitted") == []


def test_find_by_name_without_accounting_uses_squeue_only() -> None:
    client, _ = client_for(squeue=rec("squeue_by_name"), sacct=rec("sacct_accounting_disabled"))
    from_squeue = {row.job_id for row in parse_squeue(rec("squeue_by_name").stdout)}
    assert client.find_by_name("olp-slurm-recording-throttled") == sorted(from_squeue, key=int)


def test_find_by_name_with_slurmdbd_down_raises() -> None:
    client, _ = client_for(squeue=EMPTY, sacct=rec("sacct_slurmdbd_down"))
    with pytest.raises(SlurmError):
        client.find_by_name("olp-x")


# --------------------------------------------------------------------------- cancel


def test_cancel_tasks() -> None:
    client, transport = client_for(scancel=rec("scancel_pending_tasks"))
    client.cancel(THROTTLED, [5, 3])
    assert transport.calls[0][0] == ["scancel", f"{THROTTLED}_[3,5]"]


@pytest.mark.parametrize("recording", ["scancel_finished", "scancel_unknown_job"])
def test_cancel_of_finished_or_unknown_job_is_quiet(recording: str) -> None:
    client, _ = client_for(scancel=rec(recording))
    client.cancel("99999999")


def test_cancel_refused_carries_slurms_message() -> None:
    client, _ = client_for(scancel=rec("scancel_permission_denied"))
    with pytest.raises(SlurmError) as raised:
        client.cancel("59")
    assert raised.value.returncode == 210
    assert "Access/permission denied" in raised.value.message


# --------------------------------------------------------------------------- cluster facts


def test_config_is_fetched_once() -> None:
    client, transport = client_for(scontrol=rec("scontrol_show_config"))
    assert client.config()["ClusterName"] == "olplocal"
    assert client.max_array_size() == 10001
    assert client.max_job_count() == 100000
    assert client.min_job_age() == 300
    assert transport.programs() == ["scontrol"]


def test_config_defaults_when_slurm_does_not_say() -> None:
    client, _ = client_for(scontrol=EMPTY)
    assert client.max_array_size() == 1001
    assert client.max_job_count() == 10000
    assert client.min_job_age() == 300


def test_partitions_nodes_and_version() -> None:
    client, _ = client_for(
        scontrol=rec("scontrol_show_partition"),
        sinfo=[rec("sinfo_nodes"), rec("sinfo_version")],
    )
    partitions = client.partitions()
    assert [p["PartitionName"] for p in partitions] == ["debug", "long"]
    assert partitions[0]["MaxTime"] == 120
    assert client.nodes() == [Node("vm", "idle", "", 8, 0, 21694, ("debug", "long"))]
    assert client.version() == "22.05.8"


def test_slurm_error_without_message() -> None:
    error = SlurmError(["scancel", "5"], 1, "  ")
    assert error.message == "exit status 1, no message"


@pytest.mark.parametrize(
    ("argv", "program"),
    [
        (["sacct", "-X"], "sacct"),
        (["env", "SLURM_BITSTR_LEN=0", "squeue", "-h"], "squeue"),
        (["sudo", "-n", "-u", "alice", "--", "sbatch", "--parsable"], "sbatch"),
        ([], "?"),
    ],
)
def test_program_name(argv: list[str], program: str) -> None:
    assert program_name(argv) == program


# --------------------------------------------------------------------------- real cluster


@pytest.mark.cluster
def test_local_client_against_the_cluster(slurm_cluster: None, tmp_path: Path) -> None:
    client = SlurmClient(LocalTransport(), timeout=30)
    assert client.max_array_size() >= 2
    name = f"olp-test-client-{time.time_ns()}"
    script = (
        "#!/bin/bash\n"
        f"#SBATCH --job-name={name}\n#SBATCH --array=0-3%1\n#SBATCH --time=1\n"
        f"#SBATCH --mem=32M\n#SBATCH --output={tmp_path}/%A_%a.out\n"
        "sleep 2\n"
    )
    assert client.submit(script_text=script, test_only=True).startswith("Job ")
    job_id = client.submit(script_text=script)
    assert client.find_by_name(name) == [job_id]
    rows = client.query([job_id])  # just submitted: answered by squeue if sacct lags
    assert sorted(row.task_index for row in rows) == [0, 1, 2, 3]
    client.cancel(job_id, [2, 3])
    deadline = time.monotonic() + 90
    while True:
        rows = client.query([job_id])
        finished = {row.task_index: row.state for row in rows if is_terminal(row.state)}
        if finished.keys() >= {0, 1}:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(2)
    assert finished[0] == "COMPLETED"
    assert 2 not in {row.task_index for row in rows if row.state == "PENDING"}


# -- starts that slurmdbd has not recorded yet ---------------------------------------------------
def test_a_start_sacct_has_not_recorded_yet_is_taken_from_squeue() -> None:
    # Recorded: sacct still listed the array as one pending job while slurmctld ran both tasks.
    client, transport = client_for(
        sacct=rec("sacct_start_lag"), squeue=rec("squeue_start_lag_running")
    )
    job_id = rec("sbatch_starting").stdout.strip()
    rows = client.query([job_id])
    assert transport.programs() == ["sacct", "squeue"]
    squeue_argv = transport.calls[1][0]
    assert option(squeue_argv, "--states") == "PENDING,RUNNING"
    assert option(squeue_argv, "--jobs") == job_id
    started = {row.task_index: row for row in rows if row.task_index is not None}
    assert sorted(started) == [0, 1]
    assert {row.state for row in started.values()} == {"RUNNING"}
    assert all(row.start is not None and row.node == "vm" for row in started.values())


def pending_line(job_field: str, reason: str) -> str:
    """A sacct line of pending tasks in the recorded format."""
    raw_id = job_field.split("_")[0]
    return f"{job_field}|{raw_id}|PENDING|0:0||Unknown|Unknown|00:00:00|{reason}|x\n"


def test_squeue_is_asked_only_about_jobs_with_pending_tasks() -> None:
    lagging = "77|77|PENDING|0:0|vm|2026-11-23T13:00:00|Unknown|00:00:00|None|allocation\n"
    sacct = lagging + pending_line("78_[1-2]", "None") + rec("sacct_final").stdout
    running = "77|0|79|RUNNING|vm|2026-11-23T13:00:00|N/A|0:05|None|x\n"
    client, transport = client_for(
        sacct=CommandResult(0, sacct, ""), squeue=CommandResult(0, running, "")
    )
    rows = client.query(["77", "78", *ALL_JOBS])
    assert transport.programs() == ["sacct", "squeue"]
    assert option(transport.calls[1][0], "--jobs") == "77,78"  # not the finished jobs
    by_key = {(row.job_id, row.task_index): row.state for row in rows}
    assert by_key[("77", 0)] == "RUNNING"  # not listed by index in sacct yet: added
    assert by_key[("78", 1)] == by_key[("78", 2)] == "PENDING"
    assert [r for r in rows if r.job_id not in ("77", "78")] == parse_sacct(
        rec("sacct_final").stdout
    )


def test_a_failing_squeue_leaves_sacct_s_answer(caplog: pytest.LogCaptureFixture) -> None:
    client, transport = client_for(
        sacct=rec("sacct_start_lag"),
        squeue=CommandResult(1, "", "slurm_load_jobs error: Socket timed out"),
    )
    rows = client.query([rec("sbatch_starting").stdout.strip()])
    assert [row.state for row in rows] == ["PENDING"]
    assert transport.programs() == ["sacct", "squeue"]
    assert "squeue complementing sacct failed" in caplog.text


# -- MaxJobCount headroom ------------------------------------------------------------------------
def test_job_records_count_plain_jobs_tasks_and_compact_pending_ranges() -> None:
    out = "N/A\n3\n4\n0-9999%10\n2,4,6-9%2\n"
    client, transport = client_for(squeue=CommandResult(0, out, ""))
    assert client.job_records() == 1 + 1 + 1 + 10000 + 6
    assert option(transport.calls[0][0], "--states") == "all"
    assert option(transport.calls[0][0], "--format") == "%K"


def headroom_client(records: str) -> tuple[SlurmClient, ScriptedTransport]:
    # The recorded config says MaxJobCount = 100000, MinJobAge = 300.
    return client_for(scontrol=rec("scontrol_show_config"), squeue=CommandResult(0, records, ""))


@pytest.mark.parametrize(
    ("held", "tasks", "refused"),
    [(0, 1000, False), (78_999, 1001, False), (79_000, 1001, True), (0, 80_001, True)],
)
def test_job_room_is_checked_against_the_share_of_max_job_count(held, tasks, refused) -> None:
    from portal.submit import SubmissionError, check_job_room

    client, transport = headroom_client(f"0-{held - 1}\n" if held else "")
    settings = {"SLURM_JOB_COUNT_SHARE": 0.8}
    if refused:
        with pytest.raises(SubmissionError, match=r"holds [\d,]+ job records .* over the 80%"):
            check_job_room(client, settings, tasks)
    else:
        check_job_room(client, settings, tasks)
    # Up to 1 % of MaxJobCount (1,000 here) no squeue is run at all.
    assert transport.programs() == (["scontrol"] if tasks <= 1000 else ["scontrol", "squeue"])


def test_a_task_only_squeue_knows_ended_badly_waits_for_sacct_s_exit_code() -> None:
    # Recorded final squeue (with CANCELLED and COMPLETED tasks) for jobs sacct does not list.
    client, _ = client_for(sacct=CommandResult(0, "", ""), squeue=rec("squeue_final"))
    rows = client.query(ALL_JOBS)
    every = parse_squeue(rec("squeue_final").stdout)
    assert {row.state for row in every} > {"COMPLETED"}  # the recording has other ends too
    assert rows == [row for row in every if row.state == "COMPLETED"]


def test_the_same_sacct_answer_is_parsed_once_and_each_caller_gets_its_own_list() -> None:
    final = rec("sacct_final")
    client, transport = client_for(
        sacct=[final, final, rec("sacct_running")], squeue=rec("squeue_running")
    )
    first = client.query(ALL_JOBS)
    first.clear()  # a caller changing its list changes nothing for the next one
    second = client.query(ALL_JOBS)
    assert second == parse_sacct(final.stdout) and transport.programs() == ["sacct", "sacct"]
    assert client.query(ALL_JOBS)[: len(second)] != second  # a new answer is parsed anew


# -- requeued tasks (the probe's fault A) ----------------------------------------------------
#: What sacct -X and squeue print while Slurm requeues a task whose node went down: sacct shows
#: the ended attempt (NODE_FAIL) until the new one starts; squeue holds the task again, pending
#: (Requeue=1; the formats of the recordings in tests/data/slurm).
NODE_FAIL_SACCT = (
    "90_0|91|NODE_FAIL|0:0|vm|2026-12-06T08:00:00|2026-12-06T08:00:30|00:00:30|None|olp-x\n"
    "90_1|92|NODE_FAIL|0:0|vm|2026-12-06T08:00:00|2026-12-06T08:00:30|00:00:30|None|olp-x\n"
    "90_2|90|COMPLETED|0:0|vm|2026-12-06T08:00:00|2026-12-06T08:00:10|00:00:10|None|olp-x\n"
)
REQUEUED_SQUEUE = "90|0|91|PENDING|||||BeginTime|olp-x\n"


def test_a_requeued_node_fail_is_followed_not_final() -> None:
    client, transport = client_for(
        sacct=CommandResult(0, NODE_FAIL_SACCT, ""), squeue=CommandResult(0, REQUEUED_SQUEUE, "")
    )
    rows = {row.task_index: row for row in client.query(["90"])}
    assert transport.programs() == ["sacct", "squeue"]
    assert option(transport.calls[1][0], "--jobs") == "90"
    assert rows[0].state == "PENDING"  # Slurm holds another attempt: keep following it
    assert rows[1].state == "NODE_FAIL"  # squeue no longer has it: that failure is final
    assert rows[2].state == "COMPLETED"


def test_no_squeue_without_a_requeueable_state() -> None:
    client, transport = client_for(sacct=rec("sacct_final"))
    client.query(ALL_JOBS)
    assert transport.programs() == ["sacct"]
