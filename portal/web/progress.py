"""Task counts by state and the array progress bar, shared by the dashboard rows and the
submission page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portal.slurm.states import ACTIVE, CANCELLATIONS, COMPLETED, FAILURES, TERMINAL

#: Segment order, left to right: finished kinds first, then what is still to come.
SEGMENTS = ("done", "failed", "cancelled", "running", "pending")


def bar_segments(counts: Any) -> list[tuple[str, int, float, float]]:
    """``(kind, count, x%, width%)`` of each non-empty segment of ``counts`` (an object with
    ``total`` and one attribute per kind in :data:`SEGMENTS`)."""
    out, x = [], 0.0
    for kind in SEGMENTS:
        count = getattr(counts, kind)
        if count and counts.total:
            width = 100.0 * count / counts.total
            out.append((kind, count, round(x, 3), round(width, 3)))
            x += width
    return out


@dataclass(frozen=True)
class Counts:
    """Tasks of one submission by state (from :func:`portal.serialize.task_counts`)."""

    by_state: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    def count(self, states: frozenset[str], negate: bool = False) -> int:
        """How many tasks are (not, with ``negate``) in ``states``."""
        return sum(n for s, n in self.by_state.items() if (s in states) != negate)

    @property
    def done(self) -> int:
        return self.by_state.get(COMPLETED, 0)

    @property
    def running(self) -> int:
        return self.count(ACTIVE)

    @property
    def failed(self) -> int:
        return self.count(FAILURES)

    @property
    def cancelled(self) -> int:
        return self.count(CANCELLATIONS)

    @property
    def pending(self) -> int:
        return self.count(ACTIVE | TERMINAL, negate=True)

    @property
    def unsuccessful(self) -> int:
        """Finished without success: what "resubmit failed" would run again."""
        return self.failed + self.cancelled

    def segments(self) -> list[tuple[str, int, float, float]]:
        """``(kind, count, x%, width%)`` of the progress bar, left to right."""
        return bar_segments(self)
