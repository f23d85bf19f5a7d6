"""Seed a portal database with many submissions and tasks, fast (SQLAlchemy core bulk inserts).

The data looks like a busy portal's: several users (the benchmark user owns 90 %), submissions
in every state, one large RUNNING submission of 10 % of all tasks (the worst submission page),
the rest spread evenly; finished tasks carry real metrics (parsed from the recorded OpenLane
runs in tests/data/openlane), their timing and node. Nothing here talks to Slurm.
"""

from __future__ import annotations

import random
import uuid as uuidlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from benchmarks.common import OPENLANE_DATA, add_user

BATCH = 5000
#: (submission state, share) for the small submissions.
STATE_MIX = (
    ("COMPLETED", 0.55),
    ("PARTIAL", 0.10),
    ("FAILED", 0.05),
    ("CANCELLED", 0.05),
    ("RUNNING", 0.08),
    ("QUEUED", 0.08),
    ("AWAITING_APPROVAL", 0.03),
    ("REJECTED", 0.02),
    ("SUBMIT_FAILED", 0.02),
    ("STAGING", 0.02),
)


@dataclass
class Seeded:
    """What was seeded: the main user's login and API token, notable submissions, and every
    user's token and (some of its) submissions."""

    username: str
    token: str
    large_uuid: str
    small_uuid: str
    submissions: int
    tasks: int
    owned: int
    tokens: dict[str, str] = field(default_factory=dict)
    uuids: dict[str, list[str]] = field(default_factory=dict)


def real_metrics() -> list[dict[str, Any]]:
    """Normalized features of every recorded OpenLane 1 row (what the poller stores)."""
    from portal.flows.reports import parse_openlane1_csv

    rows = []
    for path in sorted((OPENLANE_DATA / "openlane1" / "metrics").glob("*.csv")):
        rows += [f.to_dict(include_raw=False) for f in parse_openlane1_csv(path)]
    return rows


def _task_states(sub_state: str, n: int, rng: random.Random) -> list[str]:
    if sub_state == "COMPLETED":
        return ["COMPLETED"] * n
    if sub_state == "PARTIAL":
        return ["FAILED" if rng.random() < 0.2 else "COMPLETED" for _ in range(n)]
    if sub_state == "FAILED":
        return ["FAILED"] * n
    if sub_state == "CANCELLED":
        return [rng.choice(("CANCELLED", "COMPLETED")) for _ in range(n)]
    if sub_state == "RUNNING":
        return [rng.choice(("COMPLETED", "RUNNING", "PENDING", "PENDING")) for _ in range(n)]
    return ["PENDING"] * n


