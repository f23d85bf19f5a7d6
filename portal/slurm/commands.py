"""Slurm command lines (argv builders) and output parsers, as plain functions.

Builders return an argv list (never a shell string): a transport runs it as-is, locally
without a shell or over SSH with every word quoted. Parsers take the text Slurm printed and
return plain values; they raise :class:`SlurmParseError` only when output is unusable.

The read-only query commands (``sacct``, ``squeue``) are prefixed with
``env SLURM_BITSTR_LEN=0 SLURM_TIME_FORMAT=standard``: Slurm otherwise truncates a pending
array's index expression (``123_[1,3,5,...]``) to 64 bytes, and a site or user profile may
switch timestamps to a relative format. Submission and cancel commands are not prefixed, so a
sudoers rule can name ``sbatch`` and ``scancel`` directly.

Timestamps are returned as naive :class:`datetime` values in the cluster's local time, exactly
as Slurm prints them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from portal.slurm.states import ACTIVE, COMPLETED, PENDING, TERMINAL, TIMEOUT, normalize_state

#: Environment prefix for query commands (see the module docstring).
QUERY_ENV: tuple[str, ...] = ("env", "SLURM_BITSTR_LEN=0", "SLURM_TIME_FORMAT=standard")

#: sacct columns, in output order. JobName is last so a ``|`` inside a name cannot shift columns.
SACCT_FIELDS: tuple[str, ...] = (
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "NodeList",
    "Start",
    "End",
    "Elapsed",
    "Reason",
    "JobName",
)

#: squeue ``--format`` letters, in output order (name last, as above): array job id, array
#: index (``N/A`` or a pending range), raw job id, state, nodes, start, end, time used, reason.
SQUEUE_FORMAT = "%F|%K|%A|%T|%N|%S|%e|%M|%r|%j"

#: sinfo per-node ``--format``: node, partition (``*`` marks the default), partition
#: availability, node state, CPUs, memory MB, partition time limit, CPUs alloc/idle/other/total.
SINFO_FORMAT = "%N|%P|%a|%T|%c|%m|%l|%C"

#: How far back ``sacct`` looks when no job id narrows the search (sacct's own default is
#: midnight today, which would miss yesterday's submissions).
DEFAULT_SACCT_LOOKBACK = "now-30days"

#: Longest pending reason kept (the database column's size).
MAX_REASON_LENGTH = 255

_NO_VALUE = frozenset({"", "Unknown", "None", "N/A", "NONE", "(null)", "None assigned"})
_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "NONE", "NOT_SET", "Partition_Limit", "N/A"})
_JOB_ID = re.compile(r"^\d+$")
#: Slurm account, QOS and user names the portal passes on (no spaces, quotes or options).
SLURM_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")
_SLURM_USER_RE = SLURM_NAME_RE
_NODE_STATE_FLAGS = "*~#!%$@^-+"


class SlurmParseError(ValueError):
    """Slurm printed something this module cannot interpret."""


class TaskRow(NamedTuple):
    """One job-array task (or one plain job) as reported by sacct, squeue or pyslurm.

    Immutable and typed; a NamedTuple rather than a frozen dataclass because a frozen
    dataclass costs several times more per instance and a poll cycle builds 10,000+ of them.

    ``job_id`` is the array's job id (the id sbatch printed); ``task_index`` is None for a
    job that is not an array. ``raw_job_id`` is Slurm's own id for the task; tasks still
    pending inside the array's meta record report the array's id there. ``exit_code`` and
    ``signal`` are set only once the task is terminal (Slurm prints ``0:0`` before that).
    """

    job_id: str
    task_index: int | None
    raw_job_id: str
    state: str
    exit_code: int | None = None
    signal: int | None = None
    node: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    elapsed_seconds: int | None = None
    reason: str | None = None
    name: str = ""


@dataclass(frozen=True, slots=True)
class Node:
    """A compute node as sinfo reports it."""

    name: str
    state: str
    flags: str
    cpus: int
    cpus_allocated: int
    memory_mb: int
    partitions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Partition:
    """A partition summarised from sinfo's per-node lines."""

    name: str
    default: bool
    available: str
    time_limit_minutes: int | None
    nodes: tuple[str, ...]
    cpus: int
    max_node_memory_mb: int


