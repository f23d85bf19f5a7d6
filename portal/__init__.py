"""OpenLane Portal: a Slurm-native web portal for OpenLane sweeps."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import Settings, load_settings
from portal.extensions import db, migrate
from portal.slurm.transports import check_settings

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the Flask application (the app factory)."""
    instance = os.environ.get("PORTAL_INSTANCE_PATH")
    instance_path = str(Path(instance).resolve()) if instance else None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.update(load_settings(Path(app.instance_path), overrides))
    Settings.check(app.config)  # a wrong type or sign stops the start, naming the setting
    check_settings(app.config)  # e.g. SSH + run-as-user is refused before anything starts
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR, render_as_batch=True)
    from portal import models  # noqa: F401  (register the tables)
    from portal.flows.registry import site_notes
    from portal.mail.outbox import init_mail
    from portal.web import init_web

    init_mail(app)
    init_web(app)
    for title, note in site_notes(app.config).items():
        app.logger.info("%s %s (setting LIBRELANE_STEPS)", title, note)
    if app.config.get("FLOW_EXECUTABLE_OVERRIDE"):
        app.logger.warning(
            "FLOW_EXECUTABLE_OVERRIDE=%s: flows run this executable (the stand-in test double "
            "in tests and the demo), NOT OpenLane; its reports are not results of your design",
            app.config["FLOW_EXECUTABLE_OVERRIDE"],
        )

    return app
