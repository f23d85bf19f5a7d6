"""Helpers for the engine tests on the real cluster: an app on a temp database, the example
design served by a real git daemon, and waiting for submissions through the real poller."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

from portal import create_app
from portal.cluster.connect import slurm_client
from portal.extensions import db
from portal.models import FINAL_STATES, Submission, User
from portal.track.poller import poll_once
from tests.conftest import REPO_ROOT

STANDIN = REPO_ROOT / "tests" / "standin" / "openlane_standin.py"
EXAMPLE = REPO_ROOT / "examples" / "counter"


LIBRELANE_PREFIX = REPO_ROOT / ".venv-librelane"
PDK_ROOT = REPO_ROOT / ".pdk"


def native_librelane() -> dict[str, Any]:
    """Settings that run the REAL LibreLane natively, cut after synthesis (this machine has no
    OpenROAD), from what scripts/install-librelane put in the checkout."""
    librelane = LIBRELANE_PREFIX / "bin" / "librelane"
    if not librelane.exists() or not (PDK_ROOT / "sky130A").is_dir():
        pytest.fail(
            f"LibreLane or the PDK subset is missing ({librelane}, {PDK_ROOT}/sky130A): "
            "run scripts/install-librelane (scripts/bootstrap does)",
            pytrace=False,
        )
    return {
        "FLOW_EXECUTABLE_OVERRIDE": None,
        "CONTAINER_RUNTIME": "native",
        "LIBRELANE_EXECUTABLE": str(librelane),
        "LIBRELANE_YOSYS": str(LIBRELANE_PREFIX / "bin" / "yosys-pyosys"),
        "LIBRELANE_STEPS": "synthesis",
        "PDK_ROOT": str(PDK_ROOT),
    }


def make_app(tmp: Path, **overrides: Any) -> Flask:
    """A portal app on a fresh SQLite database, running the stand-in flow (a test double)."""
    settings = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'portal.db'}",
        "RUN_ROOT": str(tmp / "runs"),
        "FLOW_EXECUTABLE_OVERRIDE": str(STANDIN),
        "SLURM_PARTITION": "debug",
        "POLL_INTERVAL_SECONDS": 1,
        "APPROVAL_CORE_HOURS": 1000,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": 1,
        **overrides,
    }
    app = create_app(settings)
    with app.app_context():
        upgrade()
    return app


@pytest.fixture
def engine_app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    with app.app_context():
        db.session.add(User(username="ada", email="ada@example.org", slurm_account="openlane"))
        db.session.add(User(username="root", email="root@example.org", role="admin"))
        db.session.commit()
        yield app
        db.session.remove()


@pytest.fixture(scope="session")
def example_repo(git_daemon, tmp_path_factory) -> str:  # noqa: ANN001 - fixture
    """git:// URL of the example design, served by a real git daemon on loopback."""
    src = tmp_path_factory.mktemp("example-src")
    shutil.copytree(EXAMPLE, src / "designs" / "counter")
    git_daemon.add_repo("counter.git", src)
    return f"{git_daemon.url_base}/counter.git"


def wait_final(app: Flask, submission: Submission, timeout: float = 180) -> Submission:
    """Poll with the real poller until the submission is final."""
    slurm = slurm_client(app.config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll_once(slurm)
        db.session.refresh(submission)
        if submission.state in FINAL_STATES:
            return submission
        time.sleep(1)
    raise AssertionError(f"submission still {submission.state} after {timeout}s")


def wait_state(app: Flask, submission: Submission, states: set[str], timeout: float = 60) -> None:
    slurm = slurm_client(app.config)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poll_once(slurm)
        db.session.refresh(submission)
        if {t.state for t in submission.tasks} & states:
            return
        time.sleep(0.5)
    raise AssertionError(f"no task reached {states} in {timeout}s")
