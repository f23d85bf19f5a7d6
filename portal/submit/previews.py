"""Checkouts for previews and dry runs, fetched off the request thread and kept by commit.

A preview needs the design's files at the commit a ref names. A web or API request only
resolves the ref (one ``git ls-remote``, at most
:data:`~portal.submit.checkout.RESOLVE_REF_TIMEOUT_S`);
the clone runs in a small process-wide pool (``PREVIEW_FETCHES`` at once, one per user), its
checkout is kept under its commit for ``PREVIEW_CACHE_SECONDS``, and a request waits at most
``PREVIEW_WAIT_SECONDS`` for it. Past that it answers "still fetching" (:class:`PreviewPending`)
and a later request finds the checkout ready; more fetches than the caps allow answer
"busy" (:class:`PreviewBusy`). So a Git host that accepts and never answers holds no web thread
longer than the ref resolution, and many previews cannot pile up clones.

The submit form checks its repository on every change, so a ref's resolution (its commit, or
why it failed) and a failed fetch are remembered for :data:`RESOLVE_CACHE_SECONDS`: a branch
that moves is seen that much later at most, and a wrong URL is not asked again and again.

This module does not import Flask.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

from portal.config import Settings, SettingsLike, as_settings
from portal.submit.checkout import StagingError, abort_fetches, resolve_ref, stage_repository
from portal.submit.gitpolicy import GitPolicy, RepoURL

#: How long a ref's resolution and a failed fetch are remembered (seconds).
RESOLVE_CACHE_SECONDS = 20.0


class PreviewPending(Exception):
    """The repository is still being fetched; ask again in a moment."""


class PreviewBusy(PreviewPending):
    """Too many previews are being fetched (for this user or in all); ask again later."""


@dataclass
class _Fetch:
    future: Future[None]
    user_id: int


class CheckoutCache:
    """Checkouts under ``root/<hash of URL and commit>/design``, fetched by a bounded pool."""

    def __init__(self, root: Path, workers: int = 2, per_user: int = 1) -> None:
        self.root = Path(root)
        self.workers = max(1, workers)
        self.per_user = max(1, per_user)
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="preview")
        # Reentrant: a fetch that failed at once runs its done callback inside checkout's lock.
        self.lock = threading.RLock()
        self.inflight: dict[str, _Fetch] = {}
        #: (URL, ref) -> (until when, the commit or the error of its resolution)
        self.resolved: dict[tuple[str, str], tuple[float, str | StagingError]] = {}
        #: (URL, ref) -> the answer of the ls-remote running for it now
        self.resolving: dict[tuple[str, str], Future[str | StagingError]] = {}
        #: checkout key -> (until when, why its fetch failed)
        self.failed: dict[str, tuple[float, StagingError]] = {}

    def resolve(self, url: RepoURL, ref: str, settings: SettingsLike) -> str:
        """The commit ``ref`` names on ``url`` (:func:`~portal.submit.checkout.resolve_ref`), or its
        :class:`~portal.submit.checkout.StagingError`, remembered :data:`RESOLVE_CACHE_SECONDS`.
        Single-flight: requests that need the same answer at once share one ``git ls-remote``."""
        key = (url.url, ref)
        now = time.monotonic()
        with self.lock:
            known = self.resolved.get(key)
            asking = None
            if known is None or known[0] < now:
                asking = self.resolving.get(key)
                mine = asking is None
                if mine:
                    asking = self.resolving[key] = Future()
        if asking is not None:
            if mine:
                allowed = GitPolicy.from_settings(settings).allowed_private
                try:
                    answer: str | StagingError = resolve_ref(url, ref, allowed_private=allowed)
                except StagingError as exc:
                    answer = exc
                except BaseException as exc:  # the waiters get it too, and the next asks again
                    with self.lock:
                        del self.resolving[key]
                    asking.set_exception(exc)
                    raise
                with self.lock:
                    self.resolved = {k: v for k, v in self.resolved.items() if v[0] >= now}
                    self.resolved[key] = (now + RESOLVE_CACHE_SECONDS, answer)
                    del self.resolving[key]
                asking.set_result(answer)
            known = (now, asking.result())
        if isinstance(known[1], StagingError):
            raise StagingError(str(known[1]))
        return known[1]

    def checkout(
        self,
        url: RepoURL,
        ref: str,
        user_id: int,
        settings: SettingsLike,
        *,
        wait_s: float | None,
    ) -> Path:
        """The checkout of ``ref`` (its design files), fetched if needed; ``wait_s`` None waits
        for the clone to finish, else raises :class:`PreviewPending` after ``wait_s``."""
        settings = as_settings(settings)
        commit = self.resolve(url, ref, settings)
        key = hashlib.sha256(f"{url.url}\0{commit}".encode()).hexdigest()[:32]
        folder = self.root / key
        if (folder / "design").is_dir():
            os.utime(folder)  # recently used: kept longer
            return folder / "design"
        with self.lock:
            failed = self.failed.get(key)
            if failed is not None and failed[0] >= time.monotonic():
                raise StagingError(str(failed[1]))
            fetch = self.inflight.get(key)
            if fetch is None:
                if len(self.inflight) >= self.workers:
                    raise PreviewBusy("the portal is fetching other repositories; try again soon")
                mine = sum(f.user_id == user_id for f in self.inflight.values())
                if mine >= self.per_user:
                    raise PreviewBusy("another of your previews is still being fetched")
                future = self.pool.submit(self._fetch, url, commit, folder, settings)
                fetch = self.inflight[key] = _Fetch(future, user_id)
                future.add_done_callback(lambda done: self._forget(key, done))
        try:
            fetch.future.result(timeout=wait_s)
        except FutureTimeout:
            raise PreviewPending(
                "still fetching the repository: the preview appears when the clone is done"
            ) from None
        return folder / "design"

    def _forget(self, key: str, done: Future[None]) -> None:
        error = done.exception()
        now = time.monotonic()
        with self.lock:
            self.inflight.pop(key, None)
            self.failed = {k: v for k, v in self.failed.items() if v[0] >= now}
            if isinstance(error, StagingError):
                self.failed[key] = (now + RESOLVE_CACHE_SECONDS, error)

    def _fetch(self, url: RepoURL, commit: str, folder: Path, settings: Settings) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        work = self.root / f".{folder.name}.{uuid.uuid4().hex}"
        work.mkdir()
        try:
            stage_repository(
                url,
                commit,
                work / "design",
                timeout_s=float(settings.GIT_CLONE_TIMEOUT),
                max_mb=settings.GIT_MAX_REPO_MB,
                allowed_private=GitPolicy.from_settings(settings).allowed_private,
                abortable=True,
            )
            os.rename(work, folder)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.prune(float(settings.PREVIEW_CACHE_SECONDS))

    def shutdown(self) -> None:
        """Drop the fetches still queued and kill the running ones (:func:`shutdown_previews`)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        abort_fetches()

    def prune(self, keep_seconds: float) -> None:
        """Remove checkouts unused for ``keep_seconds``."""
        cutoff = time.time() - keep_seconds
        for entry in self.root.iterdir():
            if not entry.name.startswith(".") and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)