@dataclass(frozen=True, slots=True)
class SinfoReport:
    """Partitions and nodes from one ``sinfo`` call."""

    partitions: tuple[Partition, ...]
    nodes: tuple[Node, ...]


# --------------------------------------------------------------------------- small helpers


def compress_indices(indices: Iterable[int]) -> str:
    """Render task indices as a Slurm range list: ``[0, 1, 2, 5]`` -> ``"0-2,5"``."""
    ordered = sorted(set(indices))
    if not ordered:
        raise ValueError("no task indices")
    if ordered[0] < 0:
        raise ValueError(f"negative task index: {ordered[0]}")
    parts: list[str] = []
    start = previous = ordered[0]
    for index in ordered[1:]:
        if index != previous + 1:
            parts.append(_range_text(start, previous))
            start = index
        previous = index
    parts.append(_range_text(start, previous))
    return ",".join(parts)


def _range_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def expand_indices(expression: str) -> list[int]:
    """Expand a Slurm index expression: ``"4-9%2"``, ``"1,3,5-7"``, ``"0-15:4"``.

    A ``%throttle`` suffix is ignored. Slurm cuts long expressions with ``...`` unless
    ``SLURM_BITSTR_LEN=0`` (which :data:`QUERY_ENV` sets); if one arrives anyway, the element
    the cut went through is dropped and the complete ones before it are returned.
    """
    body = expression.strip().strip("[]").split("%", 1)[0]
    parts = body.split(",")
    if "..." in body:
        parts = body[: body.index("...")].split(",")[:-1]
    try:
        return [index for part in parts if part for index in _expand_range(part)]
    except ValueError as exc:
        raise SlurmParseError(f"bad array index expression {expression!r}") from exc


def _expand_range(part: str) -> range:
    step = 1
    if ":" in part:
        part, step_text = part.split(":", 1)
        step = int(step_text)
    if "-" in part:
        first, last = part.split("-", 1)
        return range(int(first), int(last) + 1, step)
    return range(int(part), int(part) + 1)


def array_spec(count: int, throttle: int = 0) -> str:
    """The ``--array`` value for ``count`` tasks: ``array_spec(10, 2)`` -> ``"0-9%2"``."""
    if count < 1:
        raise ValueError("an array needs at least one task")
    spec = "0" if count == 1 else f"0-{count - 1}"
    return f"{spec}%{throttle}" if throttle > 0 else spec


def parse_time_limit(text: str) -> int | None:
    """Slurm time limit -> minutes (seconds round up); ``UNLIMITED``/``NONE`` -> None.

    Accepts ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``.
    """
    text = text.strip()
    if text in _UNLIMITED or not text:
        return None
    try:
        days, clock = _split_days(text)
        parts = [int(part) for part in clock.split(":")] if clock else []
    except ValueError as exc:
        raise SlurmParseError(f"bad time limit {text!r}") from exc
    if days is not None:
        hours, minutes, seconds = (parts + [0, 0, 0])[:3]
    elif len(parts) == 1:
        hours, minutes, seconds = 0, parts[0], 0
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        raise SlurmParseError(f"bad time limit {text!r}")
    return (days or 0) * 1440 + hours * 60 + minutes + math.ceil(seconds / 60)


def _split_days(text: str) -> tuple[int | None, str]:
    if "-" in text:
        days, clock = text.split("-", 1)
        return int(days), clock
    return None, text


def parse_elapsed(text: str) -> int | None:
    """Elapsed time -> seconds: ``"1-02:03:04"``, ``"02:03:04"``, ``"2:03"`` (M:SS), ``"5"``.

    Fractions (``"00:00:05.123"``) are dropped; unknown or invalid values (``""``,
    ``INVALID``) give None.
    """
    text = text.strip().partition(".")[0]
    if not text or not text[0].isdigit():
        return None
    try:
        days, clock = _split_days(text)
        seconds = 0
        for part in clock.split(":")[-3:]:
            seconds = seconds * 60 + int(part)
    except ValueError:
        return None
    return (days or 0) * 86400 + seconds


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """``"3:0"`` -> ``(3, 0)``; ``"0:15"`` -> ``(0, 15)``; empty -> ``(None, None)``."""
    code, _, signal = text.strip().partition(":")
    try:
        return int(code), int(signal) if signal else None
    except ValueError:
        return None, None


