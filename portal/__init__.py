"""OpenLane Portal: a Slurm-native web portal for OpenLane sweeps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import load_settings


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (the app factory)."""
    instance = os.environ.get("PORTAL_INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance or None, instance_relative_config=True)
    app.config.update(load_settings(Path(app.instance_path), overrides))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
