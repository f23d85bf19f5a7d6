"""Path confinement and safe reading of run folders (portal/rundir.py) on a real filesystem."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from portal import rundir
from portal.rundir import PathRefused
from portal.runfolder import RunFolder, find_final_gds, log_name


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """run/tasks/0 with a report, a nested log, a symlink out and one inside; a secret beside."""
    (tmp_path / "secret.txt").write_text("top secret")
    run = tmp_path / "run"
    task = run / "tasks" / "0"
    (task / "runs" / "t" / "reports").mkdir(parents=True)
    (task / "runs" / "t" / "reports" / "metrics.csv").write_text("a,b\n1,2\n")
    (task / "flow.log").write_text("line 1\nline 2\n")
    (task / "escape").symlink_to(tmp_path / "secret.txt")
    (task / "escape_dir").symlink_to(tmp_path)
    (task / "inside").symlink_to(task / "flow.log")
    (run / "logs").mkdir()
    return run


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/etc/passwd",
        "\\etc\\passwd",
        "C:/windows",
        "../secret.txt",
        "runs/../../secret.txt",
        "runs/t/../../../..",
        "a\x00b",
        ".",
        "//",
    ],
)
def test_malformed_paths_are_refused(tree, bad):
    with pytest.raises(PathRefused):
        rundir.confine(tree / "tasks" / "0", bad)


def test_symlinks_out_are_refused_and_inside_allowed(tree):
    task = tree / "tasks" / "0"
    with pytest.raises(PathRefused):
        rundir.confine(task, "escape")
    with pytest.raises(PathRefused):
        rundir.confine(task, "escape_dir/secret.txt")
    assert rundir.confine(task, "inside") == (task / "flow.log").resolve()
    # the resolved path is returned, so later use cannot be redirected by the link text
    assert (
        rundir.confine(task, "./runs//t/reports/metrics.csv")
        == (task / "runs" / "t" / "reports" / "metrics.csv").resolve()
    )


def test_open_confined_reads_regular_files_only(tree):
    task = tree / "tasks" / "0"
    with rundir.open_confined(task, "runs/t/reports/metrics.csv") as handle:
        assert handle.read() == b"a,b\n1,2\n"
    for refused in ("escape", "runs", "missing.txt", "escape_dir/secret.txt"):
        with pytest.raises(PathRefused):
            rundir.open_confined(task, refused)
    # a symlink that stays inside is followed (confine resolved it to flow.log)
    with rundir.open_confined(task, "inside") as handle:
        assert handle.read().startswith(b"line 1")


def test_open_confined_refuses_a_fifo(tree):
    fifo = tree / "tasks" / "0" / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(PathRefused):
        rundir.open_confined(tree / "tasks" / "0", "pipe")


def test_task_dir_and_log_names(tree):
    folder = RunFolder(tree)
    assert folder.task(0) == (tree / "tasks" / "0").resolve()
    with pytest.raises(PathRefused):
        folder.task(-1)
    assert log_name("123", 4) == "logs/123_4.out"
    assert folder.log("123", 4, "err") == tree / "logs" / "123_4.err"
    for job, index, stream in [
        (None, 0, "out"),
        ("12;rm", 0, "out"),
        ("1", None, "out"),
        ("1", 0, "../x"),
    ]:
        with pytest.raises(PathRefused):
            log_name(job, index, stream)


def test_read_chunk_follows_a_growing_file(tree):
    log = tree / "logs" / "9_0.out"
    log.write_bytes(b"hello ")
    first = rundir.read_chunk(tree, "logs/9_0.out", 0)
    assert (first.data, first.start, first.offset, first.size) == (b"hello ", 0, 6, 6)
    with log.open("ab") as handle:
        handle.write(b"world\n")
    second = rundir.read_chunk(tree, "logs/9_0.out", first.offset)
    assert second.data == b"world\n" and second.start == 6 and second.offset == 12
    assert rundir.read_chunk(tree, "logs/9_0.out", 12).data == b""
    # the file was replaced by a shorter one: start over
    log.write_bytes(b"new")
    again = rundir.read_chunk(tree, "logs/9_0.out", 12)
    assert again.reset and again.start == 0 and again.data == b"new"


def test_read_chunk_limits_tail_and_missing(tree):
    log = tree / "logs" / "9_1.out"
    log.write_bytes(b"0123456789")
    assert rundir.read_chunk(tree, "logs/9_1.out", 2, limit=3).data == b"234"
    tail = rundir.read_chunk(tree, "logs/9_1.out", None, limit=4)
    assert tail.data == b"6789" and tail.start == 6 and tail.offset == 10
    missing = rundir.read_chunk(tree, "logs/9_2.out", 0)
    assert missing.data == b"" and missing.size == 0
    with pytest.raises(PathRefused):
        rundir.read_chunk(tree, "logs/../../secret.txt", 0)
    with pytest.raises(PathRefused):
        rundir.read_chunk(tree, "logs/9_1.out", -1)


def test_list_files_skips_symlinks(tree):
    entries, truncated = rundir.list_files(tree / "tasks" / "0")
    assert [e.relpath for e in entries] == ["flow.log", "runs/t/reports/metrics.csv"]
    assert not truncated and entries[0].size == len("line 1\nline 2\n")
    entries, truncated = rundir.list_files(tree / "tasks" / "0", limit=1)
    assert len(entries) == 1 and truncated
    assert rundir.list_files(tree / "nothing") == ([], False)


def test_find_final_gds(tree):
    task = tree / "tasks" / "0"
    assert find_final_gds(task) is None
    gds = task / "runs" / "t" / "results" / "final" / "gds"
    gds.mkdir(parents=True)
    (gds / "outside.gds").symlink_to(tree.parent / "secret.txt")
    assert find_final_gds(task) is None
    (gds / "counter.gds").write_bytes(b"gds")
    assert find_final_gds(task) == (gds / "counter.gds").resolve()


def test_stream_tar_gz_has_the_files_and_no_symlinks(tree):
    (tree / "logs" / "5_0.out").write_text("slurm says hi\n")
    big = tree / "tasks" / "0" / "big.bin"
    big.write_bytes(os.urandom(rundir.CHUNK * 2 + 17))
    chunks = list(
        rundir.stream_tar_gz(
            tree / "tasks" / "0",
            "task-0",
            extra=[(tree, "logs/5_0.out", "slurm-5_0.out"), (tree, "logs/none.out", "x")],
        )
    )
    assert len(chunks) > 2  # streamed, not one blob
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks)), mode="r:gz") as tar:
        names = tar.getnames()
        assert "task-0/runs/t/reports/metrics.csv" in names
        assert "task-0/slurm-5_0.out" in names and "task-0/x" not in names
        assert not any("escape" in n or n.endswith("/inside") for n in names)
        assert tar.extractfile("task-0/big.bin").read() == big.read_bytes()
        assert tar.extractfile("task-0/flow.log").read() == b"line 1\nline 2\n"
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())


def test_cache_file_replaces_a_symlink_instead_of_writing_through_it(tree):
    task = tree / "tasks" / "0"
    (task / "layout.png").symlink_to(tree.parent / "secret.txt")
    assert rundir.cache_file(task, "layout.png", b"png")
    assert (tree.parent / "secret.txt").read_text() == "top secret"
    assert not (task / "layout.png").is_symlink()
    assert (task / "layout.png").read_bytes() == b"png"
    with pytest.raises(PathRefused):
        rundir.cache_file(task, "../x.png", b"")


def test_a_directory_swapped_for_a_symlink_after_the_check_is_caught(tree):
    """confine() resolved the path; then a folder on it became a symlink out. The open must
    still refuse (checked through /proc/self/fd after opening)."""
    task = tree / "tasks" / "0"
    checked = rundir.confine(task, "runs/t/reports/metrics.csv")
    reports = task / "runs" / "t" / "reports"
    (reports / "metrics.csv").unlink()
    reports.rmdir()
    outside = tree.parent / "outside"
    outside.mkdir()
    (outside / "metrics.csv").write_text("stolen")
    reports.symlink_to(outside)
    with pytest.raises(PathRefused):
        rundir._open_regular(checked, os.path.realpath(task))


def test_hard_links_are_never_served_listed_archived_or_drawn(tmp_path):
    """A job can hard-link any file it can see (the instance's secret_key) into its folder."""
    secret = tmp_path / "instance" / "secret_key"
    secret.parent.mkdir()
    secret.write_text("s3cret")
    task = tmp_path / "run" / "tasks" / "0"
    gds = task / "runs" / "t" / "final" / "gds"
    gds.mkdir(parents=True)
    (task / "report.txt").write_text("ok\n")
    os.link(secret, task / "stolen.txt")
    os.link(secret, gds / "stolen.gds")
    with pytest.raises(PathRefused):
        rundir.open_confined(task, "stolen.txt")
    assert rundir.open_confined(task, "report.txt").read() == b"ok\n"
    entries, _ = rundir.list_files(task)
    assert [e.relpath for e in entries] == ["report.txt"]
    assert find_final_gds(task) is None
    names = _tar_names(task)
    assert "t/report.txt" in names and not any("stolen" in n for n in names)
    with pytest.raises(PathRefused):
        rundir.read_chunk(task, "stolen.txt", 0)


def test_only_files_of_the_allowed_owners_are_served(tmp_path):
    (tmp_path / "mine.txt").write_text("mine\n")
    me = os.stat(tmp_path / "mine.txt").st_uid
    assert rundir.open_confined(tmp_path, "mine.txt", frozenset({me})).read() == b"mine\n"
    with pytest.raises(PathRefused):
        rundir.open_confined(tmp_path, "mine.txt", frozenset({me + 4242}))
    assert rundir.list_files(tmp_path, owners=frozenset({me + 4242}))[0] == []


def _tar_names(root) -> list[str]:
    data = b"".join(rundir.stream_tar_gz(root, "t"))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return archive.getnames()
