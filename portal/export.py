"""Export a submission as a tarball that runs with plain ``sbatch``, no portal needed.

The bundle holds the design checkout (without ``.git``), every task's config (packed in
``task-configs.txt`` with its index, see :mod:`portal.taskconfigs`), ``sweep.tsv``,
``submission.json``, an empty ``logs/``, a README, and ``job.sbatch`` rendered by the same
template the portal submits with. Task configs refer to the design through ``DESIGN_DIR``
only, so the bundle is relocatable: the script is rendered for the folder it will be unpacked
as (``run_dir``; by default the submission's own run folder on shared storage).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portal.flows.base import FlowError
from portal.flows.registry import get_flow
from portal.models import Submission
from portal.render import RenderError
from portal.submissions import render_scripts
from portal.taskconfigs import CONFIGS_NAME, INDEX_NAME

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


def build_bundle(
    submission: Submission,
    settings: Mapping[str, Any],
    output: Path,
    *,
    run_dir: Path | None = None,
) -> Path:
    """Write the bundle to ``output``; return the folder it must be unpacked as."""
    if not submission.run_dir or not (Path(submission.run_dir) / "design").is_dir():
        raise ExportError(f"submission {submission.uuid} has not been staged yet")
    source = Path(submission.run_dir)
    target = Path(run_dir) if run_dir else source
    if not target.is_absolute():
        raise ExportError(f"--run-dir must be an absolute path, got {str(target)!r}")
    flow = get_flow(submission.flow)
    try:
        design = flow.find_design(
            source / "design", submission.design_path, pdk_root=str(settings["PDK_ROOT"])
        )
        rendered = render_scripts(
            submission,
            settings,
            flow,
            design,
            [t.index for t in submission.tasks],
            owner=submission.owner,
            checkout=source / "design",
            run_dir=target,
            max_array_size=int(settings.get("EXPORT_MAX_ARRAY_SIZE") or 1001),
        )
    except (FlowError, RenderError) as exc:
        raise ExportError(str(exc)) from None
    top = target.name
    names = " && ".join(f"sbatch {item.file_name}" for item in rendered)
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
        submit=names,
        config=flow.task_config_name(design),
        configs=CONFIGS_NAME,
        index=INDEX_NAME,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(output, "w:gz") as tar:
        _add_text(tar, f"{top}/README.txt", readme, 0o644)
        for item in rendered:
            _add_text(tar, f"{top}/{item.file_name}", item.text, 0o755)
        for name in ("sweep.tsv", "submission.json", CONFIGS_NAME, INDEX_NAME):
            tar.add(source / name, arcname=f"{top}/{name}")
        tar.add(source / "design", arcname=f"{top}/design", filter=_without_git)
        _add_dir(tar, f"{top}/logs")
        _add_dir(tar, f"{top}/tasks")
    return target


def _without_git(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = info.name.split("/")
    return None if ".git" in parts else info


def _add_text(tar: tarfile.TarFile, name: str, text: str, mode: int) -> None:
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)