_CACHES: dict[str, CheckoutCache] = {}
_CACHES_LOCK = threading.Lock()


def checkout_cache(settings: SettingsLike) -> CheckoutCache:
    """The process's cache for these settings (``PREVIEW_CACHE_DIR``, else a folder under the
    system's temporary directory named after ``RUN_ROOT``)."""
    settings = as_settings(settings)
    root = settings.PREVIEW_CACHE_DIR or os.path.join(
        tempfile.gettempdir(),
        "openlane-portal-previews-"
        + hashlib.sha256(str(settings.RUN_ROOT).encode()).hexdigest()[:12],
    )
    with _CACHES_LOCK:
        cache = _CACHES.get(str(root))
        if cache is None:
            cache = _CACHES[str(root)] = CheckoutCache(
                Path(root), workers=settings.PREVIEW_FETCHES or 2
            )
        return cache


def shutdown_previews() -> None:
    """Stop every preview fetch of this process now: a gunicorn worker that exits calls it
    (``worker_exit`` in :mod:`portal.gunicorn_conf`), so it does not wait for a clone from a
    host that never answers (up to ``GIT_CLONE_TIMEOUT``) and get killed at the graceful
    timeout instead."""
    with _CACHES_LOCK:
        caches = list(_CACHES.values())
    for cache in caches:
        cache.shutdown()
