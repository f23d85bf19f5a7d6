"""What the cluster looks like right now, for the admin pages: partitions, nodes, queue length.

One ``sinfo`` call (partitions and nodes, :mod:`portal.slurm.commands`) and one ``squeue`` call
(tasks by state, :mod:`portal.slurm.status`) through the portal's own Slurm client, so the page
sees the cluster exactly as submissions do (local or SSH transport). When Slurm does not
answer, the status carries the reason instead of raising: the admin page shows it.

Pages that only need the partitions (the submit form) use :func:`page_client`: short command
timeouts and one cached sinfo per cluster, so a silent controller does not hold them. No Flask.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.commands import Node, Partition, SinfoReport, parse_sinfo, sinfo_argv
from portal.slurm.status import QueueSummary, parse_queue, queue_argv
from portal.slurm.transports import Transport, TransportError, transport_from_settings

#: Node states (sinfo ``%T`` without flags) in which a node takes or runs jobs.
HEALTHY_NODE_STATES = frozenset({"idle", "mixed", "allocated", "completing", "planned"})
#: What the flag characters sinfo appends to a node state mean (``idle*``, ``down~``).
NODE_FLAGS: dict[str, str] = {
    "*": "not responding",
    "~": "powered off",
    "#": "powering up",
    "!": "pending power down",
    "%": "powering down",
    "$": "in a maintenance reservation",
    "@": "pending reboot",
    "^": "reboot issued",
    "-": "planned by the backfill scheduler",
}


@dataclass(frozen=True)
class PartitionStatus:
    """One partition as the admin page shows it."""

    name: str
    default: bool
    state: str
    time_limit_minutes: int | None
    nodes: tuple[str, ...]
    cpus: int
    cpus_allocated: int
    node_states: Mapping[str, int]
    pending: int = 0
    running: int = 0

    @property
    def up(self) -> bool:
        """True when the partition accepts and starts jobs."""
        return self.state == "up"

    @property
    def time_limit(self) -> str:
        """The time limit for people: ``2 h``, ``2 days``, ``unlimited``."""
        return format_minutes(self.time_limit_minutes)


@dataclass(frozen=True)
class ClusterStatus:
    """Partitions, nodes and the queue; ``error`` says why Slurm could not be read."""

    partitions: tuple[PartitionStatus, ...] = ()
    nodes: tuple[Node, ...] = ()
    queue: QueueSummary | None = None
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def ok(self) -> bool:
        """True when both sinfo and squeue answered."""
        return self.error is None

    @property
    def cpus(self) -> int:
        """CPUs of every node (each node counted once)."""
        return sum(node.cpus for node in self.nodes)

    @property
    def cpus_allocated(self) -> int:
        """CPUs in use on every node."""
        return sum(node.cpus_allocated for node in self.nodes)

    @property
    def unhealthy_nodes(self) -> tuple[Node, ...]:
        """Nodes that are down, drained, failing or not responding."""
        return tuple(node for node in self.nodes if not node_healthy(node))


def node_healthy(node: Node) -> bool:
    """True for a node that takes jobs: a healthy state and not flagged as not responding."""
    return node.state in HEALTHY_NODE_STATES and "*" not in node.flags


def describe_flags(flags: str) -> str:
    """The meaning of sinfo's state flags (``"*"`` -> ``"not responding"``), comma separated."""
    return ", ".join(NODE_FLAGS.get(flag, flag) for flag in flags)


def format_minutes(minutes: int | None) -> str:
    """A Slurm time limit in words: ``unlimited``, ``45 min``, ``2 h``, ``1 h 30 min``,
    ``2 days``, ``1 day 6 h``."""
    if minutes is None:
        return "unlimited"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} h")
    if mins or not parts:
        parts.append(f"{mins} min")
    return " ".join(parts)


def summarize(report: SinfoReport, queue: QueueSummary | None) -> tuple[PartitionStatus, ...]:
    """Partition rows from one sinfo report, with their allocated CPUs, node states and (when
    the queue is known) pending/running task counts."""
    by_name = {node.name: node for node in report.nodes}
    rows = []
    for partition in report.partitions:
        rows.append(_partition_status(partition, by_name, queue))
    return tuple(rows)


def _partition_status(
    partition: Partition, nodes: Mapping[str, Node], queue: QueueSummary | None
) -> PartitionStatus:
    members = [nodes[name] for name in partition.nodes if name in nodes]
    counts = (queue.by_partition.get(partition.name, {}) if queue else {}) or {}
    return PartitionStatus(
        name=partition.name,
        default=partition.default,
        state=partition.available,
        time_limit_minutes=partition.time_limit_minutes,
        nodes=partition.nodes,
        cpus=partition.cpus,
        cpus_allocated=sum(node.cpus_allocated for node in members),
        node_states=dict(Counter(node.state + node.flags for node in members)),
        pending=counts.get("PENDING", 0),
        running=counts.get("RUNNING", 0),
    )


