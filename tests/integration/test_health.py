"""The health answer of the gunicorn master (``PORTAL_HEALTH_BIND``): a real gunicorn on
loopback. It answers while the workers cannot (here: the only worker stopped with SIGSTOP, as
a worker whose every thread is busy cannot take the app's own /healthz either), and turns 503
once no worker's heartbeat is fresh (gunicorn's --timeout), then 200 again once gunicorn has
replaced the stuck worker."""

from __future__ import annotations

import os
import signal
import time
from contextlib import suppress
from pathlib import Path

import pytest
import requests

from benchmarks.common import free_port, gunicorn, make_portal_app, portal_env, portal_settings

#: gunicorn's --timeout here: a worker silent for longer is stale (and replaced by gunicorn).
TIMEOUT = 8


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid`` (gunicorn's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def health(port: int) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_the_master_answers_health_while_the_worker_cannot(tmp_path: Path):
    (tmp_path / "pdks" / "sky130A").mkdir(parents=True)
    settings = portal_settings(tmp_path, PDK_ROOT=str(tmp_path / "pdks"))
    make_portal_app(settings)
    port = free_port()
    env = {**portal_env(settings, tmp_path / "instance"), "PORTAL_HEALTH_BIND": f"127.0.0.1:{port}"}
    extra = ("--timeout", str(TIMEOUT))
    with gunicorn(env, tmp_path / "gunicorn.log", workers=1, threads=1, extra=extra) as server:
        answer = health(port)
        assert answer.status_code == 200 and answer.json() == {"status": "ok"}
        assert requests.get(f"http://127.0.0.1:{port}/elsewhere", timeout=5).status_code == 404
        [worker] = children(server.process.pid)
        os.kill(worker, signal.SIGSTOP)
        try:
            with pytest.raises(requests.Timeout):  # the app's own /healthz: nobody takes it
                requests.get(server.url + "/healthz", timeout=2)
            assert health(port).status_code == 200  # the master still answers at once
            deadline = time.monotonic() + TIMEOUT + 10
            while (answer := health(port)).status_code == 200:
                assert time.monotonic() < deadline, "a stopped worker never went stale"
                time.sleep(0.5)
            assert answer.status_code == 503 and answer.json() == {"status": "unavailable"}
        finally:
            with suppress(ProcessLookupError):  # the arbiter may have replaced it by now
                os.kill(worker, signal.SIGCONT)
        deadline = time.monotonic() + 10
        while health(port).status_code != 200:
            assert time.monotonic() < deadline, "the worker came back but health did not"
            time.sleep(0.2)
