"""Gunicorn settings of the portal: ``gunicorn -c python:portal.gunicorn_conf 'portal.wsgi:app'``.

Every place that starts the portal under gunicorn passes this module (``scripts/demo``, the
Ansible role's ``portal-web``, ``benchmarks/common.py``). It sets the logger class to
:class:`MaskingLogger`, which masks reset, share-link and invitation tokens
(:func:`portal.logmask.mask_secrets`) in every access-log field (request line, path, query,
Referer and the other headers) whatever ``--access-logformat`` says, and in the error log.
Options given on the command line (bind, workers, log files and format) still apply.

With ``PORTAL_HEALTH_BIND=<host>:<port>`` in the environment, the master process also answers
``GET /healthz`` on that address (:func:`when_ready`): 200 while at least one worker's heartbeat
is fresh by gunicorn's own rule (touched within ``--timeout``; a worker past it is killed and
replaced), else 503. The app's own ``/healthz`` waits in the same first-come queue as every page,
so a saturated portal (200 clients without pause on 2 CPUs: p99 4.4 s) looked dead to a load
balancer although every worker was busy serving; the master's answer does not queue behind them.

A worker that stops kills its preview clones first (:func:`worker_exit`): the preview pool's
threads are joined when the interpreter exits, so a clone from a host that never answers would
hold the worker until ``GIT_CLONE_TIMEOUT`` and have it killed at the graceful timeout.

Gunicorn reads every module-level name that is one of its settings, so this module defines no
other names that could collide with one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gunicorn.glogging import Logger

from portal.logmask import install_filter, mask_secrets

logger_class = "portal.gunicorn_conf.MaskingLogger"


class MaskingLogger(Logger):
    """Gunicorn's logger with the URL secrets of the portal masked."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install_filter(self.error_log)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: mask_secrets(value) if isinstance(value, str) else value
            for key, value in atoms.items()
        }


def when_ready(server: Any) -> None:
    """Gunicorn's master hook: serve the health answer when ``PORTAL_HEALTH_BIND`` is set."""
    bind = os.environ.get("PORTAL_HEALTH_BIND", "").strip()
    if not bind:
        return
    host, _, port = bind.rpartition(":")
    listener = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _health_handler(server))
    listener.daemon_threads = True
    threading.Thread(target=listener.serve_forever, name="portal-health", daemon=True).start()
    server.log.info("health answers on http://%s/healthz (master process)", bind)


def worker_exit(server: Any, worker: Any) -> None:
    """Gunicorn's worker hook: a worker that stops first kills its preview clones, so it does
    not wait for a host that never answers (its pool's threads are joined at exit)."""
    from portal.submit.previews import shutdown_previews

    shutdown_previews()


def fresh_workers(server: Any) -> int:
    """How many of the arbiter's workers touched their heartbeat within ``--timeout`` (an idle
    sync worker touches it every half timeout, a gthread worker every second)."""
    fresh = 0
    for worker in list(server.WORKERS.values()):
        try:
            if time.monotonic() - worker.tmp.last_update() <= server.timeout:
                fresh += 1
        except (OSError, ValueError):  # a worker being replaced
            continue
    return fresh


def _health_handler(server: Any) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.split("?", 1)[0] != "/healthz":
                self.send_error(404)
                return
            ok = fresh_workers(server) > 0
            body = json.dumps({"status": "ok" if ok else "unavailable"}).encode()
            self.send_response(200 if ok else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:  # probes every few seconds: not logged
            return

    return HealthHandler
