"""The export bundle as a download, shared by the submission page and the REST API."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from flask import Response, current_app, send_file

from portal.models import Submission
from portal.submit.export import ExportError, build_bundle


def bundle_download(submission: Submission, run_dir: Path | None = None) -> tuple[Response, Path]:
    """The bundle of ``submission`` as a tar.gz attachment, and the folder to unpack it as.

    Raises :class:`~portal.submit.export.ExportError` (or ``OSError``) when it cannot be built; no
    temporary file outlives the call (the open handle keeps the data until it is sent).
    """
    workdir = tempfile.mkdtemp(prefix="olp-export-")
    output = Path(workdir) / "bundle.tar.gz"
    try:
        target = build_bundle(submission, current_app.config, output, run_dir=run_dir)
        handle = output.open("rb")
    finally:
        with contextlib.suppress(OSError):
            output.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(workdir)
    response = send_file(
        handle,
        mimetype="application/gzip",
        as_attachment=True,
        download_name=f"openlane-portal-{submission.uuid[:8]}.tar.gz",
    )
    response.content_length = os.fstat(handle.fileno()).st_size
    return response, target


__all__ = ["ExportError", "bundle_download"]
