"""The job-array sbatch script: #SBATCH structure, safe quoting (run with bash), array splitting."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import pytest

from portal.shell import ShellVar
from portal.submit.sbatch import (
    ArrayChunk,
    ArrayScript,
    RenderError,
    chunk_scripts,
    compress_indices,
    job_name_for,
    make_environment,
    plan_array_chunks,
    plan_arrays,
    render_array_script,
    sbatch_quote,
    validate_array_script,
)
from portal.submit.taskconfigs import write_task_configs

UUID = "3f2a9c4e-1b7d-4e0a-9c55-0a1b2c3d4e5f"
HOSTILE = "$(touch pwned) `touch pwned` ; touch pwned | touch pwned && 'q' \"dq\" \\ \n next"


def make_ctx(tmp_path: Path, **changes) -> ArrayScript:
    values = dict(
        submission_uuid=UUID,
        job_name=job_name_for(UUID),
        run_dir=str(tmp_path / "run"),
        design_dir=str(tmp_path / "run" / "design"),
        array_indices=list(range(6)),
        throttle=2,
        cpus_per_task=4,
        mem_mb=8192,
        time_limit_minutes=90,
        flow_words=["printf", "%s\\n", ShellVar("TASK_ID")],
        flow_name="openlane1",
        portal_version="0.1.0",
    )
    values.update(changes)
    return ArrayScript(**values)


def sbatch_args(script: str) -> list[str]:
    """The arguments sbatch reads from #SBATCH lines, tokenized the way sbatch does.

    sbatch stops at the first line that is neither blank nor a comment; on an #SBATCH line,
    whitespace separates arguments, quotes group, backslash escapes, unquoted # ends the line.
    """
    args: list[str] = []
    for line in script.splitlines()[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if line.startswith("#SBATCH"):
            args.extend(_tokenize(line[len("#SBATCH") :]))
    return args


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    current, quote, escape, started = [], "", False, False
    for char in text:
        if escape:
            current.append(char)
            escape, started = False, True
        elif char == "\\":
            escape = True
        elif quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in "\"'":
            quote, started = char, True
        elif char == "#":
            break
        elif char.isspace():
            if started:
                tokens.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    assert not quote, "unmatched quote: sbatch would refuse the script"
    if started:
        tokens.append("".join(current))
    return tokens


def directives(script: str) -> dict[str, str]:
    out = {}
    for arg in sbatch_args(script):
        key, _, value = arg.partition("=")
        assert key not in out, f"{key} given twice"
        out[key] = value
    return out


def stage(ctx: ArrayScript, *task_ids: int) -> dict[int, str]:
    """What staging leaves: logs/, the design folder and the packed config of each task."""
    Path(ctx.run_dir, "logs").mkdir(parents=True, exist_ok=True)
    Path(ctx.design_dir).mkdir(parents=True, exist_ok=True)
    configs = {i: f'{{"TASK": {i}, "NOTE": "caf\u00e9 $(touch pwned)"}}\n' for i in task_ids}
    write_task_configs(Path(ctx.run_dir), ctx.config_name, configs.items())
    return configs


def run_script(
    script: str, workdir: Path, task_id: str | None = "0"
) -> subprocess.CompletedProcess:
    path = workdir / "job.sbatch"
    path.write_text(script)
    env = {"PATH": os.environ["PATH"], "HOME": str(workdir)}
    if task_id is not None:
        env["SLURM_ARRAY_TASK_ID"] = task_id
        env["SLURM_ARRAY_JOB_ID"] = "4242"
    return subprocess.run(
        ["bash", str(path)], cwd=workdir, env=env, capture_output=True, text=True, timeout=30
    )


def no_pwned_anywhere(*roots: Path) -> None:
    for root in roots:
        found = [p for p in root.rglob("*") if p.name.startswith("pwned")]
        assert not found, f"command injection: {found}"


# -- structure ---------------------------------------------------------------------------------
def test_sbatch_directives(tmp_path):
    script = render_array_script(
        make_ctx(tmp_path, partition="debug", account="chipdesign", qos="normal", comment="c 1")
    )
    d = directives(script)
    assert d["--array"] == "0-5%2"
    assert d["--job-name"] == f"olp-{UUID}"
    assert UUID in d["--job-name"]
    assert d["--cpus-per-task"] == "4"
    assert d["--mem"] == "8192M"
    assert d["--time"] == "90"
    assert d["--nodes"] == "1" and d["--ntasks"] == "1"
    assert d["--chdir"] == str(tmp_path / "run")
    assert d["--output"] == f"{tmp_path}/run/logs/%A_%a.out"
    assert d["--error"] == f"{tmp_path}/run/logs/%A_%a.err"
    assert (d["--partition"], d["--account"], d["--qos"]) == ("debug", "chipdesign", "normal")
    assert d["--comment"] == "c 1"


def test_script_shape(tmp_path):
    script = render_array_script(make_ctx(tmp_path))
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "OpenLane Portal 0.1.0 -- flow: openlane1" in lines[1]
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert lines[first_command] == "set -euo pipefail"
    assert all(not line.startswith("#SBATCH") for line in lines[first_command:])
    assert 'TASK_DIR="$RUN_DIR/tasks/$TASK_ID"' in lines
    assert "TASK_TAG=$(printf 'task-%04d' \"$TASK_ID\")" in lines
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_optional_directives_are_omitted(tmp_path):
    d = directives(render_array_script(make_ctx(tmp_path, throttle=0)))
    assert d["--array"] == "0-5"
    for key in ("--partition", "--account", "--qos", "--comment"):
        assert key not in d


def test_resubmission_indices_are_compressed(tmp_path):
    d = directives(render_array_script(make_ctx(tmp_path, array_indices=[9, 0, 1, 2, 3, 7])))
    assert d["--array"] == "0-3,7,9%2"


@pytest.mark.parametrize(
    ("indices", "expected"),
    [
        ([0], "0"),
        ([0, 1, 2, 3, 4, 5], "0-5"),
        ([0, 1, 2, 3, 7, 9], "0-3,7,9"),
        ([9, 7, 3, 2, 1, 0], "0-3,7,9"),
        ([1, 3, 5], "1,3,5"),
        ([4, 5, 10, 11, 12, 20], "4-5,10-12,20"),
    ],
)
def test_compress_indices(indices, expected):
    assert compress_indices(indices) == expected


@pytest.mark.parametrize(
    ("indices", "message"), [([], "at least one"), ([1, 1], "duplicates"), ([-1], ">= 0")]
)
def test_compress_indices_errors(indices, message):
    with pytest.raises(RenderError, match=message):
        compress_indices(indices)


# -- running the script with bash ---------------------------------------------------------------
def test_hostile_values_stay_literal_when_run(tmp_path):
    run_dir = tmp_path / "run $(touch pwned) `touch pwned`;|&<>*?~{a,b}"
    ctx = make_ctx(
        tmp_path,
        run_dir=str(run_dir),
        design_dir=str(tmp_path / "design 'q' \"dq\" $(touch pwned)"),
        comment="$(touch pwned) `touch pwned` # not a comment",
        env={"HOSTILE_VALUE": HOSTILE},
        container_words=[],
        flow_words=["printf", "%s", HOSTILE],
    )
    stage(ctx, 0)
    script = render_array_script(ctx)
    # sbatch sees the literal values too (its own tokenizer, no expansion).
    d = directives(script)
    assert d["--chdir"] == str(run_dir)
    assert d["--comment"] == ctx.comment
    result = run_script(script, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == HOSTILE
    assert (run_dir / "tasks" / "0" / "exit_code").read_text() == "0\n"
    no_pwned_anywhere(tmp_path)


def test_env_values_and_script_variables_reach_the_command(tmp_path):
    ctx = make_ctx(
        tmp_path,
        env={"HOSTILE_VALUE": HOSTILE, "PDK_ROOT": "/apps/pdks"},
        flow_words=[
            "printf",
            "%s\x1f",
            ShellVar("HOSTILE_VALUE"),
            ShellVar("PDK_ROOT"),
            ShellVar("TASK_DIR", "/config.json"),
            ShellVar("TASK_TAG"),
            ShellVar("DESIGN_DIR"),
        ],
    )
    stage(ctx, 3)
    result = run_script(render_array_script(ctx), tmp_path, task_id="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\x1f")[:-1] == [
        HOSTILE,
        "/apps/pdks",
        f"{ctx.run_dir}/tasks/3/config.json",
        "task-0003",
        ctx.design_dir,
    ]
    no_pwned_anywhere(tmp_path)


def test_markers_and_working_directory(tmp_path):
    ctx = make_ctx(tmp_path, flow_words=["pwd"])
    stage(ctx, 2)
    result = run_script(render_array_script(ctx), tmp_path, task_id="2")
    task_dir = Path(ctx.run_dir, "tasks", "2")
    assert result.stdout.strip() == str(task_dir)
    started = dict(line.split("=", 1) for line in (task_dir / "started").read_text().splitlines())
    assert started["task"] == "2"
    assert started["job"] == "4242_2"
    assert started["host"] and started["started"].endswith("Z")


def test_exit_code_is_recorded_and_returned(tmp_path):
    ctx = make_ctx(tmp_path, flow_words=["sh", "-c", "echo failing >&2; exit 3"])
    stage(ctx, 0)
    result = run_script(render_array_script(ctx), tmp_path)
    assert result.returncode == 3
    assert "failing" in result.stderr
    assert Path(ctx.run_dir, "tasks", "0", "exit_code").read_text() == "3\n"


def test_stale_exit_code_is_removed_before_the_run(tmp_path):
    ctx = make_ctx(tmp_path, flow_words=["test", "-e", "exit_code"])
    stage(ctx, 0)
    Path(ctx.run_dir, "tasks", "0").mkdir(parents=True)
    Path(ctx.run_dir, "tasks", "0", "exit_code").write_text("0\n")
    result = run_script(render_array_script(ctx), tmp_path)
    assert result.returncode == 1  # the old marker was gone when the command ran


def test_each_task_copies_its_own_config_out_of_the_pack(tmp_path):
    ctx = make_ctx(tmp_path, flow_words=["cat", ShellVar("TASK_DIR", "/config.json")])
    configs = stage(ctx, 0, 1, 2)
    for task in (2, 0, 1):
        result = run_script(render_array_script(ctx), tmp_path, task_id=str(task))
        assert result.returncode == 0, result.stderr
        assert result.stdout == configs[task]
        assert Path(ctx.run_dir, "tasks", str(task), "config.json").read_text() == configs[task]
        assert not Path(ctx.run_dir, "tasks", str(task), "config.json.part").exists()
    no_pwned_anywhere(tmp_path)


def test_a_config_already_in_the_task_folder_is_kept(tmp_path):
    ctx = make_ctx(tmp_path, config_name="config.tcl", flow_words=["cat", "config.tcl"])
    stage(ctx, 0)
    edited = Path(ctx.run_dir, "tasks", "0", "config.tcl")
    edited.parent.mkdir(parents=True)
    edited.write_text("set ::env(CLOCK_PERIOD) 7\n")
    result = run_script(render_array_script(ctx), tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "set ::env(CLOCK_PERIOD) 7\n"


def test_the_design_link_points_at_the_design_folder(tmp_path):
    ctx = make_ctx(tmp_path, design_link="design", flow_words=["ls", "design/"])
    stage(ctx, 5)
    Path(ctx.design_dir, "marker.v").write_text("module m; endmodule\n")
    result = run_script(render_array_script(ctx), tmp_path, task_id="5")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["marker.v"]
    link = Path(ctx.run_dir, "tasks", "5", "design")
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == Path(ctx.design_dir).resolve()


def test_a_task_missing_from_the_pack_is_a_clear_error(tmp_path):
    ctx = make_ctx(tmp_path)
    stage(ctx, 0)
    result = run_script(render_array_script(ctx), tmp_path, task_id="4")
    assert result.returncode == 2
    assert f"task 4 is not in {ctx.run_dir}/task-configs.index" in result.stderr


@pytest.mark.parametrize("field_name", ["config_name", "design_link"])
@pytest.mark.parametrize("value", ["../x", "a b", "-rf", "", "x/y", "$(id)"])
def test_file_names_in_the_task_folder_must_be_plain(tmp_path, field_name, value):
    with pytest.raises(RenderError, match=field_name):
        render_array_script(make_ctx(tmp_path, **{field_name: value}))


def test_outside_slurm_the_script_refuses_to_run(tmp_path):
    ctx = make_ctx(tmp_path)
    stage(ctx, 0)
    result = run_script(render_array_script(ctx), tmp_path, task_id=None)
    assert result.returncode == 2
    assert "SLURM_ARRAY_TASK_ID is not set" in result.stderr


def test_task_id_is_not_evaluated_as_arithmetic_code(tmp_path):
    ctx = make_ctx(tmp_path)
    stage(ctx, 0)
    result = run_script(render_array_script(ctx), tmp_path, task_id="a[$(touch pwned)]")
    assert result.returncode == 2
    no_pwned_anywhere(tmp_path)


def test_index_offset_maps_array_index_to_task(tmp_path):
    ctx = make_ctx(
        tmp_path,
        array_indices=[0, 1, 2],
        index_offset=1000,
        job_name=job_name_for(UUID, 1000),
        flow_words=["printf", "%s %s", ShellVar("TASK_ID"), ShellVar("TASK_TAG")],
    )
    stage(ctx, 1002)
    script = render_array_script(ctx)
    assert directives(script)["--array"] == "0-2%2"
    assert directives(script)["--job-name"] == f"olp-{UUID}-o1000"
    result = run_script(script, tmp_path, task_id="2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1002 task-1002"
    assert Path(ctx.run_dir, "tasks", "1002", "exit_code").read_text() == "0\n"


# -- splitting past MaxArraySize ----------------------------------------------------------------
def test_plan_arrays_fits_in_one_array():
    assert plan_arrays(6, 1001) == [ArrayChunk(0, (0, 1, 2, 3, 4, 5))]
    assert plan_arrays(1001, 1001)[0].array_indices[-1] == 1000


def test_plan_arrays_splits_with_offsets_below_max_array_size():
    chunks = plan_arrays(2500, 1001)
    assert [c.index_offset for c in chunks] == [0, 1001, 2002]
    assert [compress_indices(c.array_indices) for c in chunks] == ["0-1000", "0-1000", "0-497"]
    assert all(max(c.array_indices) < 1001 for c in chunks)
    assert [i for c in chunks for i in c.task_indices] == list(range(2500))


def test_plan_array_chunks_for_a_resubmission_of_scattered_failures():
    chunks = plan_array_chunks([3001, 5, 1500, 6, 2999, 7, 3000], 1001)
    assert [(c.index_offset, compress_indices(c.array_indices)) for c in chunks] == [
        (0, "5-7"),
        (1500, "0"),
        (2999, "0-2"),
    ]
    assert sorted(i for c in chunks for i in c.task_indices) == [5, 6, 7, 1500, 2999, 3000, 3001]


@pytest.mark.parametrize("max_size", [1, 2, 7, 1001])
@pytest.mark.parametrize("n", [1, 5, 1000, 1001, 1002, 3333])
def test_plan_arrays_properties(n, max_size):
    chunks = plan_arrays(n, max_size)
    assert [i for c in chunks for i in c.task_indices] == list(range(n))
    assert all(0 <= i < max_size for c in chunks for i in c.array_indices)


def test_plan_errors():
    with pytest.raises(RenderError, match="at least one point"):
        plan_arrays(0, 1001)
    with pytest.raises(RenderError, match="max_array_size must be at least 1"):
        plan_arrays(5, 0)
    with pytest.raises(RenderError, match="no task indices"):
        plan_array_chunks([], 10)
    with pytest.raises(RenderError, match=">= 0"):
        plan_array_chunks([-3], 10)


def test_chunk_scripts_render_valid_arrays(tmp_path):
    base = make_ctx(tmp_path, array_indices=list(range(2500)))
    scripts = chunk_scripts(base, 1001)
    assert [s.index_offset for s in scripts] == [0, 1001, 2002]
    assert [s.job_name for s in scripts] == [
        f"olp-{UUID}",
        f"olp-{UUID}-o1001",
        f"olp-{UUID}-o2002",
    ]
    arrays = [directives(render_array_script(s))["--array"] for s in scripts]
    assert arrays == ["0-1000%2", "0-1000%2", "0-497%2"]


def test_chunk_scripts_derive_names_from_the_given_job_name(tmp_path):
    base = make_ctx(tmp_path, job_name=f"olp-{UUID}-r2", array_indices=[0, 5, 9])
    names = [s.job_name for s in chunk_scripts(base, 5)]
    assert names == [f"olp-{UUID}-r2", f"olp-{UUID}-r2-o5"]


def test_array_index_past_max_array_size_is_refused(tmp_path):
    with pytest.raises(RenderError, match="exceeds MaxArraySize-1 .1000."):
        render_array_script(make_ctx(tmp_path, array_indices=[1000, 1999], max_array_size=1001))
    with pytest.raises(RenderError, match="index_offset 0"):
        chunk_scripts(make_ctx(tmp_path, index_offset=5), 1001)


# -- validation ---------------------------------------------------------------------------------
def test_newline_suffixed_shell_var_cannot_even_be_built():
    with pytest.raises(ValueError, match="not a shell variable name"):
        ShellVar("TASK_DIR\n")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"partition": "debug\n#SBATCH --uid=0"}, "partition: character '\\\\n'"),
        ({"partition": "$(touch pwned)"}, "partition: '\\$\\(touch pwned\\)' is not a valid"),
        ({"partition": "a b"}, "partition: 'a b' is not a valid Slurm name"),
        ({"account": 'acct"x'}, "account: character '\"'"),
        ({"account": "acct;rm"}, "not a valid Slurm name"),
        ({"qos": "q`id`"}, "not a valid Slurm name"),
        ({"comment": "line\nbreak"}, "comment: character '\\\\n'"),
        ({"comment": "it's"}, 'comment: character "\'"'),
        ({"comment": "back\\slash"}, "comment: character"),
        ({"comment": "x" * 1001}, "longer than 1000"),
        ({"run_dir": "relative/run"}, "run_dir must be an absolute path"),
        ({"run_dir": "/runs/50%/x"}, "'%' would be expanded by Slurm"),
        ({"run_dir": "/runs/a\nb"}, "run_dir: character"),
        ({"run_dir": "/runs/it's"}, "run_dir: character"),
        ({"design_dir": "design"}, "design_dir must be an absolute path"),
        ({"design_dir": "/d\x00"}, "NUL"),
        ({"job_name": "olp-other"}, "job_name must contain the submission UUID"),
        ({"job_name": f"olp-{UUID} x"}, "job_name: .* is not a valid Slurm name"),
        ({"submission_uuid": "../etc"}, "submission_uuid"),
        ({"flow_name": "ol\n#SBATCH"}, "flow_name"),
        ({"portal_version": "1 $(x)"}, "portal_version"),
        ({"throttle": -1}, "throttle must be an integer >= 0"),
        ({"cpus_per_task": 0}, "cpus_per_task must be an integer >= 1"),
        ({"mem_mb": "4G"}, "mem_mb must be an integer"),
        ({"time_limit_minutes": True}, "time_limit_minutes must be an integer"),
        ({"index_offset": -5}, "index_offset"),
        ({"array_indices": []}, "at least one index"),
        ({"array_indices": [0, "1"]}, "array index must be an integer"),
        ({"env": {"lower": "x"}}, "not a valid variable name"),
        ({"env": {"PATH": "/evil"}}, "PATH is reserved"),
        ({"env": {"LD_PRELOAD": "/evil.so"}}, "LD_PRELOAD is reserved"),
        ({"env": {"SLURM_ARRAY_TASK_ID": "5"}}, "reserved"),
        ({"env": {"TASK_DIR": "/x"}}, "reserved"),
        ({"env": {"BASH_ENV": "/x"}}, "reserved"),
        ({"env": {"A\n": "x"}}, "not a valid variable name"),
        ({"env": {"OK": 5}}, "must be a string"),
        ({"flow_words": []}, "nothing to run"),
        ({"flow_words": ["echo", ShellVar("HOME")]}, "refers to \\$HOME"),
        ({"flow_words": ["echo", 5]}, "command words must be strings"),
        ({"container_words": ["a\x00b"], "flow_words": ["x"]}, "without NUL"),
    ],
)
def test_unsafe_values_are_rejected(tmp_path, changes, message):
    with pytest.raises(RenderError, match=message):
        validate_array_script(make_ctx(tmp_path, **changes))


def test_accepted_names_and_slurm_variables(tmp_path):
    ctx = make_ctx(
        tmp_path,
        partition="debug,long",
        account="my_lab-1",
        env={"APPTAINERENV_PDK_ROOT": "/apps/pdks"},
        flow_words=["echo", ShellVar("SLURM_CPUS_PER_TASK"), ShellVar("APPTAINERENV_PDK_ROOT")],
    )
    assert directives(render_array_script(ctx))["--partition"] == "debug,long"


def test_sbatch_quote_filter():
    assert sbatch_quote("/a b/#c") == '"/a b/#c"'
    assert _tokenize(" --x=" + sbatch_quote("/a b/#c")) == ["--x=/a b/#c"]
    with pytest.raises(RenderError):
        sbatch_quote('a"b')


def test_environment_is_strict_and_has_shell_filters(tmp_path):
    (tmp_path / "t.j2").write_text("{{ value | shquote }} {{ words | shjoin }} {{ missing }}")
    env = make_environment(tmp_path)
    assert env.autoescape is False
    assert env.trim_blocks is True
    template = env.get_template("t.j2")
    with pytest.raises(Exception, match="'missing' is undefined"):
        template.render(value="a b", words=["x"])
    (tmp_path / "ok.j2").write_text("{{ value | shquote }} {{ words | shjoin }}")
    rendered = env.get_template("ok.j2").render(value="a'b", words=["$x", ShellVar("TASK_DIR")])
    assert rendered == "'a'\"'\"'b' '$x' \"${TASK_DIR}\""


def test_array_script_is_immutable(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.run_dir = "/elsewhere"  # type: ignore[misc]
