"""Queue length for the admin's cluster view: an squeue argv builder and its parser.

Partitions and nodes come from :func:`portal.slurm.commands.sinfo_argv` /
:func:`~portal.slurm.commands.parse_sinfo`; this module adds how many array tasks wait or run,
per state, partition and pending reason, from ONE ``squeue`` call over every job.

A pending array stays on one squeue line (``45|2-9%2|PENDING|debug|JobArrayTaskLimit``): its
index expression is expanded to count the tasks it stands for, without ``--array`` (which would
print one line per task: 10,000 lines for a big sweep). The query runs with
:data:`~portal.slurm.commands.QUERY_ENV` so that expression is never cut short.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from portal.slurm.commands import QUERY_ENV, SlurmParseError, expand_indices
from portal.slurm.states import PENDING, RUNNING, normalize_state

#: squeue ``--format`` letters: array job id (job id for a plain job), array index (``N/A``,
#: one index, or a pending range such as ``2-9%2``), state, partition, reason. Reason last:
#: it is free text.
QUEUE_FORMAT = "%F|%K|%T|%P|%r"

_NO_INDEX = frozenset({"", "N/A"})


@dataclass(frozen=True)
class QueueSummary:
    """Array tasks in the queue, counted (a plain job counts as one task)."""

    jobs: int = 0
    by_state: Mapping[str, int] = field(default_factory=dict)
    by_partition: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    pending_reasons: Mapping[str, int] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        """Tasks waiting to start."""
        return self.by_state.get(PENDING, 0)

    @property
    def running(self) -> int:
        """Tasks running now."""
        return self.by_state.get(RUNNING, 0)

    @property
    def total(self) -> int:
        """Every task squeue lists (pending, running, completing, suspended...)."""
        return sum(self.by_state.values())


def queue_argv() -> list[str]:
    """``squeue --noheader`` over every job in squeue's default states (not finished ones)."""
    return [*QUERY_ENV, "squeue", "--noheader", "--format=" + QUEUE_FORMAT]


def task_count(index_text: str) -> int:
    """Tasks one squeue line stands for: 1 for a plain job or one task, else the range's size.

    Raises :class:`~portal.slurm.commands.SlurmParseError` for an unreadable expression.
    """
    text = index_text.strip()
    if text in _NO_INDEX or text.isdigit():
        return 1
    return len(expand_indices(text))


def parse_queue(stdout: str) -> QueueSummary:
    """Count the output of :func:`queue_argv` by state, partition and pending reason.

    Lines that do not have the expected fields are skipped; so is a line whose array range
    cannot be read (it would otherwise hide the whole queue).
    """
    jobs: set[str] = set()
    by_state: Counter[str] = Counter()
    by_partition: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    field_count = QUEUE_FORMAT.count("|") + 1
    for line in stdout.splitlines():
        fields = line.strip().split("|", field_count - 1)
        if len(fields) != field_count:
            continue
        job_id, index_text, raw_state, partition, reason = fields
        try:
            count = task_count(index_text)
        except SlurmParseError:
            continue
        state = normalize_state(raw_state)
        jobs.add(job_id)
        by_state[state] += count
        by_partition.setdefault(partition, Counter())[state] += count
        if state == PENDING and reason and reason != "None":
            reasons[reason] += count
    return QueueSummary(
        jobs=len(jobs),
        by_state=dict(by_state),
        by_partition={name: dict(counts) for name, counts in sorted(by_partition.items())},
        pending_reasons=dict(reasons.most_common()),
    )
