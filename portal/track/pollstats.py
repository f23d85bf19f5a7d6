"""Poller statistics for Prometheus, and the metric names ``/metrics`` exposes.

Counts (submissions and tasks by state, queued mail) are read from the database at each
scrape, so every gunicorn worker answers the same. What only the poller knows -- how long its
last cycle took and how often sacct failed -- is kept by :class:`PollerRecorder` in the
process that holds the poller lease and written after every cycle to a small JSON file in the
instance folder (``poller-stats.json``, replaced atomically), which every worker of that host
reads. The counters are per poller process: they restart at 0 when another process takes the
lease over, which Prometheus' ``rate()`` and ``increase()`` handle as a counter reset.

No Flask in the recorder itself; :class:`RecordingPoller` is the
:class:`~portal.track.poller.Poller`
that uses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from portal.track.poller import Poller

log = logging.getLogger(__name__)

PREFIX = "openlane_portal"
STATS_FILE = "poller-stats.json"

T = TypeVar("T")


@dataclass
class PollerStats:
    """What the active poller process has done since it started."""

    holder: str
    started_at: float
    cycles_total: int = 0
    sacct_errors_total: int = 0
    consecutive_errors: int = 0
    last_cycle_seconds: float | None = None
    last_cycle_at: float | None = None
    last_success_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def stats_path(instance_path: str | Path) -> Path:
    """Where the poller of this instance writes its statistics."""
    return Path(instance_path) / STATS_FILE


def read_poller_stats(path: Path) -> PollerStats | None:
    """The last statistics written to ``path``, or None (no poller ran, or unreadable)."""
    try:
        data = json.loads(path.read_text())
        return PollerStats(**data)
    except (OSError, ValueError, TypeError):
        return None


class PollerRecorder:
    """Counts poll cycles of one process and writes them to ``path`` after each cycle."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = Path(path)
        self.stats = PollerStats(holder=holder, started_at=time.time())
        self._lock = threading.Lock()

    def observe(self, run_cycle: Callable[[], T], errors: Callable[[], int]) -> T:
        """Run one cycle and record it.

        ``errors`` reads the poller's count of failed cycles in a row: when it grows, the
        cycle failed talking to Slurm. A cycle that returns None without a new error did not
        run (another process holds the lease, or backoff) and is not recorded.
        """
        before = errors()
        started = time.perf_counter()
        result = run_cycle()
        seconds = time.perf_counter() - started
        failed = errors() > before
        if result is not None or failed:
            self.record(seconds, ok=not failed)
        return result

    def record(self, seconds: float, *, ok: bool) -> None:
        """Count one cycle that took ``seconds`` and write the statistics."""
        with self._lock:
            stats = self.stats
            now = time.time()
            stats.cycles_total += 1
            stats.last_cycle_seconds = round(seconds, 6)
            stats.last_cycle_at = now
            if ok:
                stats.consecutive_errors = 0
                stats.last_success_at = now
            else:
                stats.sacct_errors_total += 1
                stats.consecutive_errors += 1
            try:
                self._write(stats.to_dict())
            except OSError as exc:  # statistics must never stop the poller
                log.warning("cannot write poller statistics to %s: %s", self.path, exc)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".poller-stats-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class RecordingPoller(Poller):
    """A :class:`~portal.track.poller.Poller` whose cycles are counted for ``/metrics``."""

    def __init__(self, *args: Any, stats_file: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder = PollerRecorder(
            stats_file or stats_path(self.app.instance_path), self.holder
        )

    def run_cycle(self) -> Any:
        """One cycle (see :meth:`Poller.run_cycle`), recorded."""
        return self.recorder.observe(super().run_cycle, lambda: self.errors)
