"""APScheduler jobs of a portal process: the poll cycle and the mail sender.

Every process may start them (each gunicorn worker, ``portal poll``); database leases make
exactly one of them active.
"""

from __future__ import annotations

import logging
import signal
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from portal.config import settings_of
from portal.track.poller import Poller

log = logging.getLogger(__name__)


def start_scheduler(app: Flask, poller: Poller) -> BackgroundScheduler:
    """Start the interval jobs in a background thread and return the scheduler."""
    from portal.mail import outbox

    scheduler = BackgroundScheduler(daemon=True)

    def poll_then_mail() -> None:
        stats = poller.run_cycle()
        if stats is not None and stats.submissions_changed:
            outbox.run_sender_cycle(app)  # a finished array's mail goes out in the same cycle

    scheduler.add_job(
        poll_then_mail,
        "interval",
        seconds=float(settings_of(app).POLL_INTERVAL_SECONDS),
        id="poll",
        max_instances=1,
        coalesce=True,
        next_run_time=None,
    )
    outbox.start_sender(app, scheduler)
    scheduler.start()
    scheduler.modify_job("poll", next_run_time=_now())
    return scheduler


def _now():  # noqa: ANN202 - a datetime for APScheduler
    from datetime import datetime

    return datetime.now().astimezone()


def run_forever(app: Flask, poller: Poller) -> None:
    """``portal poll``: run the jobs in the foreground until SIGINT/SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = start_scheduler(app, poller)
    log.info("poller running every %s s", settings_of(app).POLL_INTERVAL_SECONDS)
    stop.wait()
    stop_scheduler(scheduler, poller)


def stop_scheduler(scheduler: BackgroundScheduler, poller: Poller) -> None:
    """Let a running cycle finish, then give the poll lease up, so that another process polls
    at its next cycle instead of waiting for the lease to expire (``POLL_LEASE_SECONDS``)."""
    if scheduler.running:
        scheduler.shutdown(wait=True)
    poller.stop()
    log.info("poller stopped; lease released")
