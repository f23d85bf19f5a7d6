"""A fresh clone of the committed repository, with nothing beside it, passes the unit tests.

The clone is ``<tmp>/lone/solo`` and ``<tmp>/lone`` holds nothing else, so a test that reads
``<repo>/..`` (as the reference data once was) finds nothing there. Only COMMITTED files are in
the clone: commit before running this test.

The project's virtualenv has the original checkout installed in editable mode. Its finder comes
after the ``sys.path`` entries, so ``PYTHONPATH=<clone>`` makes the clone's code win; the first
check below proves that it does, so the unit tests really ran the clone's code.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    lone = tmp_path_factory.mktemp("clean-clone") / "lone"
    lone.mkdir()
    target = lone / "solo"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(target)], check=True, timeout=300)
    assert [p.name for p in lone.iterdir()] == ["solo"]
    return target


def clone_env(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "OPENLANE_"))}
    env["PYTHONPATH"] = str(clone)
    env.pop("PYTHONHOME", None)
    return env


@pytest.mark.slow
def test_the_clone_imports_its_own_code(clone):
    done = subprocess.run(
        [str(PYTHON), "-c", "import portal, tests; print(portal.__file__); print(tests.__file__)"],
        cwd=clone,
        env=clone_env(clone),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for imported in done.stdout.split():
        path = Path(imported).resolve()
        assert clone.resolve() in path.parents, f"{imported} is not inside the clone {clone}"


@pytest.mark.slow
def test_the_unit_tests_pass_in_a_clean_clone(clone):
    done = subprocess.run(
        [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=clone,
        env=clone_env(clone),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, (
        f"unit tests failed in a clean clone of {REPO_ROOT} at {clone} "
        f"(exit {done.returncode}):\n{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
    )
