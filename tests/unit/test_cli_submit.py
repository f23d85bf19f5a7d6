"""``portal submit`` on the portal host goes through the same service call as the form and the
API (plan, record, launch): refusals say why and record nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from portal import create_app
from portal.cli import main
from portal.extensions import db
from portal.models import Submission
from tests.fixtures.gitdaemon import closed_port


@pytest.fixture
def portal_host(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("PORTAL_GIT_ALLOW_FILE_URLS", "true")
    (tmp_path / "pdks" / "sky130A").mkdir(parents=True)
    monkeypatch.setenv("PORTAL_PDK_ROOT", str(tmp_path / "pdks"))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    added = runner.invoke(main, ["user", "add", "ada", "--email", "ada@example.org"])
    assert added.exit_code == 0, added.output
    return tmp_path


def submissions(instance: Path) -> int:
    app = create_app()
    with app.app_context():
        return db.session.scalar(select(func.count(Submission.id)))


def submit(*extra: str) -> object:
    words = ["submit", "--repo", "/srv/git/chip.git", "--design", "designs/counter"]
    return CliRunner().invoke(main, [*words, "--user", "ada", *extra])


def test_silent_slurm_at_submit_records_nothing(portal_host: Path, monkeypatch) -> None:
    with closed_port() as port:
        monkeypatch.setenv("PORTAL_SLURM_TRANSPORT", "ssh")
        monkeypatch.setenv("PORTAL_SLURM_SSH_HOST", "127.0.0.1")
        monkeypatch.setenv("PORTAL_SLURM_SSH_PORT", str(port))
        answer = submit()
    assert answer.exit_code == 2, answer.output
    assert "error: Slurm does not answer (" in answer.output
    assert "nothing was submitted" in answer.output
    assert submissions(portal_host) == 0


def test_a_refused_request_says_why_and_records_nothing(portal_host: Path) -> None:
    answer = submit("--set", "NO_SUCH_VARIABLE=1")
    assert answer.exit_code == 2 and "NO_SUCH_VARIABLE" in answer.output
    answer = submit("--cpus", "1", "--mem", "lots")
    assert answer.exit_code == 2 and "'lots' is not a memory size" in answer.output
    assert submissions(portal_host) == 0
