"""Render the sbatch script of a submission: ONE job array, runnable unchanged with ``sbatch``.

Quoting rules
-------------
* Shell lines: every value is a literal quoted with ``shquote``; commands are lists of words
  rendered with ``shjoin`` (:mod:`portal.shell`), so nothing user-supplied becomes shell syntax.
* ``#SBATCH`` lines are *not* read by the shell but by sbatch's own tokenizer: whitespace splits
  arguments, ``'``/``"`` group, a backslash escapes the next character, an unquoted ``#`` starts a
  comment, and a newline always ends the line. There is no expansion, so ``$(...)`` is inert
  there. Rather than escaping for that tokenizer we *reject* what it could misread: control
  characters (newline, CR, tab, NUL...), quotes and backslashes in any value; names (job name,
  partition, account, QOS) must be plain Slurm names; ``run_dir`` must be absolute and free of
  ``%`` (Slurm expands ``%A``/``%a``/``%j``... in ``--output`` paths). Free text (``--comment``)
  and paths are written in double quotes, so spaces and ``#`` in them are safe.

Task directories and array splitting
------------------------------------
Task ``i`` (the i-th sweep point) works in ``$RUN_DIR/tasks/<i>``, which staging creates along
with ``$RUN_DIR/logs`` (Slurm does not create the directories of ``--output``).

Slurm's ``MaxArraySize`` bounds the *index*, not the count: every ``--array`` index must be
``< MaxArraySize``. A sweep with more points (or a resubmission of failed tasks with large
indices) is therefore split by :func:`plan_array_chunks` into several arrays, each with an
``index_offset``: the script computes ``TASK_ID = SLURM_ARRAY_TASK_ID + INDEX_OFFSET``, and the
chunk's ``--array`` indices are the task indices minus the offset, all ``< MaxArraySize``.
Indices are shifted only when they have to be: a chunk that starts below ``MaxArraySize`` keeps
offset 0 (so an array that fits is one chunk whose array index *is* the task index).

Each chunk gets its own job name (:func:`job_name_for`, ``olp-<uuid>`` or
``olp-<uuid>-o<offset>``), so sacct's ``JobName`` tells the poller which offset to add, and
every chunk's name still carries the submission UUID. Note that ``%throttle`` applies per array:
chunks submitted together run up to ``throttle`` tasks *each*.

This module does not import Flask.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from portal.shell import ShellVar, Word, shjoin, shquote
from portal.slurm import commands as slurm_commands
from portal.submit.taskconfigs import CONFIGS_NAME, INDEX_NAME

TEMPLATE_DIR = Path(__file__).resolve().parent / "sbatch_templates"
ARRAY_TEMPLATE = "array.sbatch.j2"

#: Variables the rendered script defines; flow words may refer to them with ShellVar.
SCRIPT_VARS = ("RUN_DIR", "DESIGN_DIR", "INDEX_OFFSET", "TASK_ID", "TASK_DIR", "TASK_TAG")

_ENV_NAME_RE = re.compile(r"[A-Z_][A-Z0-9_]*")
_RESERVED_ENV = frozenset(
    {
        *SCRIPT_VARS,
        "PATH",
        "HOME",
        "IFS",
        "ENV",
        "PWD",
        "OLDPWD",
        "CDPATH",
        "GLOBIGNORE",
        "SHELLOPTS",
        "PS4",
        "PROMPT_COMMAND",
    }
)
_RESERVED_ENV_PREFIXES = ("SLURM_", "SBATCH_", "BASH_", "LD_")
_UUID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_JOB_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_SLURM_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_PARTITION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}(,[A-Za-z0-9_][A-Za-z0-9._-]{0,63})*")
_FLOW_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SBATCH_UNSAFE = re.compile(r"[\x00-\x1f\x7f\"'\\]")
_MAX_COMMENT = 1000


class RenderError(ValueError):
    """The script cannot be rendered safely from these values."""


def portal_version() -> str:
    """The installed portal's version (``unknown`` when run from an uninstalled tree)."""
    try:
        return importlib.metadata.version("openlane-portal")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


