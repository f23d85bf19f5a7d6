"""The scripts that ran, as stored in the run folder, and their relocation for an export bundle
(only the run folder's path changes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portal.rundir import PathRefused
from portal.runfolder import RunFolder
from portal.shell import ShellVar
from portal.submit.export import ExportError, relocate_script
from portal.submit.sbatch import ArrayScript, render_array_script

RUN = "/runs/3f2c9a1e-0000-4000-8000-000000000001"


def rendered(run_dir: str = RUN) -> str:
    return render_array_script(
        ArrayScript(
            submission_uuid="3f2c9a1e-0000-4000-8000-000000000001",
            job_name="olp-3f2c9a1e-0000-4000-8000-000000000001",
            run_dir=run_dir,
            design_dir=f"{run_dir}/design/designs/counter",
            array_indices=[0, 1],
            flow_words=["/opt/standin", "--design", ShellVar("DESIGN_DIR"), f"{run_dir}/extra"],
            env={"OTHER_PATH": "/mnt/runs/3f2c9a1e-0000-4000-8000-000000000001x"},
        )
    )


def test_stored_script_names_in_submission_order(tmp_path: Path) -> None:
    for name in (
        "resubmit-10.sbatch",
        "job-1.sbatch",
        "resubmit-2-0.sbatch",
        "job-0.sbatch",
        "resubmit-1.sbatch",
        "job.sbatch.bak",
        "other.sbatch",
        "resubmit-0.sbatch",
    ):
        (tmp_path / name).write_text(name)
    (tmp_path / "job.sbatch").symlink_to(tmp_path / "job-0.sbatch")
    folder = RunFolder(tmp_path)
    assert folder.script_names() == [
        "job-0.sbatch",
        "job-1.sbatch",
        "resubmit-1.sbatch",
        "resubmit-2-0.sbatch",
        "resubmit-10.sbatch",
    ]
    assert folder.script_names(first_round=True) == ["job-0.sbatch", "job-1.sbatch"]
    assert RunFolder(tmp_path / "missing").script_names() == []
    assert folder.next_round() == 11  # after resubmit-10, whatever the gaps and chunks
    assert RunFolder(tmp_path / "missing").next_round() == 1


def test_read_stored_script_is_byte_for_byte_and_refuses_anything_else(tmp_path: Path) -> None:
    data = b"#!/bin/bash\n# caf\xc3\xa9\r\nexit 0\n"
    (tmp_path / "job.sbatch").write_bytes(data)
    (tmp_path / "submission.json").write_text("{}")
    (tmp_path / "resubmit-1.sbatch").symlink_to(tmp_path / "submission.json")
    folder = RunFolder(tmp_path)
    assert folder.read_script("job.sbatch") == data
    for name in ("submission.json", "resubmit-1.sbatch", "../job.sbatch", "job-1.sbatch"):
        with pytest.raises(PathRefused):
            folder.read_script(name)
    with pytest.raises(PathRefused):
        folder.read_script("job.sbatch", owners=frozenset({os.geteuid() + 1}))


def test_relocation_changes_the_run_folder_only() -> None:
    ran, target = rendered(), "/scratch/ada/bundle-run"
    moved = relocate_script(ran, RUN, target)
    assert moved == rendered(target).replace(
        "/mnt/scratch/ada/bundle-runx", "/mnt/runs/3f2c9a1e-0000-4000-8000-000000000001x"
    )
    assert f'#SBATCH --chdir="{target}"' in moved and f"RUN_DIR={target}\n" in moved
    assert f"DESIGN_DIR={target}/design/designs/counter\n" in moved
    assert "/mnt/runs/3f2c9a1e-0000-4000-8000-000000000001x" in moved  # another path: kept
    assert relocate_script(ran, RUN, RUN) is ran


@pytest.mark.parametrize("target", ["/scratch/my run", "/scratch/50%", "/a/'b", "/a/../b", "/a$b"])
def test_relocation_refuses_folders_the_script_could_not_name_bare(target: str) -> None:
    with pytest.raises(ExportError, match="letters, digits"):
        relocate_script(rendered(), RUN, target)


def test_a_script_that_does_not_name_its_run_folder_is_not_relocated() -> None:
    with pytest.raises(ExportError, match="does not name its run folder"):
        relocate_script(rendered("/elsewhere/x"), RUN, "/scratch/y")


def test_run_folder_of_a_submission_is_where_it_was_staged_else_under_run_root() -> None:
    class Row:
        uuid = "3f2c9a1e-0000-4000-8000-000000000001"
        run_dir: str | None = None

    row = Row()
    assert RunFolder.of(row, {"RUN_ROOT": "/runs"}).root == Path(RUN)
    row.run_dir = "/elsewhere/moved"
    folder = RunFolder.of(row, {"RUN_ROOT": "/runs"})
    assert (folder.design, folder.logs, folder.tasks, folder.manifest, folder.sweep_table) == (
        Path("/elsewhere/moved/design"),
        Path("/elsewhere/moved/logs"),
        Path("/elsewhere/moved/tasks"),
        Path("/elsewhere/moved/submission.json"),
        Path("/elsewhere/moved/sweep.tsv"),
    )
