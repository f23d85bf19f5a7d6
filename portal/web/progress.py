"""The array progress bar shared by the dashboard rows and the submission page."""

from __future__ import annotations

from typing import Any

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
