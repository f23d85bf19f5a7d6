"""Previews and dry runs never hold a request on a remote (the probe's hole 2), with a real git
daemon and a loopback server that accepts and never answers: the ref is resolved with one
``git ls-remote`` (a few seconds at most), the clone runs in a bounded pool off the request,
its checkout is kept by commit, and a request that would wait longer hears "still fetching"."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portal.submit.checkout import StagingError, abort_fetches, resolve_ref
from portal.submit.gitpolicy import check_repo_url
from portal.submit.previews import CheckoutCache, PreviewBusy, PreviewPending
from tests.fixtures.gitdaemon import stalled_server
from tests.integration.test_web_submit import form_data
from tests.integration.web_helpers import add_user, post_form, signed_in

SETTINGS = {"GIT_ALLOWED_PRIVATE_HOSTS": ["127.0.0.1"], "GIT_CLONE_TIMEOUT": 60}


def wait_done(cache: CheckoutCache, key_count: int = 0) -> None:
    for _ in range(300):
        if len(cache.inflight) == key_count:
            return
        time.sleep(0.05)
    raise AssertionError("the background fetch did not finish")


def test_refs_resolve_with_ls_remote(git_daemon):
    url = check_repo_url(f"{git_daemon.url_base}/spm.git")
    commits = git_daemon.spm.commits
    assert resolve_ref(url, "main", allowed_private=["127.0.0.1"]) == commits[2]
    assert resolve_ref(url, "v1", allowed_private=["127.0.0.1"]) == commits[0]  # peeled tag
    assert resolve_ref(url, commits[1], allowed_private=["127.0.0.1"]) == commits[1]
    with pytest.raises(StagingError, match="branch or tag 'nope' not found"):
        resolve_ref(url, "nope", allowed_private=["127.0.0.1"])


def test_a_silent_host_fails_the_ref_resolution_quickly_and_starts_no_clone(tmp_path):
    cache = CheckoutCache(tmp_path / "cache")
    with stalled_server() as port:
        url = check_repo_url(f"git://127.0.0.1:{port}/x.git")
        with pytest.raises(StagingError, match="cannot reach the repository host"):
            cache.checkout(url, "main", 1, SETTINGS, wait_s=1)
    assert cache.inflight == {} and not (tmp_path / "cache").exists()


def test_the_clone_runs_off_the_request_and_is_kept_by_commit(git_daemon, tmp_path):
    cache = CheckoutCache(tmp_path / "cache", workers=2, per_user=1)
    url = check_repo_url(f"{git_daemon.url_base}/spm.git")
    with pytest.raises(PreviewPending, match="still fetching"):
        cache.checkout(url, "main", 1, SETTINGS, wait_s=0)
    # A second fetch for the same user while the first runs: busy, not a second clone.
    other = check_repo_url(f"{git_daemon.url_base}/spm-sha.git")
    if cache.inflight:
        with pytest.raises(PreviewBusy):
            cache.checkout(other, "main", 1, SETTINGS, wait_s=0)
    wait_done(cache)
    checkout = cache.checkout(url, "main", 1, SETTINGS, wait_s=0)  # ready: no wait
    assert (checkout / "designs" / "spm" / "config.json").is_file()
    assert checkout.parent.parent == tmp_path / "cache"
    # The same commit by another name (the full id) is the same checkout; v1 is another one.
    commit = git_daemon.spm.commits[2]
    assert cache.checkout(url, commit, 2, SETTINGS, wait_s=0) == checkout
    with pytest.raises(PreviewPending):
        cache.checkout(url, "v1", 2, SETTINGS, wait_s=0)
    wait_done(cache)
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 2


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_the_form_preview_says_still_fetching_then_shows_the_script(
    make_app, example_repo, tmp_path
):
    app, client = signed_in(
        make_app,
        tmp_path,
        account="openlane",
        SLURM_PARTITION="debug",
        PREVIEW_WAIT_SECONDS=0,
        PREVIEW_CACHE_DIR=str(tmp_path / "previews"),
    )
    data = form_data(repo_url=example_repo)
    headers = {"HX-Request": "true"}
    first = post_form(
        client, "/submissions/new", data, "/submissions/new/preview", headers=headers
    ).get_data(as_text=True)
    assert "still fetching the repository" in first
    assert 'hx-trigger="load delay:2s"' in first and 'hx-include="#submit-form"' in first
    for _ in range(200):
        page = post_form(
            client, "/submissions/new", data, "/submissions/new/preview", headers=headers
        ).get_data(as_text=True)
        if "#SBATCH --array" in page:
            break
        time.sleep(0.1)
    assert "#SBATCH --array=0\n" in page and "still fetching" not in page
    assert not list(Path(tmp_path / "runs").glob("*"))  # a preview writes no run folder


@pytest.mark.cluster
@pytest.mark.usefixtures("slurm_cluster")
def test_an_api_dry_run_says_fetching_with_retry_after_then_answers(
    make_app, example_repo, tmp_path
):
    from portal import accounts

    app = make_app(PREVIEW_WAIT_SECONDS=0, PREVIEW_CACHE_DIR=str(tmp_path / "previews"))
    add_user(app, "ada", slurm_account="openlane")
    with app.app_context():
        from portal.models import User

        token, _ = accounts.create_api_token(User.query.filter_by(username="ada").one(), "t")
    body = {
        "repo_url": example_repo,
        "design_path": "designs/counter",
        "resources": {"time_minutes": 10, "mem_mb": 256},
        "dry_run": True,
    }
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    first = client.post("/api/v1/submissions", json=body, headers=headers)
    assert first.status_code == 503 and "Retry-After" in first.headers
    assert first.get_json()["error"]["code"] == "repository_fetching"
    for _ in range(200):
        answer = client.post("/api/v1/submissions", json=body, headers=headers)
        if answer.status_code == 200:
            break
        time.sleep(0.1)
    assert answer.status_code == 200 and "#SBATCH --array=0" in answer.get_json()["script"]


def test_shutdown_kills_a_clone_from_a_host_that_never_answers(tmp_path):
    """A stopping worker must not wait for a preview clone (GIT_CLONE_TIMEOUT, 60 s here): the
    shutdown kills the running git and the fetch ends at once, as a failure."""
    cache = CheckoutCache(tmp_path / "cache")
    with stalled_server() as port:
        url = check_repo_url(f"git://127.0.0.1:{port}/x.git")
        commit = "1" * 40  # the ref resolved already: the clone itself goes to the silent host
        cache.resolved[(url.url, "main")] = (time.monotonic() + 60, commit)
        with pytest.raises(PreviewPending):
            cache.checkout(url, "main", 1, SETTINGS, wait_s=1)
        [fetch] = cache.inflight.values()
        assert not fetch.future.done()  # git waits on the silent host
        started = time.monotonic()
        cache.shutdown()
        with pytest.raises(StagingError):
            fetch.future.result(timeout=5)
        assert time.monotonic() - started < 5
        assert abort_fetches() == 0  # nothing of it left running


def test_requests_at_once_share_one_ref_resolution(tmp_path):
    """Single-flight: eight requests resolving the same ref of a silent host at once make one
    ``git ls-remote`` (one connection), and all of them get its answer."""
    cache = CheckoutCache(tmp_path / "cache")
    held: list[socket.socket] = []
    with stalled_server(held) as port:
        url = check_repo_url(f"git://127.0.0.1:{port}/x.git")
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: _answer(cache, url), range(8)))
        assert len(held) == 1
    assert all("cannot reach the repository host" in answer for answer in answers), answers


def _answer(cache: CheckoutCache, url) -> str:
    try:
        return cache.resolve(url, "main", SETTINGS)
    except StagingError as exc:
        return str(exc)