def parse_slurm_time(text: str) -> datetime | None:
    """``2024-05-01T10:00:00`` -> naive datetime; ``Unknown``/``None``/empty -> None."""
    if text in _NO_VALUE:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _optional(text: str) -> str | None:
    return None if text in _NO_VALUE else text


def _check_job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise ValueError(f"not a Slurm job id: {job_id!r}")
    return job_id


def _check_names(names: Sequence[str]) -> list[str]:
    for name in names:
        if not name or "," in name:
            raise ValueError(f"job name unusable in a name filter: {name!r}")
    return list(names)


def _time_arg(since: datetime | str) -> str:
    return since.strftime("%Y-%m-%dT%H:%M:%S") if isinstance(since, datetime) else since


# --------------------------------------------------------------------------- sbatch


def sbatch_argv(script_path: str | None = None, *, test_only: bool = False) -> list[str]:
    """``sbatch --parsable [--test-only] [script]``; without a path sbatch reads stdin."""
    argv = ["sbatch", "--parsable"]
    if test_only:
        argv.append("--test-only")
    if script_path is not None:
        argv.append(script_path)
    return argv


def parse_sbatch(stdout: str) -> str:
    """Job id from ``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    job_id = lines[-1].split(";", 1)[0] if lines else ""
    if not _JOB_ID.match(job_id):
        raise SlurmParseError(f"sbatch printed no job id: {stdout!r}")
    return job_id


_TEST_ONLY = re.compile(r"^(?:sbatch: )?(Job \d+ to start at .*)$", re.MULTILINE)


def parse_test_only(stderr: str) -> str:
    """The scheduler's estimate from ``sbatch --test-only`` (printed on stderr)."""
    match = _TEST_ONLY.search(stderr)
    if match is None:
        raise SlurmParseError(f"sbatch --test-only printed no estimate: {stderr!r}")
    return match.group(1).strip()


# --------------------------------------------------------------------------- sacct


def sacct_argv(
    job_ids: Sequence[str] = (),
    *,
    names: Sequence[str] = (),
    since: datetime | str | None = None,
    allocations_only: bool = True,
) -> list[str]:
    """One ``sacct --parsable2 --noheader`` call for many jobs.

    With job ids sacct searches from the epoch; otherwise ``--starttime`` defaults to
    :data:`DEFAULT_SACCT_LOOKBACK` (sacct's own default, midnight, misses older jobs).
    ``allocations_only`` (``-X``) leaves out ``.batch``/``.extern`` steps, which is cheaper;
    the parser skips step lines either way.
    """
    argv = [
        *QUERY_ENV,
        "sacct",
        "--parsable2",
        "--noheader",
        "--allusers",
        "--format=" + ",".join(SACCT_FIELDS),
    ]
    if allocations_only:
        argv.append("--allocations")
    if job_ids:
        argv.append("--jobs=" + ",".join(_check_job_id(job_id) for job_id in job_ids))
    if names:
        argv.append("--name=" + ",".join(_check_names(names)))
    if since is not None:
        argv.append("--starttime=" + _time_arg(since))
    elif not job_ids:
        argv.append("--starttime=" + DEFAULT_SACCT_LOOKBACK)
    return argv


def parse_sacct(stdout: str) -> list[TaskRow]:
    """Parse ``sacct --parsable2 --noheader --format=<SACCT_FIELDS>`` output.

    Step lines (``123.batch``, ``123_4.0``) are skipped; a pending range such as
    ``123_[4-9%2]`` becomes one row per index. Repeated values (states, exit codes, elapsed
    times) are parsed once per call, which keeps 10,000 rows in the low milliseconds.
    """
    rows: list[TaskRow] = []
    elapsed_memo = _Memo(parse_elapsed)
    time_memo = _Memo(parse_slurm_time)
    last = len(SACCT_FIELDS) - 1
    for line in stdout.splitlines():
        fields = line.split("|", last)
        if len(fields) <= last:
            continue
        job_field, raw_id, state, exit_code, node, start, end, elapsed, reason, name = fields
        if not job_field or ("." in job_field and _is_step(job_field)):
            continue
        state = _STATES[state]
        code, signal = _EXIT_CODES[exit_code] if state in TERMINAL else _NO_EXIT
        if state == TIMEOUT and code == 0 and not signal:
            # The allocation row of a timed-out task says 0:0; its batch step, which --allocations
            # leaves out, says 0:15: Slurm ended it with SIGTERM. It never exited on its own.
            code, signal = None, SIGTERM
        values = (
            state,
            code,
            signal,
            None if node in _NO_VALUE else node,
            time_memo[start],
            time_memo[end],
            elapsed_memo[elapsed],
            None if reason in _NO_VALUE else reason,
            name,
        )
        job_id, sep, index_text = job_field.partition("_")
        if sep and index_text[0] != "[":
            rows.append(TaskRow(job_id, int(index_text), raw_id or job_id, *values))
        else:
            _append_rows(rows, job_field, raw_id, values)
    return rows


