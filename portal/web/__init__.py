"""The web layer: blueprints, login, CSRF and rate limits (wired by :func:`init_web`)."""

from __future__ import annotations

from flask import Flask


def init_web(app: Flask) -> None:
    """Register the web layer on ``app``."""

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}
