"""Every task's flow config in one file per run, cut out by the array script at run time.

Staging writes two files into the run folder instead of one folder and one file per task:

* ``task-configs.txt`` -- the configs of all tasks, one after the other, in task order;
* ``task-configs.index`` -- one line per task, ``<task> <offset> <bytes> <file name>``
  (decimal, bytes of the UTF-8 text), so task ``i``'s config is
  ``bytes[offset:offset + bytes]``, to be written as ``tasks/<i>/<file name>``.

The array script looks its task up in the index and, unless ``tasks/<i>/<config>`` is already
there (a power user may put an edited one in place before ``sbatch``), copies those bytes into
it with ``dd``. Two files instead of 2 x N system-call-heavy entries are what make staging a
10,000-point sweep cheaper than submitit's one pickle per task.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from portal.flows.base import atomic_write_bytes, atomic_write_text, check_config_file_name

CONFIGS_NAME = "task-configs.txt"
INDEX_NAME = "task-configs.index"


class StagedConfig(NamedTuple):
    """One task's config as staged: the file name it gets in the task folder, and its text."""

    name: str
    text: str


def write_task_configs(run_dir: Path, name: str, configs: Iterable[tuple[int, str]]) -> int:
    """Write ``task-configs.txt`` and its index for ``(task index, config text)`` pairs, each
    to become ``tasks/<i>/<name>``.

    Both files are replaced atomically (the index last), so a job starting during a relaunch
    reads either the old pair or the new one. Returns the number of configs written.
    """
    run_dir = Path(run_dir)
    check_config_file_name(name)
    chunks: list[bytes] = []
    lines: list[str] = []
    offset = 0
    for index, text in configs:
        data = text.encode("utf-8")
        lines.append(f"{index} {offset} {len(data)} {name}\n")
        chunks.append(data)
        offset += len(data)
    atomic_write_bytes(run_dir / CONFIGS_NAME, b"".join(chunks))
    atomic_write_text(run_dir / INDEX_NAME, "".join(lines))
    return len(lines)


def read_task_config(run_dir: Path, index: int) -> StagedConfig | None:
    """Task ``index``'s config as staged, or None when the run has no such task."""
    run_dir = Path(run_dir)
    try:
        with open(run_dir / INDEX_NAME, encoding="ascii") as handle:
            rows = (line.split() for line in handle)
            entry = next((row for row in rows if row[:1] == [str(index)]), None)
        if entry is None:
            return None
        offset, size, name = int(entry[1]), int(entry[2]), entry[3]
        with open(run_dir / CONFIGS_NAME, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        if len(data) != size:
            return None
        return StagedConfig(name, data.decode("utf-8"))
    except (OSError, ValueError, IndexError):
        return None
