"""Errors shared by the submission service and the modules below it, and how their text is
shown to designers.

:class:`SubmissionError` lives here, not in :mod:`portal.submit`, so that modules the
service uses (:mod:`portal.cluster.connect`'s :class:`~portal.cluster.connect.RunAsError`) can
derive from it without importing the service back.
"""

from __future__ import annotations


class SubmissionError(ValueError):
    """A request the portal refuses; the message is shown to the user as is. ``field`` names
    the request field it is about (``cpus``, ``partition``...) when it is about one, so a form
    can show it there."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def without_server_paths(text: str, *roots: object) -> str:
    """``text`` for designers: each of ``roots`` (run folder, RUN_ROOT, PDK_ROOT, a scratch
    clone) left out, so ``<RUN_ROOT>/<uuid>/design/x/config.json`` reads ``design/x/config.json``
    and the server's layout is not shown."""
    for root in sorted({str(r).rstrip("/") for r in roots if r}, key=len, reverse=True):
        text = text.replace(root + "/", "").replace(root, "<site folder>")
    return text
