"""WSGI entry point: ``gunicorn 'portal.wsgi:app'``.

Settings come from the instance folder (``PORTAL_INSTANCE_PATH``) and ``PORTAL_*`` variables.
With ``POLLER_ENABLED`` every worker starts the poll and mail jobs; database leases keep
exactly one of them active, and a worker that exits (a graceful stop or restart) gives its
lease up at once. The ``portal poll`` service is the alternative to that.
"""

from __future__ import annotations

import atexit

from portal import create_app
from portal.cluster.connect import slurm_client
from portal.submit.background import HandOver
from portal.track.pollstats import RecordingPoller
from portal.track.scheduler import start_scheduler, stop_scheduler

app = create_app()

if app.config.get("POLLER_ENABLED"):
    # feeds /metrics; hands due retries and expired launches over to launcher threads
    _poller = RecordingPoller(app, slurm_client(app.config), hand_over=HandOver(app))
    atexit.register(stop_scheduler, start_scheduler(app, _poller), _poller)
