"""Email notifications (Flask-Mail + the outbox table)."""

from __future__ import annotations

from flask import Flask


def init_mail(app: Flask) -> None:
    """Bind Flask-Mail to ``app``."""
