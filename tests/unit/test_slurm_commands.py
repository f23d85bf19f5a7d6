"""Argv builders and parsers of portal.slurm.commands, on output recorded from Slurm 22.05."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest

from portal.slurm import commands
from portal.slurm.commands import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    SlurmParseError,
    TaskRow,
    array_spec,
    compress_indices,
    expand_indices,
    parse_elapsed,
    parse_exit_code,
    parse_sacct,
    parse_sbatch,
    parse_slurm_time,
    parse_squeue,
    parse_test_only,
    parse_time_limit,
    sacct_argv,
    scancel_argv,
    squeue_argv,
)
from portal.slurm.testing import recorded_result

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
QUERY_PREFIX = ["env", "SLURM_BITSTR_LEN=0", "SLURM_TIME_FORMAT=standard"]


def stdout(name: str) -> str:
    return recorded_result(DATA, name).stdout


def stderr(name: str) -> str:
    return recorded_result(DATA, name).stderr


#: Hand-written lines for states this cluster cannot produce (see tests/data/slurm/README.md).
HANDWRITTEN = (DATA / "sacct_handwritten.stdout").read_text()


def job_id(name: str) -> str:
    """The id sbatch printed when the recording ``name`` was taken."""
    return stdout(name).strip()


OUTCOMES, THROTTLED, PLAIN = (
    job_id("sbatch_outcomes"),
    job_id("sbatch_throttled"),
    job_id("sbatch_plain"),
)


def by_task(rows: list[TaskRow], array: str) -> dict[int | None, TaskRow]:
    return {row.task_index: row for row in rows if row.job_id == array}


# --------------------------------------------------------------------------- sbatch


def test_sbatch_argv() -> None:
    assert commands.sbatch_argv() == ["sbatch", "--parsable"]
    assert commands.sbatch_argv("/runs/u/job.sbatch") == [
        "sbatch",
        "--parsable",
        "/runs/u/job.sbatch",
    ]
    assert commands.sbatch_argv(test_only=True) == ["sbatch", "--parsable", "--test-only"]


def test_parse_sbatch_recorded_outputs() -> None:
    assert OUTCOMES.isdigit()
    assert parse_sbatch(stdout("sbatch_outcomes")) == OUTCOMES
    assert parse_sbatch(stdout("sbatch_with_cluster")) == "64"  # "64;olplocal"


@pytest.mark.parametrize("text", ["", "\n", "Submitted batch job 12\n", "12abc", ";olplocal"])
def test_parse_sbatch_refuses_output_without_a_job_id(text: str) -> None:
    with pytest.raises(SlurmParseError):
        parse_sbatch(text)


def test_parse_test_only_recorded_estimate() -> None:
    message = parse_test_only(stderr("sbatch_test_only"))
    assert message.startswith("Job ")
    assert " to start at " in message and message.endswith("in partition debug")
    assert not message.startswith("sbatch:")


def test_parse_test_only_refuses_an_error() -> None:
    with pytest.raises(SlurmParseError):
        parse_test_only(stderr("sbatch_bad_partition"))


# --------------------------------------------------------------------------- sacct argv


def test_sacct_argv_for_job_ids_needs_no_start_time() -> None:
    argv = sacct_argv(["12", "7"])
    assert argv[:4] == [*QUERY_PREFIX, "sacct"]
    assert {"--parsable2", "--noheader", "--allocations", "--allusers"} <= set(argv)
    assert "--format=" + ",".join(SACCT_FIELDS) in argv
    assert "--jobs=12,7" in argv
    assert not any(word.startswith("--starttime") for word in argv)  # -j searches from epoch


def test_sacct_argv_by_name_looks_back_further_than_today() -> None:
    argv = sacct_argv(names=["olp-3f2a"])
    assert "--name=olp-3f2a" in argv
    assert "--starttime=now-30days" in argv
    since = datetime(2026, 11, 1, 8, 30)
    assert "--starttime=2026-11-01T08:30:00" in sacct_argv(names=["x"], since=since)
    assert "--starttime=now-2days" in sacct_argv(["1"], since="now-2days")


def test_sacct_argv_with_steps() -> None:
    assert "--allocations" not in sacct_argv(["1"], allocations_only=False)


@pytest.mark.parametrize("bad", ["12;rm -rf /", "12_3", "-j", "", "12 13"])
def test_sacct_argv_refuses_what_is_not_a_job_id(bad: str) -> None:
    with pytest.raises(ValueError):
        sacct_argv([bad])


@pytest.mark.parametrize("bad", ["a,b", ""])
def test_name_filters_refuse_names_sacct_would_split(bad: str) -> None:
    with pytest.raises(ValueError):
        sacct_argv(names=[bad])
    with pytest.raises(ValueError):
        squeue_argv(names=[bad])


# --------------------------------------------------------------------------- sacct parsing


def test_sacct_right_after_submit_is_empty() -> None:
    assert stdout("sacct_just_submitted") == ""
    assert parse_sacct(stdout("sacct_just_submitted")) == []


def test_sacct_running_snapshot() -> None:
    rows = parse_sacct(stdout("sacct_running"))
    plain = by_task(rows, PLAIN)[None]
    assert (plain.state, plain.raw_job_id, plain.end, plain.exit_code) == (
        "RUNNING",
        PLAIN,
        None,
        None,
    )
    assert plain.node == "vm" and isinstance(plain.start, datetime)

    outcomes = by_task(rows, OUTCOMES)
    assert (outcomes[0].state, outcomes[0].exit_code, outcomes[0].signal) == ("COMPLETED", 0, 0)
    assert (outcomes[1].state, outcomes[1].exit_code, outcomes[1].signal) == ("FAILED", 3, 0)
    assert (outcomes[2].state, outcomes[2].exit_code, outcomes[2].signal) == ("FAILED", 0, 15)
    assert outcomes[3].state == "RUNNING" and outcomes[3].exit_code is None
    assert outcomes[3].name == "olp-slurm-recording-outcomes"


def test_sacct_pending_range_becomes_one_row_per_task() -> None:
    throttled = by_task(parse_sacct(stdout("sacct_running")), THROTTLED)
    assert sorted(throttled) == list(range(10))
    pending = [throttled[index] for index in range(2, 10)]
    assert {row.state for row in pending} == {"PENDING"}
    assert {row.raw_job_id for row in pending} == {THROTTLED}  # still in the meta record
    assert all(row.node is None and row.start is None and row.end is None for row in pending)
    assert all(row.exit_code is None for row in pending)


def test_sacct_final_states_exit_codes_and_times() -> None:
    rows = parse_sacct(stdout("sacct_final"))
    outcomes = by_task(rows, OUTCOMES)
    assert {index: row.state for index, row in outcomes.items()} == {
        0: "COMPLETED",
        1: "FAILED",
        2: "FAILED",
        3: "TIMEOUT",
        4: "CANCELLED",  # printed "CANCELLED by 0"
        5: "COMPLETED",
    }
    timeout = outcomes[3]
    assert timeout.elapsed_seconds is not None and timeout.elapsed_seconds >= 60
    assert timeout.end is not None and timeout.start is not None
    assert (timeout.end - timeout.start).total_seconds() == timeout.elapsed_seconds
    # The allocation row says 0:0; the batch step (sacct_final_with_steps) says 0:15: the task
    # did not exit 0, Slurm ended it with SIGTERM.
    assert (timeout.exit_code, timeout.signal) == (None, 15)
    steps = stdout("sacct_final_with_steps")
    assert "44_3|50|TIMEOUT|0:0|" in steps and "44_3.batch|50.batch|CANCELLED|0:15|" in steps
    assert (outcomes[1].exit_code, outcomes[2].signal) == (3, 15)
    assert outcomes[5].elapsed_seconds == 20
    # tasks 3 and 5 were cancelled while pending: Slurm keeps no row for them at all
    assert sorted(by_task(rows, THROTTLED)) == [0, 1, 2, 4, 6, 7, 8, 9]
    assert by_task(rows, PLAIN)[None].state == "COMPLETED"


def test_sacct_step_lines_are_skipped() -> None:
    with_steps = stdout("sacct_final_with_steps")
    assert ".batch|" in with_steps
    assert parse_sacct(with_steps) == parse_sacct(stdout("sacct_final"))


def test_sacct_handwritten_states_and_edge_cases() -> None:
    rows = parse_sacct(HANDWRITTEN)
    tasks = by_task(rows, "900")
    assert (tasks[3].state, tasks[3].exit_code, tasks[3].signal) == ("OUT_OF_MEMORY", 0, 125)
    assert tasks[4].state == "NODE_FAIL" and tasks[4].node == "node[07-08]"
    assert tasks[5].state == "PREEMPTED"
    assert tasks[6].elapsed_seconds == 93784  # 1-02:03:04
    assert tasks[7].state == "REQUEUED" and tasks[7].exit_code is None
    assert tasks[8].state == "BOOT_FAIL" and tasks[8].start is None and tasks[8].exit_code == 1
    # "900_[1-2,9-11,13,15-1...%2]": cut by Slurm; the element the cut went through is dropped
    assert [i for i, row in sorted(tasks.items()) if row.state == "PENDING"] == [
        1,
        2,
        9,
        10,
        11,
        13,
    ]


def test_sacct_row_with_empty_fields() -> None:
    row = by_task(parse_sacct(HANDWRITTEN), "901")[None]
    assert row == TaskRow(
        "901", None, "901", "PENDING", None, None, None, None, None, None, None, ""
    )


def test_sacct_job_name_with_pipes_stays_whole() -> None:
    rows = [row for row in parse_sacct(HANDWRITTEN) if row.job_id == "902"]
    assert [row.task_index for row in rows] == [0, 1, 2, 3]
    assert {row.name for row in rows} == {"name|with|pipes"}
    assert rows[0].reason == "QOSMaxJobsPerUserLimit" and rows[0].start is None


def test_sacct_ignores_noise_lines() -> None:
    assert parse_sacct("\n\nnot sacct output\n|||\n") == []


def test_sacct_10000_rows_parse_each_row() -> None:
    # How fast is benchmarks/bench_poll.py's business; here only that every row comes out.
    template = stdout("sacct_final").splitlines()[1]  # a recorded COMPLETED task line
    array_id, rest = template.split("_", 1)
    index, raw, tail = rest.split("|", 2)
    text = "\n".join(f"{array_id}_{i}|{50000 + i}|{tail}" for i in range(10_000))
    rows = parse_sacct(text)
    assert len(rows) == 10_000 and rows[-1].task_index == 9_999
    assert {row.raw_job_id for row in rows} == {str(50000 + i) for i in range(10_000)}


def test_pending_range_of_10000_tasks_expands_to_every_task() -> None:
    line = "123_[0-9999%10]|123|PENDING|0:0|None assigned|Unknown|Unknown|00:00:00|JobHeldUser|x"
    rows = parse_sacct(line)
    assert [row.task_index for row in rows] == list(range(10_000))


# --------------------------------------------------------------------------- squeue


def test_squeue_argv() -> None:
    argv = squeue_argv(["5", "6"], names=["olp-x"])
    assert argv[:4] == [*QUERY_PREFIX, "squeue"]
    assert "--noheader" in argv and "--states=all" in argv
    assert "--format=" + SQUEUE_FORMAT in argv
    assert "--jobs=5,6" in argv and "--name=olp-x" in argv
    assert "-r" not in argv and "--array" not in argv  # ranges stay compressed
    assert "--states=all" not in squeue_argv(["5"], all_states=False)


def test_squeue_just_submitted_expands_whole_arrays() -> None:
    rows = parse_squeue(stdout("squeue_just_submitted"))
    assert sorted(by_task(rows, OUTCOMES)) == list(range(6))  # "0-5"
    assert sorted(by_task(rows, THROTTLED)) == list(range(10))  # "0-9%2"
    plain = by_task(rows, PLAIN)[None]  # index "N/A"
    assert (plain.state, plain.node, plain.start, plain.reason) == (
        "PENDING",
        None,
        None,
        "Priority",
    )
    assert all(row.state == "PENDING" and row.node is None for row in rows)


def test_squeue_fragmented_pending_range_after_cancel() -> None:
    rows = parse_squeue(stdout("squeue_after_cancel"))
    throttled = by_task(rows, THROTTLED)
    pending = sorted(i for i, row in throttled.items() if row.state == "PENDING")
    assert pending == [2, 4, 6, 7, 8, 9]  # printed "2,4,6-9%2"
    running = throttled[0]
    assert running.state == "RUNNING" and running.start is not None
    assert running.end is None  # squeue's %e is only an estimate while running
    outcomes = by_task(rows, OUTCOMES)
    assert outcomes[4].state == "CANCELLED"
    assert outcomes[1].exit_code is None  # squeue has no exit codes
    assert outcomes[0].exit_code == 0  # ... but COMPLETED means 0


def test_squeue_and_sacct_agree_on_finished_tasks() -> None:
    from_sacct = {(r.job_id, r.task_index): r for r in parse_sacct(stdout("sacct_final"))}
    from_squeue = {(r.job_id, r.task_index): r for r in parse_squeue(stdout("squeue_final"))}
    assert from_squeue.keys() == from_sacct.keys()
    for key, row in from_squeue.items():
        expected = from_sacct[key]
        assert (row.state, row.start, row.end, row.elapsed_seconds, row.raw_job_id) == (
            expected.state,
            expected.start,
            expected.end,
            expected.elapsed_seconds,
            expected.raw_job_id,
        ), key


def test_squeue_held_10000_task_array_is_one_line() -> None:
    text = stdout("squeue_held_array")
    assert len(text.splitlines()) == 1
    rows = parse_squeue(text)
    assert [row.task_index for row in rows] == list(range(10_000))
    assert {row.reason for row in rows} == {"JobHeldUser"}


# --------------------------------------------------------------------------- scancel


def test_scancel_argv() -> None:
    assert scancel_argv("57") == ["scancel", "57"]
    assert scancel_argv("57", [4]) == ["scancel", "57_4"]
    assert scancel_argv("57", [5, 1, 3, 4, 3]) == ["scancel", "57_[1,3-5]"]


def test_scancel_refuses_an_empty_index_list() -> None:
    with pytest.raises(ValueError):
        scancel_argv("57", [])  # would otherwise cancel the whole array


def test_scancel_refuses_a_bad_job_id() -> None:
    with pytest.raises(ValueError):
        scancel_argv("57 --user=alice")


# --------------------------------------------------------------------------- index ranges


@pytest.mark.parametrize(
    ("indices", "text"),
    [([0, 1, 2, 5], "0-2,5"), ([7], "7"), ([3, 1, 2, 2], "1-3"), ([0, 2, 4], "0,2,4")],
)
def test_compress_indices(indices: list[int], text: str) -> None:
    assert compress_indices(indices) == text


@pytest.mark.parametrize("bad", [[], [-1, 0]])
def test_compress_indices_refuses(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        compress_indices(bad)


@pytest.mark.parametrize(
    ("text", "indices"),
    [
        ("4-9%2", [4, 5, 6, 7, 8, 9]),
        ("[1,3,5-7]", [1, 3, 5, 6, 7]),
        ("0-15:4", [0, 4, 8, 12]),
        ("7", [7]),
        ("2,4,6-9%2", [2, 4, 6, 7, 8, 9]),
        ("[...%3]", []),
        ("0...%3", []),
        ("1,2...%3", [1]),
    ],
)
def test_expand_indices(text: str, indices: list[int]) -> None:
    assert expand_indices(text) == indices


def test_expand_indices_refuses_garbage() -> None:
    with pytest.raises(SlurmParseError):
        expand_indices("a-b")


def test_compress_and_expand_round_trip() -> None:
    rng = random.Random(20261123)
    for _ in range(200):
        indices = sorted(rng.sample(range(500), rng.randint(1, 60)))
        assert expand_indices(compress_indices(indices)) == indices


def test_array_spec() -> None:
    assert array_spec(10) == "0-9"
    assert array_spec(10, throttle=2) == "0-9%2"
    assert array_spec(1) == "0"
    with pytest.raises(ValueError):
        array_spec(0)


# --------------------------------------------------------------------------- times and codes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("1-00:00:00", 1440),
        ("2-00:00:00", 2880),
        ("2:00:00", 120),
        ("30", 30),
        ("30:30", 31),
        ("1-12", 2160),
        ("1-00:30", 1470),
        ("UNLIMITED", None),
        ("NONE", None),
        ("INFINITE", None),
    ],
)
def test_parse_time_limit(text: str, minutes: int | None) -> None:
    assert parse_time_limit(text) == minutes


def test_parse_time_limit_refuses_garbage() -> None:
    with pytest.raises(SlurmParseError):
        parse_time_limit("two hours")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1-02:03:04", 93784),
        ("02:03", 123),
        ("00:00:05", 5),
        ("1:27", 87),
        ("0:00", 0),
        ("00:00:05.123", 5),
        ("", None),
        ("INVALID", None),
    ],
)
def test_parse_elapsed(text: str, seconds: int | None) -> None:
    assert parse_elapsed(text) == seconds


@pytest.mark.parametrize(
    ("text", "pair"), [("3:0", (3, 0)), ("0:15", (0, 15)), ("0:125", (0, 125)), ("", (None, None))]
)
def test_parse_exit_code(text: str, pair: tuple[int | None, int | None]) -> None:
    assert parse_exit_code(text) == pair


def test_parse_slurm_time() -> None:
    assert parse_slurm_time("2026-11-23T09:04:36") == datetime(2026, 11, 23, 9, 4, 36)
    for missing in ("Unknown", "None", "N/A", ""):
        assert parse_slurm_time(missing) is None


# --------------------------------------------------------------------------- sinfo / scontrol


def test_sinfo_argv() -> None:
    assert commands.sinfo_argv() == [
        "sinfo",
        "--noheader",
        "--Node",
        "--format=" + commands.SINFO_FORMAT,
    ]


def test_parse_sinfo_recorded() -> None:
    report = commands.parse_sinfo(stdout("sinfo_nodes"))
    (node,) = report.nodes
    assert node == commands.Node("vm", "idle", "", 8, 0, 21694, ("debug", "long"))
    debug, long = report.partitions
    assert (debug.name, debug.default, debug.available, debug.time_limit_minutes) == (
        "debug",
        True,
        "up",
        120,
    )
    assert (long.name, long.default, long.time_limit_minutes) == ("long", False, 2880)
    assert debug.nodes == ("vm",) and debug.cpus == 8 and debug.max_node_memory_mb == 21694


def test_parse_sinfo_node_state_flags_and_allocation() -> None:
    text = (
        "n1|batch*|up|mixed|8|16000|UNLIMITED|4/4/0/8\n"
        "n2|batch*|up|idle*|8|16000|UNLIMITED|0/0/8/8\n"
    )
    report = commands.parse_sinfo(text)
    n1, n2 = report.nodes
    assert (n1.state, n1.flags, n1.cpus_allocated) == ("mixed", "", 4)
    assert (n2.state, n2.flags) == ("idle", "*")  # "*": not responding
    (batch,) = report.partitions
    assert batch.time_limit_minutes is None and batch.cpus == 16


def test_parse_scontrol_config_recorded() -> None:
    config = commands.parse_scontrol_config(stdout("scontrol_show_config"))
    assert config["SLURM_VERSION"] == "22.05.8"
    assert config["ClusterName"] == "olplocal"
    assert config["MaxArraySize"] == "10001"
    assert config["MinJobAge"] == "300 sec"
    assert config["AccountingStorageType"] == "accounting_storage/slurmdbd"
    assert not any(key.startswith("Configuration") for key in config)


def test_parse_scontrol_partitions_recorded() -> None:
    assert commands.scontrol_partitions_argv() == ["scontrol", "--oneliner", "show", "partition"]
    debug, long = commands.parse_scontrol_partitions(stdout("scontrol_show_partition"))
    assert debug["PartitionName"] == "debug" and debug["Default"] is True
    assert debug["MaxTime"] == 120 and long["MaxTime"] == 2880
    assert debug["DefaultTime"] is None  # NONE
    assert debug["MaxNodes"] is None  # UNLIMITED
    assert debug["TotalCPUs"] == 8 and debug["TotalNodes"] == 1
    assert debug["TRES"] == "cpu=8,mem=21694M,node=1,billing=8"
    assert debug["State"] == "UP" and long["Default"] is False


def test_parse_version_recorded() -> None:
    assert commands.version_argv() == ["sinfo", "--version"]
    assert commands.parse_version(stdout("sinfo_version")) == "22.05.8"
    with pytest.raises(SlurmParseError):
        commands.parse_version("sinfo: fatal: Could not establish a configuration source")