def read_cluster_status(client: SlurmClient) -> ClusterStatus:
    """Ask Slurm (one sinfo, one squeue) through ``client``; never raises for Slurm trouble.

    If sinfo fails, squeue is not tried (it would fail the same way and double the wait).
    """
    try:
        report = parse_sinfo(_output(client, sinfo_argv()))
        queue = parse_queue(_output(client, queue_argv()))
    except SlurmError as exc:
        return ClusterStatus(error=f"Slurm answered with an error: {exc}")
    except TransportError as exc:
        return ClusterStatus(error=f"Slurm could not be reached: {exc}")
    return ClusterStatus(partitions=summarize(report, queue), nodes=report.nodes, queue=queue)


def _output(client: SlurmClient, argv: list[str]) -> str:
    result = client.transport.run(argv, timeout=client.timeout)
    if not result.ok:
        raise SlurmError(argv, result.returncode, result.stderr)
    return result.stdout


# --------------------------------------------------------------------------- pages' sinfo

#: How long a page's Slurm commands may run, and how long a page waits for sinfo (seconds).
PAGE_SLURM_TIMEOUT_S = 3.0
#: How long an sinfo answer is kept, and how long a silence or an error is (seconds).
SINFO_TTL_S = 30.0
SINFO_ERROR_TTL_S = 10.0


class ClusterSilent(TransportError):
    """Slurm did not answer a page's sinfo in time: the page says so instead of waiting."""


@dataclass
class _Ask:
    """One sinfo of one cluster: asked at ``started``, answered (or failed) at ``done_at``."""

    future: Future[SinfoReport]
    started: float
    done_at: float | None = None

    def stale(self, now: float) -> bool:
        if self.done_at is None:
            return False  # still asking: join it
        failed = self.future.exception() is not None
        return now - self.done_at > (SINFO_ERROR_TTL_S if failed else SINFO_TTL_S)


class SinfoCache:
    """The last sinfo of each cluster, asked in a daemon thread (one at a time per cluster)
    and waited for at most ``wait_s`` from when it was asked, so a controller that does not
    answer costs one page that long and the next pages nothing."""

    def __init__(self, wait_s: float = PAGE_SLURM_TIMEOUT_S) -> None:
        self.wait_s = wait_s
        self.lock = threading.Lock()
        self.asks: dict[str, _Ask] = {}

    def report(self, key: str, ask: Callable[[], SinfoReport]) -> SinfoReport:
        """sinfo of cluster ``key`` (``ask`` runs it); raises the error it ended with, or
        :class:`ClusterSilent` when it has not answered ``wait_s`` after it was asked."""
        now = time.monotonic()
        with self.lock:
            current = self.asks.get(key)
            if current is None or current.stale(now):
                current = self.asks[key] = _Ask(Future(), now)
                threading.Thread(
                    target=self._run, args=(current, ask), name="sinfo", daemon=True
                ).start()
        try:
            return current.future.result(timeout=max(0.0, current.started + self.wait_s - now))
        except FutureTimeout:
            raise ClusterSilent(f"sinfo did not answer within {self.wait_s:g} s") from None

    @staticmethod
    def _run(current: _Ask, ask: Callable[[], SinfoReport]) -> None:
        current.future.set_running_or_notify_cancel()
        try:
            current.future.set_result(ask())
        except Exception as exc:  # noqa: BLE001 - handed to every page that waits for it
            current.future.set_exception(exc)
        current.done_at = time.monotonic()  # after the answer: stale() never waits on it


_SINFO = SinfoCache()


class PageClient(SlurmClient):
    """A Slurm client for pages (the submit form): its commands time out after
    :data:`PAGE_SLURM_TIMEOUT_S` and ``sinfo`` comes from the process's :class:`SinfoCache`."""

    def __init__(self, transport: Transport, cluster: str) -> None:
        super().__init__(transport, timeout=PAGE_SLURM_TIMEOUT_S)
        self.cluster = cluster

    def sinfo(self) -> SinfoReport:
        """Partitions and nodes, at most :data:`SINFO_TTL_S` old; see :class:`SinfoCache`."""
        return _SINFO.report(self.cluster, super().sinfo)


def page_client(settings: Mapping[str, Any]) -> PageClient:
    """A :class:`PageClient` for the portal's cluster (the service account's transport)."""
    key = ":".join(
        str(settings.get(name) or "")
        for name in ("SLURM_TRANSPORT", "SLURM_SSH_HOST", "SLURM_SSH_PORT", "SLURM_SSH_USER")
    )
    return PageClient(transport_from_settings(settings), key)
