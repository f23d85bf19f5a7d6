"""Stage a designer's Git repository on the shared filesystem: one pinned commit, shallow.

:func:`stage_repository` fetches a branch, tag or commit of a URL already checked by
:func:`portal.submit.gitpolicy.check_repo_url` into ``dest`` and returns the resolved commit.

How it runs git (through GitPython's process wrapper, argv only, never a shell):

* ``git init`` + ``git fetch --depth=1 --no-tags origin <ref>`` + ``git checkout --detach``.
  A full commit id is fetched the same way; servers speaking protocol v2 (and v0 servers with
  ``uploadpack.allow{Reachable,Any}SHA1InWant``) allow it. When the server refuses, the
  branches and tags are fetched in full and the commit is looked up locally (``shallow`` is
  then ``False``). An abbreviated commit id (7-39 hex digits that are not a branch or tag
  name) always takes the full-fetch path, since git cannot fetch an abbreviated id.
* Before git runs, the host is resolved and refused unless every address is public, or the
  host is on the ``allowed_private`` list (the ``GIT_ALLOWED_PRIVATE_HOSTS`` setting; see
  :func:`portal.submit.gitpolicy.check_host_address`), so a designer cannot make the portal
  connect to loopback, the cluster's private networks or a cloud metadata service. A host that only
  the
  service account's ssh config (a ``Host`` alias) or its http proxy can reach must be listed
  there too.
* Redirects are never followed (``http.followRedirects=false``): an https server could
  otherwise answer 301/302 with an internal address, which the check above never saw. git's
  default (``initial``) follows redirects of the first request, which is exactly that hole, and
  git has no "same host only" setting. The cost: a moved repository (renamed on GitHub, a
  server that redirects to the ``.git`` URL) fails with a message asking for its final URL.
* A clone that cannot connect (name not found, refused, timed out, no route, reset, TLS or
  protocol garbage, or the time limit passing before the server said anything) gets the same
  message as a refused address (:func:`portal.submit.gitpolicy.unreachable_message`), with no port
  and no reason: designers must not be able to tell open ports from closed ones.
* Only the URL's own protocol is allowed (``protocol.allow=never`` plus
  ``protocol.<scheme>.allow=always`` and ``GIT_ALLOW_PROTOCOL``), no hooks
  (``core.hooksPath=/dev/null``, empty init template), no submodules, objects checked with
  fsck, no background gc, no prompts (``GIT_TERMINAL_PROMPT=0``, askpass ``false``, ssh with
  ``BatchMode=yes`` and a connect timeout). The service account's own git and ssh
  configuration (proxies, CA bundles, known_hosts, deploy keys) still applies.
* Time limit: one deadline for the whole staging; the running git (and its children: ssh,
  git-remote-https) is killed when it passes.
* Size limit (``max_mb`` MiB for the checkout plus ``.git``): the download is killed as soon as
  git reports more bytes received; before checkout the blob sizes of the tree are summed
  (a highly compressible repository cannot expand past the limit), and the result is measured.
* Symbolic links that point outside the repository are refused.
* Work happens in a hidden sibling directory renamed to ``dest`` on success; on any failure it
  is removed, so ``dest`` either holds a complete checkout or does not exist.

When jobs run as the designer's own Unix account (``SLURM_RUN_AS='user'``), the portal still
stages the run directory under its own account; :func:`share_run_dir` then hands it to the run
root's group (which the designer must belong to): group read everywhere, group write only where
the job writes (``logs/`` and its task directories), setgid directories so what the job creates
stays readable by the portal.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from git import Git
from git.cmd import handle_process_output
from git.exc import GitCommandNotFound
from git.util import RemoteProgress

from portal.submit.gitpolicy import (
    RESOLVE_TIMEOUT_S,
    GitURLError,
    RepoURL,
    check_host_address,
    check_ref,
    check_repo_url,
    is_commit_sha,
    redact,
    unreachable_message,
)

__all__ = [
    "ProgressCallback",
    "StagedRepo",
    "StagingError",
    "abort_fetches",
    "share_run_dir",
    "stage_repository",
]

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float | None], None]

MIB = 1024 * 1024
_FALSE = shutil.which("false") or "/bin/false"
_ABBREV_SHA_RE = re.compile(r"^[0-9a-fA-F]{7,39}\Z")
_BYTES_RE = re.compile(r"(\d+(?:\.\d+)?) (bytes|KiB|MiB|GiB|TiB)")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB, "TiB": 1024 * 1024 * MIB}
_UNPRINTABLE_RE = re.compile(r"[^\x20-\x7e]+")
_REFUSED_WANT = ("not our ref", "unadvertised object", "couldn't find remote ref")
# git, ssh and curl saying the host could not be reached, or did not speak git or TLS: all get
# the one unreachable_message (the details would tell open ports from closed ones).
#: The designer's reason when the run folder's filesystem filled up while the run was staged.
NO_SPACE = (
    "no space left on device: the run folder's filesystem is full, so the run could not be "
    "staged (the portal tries again; the site's admins must make room)"
)

_UNREACHABLE_RE = re.compile(
    r"errno=|ssh: connect to host|Failed to connect to|Could not connect|Couldn't connect|"
    r"unable to connect to|unable to look up|Could not resolve host|Name or service not known|"
    r"Temporary failure in name resolution|No address associated with hostname|"
    r"Connection refused|No route to host|Network is unreachable|timed out|Connection timeout|"
    r"Connection reset|Connection closed by|kex_exchange_identification|"
    r"gnutls_handshake|SSL_connect|SSL routines|TLS connection was non-properly terminated|"
    r"protocol error: bad line length",
    re.IGNORECASE,
)
_REDIRECT_RE = re.compile(r"returned error: 30[0-8]\b")
_AUTH_RE = re.compile(
    r"could not read Username|could not read Password|Authentication failed|Permission denied \("
)
_NOT_FOUND_RE = re.compile(
    r"not found|does not exist|not exported|does not appear to be a git repository",
    re.IGNORECASE,
)


class StagingError(RuntimeError):
    """Staging failed. The message is user-facing and never contains credentials."""


@dataclass(frozen=True)
class StagedRepo:
    """A staged checkout: ``commit`` is the full id of the checked-out commit.

    ``shallow`` is False when the server refused a commit fetch and full history was fetched.
    ``size_bytes`` counts the checkout and ``.git``.
    """

    commit: str
    ref: str
    path: Path
    size_bytes: int
    seconds: float
    shallow: bool


def stage_repository(
    url: RepoURL,
    ref: str,
    dest: Path,
    *,
    timeout_s: float = 300,
    max_mb: int = 500,
    progress: ProgressCallback | None = None,
    allowed_private: Sequence[str] = (),
    abortable: bool = False,
) -> StagedRepo:
    """Fetch ``ref`` (branch, tag or commit id) of ``url`` into the new directory ``dest``.

    ``progress(stage, fraction)`` is called with a short stage text and a 0..1 fraction (or
    None). ``allowed_private`` is the ``GIT_ALLOWED_PRIVATE_HOSTS`` setting: the hosts and
    addresses on private networks the portal may clone from (none by default). An
    ``abortable`` fetch (a preview's) is killed by :func:`abort_fetches`. Raises
    :class:`StagingError` (with ``dest`` absent) on any failure.
    """
    started = time.monotonic()
    if not isinstance(url, RepoURL):
        raise TypeError(
            "stage_repository needs a RepoURL from portal.submit.gitpolicy.check_repo_url"
        )
    if timeout_s <= 0 or max_mb <= 0:
        raise ValueError("timeout_s and max_mb must be positive")
    url, ref = _recheck(url, ref)
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise StagingError(f"staging destination already exists: {dest}")
    _check_address(url, allowed_private, min(RESOLVE_TIMEOUT_S, timeout_s))
    logger.info("staging %s at %r into %s", url.redacted, ref, dest)
    try:
        work = _make_workdir(dest)
    except OSError as exc:
        raise StagingError(
            f"cannot create the staging directory for {dest}: {exc.strerror}"
        ) from exc
    try:
        session = _GitSession(url, work, started + timeout_s, timeout_s, max_mb, progress)
        session.abortable = abortable
        commit, shallow = session.fetch_and_checkout(ref)
        _check_symlinks(work)
        size = _tree_bytes(work)
        if size > max_mb * MIB:
            raise StagingError(_too_big(max_mb, size))
        os.rename(work, dest)
    except BaseException as exc:
        _remove(work)
        logger.info("staging %s at %r failed: %s", url.redacted, ref, _clean(str(exc)))
        if isinstance(exc, Exception) and "No space left on device" in str(exc):
            raise StagingError(NO_SPACE) from exc
        if isinstance(exc, Exception) and not isinstance(exc, StagingError):
            raise StagingError(f"staging failed: {_clean(str(exc))}") from exc
        raise
    seconds = time.monotonic() - started
    session.report("done", 1.0)
    logger.info("staged %s at %r: commit %s, %d bytes", url.redacted, ref, commit, size)
    return StagedRepo(commit, ref, dest, size, seconds, shallow)


#: The longest a request may wait for ``git ls-remote`` (previews resolve refs in the request).
RESOLVE_REF_TIMEOUT_S = 3.0


def resolve_ref(
    url: RepoURL,
    ref: str,
    *,
    timeout_s: float = RESOLVE_REF_TIMEOUT_S,
    allowed_private: Sequence[str] = (),
) -> str:
    """The commit ``ref`` (a branch, a tag or a full commit id) names on ``url``, from one
    ``git ls-remote`` given at most ``timeout_s`` seconds (with the staging's protocol, no
    redirects and address rules). An abbreviated commit id is returned as it is (only a fetch
    can expand it). Raises :class:`StagingError` with the same texts as a staging."""
    url, ref = _recheck(url, ref)
    if is_commit_sha(ref) or _ABBREV_SHA_RE.match(ref):
        return ref.lower()
    _check_address(url, allowed_private, min(RESOLVE_TIMEOUT_S, timeout_s))
    with tempfile.TemporaryDirectory(prefix="olp-ls-remote-") as tmp:
        session = _GitSession(url, Path(tmp), time.monotonic() + timeout_s, timeout_s, 1, None)
        for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY"):
            session.env.pop(key, None)
        try:
            lines = session.run(
                "ls-remote",
                "--",
                url.url,
                f"refs/heads/{ref}",
                f"refs/tags/{ref}",
                f"refs/tags/{ref}^{{}}",
            )
        except _GitFailed as failure:
            raise StagingError(_describe_failure(failure.lines, url, ref)) from None
        except StagingError as exc:  # the deadline: say only that the host did not answer
            raise StagingError(unreachable_message(url.host)) from exc
    found = dict(reversed(line.split("\t", 1)) for line in lines if "\t" in line)
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in found:
            return found[name].strip()
    raise StagingError(f"branch or tag {ref!r} not found in {url.redacted}")


def _recheck(url: RepoURL, ref: str) -> tuple[RepoURL, str]:
    """Re-apply the URL and ref rules, so a hand-made RepoURL cannot smuggle an option in.

    The file:// permission and the host allowlist were decided when ``url`` was checked; the
    host's addresses are checked next, by :func:`_check_address`.
    """
    try:
        return check_repo_url(url.url, allow_file=url.scheme == "file"), check_ref(ref)
    except GitURLError as exc:
        raise StagingError(str(exc)) from None


def _check_address(url: RepoURL, allowed_private: Sequence[str], timeout_s: float) -> None:
    """Refuse, before any git runs, a host that is or resolves to a non-public address."""
    try:
        check_host_address(url, allowed_private, timeout_s=timeout_s)
    except GitURLError as exc:
        logger.info("staging %s refused: the host is not a public address", url.redacted)
        raise StagingError(str(exc)) from None


def _make_workdir(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".staging", dir=dest.parent))


def _remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        logger.warning("could not remove the failed staging directory %s", path)


def _too_big(max_mb: int, size: float) -> str:
    return f"repository is larger than the {max_mb} MB limit (at least {size / MIB:.1f} MB)"


def _clean(text: str, limit: int = 300) -> str:
    """Make git or exception text safe to show: no credentials, no control characters."""
    text = _UNPRINTABLE_RE.sub(" ", redact(text)).strip()
    return text if len(text) <= limit else text[:limit] + "..."


class _GitFailed(Exception):
    """A git command exited non-zero; ``lines`` is its stderr (internal)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class _FetchProgress(RemoteProgress):
    """Turns git's progress lines into ``report(stage, fraction)`` and watches the size."""

    _STAGES = {
        RemoteProgress.COUNTING: "counting objects",
        RemoteProgress.COMPRESSING: "compressing objects",
        RemoteProgress.RECEIVING: "receiving objects",
        RemoteProgress.RESOLVING: "resolving deltas",
    }

    def __init__(
        self, report: ProgressCallback, max_bytes: int, on_limit: Callable[[], None]
    ) -> None:
        super().__init__()
        self._report = report
        self._max_bytes = max_bytes
        self._on_limit = on_limit
        self.received = 0.0
        self.over_limit = False

    def update(
        self,
        op_code: int,
        cur_count: str | float,
        max_count: str | float | None = None,
        message: str = "",
    ) -> None:
        op = op_code & self.OP_MASK
        if op == self.RECEIVING:
            self._watch_size(message)
        stage = self._STAGES.get(op)
        if stage is None:
            return
        fraction = None
        if max_count:
            fraction = min(1.0, max(0.0, float(cur_count or 0) / float(max_count)))
        self._report(stage, fraction)

    def _watch_size(self, message: str) -> None:
        match = _BYTES_RE.search(message or "")
        if match is None:
            return
        self.received = float(match[1]) * _UNITS[match[2]]
        if self.received > self._max_bytes and not self.over_limit:
            self.over_limit = True
            self._on_limit()


class _GitSession:
    """Runs the git commands of one staging under one deadline, in one work directory."""

    def __init__(
        self,
        url: RepoURL,
        work: Path,
        deadline: float,
        timeout_s: float,
        max_mb: int,
        progress: ProgressCallback | None,
    ) -> None:
        self.url = url
        self.work = work
        self.deadline = deadline
        self.timeout_s = timeout_s
        self.max_mb = max_mb
        self.progress = progress
        self.git = Git(str(work))
        self.env = _git_env(url, work, timeout_s)
        self.config = _git_config(url.scheme)
        #: its git commands are killed by :func:`abort_fetches`
        self.abortable = False

    def report(self, stage: str, fraction: float | None) -> None:
        """Pass progress to the caller; a failing callback never breaks staging."""
        if self.progress is None:
            return
        try:
            self.progress(stage, fraction)
        except Exception:
            logger.warning("staging progress callback failed", exc_info=True)

    def fetch_and_checkout(self, ref: str) -> tuple[str, bool]:
        """Fetch ``ref`` and check it out detached; return (commit, shallow)."""
        self.report("connecting", None)
        self.run("init", "--quiet", "--template=")
        self.run("remote", "add", "origin", self.url.url)
        target, shallow = self._fetch(ref)
        commit = self._resolve(target, ref)
        self._check_tree_size(commit)
        self.report("checking out", None)
        self.run("checkout", "--quiet", "--detach", commit)
        return commit, shallow

    def _fetch(self, ref: str) -> tuple[str, bool]:
        """Fetch ``ref`` shallow, falling back to full history for commit ids."""
        try:
            self.run(*_SHALLOW_FETCH, ref, fetch=True)
            return (ref if is_commit_sha(ref) else "FETCH_HEAD"), True
        except _GitFailed as failure:
            refused = any(marker in failure.text for marker in _REFUSED_WANT)
            if not (refused and (is_commit_sha(ref) or _ABBREV_SHA_RE.match(ref))):
                raise StagingError(_describe_failure(failure.lines, self.url, ref)) from None
        logger.info("%s refused a shallow fetch of %s; fetching full history", self.url, ref)
        self.report("fetching full history", None)
        try:
            self.run(*_FULL_FETCH, fetch=True)
        except _GitFailed as failure:
            raise StagingError(_describe_failure(failure.lines, self.url, ref)) from None
        return ref, False

    def _resolve(self, target: str, ref: str) -> str:
        try:
            out = self.run(
                "rev-parse", "--verify", "--quiet", "--end-of-options", target + "^{commit}"
            )
        except _GitFailed:
            raise StagingError(f"commit {ref!r} not found in {self.url.redacted}") from None
        return out[-1].strip()

    def _check_tree_size(self, commit: str) -> None:
        """Refuse before checkout when the tree's blobs plus .git exceed the limit."""
        listing = self.run("ls-tree", "-r", "-l", "--full-tree", commit)
        blobs = sum(int(fields[3]) for fields in _ls_tree_rows(listing) if fields[1] == "blob")
        total = blobs + _tree_bytes(self.work / ".git")
        if total > self.max_mb * MIB:
            raise StagingError(_too_big(self.max_mb, total))

    def run(self, *args: str, fetch: bool = False) -> list[str]:
        """Run one git command; return its stdout lines or raise :class:`_GitFailed`."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise StagingError(self._timed_out())
        argv = [Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *self.config, *args]
        try:
            proc: Any = self.git.execute(
                argv,
                as_process=True,
                universal_newlines=True,
                env=self.env,
                start_new_session=True,
                errors="replace",
            )
        except GitCommandNotFound:
            raise StagingError("git is not installed on the portal host") from None
        popen: subprocess.Popen[str] = proc.proc
        if self.abortable:
            with _ABORTABLE_LOCK:
                _ABORTABLE.add(popen)
        try:
            return self._follow(proc, popen, fetch, remaining)
        finally:
            with _ABORTABLE_LOCK:
                _ABORTABLE.discard(popen)

    def _follow(
        self, proc: Any, popen: subprocess.Popen[str], fetch: bool, remaining: float
    ) -> list[str]:
        """Read a running git command to its end (see :meth:`run`)."""
        stdout: list[str] = []
        stderr: deque[str] = deque(maxlen=200)
        watcher = _FetchProgress(self.report, self.max_mb * MIB, lambda: _kill_group(popen))
        parse_progress = watcher.new_message_handler()

        def on_stderr(line: str) -> None:
            stderr.append(line.rstrip("\n"))
            if fetch:
                with suppress(Exception):
                    parse_progress(line)

        handle_process_output(
            proc, stdout.append, on_stderr, None, decode_streams=False, kill_after_timeout=remaining
        )
        status = self._wait(popen)
        if watcher.over_limit:
            raise StagingError(_too_big(self.max_mb, watcher.received))
        if status != 0 and time.monotonic() >= self.deadline:
            _kill_group(popen)
            if fetch and not stderr:  # never heard from the server: say no more than that
                raise StagingError(unreachable_message(self.url.host))
            raise StagingError(self._timed_out())
        if status != 0:
            raise _GitFailed(list(stderr))
        return [line.rstrip("\n") for line in stdout]

    def _wait(self, popen: subprocess.Popen[str]) -> int:
        try:
            return popen.wait(timeout=max(0.1, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _kill_group(popen)
            return popen.wait()

    def _timed_out(self) -> str:
        return (
            f"staging {self.url.redacted} did not finish within {self.timeout_s:g} s "
            f"(git was stopped)"
        )


_SHALLOW_FETCH = (
    "fetch",
    "--depth=1",
    "--no-tags",
    "--no-recurse-submodules",
    "--progress",
    "origin",
)
_FULL_FETCH = (
    "fetch",
    "--no-tags",
    "--no-recurse-submodules",
    "--progress",
    "origin",
    "+refs/heads/*:refs/remotes/origin/*",
    "+refs/tags/*:refs/tags/*",
)


def _describe_failure(lines: list[str], url: RepoURL, ref: str) -> str:
    """A one-line, credential-free explanation of a failed fetch (git's stderr ``lines``)."""
    text = "\n".join(lines)
    if _UNREACHABLE_RE.search(text):
        return unreachable_message(url.host)
    if _REDIRECT_RE.search(text):
        return (
            f"{url.redacted} answered with a redirect, which the portal does not follow: "
            f"give the repository's final URL"
        )
    if "Host key verification failed" in text:
        return (
            f"the ssh host key of {url.host} is not known to the cluster "
            f"(an admin must add it to known_hosts)"
        )
    if _AUTH_RE.search(text):
        return (
            f"access to {url.redacted} was refused (the portal clones only repositories "
            f"it can read without a password)"
        )
    if "couldn't find remote ref" in text:
        return f"branch or tag {ref!r} not found in {url.redacted}"
    if "not our ref" in text:
        return f"commit {ref!r} not found in {url.redacted}"
    if _NOT_FOUND_RE.search(text):
        return f"repository {url.redacted} not found (or not readable by the portal)"
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines[-3:]
    return f"git could not fetch from {url.redacted}: {_clean(' '.join(errors))}"


def _git_config(scheme: str) -> list[str]:
    """``-c`` options for every git command of a staging."""
    settings = [
        "protocol.allow=never",
        f"protocol.{scheme}.allow=always",
        "http.followRedirects=false",
        "core.hooksPath=/dev/null",
        "core.fsmonitor=false",
        "submodule.recurse=false",
        "fetch.recurseSubmodules=false",
        "fetch.fsckObjects=true",
        "transfer.fsckObjects=true",
        "gc.auto=0",
        "maintenance.auto=false",
        "advice.detachedHead=false",
        "init.defaultBranch=main",
    ]
    return [arg for setting in settings for arg in ("-c", setting)]


def _git_env(url: RepoURL, work: Path, timeout_s: float) -> dict[str, str]:
    """Environment for git: pinned repository, no prompts, only the URL's protocol."""
    connect_timeout = max(1, min(30, int(timeout_s)))
    ssh = os.environ.get("GIT_SSH_COMMAND") or "ssh"
    return {
        "GIT_DIR": str(work / ".git"),
        "GIT_WORK_TREE": str(work),
        "GIT_INDEX_FILE": str(work / ".git" / "index"),
        "GIT_OBJECT_DIRECTORY": str(work / ".git" / "objects"),
        "GIT_CONFIG_PARAMETERS": "",
        "GIT_CONFIG_COUNT": "0",
        "GIT_ALLOW_PROTOCOL": url.scheme,
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": _FALSE,
        "SSH_ASKPASS": _FALSE,
        "SSH_ASKPASS_REQUIRE": "never",
        "GIT_SSH_COMMAND": f"{ssh} -o BatchMode=yes -o ConnectTimeout={connect_timeout}",
    }


#: The git commands of abortable fetches that run now (see :func:`abort_fetches`).
_ABORTABLE: set[subprocess.Popen[str]] = set()
_ABORTABLE_LOCK = threading.Lock()


def abort_fetches() -> int:
    """Kill every git command of an abortable fetch that runs now (each fetch then fails with
    :class:`StagingError`); how many. A process that stops calls it, so that it does not wait
    for clones from a host that never answers."""
    with _ABORTABLE_LOCK:
        running = list(_ABORTABLE)
    for popen in running:
        _kill_group(popen)
    return len(running)


def _kill_group(popen: subprocess.Popen[str]) -> None:
    """SIGKILL git and its children (it runs in its own session, so its own group)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(popen.pid, signal.SIGKILL)


def _ls_tree_rows(lines: list[str]) -> list[list[str]]:
    """``<mode> <type> <object> <size>`` fields of ``git ls-tree -l`` lines."""
    rows = [line.split("\t", 1)[0].split() for line in lines if "\t" in line]
    return [fields for fields in rows if len(fields) == 4 and fields[3].isdigit()]


def _tree_bytes(root: Path) -> int:
    """Apparent size of the regular files under ``root`` (symlinks not followed)."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            with suppress(OSError):
                info = os.lstat(os.path.join(folder, name))
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return total


def _check_symlinks(work: Path) -> None:
    """Refuse symbolic links whose target resolves outside the checkout."""
    root = os.path.realpath(work)
    for folder, dirs, files in os.walk(work):
        if folder == str(work) and ".git" in dirs:
            dirs.remove(".git")
        for name in [*dirs, *files]:
            link = os.path.join(folder, name)
            if not os.path.islink(link):
                continue
            target = os.path.realpath(link)
            if os.path.commonpath([root, target]) != root:
                shown = os.path.relpath(link, work)
                raise StagingError(
                    f"the repository contains a symbolic link that points outside it: "
                    f"{shown} -> {_clean(os.readlink(link), 120)}"
                )


# -- handing a staged run directory to the job's Unix account ---------------------------------
_GROUP_READ = stat.S_IRGRP | stat.S_IXGRP


def share_run_dir(run_dir: Path, job_user: str, writable: Iterable[Path] = ()) -> int:
    """Let jobs running as the Unix account ``job_user`` use ``run_dir``; return its group id.

    Everything the portal's account owns under ``run_dir`` goes to the group of the run root
    (``run_dir``'s parent): directories get group read and search plus setgid (what the job
    creates stays in the group, so the portal can read the results), files group read (and
    search where the owner may execute), the ``writable`` directories group write; group write
    is removed everywhere else, so the job cannot alter the checkout or the scripts. Entries the
    portal does not own (files a job already wrote) are left alone. Idempotent.

    Raises :class:`StagingError` when ``job_user`` does not exist here, is not in that group,
    cannot search every directory above ``run_dir``, or the portal's account cannot give its
    files to the group.
    """
    run_dir = Path(run_dir)
    try:
        account = pwd.getpwnam(job_user)
    except KeyError:
        raise StagingError(f"there is no Unix account {job_user!r} on the portal host") from None
    root = run_dir.parent
    gid = os.stat(root).st_gid
    group = _group_name(gid)
    groups = set(os.getgrouplist(job_user, account.pw_gid))
    if gid not in groups:
        raise StagingError(
            f"{job_user} is not a member of group {group}, which owns the run root {root}: "
            f"jobs running as {job_user} could not write their run directory (the run root "
            f"must belong to a group shared by the portal's account and every designer)"
        )
    for folder in reversed([root, *root.parents]):
        if not _can_search(os.stat(folder), account.pw_uid, groups):
            raise StagingError(
                f"{job_user} cannot enter {folder} (mode {_mode_text(folder)}): jobs running as "
                f"{job_user} could not reach their run directory"
            )
    open_for_job = {os.path.normpath(path) for path in writable}
    me = os.geteuid()
    for folder, dirs, files in os.walk(run_dir):
        _share_entry(folder, gid, group, write=os.path.normpath(folder) in open_for_job)
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(folder, d)).st_uid == me]
        for name in files:
            path = os.path.join(folder, name)
            if os.lstat(path).st_uid == me:
                _share_entry(path, gid, group, write=False)
    return gid


def _share_entry(path: str, gid: int, group: str, *, write: bool) -> None:
    info = os.lstat(path)
    if info.st_gid != gid:
        try:
            os.chown(path, -1, gid, follow_symlinks=False)
        except PermissionError:
            raise StagingError(
                f"the portal's account cannot give {path} to group {group}: it must be a "
                f"member of that group"
            ) from None
    if stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode) & ~stat.S_IWGRP
    if stat.S_ISDIR(info.st_mode):
        mode |= _GROUP_READ | stat.S_ISGID | (stat.S_IWGRP if write else 0)
    else:
        mode |= stat.S_IRGRP | (stat.S_IXGRP if mode & stat.S_IXUSR else 0)
    if mode != stat.S_IMODE(info.st_mode):
        os.chmod(path, mode)


def _can_search(info: os.stat_result, uid: int, groups: set[int]) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in groups:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _mode_text(path: Path) -> str:
    info = os.stat(path)
    owner = _user_name(info.st_uid)
    return f"{stat.S_IMODE(info.st_mode):04o}, owner {owner}, group {_group_name(info.st_gid)}"


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
