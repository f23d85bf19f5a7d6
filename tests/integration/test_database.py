"""Migrations and leases on SQLite and on a real (throwaway) PostgreSQL server."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import inspect

from portal import create_app, leases
from portal.extensions import db
from portal.models import Submission, Task, User
from tests.fixtures.postgres import create_database, postgres_server  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'portal.db'}"
    base = request.getfixturevalue("postgres_server")
    return create_database(base, f"olp_{tmp_path.name[-20:].lower().replace('-', '_')}")


@pytest.fixture
def app(database_url, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "RUN_ROOT": str(tmp_path)})
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_migrations_create_every_table(app):
    tables = set(inspect(db.engine).get_table_names())
    assert {"users", "submissions", "tasks", "outbox", "audit_log", "leases"} <= tables
    assert tables - {"alembic_version"} == set(db.metadata.tables)


def test_migrations_match_the_models(app):
    """Every column, index and constraint of the models is created by a migration."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, db.metadata) == []


def test_submission_with_tasks_round_trips(app):
    user = User(username="ada", email="ada@example.org")
    sub = Submission(owner=user, repo_url="https://example.org/r.git", ref="main", flow="openlane1")
    sub.tasks = [Task(index=i, params={"CLOCK_PERIOD": 10 + i}) for i in range(3)]
    db.session.add(sub)
    db.session.commit()
    db.session.expire_all()
    again = db.session.scalars(db.select(Submission)).one()
    assert again.job_name == f"olp-{again.uuid}"
    assert [t.params["CLOCK_PERIOD"] for t in again.tasks] == [10, 11, 12]


def test_only_one_holder_wins_a_lease_race(app):
    winners: list[str] = []
    barrier = threading.Barrier(4)

    def contend(name: str) -> None:
        with app.app_context():
            barrier.wait()
            if leases.acquire("poller", name, 60):
                winners.append(name)
            db.session.remove()

    threads = [threading.Thread(target=contend, args=(f"p{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert leases.acquire("poller", winners[0], 60)  # the holder renews
    assert not leases.acquire("poller", "someone-else", 60)
    leases.release("poller", winners[0])
    assert leases.acquire("poller", "someone-else", 60)  # released: free to take
