"""Downloads, task archives, layout previews, console tails and share links on the real sweep
of test_web_detail.py (run once per session on the real cluster): bytes match the files on
disk, every path stays confined to the task folder, other users get 404, and share links open
read-only access until they expire and cannot be forged.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from PIL import Image
from sqlalchemy import select

from portal import rundir
from portal.extensions import db
from portal.models import Submission
from portal.runfolder import find_final_gds
from portal.web import sharing
from portal.web.files import LAYOUT_CACHE
from tests.integration.test_web_detail import (
    Sweep,
    add_synthetic,
    client_for,
    finished_sweep,
    load,
    share,
)

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture
def sweep(tmp_path_factory, example_repo) -> Sweep:
    return finished_sweep(tmp_path_factory, example_repo)


def task_folder(sweep: Sweep, index: int) -> Path:
    return sweep.run_dir / "tasks" / str(index)


def gds_of(sweep: Sweep, index: int) -> Path:
    found = find_final_gds(task_folder(sweep, index))
    assert found is not None
    return found


# --------------------------------------------------------------------------- downloads


def test_gds_download_is_the_file(sweep):
    gds = gds_of(sweep, 0)
    rel = gds.relative_to(task_folder(sweep, 0).resolve()).as_posix()
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/tasks/0/files/{rel}")
    assert response.status_code == 200
    assert response.data == gds.read_bytes() and len(response.data) > 0
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert gds.name in response.headers["Content-Disposition"]
    assert response.mimetype == "application/octet-stream"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_reports_download_as_plain_text_attachments(sweep):
    folder = task_folder(sweep, 1)
    entries, _ = rundir.list_files(folder)
    report = next(e for e in entries if e.relpath.endswith(("metrics.csv", "metrics.json")))
    response = client_for(sweep.app).get(
        f"/submissions/{sweep.uuid}/tasks/1/files/{report.relpath}"
    )
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert response.data == (folder / report.relpath).read_bytes()
    assert "attachment" in response.headers["Content-Disposition"]


def test_the_staged_config_is_offered_and_is_what_the_task_ran_with(sweep):
    client = client_for(sweep.app)
    panel = client.get(f"/submissions/{sweep.uuid}/tasks/1", headers={"HX-Request": "true"})
    assert f"/submissions/{sweep.uuid}/tasks/1/config" in panel.get_data(as_text=True)
    response = client.get(f"/submissions/{sweep.uuid}/tasks/1/config")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert 'filename="task-1-config.json"' in response.headers["Content-Disposition"]
    assert response.data == (task_folder(sweep, 1) / "config.json").read_bytes()
    assert client.get(f"/submissions/{sweep.uuid}/tasks/99/config").status_code == 404


def test_an_html_file_is_never_served_as_html(sweep):
    folder = task_folder(sweep, 0)
    (folder / "report.html").write_text("<script>alert(1)</script>")
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/tasks/0/files/report.html")
    assert response.status_code == 200
    assert response.mimetype == "application/octet-stream"
    assert "attachment" in response.headers["Content-Disposition"]


def test_task_archive_holds_the_task_folder_and_its_slurm_logs(sweep):
    sub = load(sweep.app, sweep.uuid)
    task = sub.tasks[0]
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/tasks/0/archive.tar.gz")
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    assert response.is_streamed
    top = f"{sweep.uuid[:8]}-task-0"
    assert f'filename="{top}.tar.gz"' in response.headers["Content-Disposition"]
    folder = task_folder(sweep, 0)
    entries, _ = rundir.list_files(folder)
    with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as tar:
        names = set(tar.getnames())
        for entry in entries:
            assert f"{top}/{entry.relpath}" in names, entry.relpath
        reports = [e.relpath for e in entries if "/reports/" in f"/{e.relpath}"]
        assert reports, "the stand-in writes reports"
        for rel in reports:
            assert tar.extractfile(f"{top}/{rel}").read() == (folder / rel).read_bytes()
        slurm_out = f"{top}/slurm-{task.array_job_id}_{task.array_index}.out"
        log = sweep.run_dir / "logs" / f"{task.array_job_id}_{task.array_index}.out"
        assert tar.extractfile(slurm_out).read() == log.read_bytes()
        assert all(m.isfile() or m.isdir() for m in tar.getmembers())


# --------------------------------------------------------------------------- layout preview


def test_layout_png_is_rendered_once_and_cached(sweep):
    client = client_for(sweep.app)
    cache = task_folder(sweep, 1) / LAYOUT_CACHE
    if cache.exists():
        cache.unlink()
    response = client.get(f"/submissions/{sweep.uuid}/tasks/1/layout.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = Image.open(io.BytesIO(response.data))
    image.verify()
    assert image.format == "PNG" and image.size == (800, 800)
    assert cache.read_bytes() == response.data
    # served from the cache: a marker written into the cached PNG comes back
    marked = response.data + b"cached"
    cache.write_bytes(marked)
    assert client.get(f"/submissions/{sweep.uuid}/tasks/1/layout.png").data == marked
    # a newer GDS makes it stale
    gds = gds_of(sweep, 1)
    later = cache.stat().st_mtime + 5
    os.utime(gds, (later, later))
    fresh = client.get(f"/submissions/{sweep.uuid}/tasks/1/layout.png").data
    assert fresh != marked and fresh.startswith(b"\x89PNG")


def test_layout_of_a_failed_task_is_404(sweep):
    client = client_for(sweep.app)
    assert client.get(f"/submissions/{sweep.uuid}/tasks/2/layout.png").status_code == 404
    assert client.get(f"/submissions/{sweep.uuid}/tasks/9/layout.png").status_code == 404


# --------------------------------------------------------------------------- console tail


def test_log_tail_offsets(sweep):
    sub = load(sweep.app, sweep.uuid)
    task = sub.tasks[0]
    log = sweep.run_dir / "logs" / f"{task.array_job_id}_{task.array_index}.out"
    content = log.read_bytes()
    client = client_for(sweep.app)
    base = f"/submissions/{sweep.uuid}/tasks/0/log"
    first = client.get(f"{base}?offset=0")
    assert first.status_code == 200 and first.mimetype == "text/plain"
    assert first.data == content
    assert first.headers["X-Log-Offset"] == str(len(content)) == first.headers["X-Log-Size"]
    assert first.headers["X-Log-Done"] == "1"
    second = client.get(f"{base}?offset={first.headers['X-Log-Offset']}")
    assert second.data == b"" and second.headers["X-Log-Offset"] == str(len(content))
    middle = client.get(f"{base}?offset=10")
    assert middle.data == content[10:] and middle.headers["X-Log-Start"] == "10"
    tail = client.get(base)  # no offset: the last bytes
    assert tail.data == content[-len(tail.data) :] and tail.headers["X-Log-Start"] == str(
        max(0, len(content) - rundir.LOG_CHUNK)
    )
    beyond = client.get(f"{base}?offset={len(content) + 100}")
    assert beyond.headers["X-Log-Reset"] == "1" and beyond.data == content
    err = client.get(f"/submissions/{sweep.uuid}/tasks/2/log?offset=0&stream=err")
    assert b"injected failure of task 2" in err.data
    full = client.get(f"{base}?download=1")
    assert full.data == content and "attachment" in full.headers["Content-Disposition"]
    for bad in ("offset=-1", "offset=abc", "stream=../../x", "offset=1e3"):
        assert client.get(f"{base}?{bad}").status_code == 400, bad


# --------------------------------------------------------------------------- confinement


@pytest.fixture
def planted(sweep):
    """A secret next to the run folder and symlinks in task 0 pointing at it."""
    secret = sweep.tmp / "secret.txt"
    secret.write_text("top secret")
    folder = task_folder(sweep, 0)
    links = {"escape.txt": secret, "escape_dir": sweep.tmp, "runs_link": folder / "runs"}
    for name, target in links.items():
        path = folder / name
        if path.is_symlink():
            path.unlink()
        path.symlink_to(target)
    yield secret
    for name in links:
        (folder / name).unlink()


# The task folder is <tmp>/runs/<uuid>/tasks/0: four levels below the planted secret.
UP = "../../../.."


@pytest.mark.parametrize(
    "relpath",
    [
        f"{UP}/secret.txt",
        f"{UP.replace('/', '%2F')}%2Fsecret.txt",
        f"{UP.replace('..', '%2e%2e')}/secret.txt",
        f"{UP.replace('..', '%2E%2E').replace('/', '%2F')}%2Fsecret.txt",
        f"runs/../{UP}/secret.txt",
        "{secret}",
        "{secret_encoded}",
        "escape.txt",
        "escape_dir/secret.txt",
        "secret.txt%00",
        "runs",
        "nonexistent.txt",
        "..",
    ],
)
def test_paths_leaving_the_task_folder_are_404(sweep, planted, relpath):
    relpath = relpath.format(secret=str(planted), secret_encoded=str(planted).replace("/", "%2F"))
    client = client_for(sweep.app)
    response = client.get(f"/submissions/{sweep.uuid}/tasks/0/files/{relpath}")
    if response.status_code == 308:  # Werkzeug merges the '//' of an absolute path first
        response = client.get(response.location)
    assert response.status_code == 404, (relpath, response.status_code)
    assert b"top secret" not in response.data


def test_a_symlink_inside_the_folder_is_followed(sweep, planted):
    gds = gds_of(sweep, 0)
    rel = gds.relative_to((task_folder(sweep, 0) / "runs").resolve()).as_posix()
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/tasks/0/files/runs_link/{rel}")
    assert response.status_code == 200 and response.data == gds.read_bytes()


def test_archive_leaves_out_symlinks(sweep, planted):
    response = client_for(sweep.app).get(f"/submissions/{sweep.uuid}/tasks/0/archive.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(response.data), mode="r:gz") as tar:
        names = tar.getnames()
        assert not any("escape" in n or "runs_link" in n for n in names)
        for member in tar.getmembers():
            if member.isfile():
                assert b"top secret" not in tar.extractfile(member).read()


def test_a_hard_link_to_the_instance_secret_is_never_served(sweep):
    """A job can hard-link any file its account can see into its task folder."""
    secret = Path(sweep.app.instance_path) / "secret_key"
    assert secret.is_file()
    folder = task_folder(sweep, 0)
    os.link(secret, folder / "stolen.txt")
    os.link(secret, folder / "runs" / "stolen.gds")
    client = client_for(sweep.app)
    base = f"/submissions/{sweep.uuid}/tasks/0"
    assert client.get(f"{base}/files/stolen.txt").status_code == 404
    assert client.get(f"{base}/files/runs/stolen.gds").status_code == 404
    page = client.get(f"/submissions/{sweep.uuid}?task=0").get_data(as_text=True)
    assert "stolen" not in page
    anonymous = sweep.app.test_client()
    assert anonymous.get(f"{link_path(sweep)}/tasks/0/files/stolen.txt").status_code == 404
    archive = client.get(f"{base}/archive.tar.gz")
    secret_text = secret.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tar:
        assert not any("stolen" in name for name in tar.getnames())
        for member in tar.getmembers():
            if member.isfile():
                assert secret_text not in tar.extractfile(member).read()


def test_task_folder_that_is_a_symlink_out_is_404(sweep, tmp_path):
    """A run whose tasks/0 is a symlink out of the run folder serves nothing from there."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    run = tmp_path / "run"
    (run / "tasks").mkdir(parents=True)
    (run / "tasks" / "0").symlink_to(outside)
    uuid = add_synthetic(sweep.app, 1, {"CLOCK_PERIOD": 10}, state="COMPLETED")
    with sweep.app.app_context():
        sub = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
        sub.run_dir = str(run)
        db.session.commit()
    client = client_for(sweep.app)
    for path in ("files/secret.txt", "archive.tar.gz", "layout.png"):
        response = client.get(f"/submissions/{uuid}/tasks/0/{path}")
        assert response.status_code == 404, path
        assert b"top secret" not in response.data


