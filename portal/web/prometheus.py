"""Blueprint ``metrics``: ``GET /metrics`` in the Prometheus text format.

Every scrape builds a fresh :class:`~prometheus_client.CollectorRegistry` from the database
(submissions and tasks by state, mail waiting in the outbox, the poller lease) and from the
poller's statistics file (last cycle duration, cycles and sacct errors; see
:mod:`portal.track.pollstats`), so all gunicorn workers give the same answer. With ``METRICS_TOKEN``
set, the scraper must send ``Authorization: Bearer <METRICS_TOKEN>``.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Lease, Outbox, Submission, SubmissionState, Task, User, utcnow
from portal.track.poller import LEASE_NAME
from portal.track.pollstats import PREFIX, read_poller_stats, stats_path
from portal.web import bearer_token, portal_version

bp = Blueprint("metrics", __name__)


def _grouped(column: Any, count_of: Any) -> dict[str, int]:
    return {
        str(key): int(n)
        for key, n in db.session.execute(select(column, func.count(count_of)).group_by(column))
    }


class _PortalCollector:
    """Reads everything at collect time (one registry per scrape)."""

    def __init__(self, instance_path: str) -> None:
        self.instance_path = instance_path

    def collect(self) -> Any:
        submissions = _grouped(Submission.state, Submission.id)
        family = GaugeMetricFamily(
            f"{PREFIX}_submissions", "Submissions by state.", labels=["state"]
        )
        for state in [s.value for s in SubmissionState] + sorted(
            set(submissions) - {s.value for s in SubmissionState}
        ):
            family.add_metric([state], submissions.get(state, 0))
        yield family

        tasks = _grouped(Task.state, Task.id)
        family = GaugeMetricFamily(f"{PREFIX}_tasks", "Array tasks by state.", labels=["state"])
        for state, count in sorted(tasks.items()):
            family.add_metric([state], count)
        yield family

        outbox = _grouped(Outbox.status, Outbox.id)
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_queued", "Emails waiting to be sent.", value=outbox.get("queued", 0)
        )
        family = GaugeMetricFamily(
            f"{PREFIX}_outbox_messages", "Emails in the outbox by status.", labels=["status"]
        )
        for status, count in sorted(outbox.items()):
            family.add_metric([status], count)
        yield family

        active = db.session.scalar(select(func.count(User.id)).where(User.active.is_(True)))
        yield GaugeMetricFamily(f"{PREFIX}_users_active", "Active accounts.", value=active or 0)
        yield from self._poller()

    def _poller(self) -> Any:
        lease = db.session.get(Lease, LEASE_NAME)
        held = lease is not None and lease.expires_at > utcnow()
        yield GaugeMetricFamily(
            f"{PREFIX}_poller_lease_held",
            "1 while some process holds an unexpired poller lease.",
            value=1 if held else 0,
        )
        stats = read_poller_stats(stats_path(self.instance_path))
        if stats is None:
            return
        yield CounterMetricFamily(
            f"{PREFIX}_poll_cycles",
            "Poll cycles run by the current poller process.",
            value=stats.cycles_total,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_sacct_errors",
            "Poll cycles in which Slurm (sacct) failed, in the current poller process.",
            value=stats.sacct_errors_total,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_poll_consecutive_errors",
            "Failed poll cycles in a row (0 after a good one).",
            value=stats.consecutive_errors,
        )
        if stats.last_cycle_seconds is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_poll_cycle_duration_seconds",
                "Duration of the last poll cycle.",
                value=stats.last_cycle_seconds,
            )
        if stats.last_cycle_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_poll_last_cycle_timestamp_seconds",
                "When the last poll cycle ended (Unix time).",
                value=stats.last_cycle_at,
            )
        if stats.last_success_at is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_poll_last_success_timestamp_seconds",
                "When the last successful poll cycle ended (Unix time).",
                value=stats.last_success_at,
            )


def _authorized() -> bool:
    wanted = current_app.config.get("METRICS_TOKEN")
    if not wanted:
        return True
    given = bearer_token() or ""
    return hmac.compare_digest(given.encode(), str(wanted).encode())


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, built from the database at each scrape."""
    if not _authorized():
        return Response(
            "metrics need Authorization: Bearer <METRICS_TOKEN>\n",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="openlane-portal-metrics"'},
        )
    started = time.perf_counter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_PortalCollector(current_app.instance_path))
    body = generate_latest(registry)
    build = GaugeMetricFamily(f"{PREFIX}_build_info", "Portal version.", labels=["version"])
    build.add_metric([portal_version()], 1)
    scrape = GaugeMetricFamily(
        f"{PREFIX}_scrape_duration_seconds",
        "Time spent reading the database for this scrape.",
        value=time.perf_counter() - started,
    )
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_Static([build, scrape]))
    return Response(body + generate_latest(extra), mimetype=CONTENT_TYPE_LATEST)


class _Static:
    def __init__(self, families: list[Any]) -> None:
        self.families = families

    def collect(self) -> Any:
        return iter(self.families)
