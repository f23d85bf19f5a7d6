"""Queue summary (portal.slurm.status) and the admin's cluster status (portal.cluster.overview),
on sinfo/squeue output recorded from Slurm 22.05 (tests/data/slurm/status/record.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.cluster.overview import (
    describe_flags,
    format_minutes,
    node_healthy,
    read_cluster_status,
)
from portal.slurm.client import SlurmClient
from portal.slurm.commands import Node, SlurmParseError, parse_sinfo
from portal.slurm.status import QUEUE_FORMAT, parse_queue, queue_argv, task_count
from portal.slurm.testing import ScriptedTransport, recorded_result
from portal.slurm.transports import CommandResult, TransportError

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
STATUS = DATA / "status"


def recorded(name: str) -> CommandResult:
    return recorded_result(STATUS, name)


# --------------------------------------------------------------------------- squeue


def test_queue_argv_asks_every_job_with_full_array_ranges():
    argv = queue_argv()
    assert argv[:3] == ["env", "SLURM_BITSTR_LEN=0", "SLURM_TIME_FORMAT=standard"]
    assert argv[3:] == ["squeue", "--noheader", "--format=" + QUEUE_FORMAT]
    assert "--array" not in argv and not any(a.startswith("--states") for a in argv)


@pytest.mark.parametrize(
    ("text", "count"),
    [("N/A", 1), ("", 1), ("7", 1), ("2-5%2", 4), ("0-99%10", 100), ("1,3,5-7", 5), ("[4-9]", 6)],
)
def test_task_count_of_one_squeue_line(text, count):
    assert task_count(text) == count


def test_task_count_refuses_garbage():
    with pytest.raises(SlurmParseError):
        task_count("a-b")


def test_recorded_queue_counts_tasks_by_state_partition_and_reason():
    summary = parse_queue(recorded("squeue_queue").stdout)
    # 304: 6-task array throttled to 2 (2 running, 2-5 pending); 305: held 100-task array in
    # "long"; 306: plain running job; 307: a job wanting all 8 CPUs; 310: a 2-task array.
    assert summary.jobs == 5
    assert summary.running == 3
    assert summary.pending == 4 + 1 + 2 + 100
    assert summary.total == 110
    assert summary.by_partition == {
        "debug": {"PENDING": 7, "RUNNING": 3},
        "long": {"PENDING": 100},
    }
    assert summary.pending_reasons == {
        "JobHeldUser": 100,
        "JobArrayTaskLimit": 4,
        "Priority": 2,
        "Resources": 1,
    }
    assert list(summary.pending_reasons)[0] == "JobHeldUser"  # most tasks first


def test_queue_parser_skips_short_and_unreadable_lines():
    text = "12|N/A|RUNNING|debug|None\nnot squeue output\n13|x-y|PENDING|debug|Priority\n"
    summary = parse_queue(text)
    assert summary.jobs == 1 and summary.by_state == {"RUNNING": 1}
    assert parse_queue("").total == 0


def test_queue_reason_may_contain_the_separator():
    summary = parse_queue("12|N/A|PENDING|debug|Reservation|odd\n")
    assert summary.pending_reasons == {"Reservation|odd": 1}


# --------------------------------------------------------------------------- cluster status


def client_for(script) -> tuple[SlurmClient, ScriptedTransport]:
    transport = ScriptedTransport(script)
    return SlurmClient(transport, timeout=7), transport


def test_cluster_status_from_one_sinfo_and_one_squeue():
    client, transport = client_for(
        {"sinfo": recorded("sinfo_nodes_busy"), "squeue": recorded("squeue_queue")}
    )
    status = read_cluster_status(client)
    assert status.ok and status.error is None
    assert transport.programs() == ["sinfo", "squeue"]
    debug, long = status.partitions
    assert (debug.name, debug.default, debug.up, debug.time_limit) == ("debug", True, True, "2 h")
    assert (long.name, long.default, long.time_limit) == ("long", False, "2 days")
    assert debug.nodes == ("vm",) and debug.cpus == 8 and debug.cpus_allocated == 3
    assert debug.node_states == {"mixed": 1}
    assert (debug.pending, debug.running) == (7, 3)
    assert (long.pending, long.running) == (100, 0)
    [node] = status.nodes
    assert (node.name, node.state, node.cpus, node.cpus_allocated) == ("vm", "mixed", 8, 3)
    assert node.partitions == ("debug", "long")
    assert status.cpus == 8 and status.cpus_allocated == 3
    assert status.unhealthy_nodes == ()
    assert status.queue is not None and status.queue.pending == 107


def test_controller_down_is_reported_not_raised_and_squeue_is_not_tried():
    client, transport = client_for({"sinfo": recorded("sinfo_controller_down")})
    status = read_cluster_status(client)
    assert not status.ok and status.partitions == () and status.queue is None
    assert status.error == (
        "Slurm answered with an error: sinfo failed: slurm_load_partitions: "
        "Unable to contact slurm controller (connect failure)"
    )
    assert transport.programs() == ["sinfo"]


def test_squeue_failure_after_sinfo_is_reported():
    client, _ = client_for(
        {"sinfo": recorded("sinfo_nodes_busy"), "squeue": recorded("squeue_controller_down")}
    )
    status = read_cluster_status(client)
    assert not status.ok
    assert "squeue failed: slurm_load_jobs error: Unable to contact slurm controller" in (
        status.error or ""
    )


class _Unreachable:
    def run(self, argv, *, stdin=None, timeout=60):
        raise TransportError("cannot connect to login:22: [Errno 111] Connection refused")


def test_unreachable_transport_is_reported():
    status = read_cluster_status(SlurmClient(_Unreachable()))
    assert status.error == (
        "Slurm could not be reached: cannot connect to login:22: [Errno 111] Connection refused"
    )


def test_idle_cluster_from_the_first_recording():
    client, _ = client_for(
        {"sinfo": recorded_result(DATA, "sinfo_nodes"), "squeue": [CommandResult(0, "", "")]}
    )
    status = read_cluster_status(client)
    assert [p.node_states for p in status.partitions] == [{"idle": 1}, {"idle": 1}]
    assert status.queue is not None and status.queue.total == 0 and status.queue.jobs == 0


# --------------------------------------------------------------------------- small helpers


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (None, "unlimited"),
        (0, "0 min"),
        (45, "45 min"),
        (120, "2 h"),
        (90, "1 h 30 min"),
        (1440, "1 day"),
        (2880, "2 days"),
        (1440 + 360, "1 day 6 h"),
    ],
)
def test_format_minutes(minutes, text):
    assert format_minutes(minutes) == text


def node(state: str, flags: str = "") -> Node:
    return Node("n1", state, flags, 4, 0, 1000, ("debug",))


def test_node_health_from_state_and_flags():
    assert node_healthy(node("idle")) and node_healthy(node("mixed"))
    assert node_healthy(node("idle", "~"))  # powered off by power saving: still usable
    assert not node_healthy(node("idle", "*"))  # not responding
    for state in ("down", "drained", "draining", "fail", "unknown"):
        assert not node_healthy(node(state))
    assert describe_flags("*~") == "not responding, powered off"


def test_sinfo_flags_are_split_from_the_state():
    [parsed] = parse_sinfo("vm|debug*|up|down*|8|21694|2:00:00|0/0/8/8\n").nodes
    assert (parsed.state, parsed.flags) == ("down", "*")
    assert describe_flags(parsed.flags) == "not responding"
