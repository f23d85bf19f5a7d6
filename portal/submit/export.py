"""Export a submission as a tarball that runs with plain ``sbatch``, no portal needed.

The bundle holds the design checkout (without ``.git``), every task's config (packed in
``task-configs.txt`` with its index, see :mod:`portal.submit.taskconfigs`), ``sweep.tsv``,
``submission.json``, an empty ``logs/``, a README, and ``job.sbatch``: the very script the
portal submitted (``job-<n>.sbatch`` per array of a split sweep), read from the run folder,
never rendered again from today's settings, so the bundle runs the command that ran. Task
configs refer to the design through ``DESIGN_DIR`` only, so the bundle is relocatable: for
another folder (``run_dir``; by default the submission's own run folder on shared storage, and
then the script is byte for byte the one that ran) only the run folder's path is replaced in
the script (:func:`relocate_script`).
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from portal.config import SettingsLike, as_settings
from portal.flows.registry import get_flow
from portal.flows.types import FlowError
from portal.models import Submission
from portal.rundir import PathRefused
from portal.runfolder import RunFolder
from portal.submit.taskconfigs import CONFIGS_NAME, INDEX_NAME

#: A folder the script can name bare in every quoting context it uses: shell words, single
#: and double quotes, #SBATCH values (no space, quote, ``$`` or ``%``, which Slurm expands in
#: ``--output``).
SAFE_RUN_DIR_RE = re.compile(r"/[A-Za-z0-9_@+=:,./-]*")

README = """\
OpenLane Portal export of submission {uuid}
{name}

Repository {repo} at {ref} (commit {commit}), flow {flow}, {tasks} task(s).

Unpack this archive so that its folder is {run_dir}
(the script was rendered for that path), then:

    cd {run_dir}
    {submit}

Each array task i runs the flow in tasks/<i>/. Its config is tasks/<i>/{config} when that
file is already there (put an edited one in place before sbatch); otherwise the task copies
it out of {configs}: {index} gives its offset and length in bytes. To read or edit
task 3's config before running:

    mkdir -p tasks/3 && read -r _ off len _ < <(grep '^3 ' {index})
    dd if={configs} of=tasks/3/{config} iflag=skip_bytes,count_bytes skip=$off count=$len

sweep.tsv lists the parameters of every task; Slurm writes logs/<jobid>_<task>.out. Re-export with
`portal export {short} -o bundle.tar.gz --run-dir /other/folder` to run it elsewhere.
"""


class ExportError(ValueError):
    """The submission cannot be exported (not staged yet, bad target folder)."""


def relocate_script(text: str, run_dir: str, target: str) -> str:
    """``text`` with its run folder ``run_dir`` replaced by ``target`` wherever it names it
    (``#SBATCH --chdir/--output/--error``, ``RUN_DIR``, ``DESIGN_DIR`` and any command word
    under it); nothing else changes. ``target`` must match :data:`SAFE_RUN_DIR_RE`."""
    if target == run_dir:
        return text
    if not SAFE_RUN_DIR_RE.fullmatch(target) or ".." in target.split("/"):
        raise ExportError(
            f"--run-dir {target!r}: use an absolute folder of letters, digits and _ @ + = : , "
            ". - only (the script names it unquoted)"
        )
    # Only whole paths: not inside a longer name (/mnt/runs/x, /runs/x2), sub-paths included.
    pattern = re.compile(rf"(?<![\w.\-/]){re.escape(run_dir)}(?![\w.\-])")
    relocated, count = pattern.subn(lambda _match: target, text)
    if not count:
        raise ExportError(f"the stored script does not name its run folder {run_dir}")
    return relocated


def build_bundle(
    submission: Submission,
    settings: SettingsLike,
    output: Path,
    *,
    run_dir: Path | None = None,
) -> Path:
    """Write the bundle to ``output``; return the folder it must be unpacked as."""
    if not submission.run_dir or not RunFolder(submission.run_dir).design.is_dir():
        raise ExportError(f"submission {submission.uuid} has not been staged yet")
    folder = RunFolder(submission.run_dir)
    source = folder.root
    target = Path(run_dir) if run_dir else source
    if not target.is_absolute():
        raise ExportError(f"--run-dir must be an absolute path, got {str(target)!r}")
    names = folder.script_names(first_round=True)
    if not names:
        raise ExportError(f"submission {submission.uuid} has no sbatch script: it never ran")
    flow = get_flow(submission.flow)
    try:
        design = flow.find_design(
            folder.design, submission.design_path, pdk_root=as_settings(settings).PDK_ROOT
        )
        scripts = [(name, folder.read_script(name)) for name in names]
    except (FlowError, PathRefused) as exc:
        raise ExportError(str(exc)) from None
    if target != source:
        scripts = [
            (name, relocate_script(data.decode(), str(source), str(target)).encode())
            for name, data in scripts
        ]
    top = target.name
    readme = README.format(
        uuid=submission.uuid,
        short=submission.uuid[:8],
        name=submission.name,
        repo=submission.repo_url,
        ref=submission.ref,
        commit=submission.commit,
        flow=submission.flow,
        tasks=len(submission.tasks),
        run_dir=target,
        submit=" && ".join(f"sbatch {name}" for name in names),
        config=flow.task_config_name(design),
        configs=CONFIGS_NAME,
        index=INDEX_NAME,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w:gz") as tar:
        _add_bytes(tar, f"{top}/README.txt", readme.encode(), 0o644)
        for name, data in scripts:
            _add_bytes(tar, f"{top}/{name}", data, 0o755)
        for name in ("sweep.tsv", "submission.json", CONFIGS_NAME, INDEX_NAME):
            tar.add(source / name, arcname=f"{top}/{name}")
        tar.add(source / "design", arcname=f"{top}/design", filter=_without_git)
        _add_dir(tar, f"{top}/logs")
        _add_dir(tar, f"{top}/tasks")
    return target


def _without_git(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = info.name.split("/")
    return None if ".git" in parts else info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)