# -- array indices ----------------------------------------------------------------------------
def compress_indices(indices: Iterable[int]) -> str:
    """``[0, 1, 2, 3, 7, 9]`` -> ``"0-3,7,9"``: Slurm's range list
    (:func:`portal.slurm.commands.compress_indices`), refusing what no array may hold
    (no index, a negative one, a duplicate) with :class:`RenderError`."""
    ordered = sorted(indices)
    if len(set(ordered)) != len(ordered):
        raise RenderError("array indices contain duplicates")
    if not ordered:
        raise RenderError("an array needs at least one index")
    if ordered[0] < 0:
        raise RenderError(f"array indices must be >= 0, got {ordered[0]}")
    return slurm_commands.compress_indices(ordered)


@dataclass(frozen=True)
class ArrayChunk:
    """One job array of a (possibly split) submission."""

    index_offset: int
    array_indices: tuple[int, ...]

    @property
    def task_indices(self) -> list[int]:
        """The global task (sweep point) indices this array runs."""
        return [i + self.index_offset for i in self.array_indices]


def plan_array_chunks(task_indices: Iterable[int], max_array_size: int) -> list[ArrayChunk]:
    """Split task indices into arrays whose ``--array`` indices are all < ``max_array_size``.

    Greedy, in index order: a chunk starting below ``max_array_size`` keeps offset 0 (array
    index == task index); a later chunk is offset by its smallest task index. Each chunk takes
    every following index that still fits. Everything fits -> a single chunk with offset 0.
    """
    if max_array_size < 1:
        raise RenderError("max_array_size must be at least 1")
    ordered = sorted(set(task_indices))
    if not ordered:
        raise RenderError("nothing to plan: no task indices")
    if ordered[0] < 0:
        raise RenderError("task indices must be >= 0")
    chunks: list[ArrayChunk] = []
    start = 0
    while start < len(ordered):
        offset = 0 if ordered[start] < max_array_size else ordered[start]
        end = start
        while end < len(ordered) and ordered[end] - offset < max_array_size:
            end += 1
        chunks.append(ArrayChunk(offset, tuple(i - offset for i in ordered[start:end])))
        start = end
    return chunks


def plan_arrays(n_points: int, max_array_size: int) -> list[ArrayChunk]:
    """Arrays for a fresh sweep of ``n_points`` tasks (0..n-1), split past MaxArraySize."""
    if n_points < 1:
        raise RenderError("a sweep needs at least one point")
    return plan_array_chunks(range(n_points), max_array_size)


def job_name_for(submission_uuid: str, index_offset: int = 0) -> str:
    """``olp-<uuid>`` for the (first) array, ``olp-<uuid>-o<offset>`` for shifted chunks."""
    base = f"olp-{submission_uuid}"
    return base if index_offset == 0 else f"{base}-o{index_offset}"


# -- the script -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayScript:
    """Everything the array template needs. Validated by :func:`render_array_script`.

    ``array_indices`` are ``--array`` indices; task index = array index + ``index_offset``.
    ``flow_words`` is the command run inside the container, ``container_words`` the runtime
    prefix (``apptainer exec ... <image>``; empty for native runs). ``env`` is exported by the
    script before the command (use ``APPTAINERENV_*`` names to reach a ``--cleanenv``
    container).
    """

    submission_uuid: str
    job_name: str
    run_dir: str
    design_dir: str
    array_indices: Sequence[int]
    flow_words: Sequence[Word]
    container_words: Sequence[Word] = ()
    throttle: int = 0
    cpus_per_task: int = 1
    mem_mb: int = 4096
    time_limit_minutes: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    comment: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    flow_name: str = "openlane"
    portal_version: str = field(default_factory=portal_version)
    index_offset: int = 0
    max_array_size: int | None = None
    config_name: str = "config.json"
    design_link: str | None = None
    #: one line saying what runs when it is less than the whole real flow (see run_note)
    note: str | None = None

    @property
    def log_dir(self) -> str:
        """Where Slurm writes the task logs (created by staging)."""
        return str(PurePosixPath(self.run_dir) / "logs")

    @property
    def output_path(self) -> str:
        """``--output``: ``<run_dir>/logs/%A_%a.out`` (array job id, array index)."""
        return f"{self.log_dir}/%A_%a.out"

    @property
    def error_path(self) -> str:
        """``--error``: ``<run_dir>/logs/%A_%a.err``."""
        return f"{self.log_dir}/%A_%a.err"

    @property
    def design_link_target(self) -> str:
        """``design_dir`` relative to a task folder (``<run_dir>/tasks/<i>``)."""
        return posixpath.relpath(self.design_dir, f"{self.run_dir}/tasks/0")

    @property
    def array_spec(self) -> str:
        """The ``--array`` value, e.g. ``0-5%2`` or ``0-3,7,9``."""
        spec = compress_indices(self.array_indices)
        return f"{spec}%{self.throttle}" if self.throttle else spec