def _is_step(job_field: str) -> bool:
    """``123.batch``, ``123_4.0`` are steps; ``123_[1,2...%2]`` (a cut range) is not."""
    return "." in job_field.rpartition("]")[2]


class _Memo(dict[str, Any]):
    """A dict that computes (and keeps) a missing value with ``func``."""

    def __init__(self, func: Callable[[str], Any]) -> None:
        super().__init__()
        self.func = func

    def __missing__(self, key: str) -> Any:
        value = self[key] = self.func(key)
        return value


# Bounded vocabularies, safe to memoize for the life of the process.
_STATES = _Memo(normalize_state)
_EXIT_CODES = _Memo(parse_exit_code)
_NO_EXIT = (None, None)
SIGTERM = 15


def _append_rows(rows: list[TaskRow], job_field: str, raw_id: str, values: tuple[Any, ...]) -> None:
    """Append the row(s) one JobID field stands for (``123``, ``123_4``, ``123_[4-9%2]``)."""
    job_id, sep, index_text = job_field.partition("_")
    raw_id = raw_id or job_id
    if not sep:
        rows.append(TaskRow(job_id, None, raw_id, *values))
    elif index_text[0] == "[":
        rows.extend(TaskRow(job_id, index, raw_id, *values) for index in expand_indices(index_text))
    else:
        rows.append(TaskRow(job_id, int(index_text), raw_id, *values))


def may_have_started(row: TaskRow) -> bool:
    """True for a task sacct reports PENDING that slurmctld may already have started.

    slurmdbd records starts asynchronously (seconds late on a busy controller): for a while
    sacct shows such a job PENDING, yet already with its node and start time (recorded in
    ``sacct_start_lag``). A pending task without either, held or queued, cannot have started.
    """
    return row.state == PENDING and (row.node is not None or row.start is not None)


def pending_reason(row: TaskRow) -> str | None:
    """Why Slurm keeps the task of ``row`` waiting (``Priority``, ``Resources``,
    ``JobHeldUser``...: squeue's ``%r``), at most :data:`MAX_REASON_LENGTH` characters; None
    unless the task is PENDING (a reason left over from before the start means nothing)."""
    if row.state != PENDING or not row.reason:
        return None
    return row.reason[:MAX_REASON_LENGTH]


# --------------------------------------------------------------------------- squeue


def squeue_argv(
    job_ids: Sequence[str] = (),
    *,
    names: Sequence[str] = (),
    all_states: bool = True,
    states: Sequence[str] = (),
) -> list[str]:
    """``squeue --noheader`` for jobs and/or names; pending array tasks stay on one line.

    ``all_states`` adds ``--states=all`` so tasks that finished within MinJobAge still show;
    ``states`` (e.g. ``["RUNNING"]``) asks for those states only.
    """
    argv = [*QUERY_ENV, "squeue", "--noheader", "--format=" + SQUEUE_FORMAT]
    if states:
        argv.append("--states=" + ",".join(_check_names(states)))
    elif all_states:
        argv.append("--states=all")
    if job_ids:
        argv.append("--jobs=" + ",".join(_check_job_id(job_id) for job_id in job_ids))
    if names:
        argv.append("--name=" + ",".join(_check_names(names)))
    return argv


def job_records_argv() -> list[str]:
    """``squeue`` listing one array-task field per job record line (pending arrays stay
    compact: ``0-9999%10``), every state, every user squeue lets us see."""
    return [*QUERY_ENV, "squeue", "--noheader", "--states=all", "--format=%K"]