def test_other_users_get_404_for_every_file_route(sweep):
    bob = client_for(sweep.app, "bob")
    admin = client_for(sweep.app, "grace")
    gds = gds_of(sweep, 0)
    rel = gds.relative_to(task_folder(sweep, 0).resolve()).as_posix()
    base = f"/submissions/{sweep.uuid}/tasks/0"
    for path in (f"/files/{rel}", "/archive.tar.gz", "/layout.png", "/log?offset=0", "/config"):
        assert bob.get(base + path).status_code == 404, path
        assert admin.get(base + path).status_code == 200, path
    assert admin.get(f"{base}/files/{rel}").data == gds.read_bytes()
    anonymous = sweep.app.test_client().get(f"{base}/files/{rel}")
    assert anonymous.status_code == 302 and "/auth/login" in anonymous.location


# --------------------------------------------------------------------------- share links


def link_path(sweep: Sweep) -> str:
    page = share(client_for(sweep.app), sweep.uuid, 3600).get_data(as_text=True)
    marker = 'id="share-link-value">'
    url = page.split(marker, 1)[1].split("<", 1)[0]
    return url[url.index("/shared/") :]


def test_share_link_downloads_without_login(sweep):
    path = link_path(sweep)
    anonymous = sweep.app.test_client()
    gds = gds_of(sweep, 0)
    rel = gds.relative_to(task_folder(sweep, 0).resolve()).as_posix()
    page = anonymous.get(path).get_data(as_text=True)
    assert f"{path}/tasks/0/files/{rel}" in page or f"{path}/tasks/" in page
    download = anonymous.get(f"{path}/tasks/0/files/{rel}")
    assert download.status_code == 200 and download.data == gds.read_bytes()
    assert download.headers["Referrer-Policy"] == "no-referrer"
    png = anonymous.get(f"{path}/tasks/0/layout.png")
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    archive = anonymous.get(f"{path}/tasks/0/archive.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(archive.data), mode="r:gz") as tar:
        assert tar.getnames()
    log = anonymous.get(f"{path}/tasks/0/log?offset=0")
    assert log.status_code == 200 and b"OpenLane stand-in" in log.data
    # confinement holds for link holders too
    refused = anonymous.get(f"{path}/tasks/0/files/%2e%2e/%2e%2e/%2e%2e/secret.txt")
    assert refused.status_code == 404


def test_tampered_and_foreign_tokens_are_refused(sweep):
    path = link_path(sweep)
    token = path.split("/")[2]
    anonymous = sweep.app.test_client()
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    with sweep.app.app_context():
        other_key = URLSafeTimedSerializer("not the portal's key", salt=sharing.SHARE_SALT)
        foreign = other_key.dumps({"s": sweep.uuid, "x": int(time.time()) + 3600})
        other_salt = URLSafeTimedSerializer(sweep.app.config["SECRET_KEY"], salt="other")
        wrong_salt = other_salt.dumps({"s": sweep.uuid, "x": int(time.time()) + 3600})
        not_a_dict = sharing.serializer().dumps([sweep.uuid])
        missing = sharing.serializer().dumps({"s": "0" * 36, "x": int(time.time()) + 3600})
    for bad in (flipped, foreign, wrong_salt, not_a_dict, missing, "garbage", "a" * 2000):
        for suffix in ("", "/tasks/0/archive.tar.gz", "/tasks/0/log"):
            response = anonymous.get(f"/shared/{bad}{suffix}")
            assert response.status_code == 404, (bad[:20], suffix)
            assert b"top secret" not in response.data
        page = anonymous.get(f"/shared/{bad}").get_data(as_text=True)
        assert "This share link is not valid" in page


def test_expired_tokens_answer_410(sweep):
    path = link_path(sweep)
    anonymous = sweep.app.test_client()
    assert anonymous.get(path).status_code == 200
    limit = sweep.app.config["SHARE_LINK_MAX_AGE"]
    sweep.app.config["SHARE_LINK_MAX_AGE"] = -1  # every signature is now too old
    try:
        response = anonymous.get(path)
        assert response.status_code == 410
        assert "This share link has expired" in response.get_data(as_text=True)
        assert anonymous.get(path + "/tasks/0/layout.png").status_code == 410
    finally:
        sweep.app.config["SHARE_LINK_MAX_AGE"] = limit

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 24 * 3600

    with sweep.app.app_context():
        old_signer = URLSafeTimedSerializer(
            sweep.app.config["SECRET_KEY"], salt=sharing.SHARE_SALT, signer=EightDaysAgo
        )
        # signed 8 days ago with a payload expiry in the future: the age check refuses it
        old = old_signer.dumps({"s": sweep.uuid, "x": int(time.time()) + 3600})
        # signed now, but its own expiry has passed
        lapsed = sharing.serializer().dumps({"s": sweep.uuid, "x": int(time.time()) - 1})
    for token in (old, lapsed):
        response = anonymous.get(f"/shared/{token}")
        assert response.status_code == 410
        assert anonymous.get(f"/shared/{token}/tasks/0/log").status_code == 410


def test_share_needs_the_owner_or_an_admin(sweep):
    admin = client_for(sweep.app, "grace")
    answer = share(admin, sweep.uuid, 3600).get_data(as_text=True)
    assert 'id="share-link-value"' in answer
    with sweep.app.app_context():
        assert (
            sharing.serializer().loads(
                answer.split('id="share-link-value">', 1)[1].split("<", 1)[0].rsplit("/", 1)[1]
            )["s"]
            == sweep.uuid
        )


def test_make_token_refuses_lifetimes_outside_the_setting(sweep):
    with sweep.app.app_context():
        limit = sweep.app.config["SHARE_LINK_MAX_AGE"]
        for seconds in (0, -5, limit + 1, True, 1.5):
            with pytest.raises(ValueError):
                sharing.make_token(sweep.uuid, seconds)
        token, expires = sharing.make_token(sweep.uuid, limit)
        assert sharing.load_token(token) == (sweep.uuid, expires)
