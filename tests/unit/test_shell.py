import subprocess

import pytest

from portal.shell import ShellVar, shjoin, shquote

HOSTILE = [
    "$(touch pwned)",
    "`touch pwned`",
    "a; touch pwned",
    "a | touch pwned",
    "'\"",
    "a\nb",
    "",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_quoted_values_reach_the_program_unchanged(tmp_path, value):
    script = f"printf '%s' {shquote(value)}"
    out = subprocess.run(["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert out.stdout == value
    assert not (tmp_path / "pwned").exists()


def test_shell_var_expands_and_suffix_stays_literal(tmp_path):
    line = shjoin(["printf", "%s|%s", ShellVar("TASK_DIR", "/$(x)"), "b c"])
    out = subprocess.run(["sh", "-c", f"TASK_DIR='/r un'; {line}"], capture_output=True, text=True)
    assert out.stdout == "/r un/$(x)|b c"


def test_bad_variable_name_is_refused():
    with pytest.raises(ValueError):
        ShellVar("X; rm")