def chunk_scripts(ctx: ArrayScript, max_array_size: int) -> list[ArrayScript]:
    """Split a script over *task* indices (``ctx.array_indices``) into per-chunk scripts.

    The chunk with offset 0 keeps ``ctx.job_name``; a shifted chunk is named
    ``<job_name>-o<offset>`` (so ``olp-<uuid>`` gives the names of :func:`job_name_for`).
    """
    if ctx.index_offset:
        raise RenderError("chunk_scripts expects task indices (index_offset 0)")
    return [
        dataclasses.replace(
            ctx,
            job_name=(
                f"{ctx.job_name}-o{chunk.index_offset}" if chunk.index_offset else ctx.job_name
            ),
            array_indices=list(chunk.array_indices),
            index_offset=chunk.index_offset,
            max_array_size=max_array_size,
        )
        for chunk in plan_array_chunks(ctx.array_indices, max_array_size)
    ]


def _check_sbatch_value(field_name: str, value: str) -> None:
    bad = _SBATCH_UNSAFE.search(value)
    if bad:
        raise RenderError(
            f"{field_name}: character {bad.group()!r} cannot be passed safely on an #SBATCH line"
        )


def _check_name(field_name: str, value: str | None, pattern: re.Pattern[str]) -> None:
    if value is None:
        return
    _check_sbatch_value(field_name, value)
    if not pattern.fullmatch(value):
        raise RenderError(f"{field_name}: {value!r} is not a valid Slurm name")


