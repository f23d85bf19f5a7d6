"""The optional pyslurm backend: version gate and record converter.

pyslurm cannot be installed here (PyPI builds target Slurm 25.11, the cluster runs 22.05), so
the converter is tested on plain dicts shaped like pyslurm's classic ``job().get()`` records
(tests/data/slurm/pyslurm_jobs.json, written from a recorded squeue snapshot of jobs 44-53),
and the version gate on a stand-in ``pyslurm`` module that only carries a version string.
"""

from __future__ import annotations

import json
import sys
import types
from datetime import datetime
from pathlib import Path

import pytest

from portal.slurm import pyslurm_backend
from portal.slurm.pyslurm_backend import (
    available,
    major_minor,
    rows_from_pyslurm_job,
    rows_from_pyslurm_jobs,
    versions_match,
)
from portal.slurm.testing import ScriptedTransport, recorded_result
from portal.slurm.transports import CommandResult

DATA = Path(__file__).resolve().parents[1] / "data" / "slurm"
JOBS = json.loads((DATA / "pyslurm_jobs.json").read_text())


def rows_by_task() -> dict[tuple[str, int | None], object]:
    return {(row.job_id, row.task_index): row for row in rows_from_pyslurm_jobs(JOBS)}


def test_pending_array_record_expands_to_one_row_per_task() -> None:
    rows = rows_from_pyslurm_job(JOBS["45"])  # array_task_str "2,4,6-9%2"
    assert [row.task_index for row in rows] == [2, 4, 6, 7, 8, 9]
    first = rows[0]
    assert (first.job_id, first.raw_job_id, first.state) == ("45", "45", "PENDING")
    assert (first.node, first.start, first.end, first.exit_code) == (None, None, None, None)
    assert first.reason == "JobArrayTaskLimit"


def test_array_task_records() -> None:
    rows = rows_by_task()
    failed = rows[("44", 1)]
    assert (failed.raw_job_id, failed.state, failed.exit_code, failed.signal) == (
        "48",
        "FAILED",
        3,
        0,
    )
    assert failed.reason == "NonZeroExitCode"
    signalled = rows[("44", 2)]
    assert (signalled.exit_code, signalled.signal) == (0, 15)
    cancelled = rows[("44", 4)]
    assert cancelled.state == "CANCELLED" and cancelled.elapsed_seconds == 4
    assert cancelled.start == datetime.fromtimestamp(JOBS["51"]["start_time"])
    assert cancelled.end == datetime.fromtimestamp(JOBS["51"]["end_time"])


def test_running_task_has_no_end_or_exit_code_yet() -> None:
    running = rows_by_task()[("45", 0)]
    assert running.state == "RUNNING" and running.node == "vm"
    assert running.start is not None and running.end is None  # end_time is only an estimate
    assert running.exit_code is None and running.reason is None


def test_plain_job_record() -> None:
    plain = rows_by_task()[("46", None)]
    assert (plain.raw_job_id, plain.state, plain.name) == (
        "46",
        "RUNNING",
        "olp-slurm-recording-plain",
    )


def test_records_as_dict_or_iterable_give_the_same_rows() -> None:
    assert rows_from_pyslurm_jobs(JOBS) == rows_from_pyslurm_jobs(list(JOBS.values()))
    assert len(rows_from_pyslurm_jobs(JOBS)) == 9 + 6  # 9 task/job records + 6 pending tasks


@pytest.mark.parametrize(
    ("text", "pair"),
    [("22.05.8", (22, 5)), ("22.5.1", (22, 5)), ("slurm-wlm 25.11.0", (25, 11)), ("dev", None)],
)
def test_major_minor(text: str, pair: tuple[int, int] | None) -> None:
    assert major_minor(text) == pair


@pytest.mark.parametrize(
    ("ours", "cluster", "match"),
    [("22.5.1", "22.05.8", True), ("25.11.0", "22.05.8", False), ("22.5.0", "23.02.1", False)],
)
def test_versions_match(ours: str, cluster: str, match: bool) -> None:
    assert versions_match(ours, cluster) is match


def fake_pyslurm(version: str) -> types.ModuleType:
    module = types.ModuleType("pyslurm")
    module.__version__ = version  # type: ignore[attr-defined]
    return module


def test_available_when_pyslurm_matches_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyslurm", fake_pyslurm("22.5.1"))
    transport = ScriptedTransport({"sinfo": recorded_result(DATA, "sinfo_version")})
    assert available(transport=transport) is True
    assert transport.calls == [(["sinfo", "--version"], None)]
    assert available("22.05.8") is True


def test_not_available_for_another_slurm_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyslurm", fake_pyslurm("25.11.0"))
    transport = ScriptedTransport({"sinfo": recorded_result(DATA, "sinfo_version")})
    assert available(transport=transport) is False


def test_not_available_without_pyslurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyslurm", None)  # import pyslurm -> ImportError
    transport = ScriptedTransport({})
    assert pyslurm_backend.pyslurm_version() is None
    assert available(transport=transport) is False
    assert transport.calls == []  # the cluster is not even asked


def test_not_available_when_the_cluster_version_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyslurm", fake_pyslurm("22.5.1"))
    broken = CommandResult(1, "", "sinfo: fatal: Could not establish a configuration source\n")
    assert available(transport=ScriptedTransport({"sinfo": broken})) is False