def count_job_records(stdout: str) -> int:
    """How many job records slurmctld holds (what MaxJobCount limits) from
    :func:`job_records_argv` output: a plain job is one, every array task is one."""
    count = 0
    for line in stdout.split():
        count += 1 if line in _NO_VALUE else len(expand_indices(_bracket(line)))
    return count


def parse_squeue(stdout: str) -> list[TaskRow]:
    """Parse ``squeue --format=<SQUEUE_FORMAT>`` output into :class:`TaskRow` values.

    squeue knows no exit codes; start/end are only kept once a task has really started
    (squeue prints expected times for pending and running jobs).
    """
    rows: list[TaskRow] = []
    field_count = SQUEUE_FORMAT.count("|") + 1
    for line in stdout.splitlines():
        fields = line.split("|", field_count - 1)
        if len(fields) != field_count:
            continue
        array_id, index_text, raw_id, raw_state, node, start, end, used, reason, name = fields
        state = _STATES[raw_state]
        started = state != PENDING
        finished = started and state not in ACTIVE
        job_field = array_id if index_text in _NO_VALUE else f"{array_id}_{_bracket(index_text)}"
        values = (
            state,
            0 if state == COMPLETED else None,
            None,
            _optional(node),
            parse_slurm_time(start) if started else None,
            parse_slurm_time(end) if finished else None,
            parse_elapsed(used),
            _optional(reason),
            name,
        )
        job_id, sep, index_text = job_field.partition("_")
        if sep and index_text[0] != "[":
            rows.append(TaskRow(job_id, int(index_text), raw_id or job_id, *values))
        else:
            _append_rows(rows, job_field, raw_id, values)
    return rows


def _bracket(index_text: str) -> str:
    return index_text if index_text.isdigit() else f"[{index_text.strip('[]')}]"


# --------------------------------------------------------------------------- scancel


def scancel_argv(job_id: str, indices: Sequence[int] | None = None) -> list[str]:
    """``scancel 123`` or, for some tasks only, ``scancel 123_[1,3-5]``.

    An empty ``indices`` list is refused: it would otherwise cancel the whole array.
    """
    _check_job_id(job_id)
    if indices is None:
        return ["scancel", job_id]
    unique = sorted(set(indices))
    if len(unique) == 1:
        return ["scancel", f"{job_id}_{unique[0]}"]
    return ["scancel", f"{job_id}_[{compress_indices(unique)}]"]


# --------------------------------------------------------------------------- sinfo


def sinfo_argv() -> list[str]:
    """``sinfo --noheader --Node`` with one line per node and partition."""
    return ["sinfo", "--noheader", "--Node", "--format=" + SINFO_FORMAT]


def parse_sinfo(stdout: str) -> SinfoReport:
    """Partitions and nodes from ``sinfo --Node --format=<SINFO_FORMAT>`` output."""
    node_lines: dict[str, list[list[str]]] = {}
    partition_lines: dict[str, list[list[str]]] = {}
    field_count = SINFO_FORMAT.count("|") + 1
    for line in stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != field_count:
            continue
        node_lines.setdefault(fields[0], []).append(fields)
        partition_lines.setdefault(fields[1], []).append(fields)
    nodes = tuple(_node_from(lines) for lines in node_lines.values())
    memory = {node.name: node.memory_mb for node in nodes}
    cpus = {node.name: node.cpus for node in nodes}
    partitions = tuple(_partition_from(lines, cpus, memory) for lines in partition_lines.values())
    return SinfoReport(partitions=partitions, nodes=nodes)


def _node_from(lines: list[list[str]]) -> Node:
    name, _, _, state, cpus, memory, _, cpu_counts = lines[0]
    allocated = cpu_counts.split("/", 1)[0]
    return Node(
        name=name,
        state=state.rstrip(_NODE_STATE_FLAGS),
        flags=state[len(state.rstrip(_NODE_STATE_FLAGS)) :],
        cpus=_int(cpus),
        cpus_allocated=_int(allocated),
        memory_mb=_int(memory),
        partitions=tuple(fields[1].rstrip("*") for fields in lines),
    )


def _partition_from(
    lines: list[list[str]], cpus: dict[str, int], memory: dict[str, int]
) -> Partition:
    _, name, available, _, _, _, time_limit, _ = lines[0]
    nodes = tuple(fields[0] for fields in lines)
    return Partition(
        name=name.rstrip("*"),
        default=name.endswith("*"),
        available=available,
        time_limit_minutes=parse_time_limit(time_limit),
        nodes=nodes,
        cpus=sum(cpus[node] for node in nodes),
        max_node_memory_mb=max(memory[node] for node in nodes),
    )


