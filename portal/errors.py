"""Errors shared by the submission service and the modules below it.

:class:`SubmissionError` lives here, not in :mod:`portal.submit`, so that modules the
service uses (:mod:`portal.cluster.connect`'s :class:`~portal.cluster.connect.RunAsError`) can
derive from it without importing the service back.
"""

from __future__ import annotations


class SubmissionError(ValueError):
    """A request the portal refuses; the message is shown to the user as is."""