def seed(
    app: Any,
    submissions: int,
    tasks: int,
    *,
    users: int = 10,
    main_share: float = 0.9,
    seed_value: int = 1,
) -> Seeded:
    """Fill the (migrated, empty) database of ``app``: ``users`` users (``bench`` first, then
    ``user1``...), ``bench`` owning ``main_share`` of the submissions and the large one."""
    from sqlalchemy import insert, select

    from portal import accounts
    from portal.extensions import db
    from portal.models import Submission, Task, utcnow

    rng = random.Random(seed_value)
    metrics = real_metrics()
    with app.app_context():
        people = [add_user("bench")] + [add_user(f"user{i}") for i in range(1, users)]
        tokens = {u.username: accounts.create_api_token(u, "benchmark")[0] for u in people}
        names = {u.id: u.username for u in people}
        bench_id = people[0].id
        others = [u.id for u in people[1:]] or [bench_id]
        large = max(1, tasks // 10) if submissions > 1 else tasks
        rest = tasks - large
        sizes = [large] + [
            rest // (submissions - 1) + (1 if i < rest % (submissions - 1) else 0)
            for i in range(submissions - 1)
        ]
        now = utcnow()
        sub_rows = []
        states = [s for s, _ in STATE_MIX]
        weights = [w for _, w in STATE_MIX]
        for number, n in enumerate(sizes):
            state = "RUNNING" if number == 0 else rng.choices(states, weights)[0]
            created = now - timedelta(minutes=submissions - number)
            owner = bench_id if number == 0 or rng.random() < main_share else rng.choice(others)
            launched = state not in ("AWAITING_APPROVAL", "REJECTED", "SUBMIT_FAILED", "STAGING")
            sub_rows.append(
                {
                    "uuid": str(uuidlib.UUID(int=rng.getrandbits(128), version=4)),
                    "owner_id": owner,
                    "name": f"counter sweep {number} ({n} points)",
                    "repo_url": "https://github.com/example/counter.git",
                    "ref": "main",
                    "commit": f"{rng.getrandbits(160):040x}",
                    "design_path": "designs/counter",
                    "flow": "openlane1",
                    "base_params": {"PL_TARGET_DENSITY": 0.55},
                    "sweep_spec": {
                        "kind": "grid",
                        "parameters": {"CLOCK_PERIOD": [10 + i for i in range(n)]},
                    },
                    "resources": {
                        "cpus": 1,
                        "mem_mb": 4096,
                        "time_minutes": 60,
                        "partition": "debug",
                        "account": None,
                        "qos": None,
                        "throttle": 0,
                    },  # fmt: skip
                    "state": state,
                    "job_ids": [str(1000 + number)] if launched else [],
                    "n_tasks": n,
                    "cost_core_hours": float(n),
                    "run_dir": f"/srv/runs/{number}",
                    "notify": True,
                    "error": "sbatch: error: invalid partition"
                    if state == "SUBMIT_FAILED"
                    else None,
                    "created_at": created,
                    "updated_at": created,
                    "submitted_at": created + timedelta(seconds=5) if launched else None,
                    "finished_at": created + timedelta(minutes=30)
                    if state in ("COMPLETED", "PARTIAL", "FAILED", "CANCELLED", "REJECTED")
                    else None,
                }
            )
        for start in range(0, len(sub_rows), BATCH):
            db.session.execute(insert(Submission), sub_rows[start : start + BATCH])
        db.session.commit()
        ids = dict(db.session.execute(select(Submission.uuid, Submission.id)).all())
        batch: list[dict[str, Any]] = []
        for number, (row, n) in enumerate(zip(sub_rows, sizes, strict=True)):
            launched = bool(row["job_ids"])
            for index, state in enumerate(_task_states(row["state"], n, rng)):
                done = state in ("COMPLETED", "FAILED", "CANCELLED")
                started = row["created_at"] + timedelta(seconds=10 + index % 50)
                batch.append(
                    {
                        "submission_id": ids[row["uuid"]],
                        "index": index,
                        "params": {"CLOCK_PERIOD": 10 + index},
                        "array_job_id": row["job_ids"][0] if launched else None,
                        "array_index": index if launched else None,
                        "state": state,
                        "exit_code": (0 if state == "COMPLETED" else 1) if done else None,
                        "node": "vm" if state != "PENDING" else None,
                        "started_at": started if state != "PENDING" else None,
                        "ended_at": started + timedelta(seconds=300) if done else None,
                        "elapsed_seconds": 300 if done else None,
                        "metrics": metrics[(number + index) % len(metrics)]
                        if state == "COMPLETED"
                        else None,
                    }
                )
                if len(batch) >= BATCH:
                    db.session.execute(insert(Task), batch)
                    batch = []
        if batch:
            db.session.execute(insert(Task), batch)
        db.session.commit()
        owned = sum(1 for row in sub_rows if row["owner_id"] == bench_id)
        small = next(
            row["uuid"] for row, n in zip(sub_rows[1:], sizes[1:], strict=True)
            if row["owner_id"] == bench_id and row["state"] == "COMPLETED" and n > 1
        ) if submissions > 1 else sub_rows[0]["uuid"]  # fmt: skip
        uuids: dict[str, list[str]] = {name: [] for name in names.values()}
        for row in sub_rows:
            if len(uuids[names[row["owner_id"]]]) < 200:
                uuids[names[row["owner_id"]]].append(row["uuid"])
        db.session.remove()
    return Seeded(
        "bench",
        tokens["bench"],
        sub_rows[0]["uuid"],
        small,
        len(sub_rows),
        tasks,
        owned,
        tokens=tokens,
        uuids=uuids,
    )