def _int(text: str) -> int:
    """Leading integer of a sinfo/scontrol number (``"7936"``, ``"2+"``); 0 if none."""
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


# --------------------------------------------------------------------------- associations


def associations_argv(user: str) -> list[str]:
    """``sacctmgr`` listing the accounts and QOS ``user`` may use (one line per association)."""
    if not _SLURM_USER_RE.fullmatch(user):
        raise ValueError(f"invalid user name {user!r}")
    return [
        "sacctmgr",
        "--noheader",
        "--parsable2",
        "show",
        "associations",
        f"where=user={user}",
        "format=account,qos",
    ]


def parse_associations(stdout: str) -> dict[str, tuple[str, ...]]:
    """``account|qos1,qos2`` lines -> {account: QOS names} (an empty QOS list: the default)."""
    found: dict[str, set[str]] = {}
    for line in stdout.splitlines():
        account, _sep, qos = line.strip().partition("|")
        if account:
            found.setdefault(account, set()).update(q for q in qos.split(",") if q)
    return {account: tuple(sorted(qos)) for account, qos in sorted(found.items())}


# --------------------------------------------------------------------------- versions


def version_argv() -> list[str]:
    """``sinfo --version`` (prints ``slurm 22.05.8``)."""
    return ["sinfo", "--version"]


def parse_version(stdout: str) -> str:
    """``"slurm 22.05.8"`` -> ``"22.05.8"``."""
    match = re.search(r"(\d+\.\d+(?:\.\d+)?)", stdout)
    if match is None:
        raise SlurmParseError(f"no Slurm version in {stdout!r}")
    return match.group(1)


# --------------------------------------------------------------------------- scontrol


def scontrol_config_argv() -> list[str]:
    """``scontrol show config``."""
    return ["scontrol", "show", "config"]


def parse_scontrol_config(stdout: str) -> dict[str, str]:
    """``Key = value`` lines of ``scontrol show config`` -> dict (first occurrence wins)."""
    config: dict[str, str] = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(" = ")
        key = key.strip()
        if sep and key and " " not in key:
            config.setdefault(key, value.strip())
    return config


def scontrol_partitions_argv() -> list[str]:
    """``scontrol --oneliner show partition`` (one partition per line)."""
    return ["scontrol", "--oneliner", "show", "partition"]


_PARTITION_MINUTES = frozenset({"MaxTime", "DefaultTime"})
_PARTITION_COUNTS = frozenset(
    {
        "MaxNodes",
        "MinNodes",
        "TotalCPUs",
        "TotalNodes",
        "MaxCPUsPerNode",
        "MaxCPUsPerSocket",
        "DefMemPerNode",
        "MaxMemPerNode",
        "DefMemPerCPU",
        "MaxMemPerCPU",
        "PriorityTier",
        "PriorityJobFactor",
        "GraceTime",
    }
)


def parse_scontrol_partitions(stdout: str) -> list[dict[str, Any]]:
    """``scontrol --oneliner show partition`` -> one dict per partition.

    ``MaxTime``/``DefaultTime`` become minutes, counts become ints (``UNLIMITED`` -> None),
    ``Default`` becomes a bool; everything else stays a string.
    """
    partitions = []
    for line in stdout.splitlines():
        if not line.startswith("PartitionName="):
            continue
        partitions.append(_typed_partition(_key_values(line)))
    return partitions


def _key_values(line: str) -> dict[str, str]:
    """Split ``A=1 B=x=y C=two words`` (words without ``=`` continue the last value)."""
    values: dict[str, str] = {}
    last_key = None
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep and key:
            values[key] = value
            last_key = key
        elif last_key is not None:
            values[last_key] += " " + word
    return values


def _typed_partition(raw: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = dict(raw)
    for key, value in raw.items():
        if key in _PARTITION_MINUTES:
            typed[key] = parse_time_limit(value)
        elif key in _PARTITION_COUNTS:
            typed[key] = int(value) if value.isdigit() else None
        elif key == "Default":
            typed[key] = value == "YES"
    return typed
