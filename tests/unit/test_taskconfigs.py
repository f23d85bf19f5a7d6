"""The packed task configs: what staging writes and what the array script and the portal read."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.flows.types import InvalidParameter
from portal.submit.taskconfigs import (
    CONFIGS_NAME,
    INDEX_NAME,
    StagedConfig,
    read_task_config,
    write_task_configs,
)

CONFIGS = {
    0: '{\n    "CLOCK_PERIOD": 10\n}\n',
    1: "set ::env(DESIGN_NAME) caf\u00e9\nset ::env(CLOCK_PERIOD) 12\n",  # multi-byte UTF-8
    2: "",
    7: '{"FP_CORE_UTIL": 40}\n',
}


def test_every_config_reads_back_exactly(tmp_path: Path) -> None:
    assert write_task_configs(tmp_path, "config.json", CONFIGS.items()) == 4
    for index, text in CONFIGS.items():
        assert read_task_config(tmp_path, index) == StagedConfig("config.json", text)
    assert read_task_config(tmp_path, 3) is None


def test_the_index_gives_byte_offsets_into_one_file(tmp_path: Path) -> None:
    write_task_configs(tmp_path, "config.json", CONFIGS.items())
    data = (tmp_path / CONFIGS_NAME).read_bytes()
    rows = [line.split() for line in (tmp_path / INDEX_NAME).read_text().splitlines()]
    assert [row[0] for row in rows] == ["0", "1", "2", "7"]
    for task, offset, size, name in rows:
        assert name == "config.json"
        assert data[int(offset) : int(offset) + int(size)].decode() == CONFIGS[int(task)]
    assert len(data) == sum(len(text.encode()) for text in CONFIGS.values())


def test_rewriting_replaces_both_files_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    write_task_configs(tmp_path, "config.json", CONFIGS.items())
    write_task_configs(tmp_path, "config.tcl", [(0, "new\n")])
    assert read_task_config(tmp_path, 0) == StagedConfig("config.tcl", "new\n")
    assert read_task_config(tmp_path, 1) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([CONFIGS_NAME, INDEX_NAME])


def test_an_unstaged_or_damaged_run_reads_as_none(tmp_path: Path) -> None:
    assert read_task_config(tmp_path, 0) is None
    write_task_configs(tmp_path, "config.json", CONFIGS.items())
    (tmp_path / CONFIGS_NAME).write_bytes(b"short")
    assert read_task_config(tmp_path, 7) is None


@pytest.mark.parametrize("name", ["../config.json", "a b", "-x", ""])
def test_the_file_name_must_be_plain_and_nothing_is_written_otherwise(tmp_path, name) -> None:
    with pytest.raises(InvalidParameter):
        write_task_configs(tmp_path, name, CONFIGS.items())
    assert not list(tmp_path.iterdir())
