"""Gunicorn settings of the portal: ``gunicorn -c python:portal.gunicorn_conf 'portal.wsgi:app'``.

Every place that starts the portal under gunicorn passes this module (``scripts/demo``, the
Ansible role's ``portal-web``, ``benchmarks/common.py``). It sets the logger class to
:class:`MaskingLogger`, which masks reset, share-link and invitation tokens
(:func:`portal.logmask.mask_secrets`) in every access-log field (request line, path, query,
Referer and the other headers) whatever ``--access-logformat`` says, and in the error log.
Options given on the command line (bind, workers, log files and format) still apply.

Gunicorn reads every module-level name that is one of its settings, so this module defines no
other names that could collide with one.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from portal.logmask import install_filter, mask_secrets

logger_class = "portal.gunicorn_conf.MaskingLogger"


class MaskingLogger(Logger):
    """Gunicorn's logger with the URL secrets of the portal masked."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        install_filter(self.error_log)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            key: mask_secrets(value) if isinstance(value, str) else value
            for key, value in atoms.items()
        }