def _check_int(field_name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise RenderError(f"{field_name} must be an integer >= {minimum}, got {value!r}")


def _check_path(field_name: str, value: str, *, sbatch: bool) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise RenderError(f"{field_name} must be an absolute path, got {value!r}")
    if "\x00" in value:
        raise RenderError(f"{field_name} contains a NUL character")
    if sbatch:
        _check_sbatch_value(field_name, value)
        if "%" in value:
            raise RenderError(f"{field_name}: '%' would be expanded by Slurm in log file names")


def _check_file_name(field_name: str, value: str) -> None:
    if not isinstance(value, str) or not _FILE_NAME_RE.fullmatch(value):
        raise RenderError(f"{field_name}: {value!r} is not a plain file name")


def _check_words(ctx: ArrayScript) -> None:
    if not ctx.flow_words:
        raise RenderError("flow_words is empty: nothing to run")
    known = set(SCRIPT_VARS) | set(ctx.env)
    for word in [*ctx.container_words, *ctx.flow_words]:
        if isinstance(word, ShellVar):
            if word.name not in known and not word.name.startswith("SLURM_"):
                raise RenderError(f"the command refers to ${word.name}, which the script lacks")
        elif not isinstance(word, str) or "\x00" in word:
            raise RenderError(f"command words must be strings without NUL, got {word!r}")


def _check_env(env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME_RE.fullmatch(name):
            raise RenderError(f"env: {name!r} is not a valid variable name ([A-Z_][A-Z0-9_]*)")
        if name in _RESERVED_ENV or name.startswith(_RESERVED_ENV_PREFIXES):
            raise RenderError(f"env: {name} is reserved and cannot be set")
        if not isinstance(value, str) or "\x00" in value:
            raise RenderError(f"env: the value of {name} must be a string without NUL")


def _check_array(ctx: ArrayScript) -> None:
    _check_int("throttle", ctx.throttle, 0)
    _check_int("index_offset", ctx.index_offset, 0)
    indices = list(ctx.array_indices)
    for index in indices:
        _check_int("array index", index, 0)
    compress_indices(indices)
    if ctx.max_array_size is not None and max(indices) >= ctx.max_array_size:
        raise RenderError(
            f"array index {max(indices)} exceeds MaxArraySize-1 ({ctx.max_array_size - 1}); "
            "split the array with plan_array_chunks"
        )


def validate_array_script(ctx: ArrayScript) -> None:
    """Raise RenderError unless every value can be rendered safely."""
    if ctx.note is not None and any(c in ctx.note for c in "\r\n\x00"):
        raise RenderError("note must be one line")
    _check_name("submission_uuid", ctx.submission_uuid, _UUID_RE)
    _check_name("job_name", ctx.job_name, _JOB_NAME_RE)
    if ctx.submission_uuid not in ctx.job_name:
        raise RenderError("job_name must contain the submission UUID (idempotent submission)")
    _check_name("partition", ctx.partition, _PARTITION_RE)
    _check_name("account", ctx.account, _SLURM_NAME_RE)
    _check_name("qos", ctx.qos, _SLURM_NAME_RE)
    _check_name("flow_name", ctx.flow_name, _FLOW_NAME_RE)
    _check_name("portal_version", ctx.portal_version, _FLOW_NAME_RE)
    if ctx.comment is not None:
        _check_sbatch_value("comment", ctx.comment)
        if len(ctx.comment) > _MAX_COMMENT:
            raise RenderError(f"comment is longer than {_MAX_COMMENT} characters")
    _check_path("run_dir", ctx.run_dir, sbatch=True)
    _check_path("design_dir", ctx.design_dir, sbatch=False)
    _check_file_name("config_name", ctx.config_name)
    if ctx.design_link is not None:
        _check_file_name("design_link", ctx.design_link)
    _check_int("cpus_per_task", ctx.cpus_per_task, 1)
    _check_int("mem_mb", ctx.mem_mb, 1)
    _check_int("time_limit_minutes", ctx.time_limit_minutes, 1)
    _check_array(ctx)
    _check_env(ctx.env)
    _check_words(ctx)


def sbatch_quote(value: object) -> str:
    """Double-quote a value for an #SBATCH line (callers have rejected quotes/backslashes)."""
    text = str(value)
    _check_sbatch_value("#SBATCH value", text)
    return f'"{text}"'


@lru_cache(maxsize=8)
def make_environment(template_dir: str | Path | None = None) -> jinja2.Environment:
    """The Jinja2 environment for sbatch templates (strict, no HTML escaping, shell filters);
    one per template folder, so templates are compiled once per process."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir or TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 -- renders shell, not HTML: values go through shquote
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["shquote"] = shquote
    env.filters["shjoin"] = shjoin
    env.filters["sbatch_quote"] = sbatch_quote
    return env


def render_array_script(ctx: ArrayScript, *, template_dir: str | Path | None = None) -> str:
    """Validate ``ctx`` and render the job-array sbatch script."""
    validate_array_script(ctx)
    template = make_environment(template_dir).get_template(ARRAY_TEMPLATE)
    variables: dict[str, Any] = {
        **{f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)},
        "array_spec": ctx.array_spec,
        "output_path": ctx.output_path,
        "error_path": ctx.error_path,
        "design_link_target": ctx.design_link_target,
        "configs_name": CONFIGS_NAME,
        "index_name": INDEX_NAME,
        "command": [*ctx.container_words, *ctx.flow_words],
    }
    return template.render(**variables)
