"""Staging against real git daemons on loopback (see tests/fixtures/gitdaemon.py)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
import pytest

from portal.submit.checkout import StagedRepo, StagingError, stage_repository
from portal.submit.gitpolicy import GitURLError, RepoURL, check_repo_url, unreachable_message

pytest.register_assert_rewrite("tests.fixtures.gitdaemon")

from tests.fixtures.gitdaemon import (  # noqa: E402
    GitServer,
    closed_port,
    stalled_server,
    write_spm_design,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


# The session's allow-list of loopback hosts (tests/conftest.py sets it for every app).
LOOPBACK_ALLOWED: list[str] = json.loads(os.environ["PORTAL_GIT_ALLOWED_PRIVATE_HOSTS"])


def stage(url: str, ref: str, dest: Path, **kwargs: object) -> StagedRepo:
    kwargs.setdefault("allowed_private", LOOPBACK_ALLOWED)
    return stage_repository(check_repo_url(url), ref, dest, **kwargs)  # type: ignore[arg-type]


def head_of(path: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert not any(dest.parent.glob(f".{dest.name}.*")), "a staging work directory was left"


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in argv and "pytest" not in argv:
            found.append(argv)
    return found


# --- clone by branch, tag, commit -------------------------------------------------------------


def test_branch_is_staged_shallow_with_commit_recorded(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    dest = tmp_path / "run" / "design"
    staged = stage(f"{git_daemon.url_base}/spm.git", "main", dest)
    assert staged.commit == git_daemon.spm.head
    assert (staged.ref, staged.path, staged.shallow) == ("main", dest, True)
    assert (dest / "designs" / "spm" / "config.json").is_file()
    assert (dest / "designs" / "spm" / "src" / "spm.v").read_text().endswith("// rev 2\n")
    assert (dest / "designs" / "spm" / "pin_order.cfg").is_file()
    assert (dest / ".git" / "shallow").is_file()
    assert head_of(dest) == staged.commit
    assert 0 < staged.size_bytes < 1024 * 1024
    assert 0 < staged.seconds < 60


def test_staged_checkout_is_clean_and_relocatable(git_daemon: GitServer, tmp_path: Path) -> None:
    dest = tmp_path / "design"
    stage(f"{git_daemon.url_base}/spm.git", "main", dest)
    moved = tmp_path / "elsewhere"
    dest.rename(moved)
    status = subprocess.run(
        ["git", "-C", str(moved), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.returncode == 0 and status.stdout == ""
    config = (moved / ".git" / "config").read_text()
    assert str(tmp_path) not in config and "worktree" not in config
    assert not (moved / ".git" / "hooks").exists()


def test_tag_is_staged(git_daemon: GitServer, tmp_path: Path) -> None:
    dest = tmp_path / "design"
    staged = stage(f"{git_daemon.url_base}/spm.git", "v1", dest)
    assert staged.commit == git_daemon.spm.tags["v1"] == git_daemon.spm.commits[0]
    assert (dest / "designs" / "spm" / "config.json").is_file()
    assert not (dest / "designs" / "spm" / "pin_order.cfg").exists()


def test_remote_default_branch_via_head(git_daemon: GitServer, tmp_path: Path) -> None:
    staged = stage(f"{git_daemon.url_base}/spm.git", "HEAD", tmp_path / "design")
    assert staged.commit == git_daemon.spm.head


def test_commit_sha_fetched_shallow_from_protocol_v2_server(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    middle = git_daemon.spm.commits[1]
    staged = stage(f"{git_daemon.url_base}/spm.git", middle, tmp_path / "design")
    assert (staged.commit, staged.shallow) == (middle, True)
    assert head_of(tmp_path / "design") == middle
    assert not (tmp_path / "design" / "designs" / "spm" / "pin_order.cfg").exists()


def test_commit_sha_fetched_shallow_when_server_allows_reachable_sha(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    middle = git_daemon.spm.commits[1]
    staged = stage(f"{git_daemon.legacy_url_base}/spm-sha.git", middle, tmp_path / "design")
    assert (staged.commit, staged.shallow) == (middle, True)


def test_commit_sha_falls_back_to_full_fetch_when_server_refuses(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    # The v0-only daemon without allow*SHA1InWant refuses a commit that is not a ref tip.
    middle = git_daemon.spm.commits[1]
    stages: list[str] = []
    dest = tmp_path / "design"
    staged = stage(
        f"{git_daemon.legacy_url_base}/spm.git",
        middle.upper(),
        dest,
        progress=lambda text, _fraction: stages.append(text),
    )
    assert (staged.commit, staged.shallow) == (middle, False)
    assert head_of(dest) == middle
    assert "fetching full history" in stages
    assert not (dest / ".git" / "shallow").exists()


def test_tip_commit_fetched_shallow_even_from_v0_server(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    staged = stage(f"{git_daemon.legacy_url_base}/spm.git", git_daemon.spm.head, tmp_path / "d")
    assert (staged.commit, staged.shallow) == (git_daemon.spm.head, True)


def test_abbreviated_commit_is_resolved_to_full_sha(git_daemon: GitServer, tmp_path: Path) -> None:
    middle = git_daemon.spm.commits[1]
    staged = stage(f"{git_daemon.url_base}/spm.git", middle[:10], tmp_path / "design")
    assert staged.commit == middle
    assert staged.ref == middle[:10]


def test_local_repository_when_file_urls_allowed(git_daemon: GitServer, tmp_path: Path) -> None:
    url = check_repo_url(str(git_daemon.spm.path), allow_file=True)
    staged = stage_repository(url, "v1", tmp_path / "design")
    assert staged.commit == git_daemon.spm.commits[0]


def test_progress_reports_stages_and_fractions(git_daemon: GitServer, tmp_path: Path) -> None:
    calls: list[tuple[str, float | None]] = []
    stage(
        f"{git_daemon.url_base}/spm.git",
        "main",
        tmp_path / "design",
        progress=lambda text, fraction: calls.append((text, fraction)),
    )
    texts = [text for text, _ in calls]
    assert texts[0] == "connecting"
    assert "receiving objects" in texts
    assert "checking out" in texts
    assert calls[-1] == ("done", 1.0)
    assert all(f is None or 0.0 <= f <= 1.0 for _, f in calls)


def test_a_failing_progress_callback_does_not_break_staging(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    def broken(_text: str, _fraction: float | None) -> None:
        raise RuntimeError("ui went away")

    staged = stage(f"{git_daemon.url_base}/spm.git", "main", tmp_path / "d", progress=broken)
    assert staged.commit == git_daemon.spm.head


# --- clear errors, nothing left behind ------------------------------------------------------------


@pytest.mark.parametrize(
    ("repo", "ref", "message"),
    [
        ("spm.git", "no-such-branch", "branch or tag 'no-such-branch' not found in git://"),
        ("spm.git", "1" * 40, "commit '1111111111111111111111111111111111111111' not found"),
        ("spm.git", "abcdef12", "commit 'abcdef12' not found"),
        ("no-such-repo.git", "main", "repository git://127.0.0.1:"),
    ],
)
def test_missing_ref_or_repo(
    git_daemon: GitServer, tmp_path: Path, repo: str, ref: str, message: str
) -> None:
    dest = tmp_path / "design"
    with pytest.raises(StagingError) as error:
        stage(f"{git_daemon.url_base}/{repo}", ref, dest)
    assert message in str(error.value)
    assert_nothing_left(dest)


@pytest.mark.parametrize(
    "template",
    [
        "git://127.0.0.1:{port}/spm.git",
        "ssh://git@127.0.0.1:{port}/spm.git",
        "https://127.0.0.1:{port}/spm.git",
    ],
)
def test_a_closed_port_gives_the_one_unreachable_message(tmp_path: Path, template: str) -> None:
    # Refused, timed out, no route...: one text, no port, no reason (no port scanning).
    if template.startswith("ssh") and shutil.which("ssh") is None:
        pytest.skip("ssh client not installed")
    dest = tmp_path / "design"
    with closed_port() as port, pytest.raises(StagingError) as error:
        stage(template.format(port=port), "main", dest)
    assert str(error.value) == unreachable_message("127.0.0.1")
    assert_nothing_left(dest)


def test_unknown_host_name_gets_the_same_message_whether_git_runs_or_not(tmp_path: Path) -> None:
    dest = tmp_path / "design"
    url = "git://no-such-host.invalid/spm.git"  # RFC 2606: resolves nowhere
    with pytest.raises(StagingError) as refused:  # looked up before git runs
        stage(url, "main", dest, timeout_s=30)
    with pytest.raises(StagingError) as failed:  # allowed unresolved: git's own lookup fails
        stage(url, "main", dest, timeout_s=30, allowed_private=["no-such-host.invalid"])
    assert str(refused.value) == str(failed.value) == unreachable_message("no-such-host.invalid")
    assert_nothing_left(dest)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_refused_before_git_runs_unless_allowed(
    git_daemon: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    port = git_daemon.url_base.rsplit(":", 1)[1]
    url = f"git://{host}:{port}/spm.git"
    dest = tmp_path / "design"
    real_execute = git.Git.execute
    started: list[object] = []

    def spy(self: git.Git, command: object, *args: object, **kwargs: object) -> object:
        started.append(command)
        return real_execute(self, command, *args, **kwargs)

    monkeypatch.setattr(git.Git, "execute", spy)
    with pytest.raises(StagingError) as error:
        stage(url, "main", dest, allowed_private=[])
    assert str(error.value) == unreachable_message(host)
    assert started == []  # no git process, not even git init
    assert_nothing_left(dest)
    staged = stage(url, "main", dest, allowed_private=[host])  # the same daemon, allowed
    assert staged.commit == git_daemon.spm.head


# --- redirects are not followed ------------------------------------------------------------------


def test_every_git_command_is_told_not_to_follow_redirects(
    git_daemon: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_execute = git.Git.execute
    argvs: list[list[str]] = []

    def spy(self: git.Git, command: list[str], *args: object, **kwargs: object) -> object:
        argvs.append(list(command))
        return real_execute(self, command, *args, **kwargs)

    monkeypatch.setattr(git.Git, "execute", spy)
    stage(f"{git_daemon.url_base}/spm.git", "main", tmp_path / "design")
    assert any("fetch" in argv for argv in argvs)
    for argv in argvs:
        options = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "-c"]
        assert "http.followRedirects=false" in options, argv


@contextmanager
def redirecting_https_server(tmp_path: Path, location: str) -> Iterator[tuple[int, Path]]:
    """An https server on loopback answering every request with a 301 to ``location``;
    yields its port and the certificate to trust."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip

    class Redirect(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(301)
            self.send_header("Location", location + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], cert
    finally:
        server.shutdown()
        server.server_close()


def test_a_redirect_to_an_internal_address_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The "internal service" the redirect points at: it records whether anyone connected.
    internal = socket.socket()
    internal.bind(("127.0.0.1", 0))
    internal.listen(4)
    internal.settimeout(0.5)
    target = f"https://127.0.0.1:{internal.getsockname()[1]}/internal"
    dest = tmp_path / "design"
    with internal, redirecting_https_server(tmp_path, target) as (port, cert):
        monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
        with pytest.raises(StagingError) as error:
            stage(f"https://127.0.0.1:{port}/spm.git", "main", dest, timeout_s=30)
        with pytest.raises(TimeoutError):
            internal.accept()  # git never went where the redirect pointed
    message = str(error.value)
    assert "answered with a redirect, which the portal does not follow" in message
    assert "internal" not in message
    assert_nothing_left(dest)


@pytest.mark.parametrize(
    "template",
    [
        "git://127.0.0.1:{port}/spm.git",
        "https://127.0.0.1:{port}/spm.git",
        "ssh://127.0.0.1:{port}/x",
    ],
)
def test_time_limit_kills_a_stalled_fetch(tmp_path: Path, template: str) -> None:
    if template.startswith("ssh") and shutil.which("ssh") is None:
        pytest.skip("ssh client not installed")
    dest = tmp_path / "design"
    with stalled_server() as port:
        started = time.monotonic()
        # The server never said a word (ssh may give up first: its ConnectTimeout also bounds
        # the banner exchange): the one unreachable message, not "did not finish".
        with pytest.raises(StagingError) as error:
            stage(template.format(port=port), "main", dest, timeout_s=1.5)
        assert str(error.value) == unreachable_message("127.0.0.1")
        elapsed = time.monotonic() - started
        assert processes_mentioning(f"127.0.0.1:{port}") == []
        assert processes_mentioning(f"-p {port} ") == []
    assert elapsed < 1.5 + 3
    assert_nothing_left(dest)


@pytest.fixture(scope="module")
def big_repos(git_daemon: GitServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """``random.git``: 3 MiB that does not compress; ``zeros.git``: 40 MiB that does."""
    root = tmp_path_factory.mktemp("big")
    (root / "random").mkdir()
    (root / "random" / "macro.gds").write_bytes(os.urandom(3 * 1024 * 1024))
    (root / "zeros").mkdir()
    (root / "zeros" / "fill.gds").write_bytes(bytes(40 * 1024 * 1024))
    git_daemon.add_repo("random.git", root / "random")
    git_daemon.add_repo("zeros.git", root / "zeros")
    return {name: f"{git_daemon.url_base}/{name}.git" for name in ("random", "zeros")}


def test_size_limit_stops_the_download(big_repos: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "design"
    with pytest.raises(StagingError, match="larger than the 1 MB limit"):
        stage(big_repos["random"], "main", dest, max_mb=1)
    assert_nothing_left(dest)


def test_size_limit_checked_before_checkout_of_compressible_content(
    big_repos: dict[str, str], tmp_path: Path
) -> None:
    # The pack is tiny, so only the tree's blob sizes reveal the 40 MiB checkout.
    dest = tmp_path / "design"
    with pytest.raises(StagingError, match=r"larger than the 5 MB limit \(at least 40\.\d MB\)"):
        stage(big_repos["zeros"], "main", dest, max_mb=5)
    assert_nothing_left(dest)


def test_size_within_limit_is_staged(big_repos: dict[str, str], tmp_path: Path) -> None:
    staged = stage(big_repos["random"], "main", tmp_path / "design", max_mb=10)
    assert staged.size_bytes > 3 * 1024 * 1024


def test_symlink_out_of_the_repository_is_refused(git_daemon: GitServer, tmp_path: Path) -> None:
    src = write_spm_design(tmp_path / "src")
    (src / "designs" / "spm" / "leak.v").symlink_to("/etc/passwd")
    git_daemon.add_repo("leaky.git", src)
    dest = tmp_path / "design"
    with pytest.raises(StagingError, match="symbolic link that points outside"):
        stage(f"{git_daemon.url_base}/leaky.git", "main", dest)
    assert_nothing_left(dest)


def test_symlink_inside_the_repository_is_kept(git_daemon: GitServer, tmp_path: Path) -> None:
    src = write_spm_design(tmp_path / "src")
    (src / "designs" / "spm" / "rtl").symlink_to("src")
    git_daemon.add_repo("linked.git", src)
    dest = tmp_path / "design"
    stage(f"{git_daemon.url_base}/linked.git", "main", dest)
    assert (dest / "designs" / "spm" / "rtl" / "spm.v").is_file()


def test_existing_destination_is_refused_and_left_alone(
    git_daemon: GitServer, tmp_path: Path
) -> None:
    dest = tmp_path / "design"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(StagingError, match="already exists"):
        stage(f"{git_daemon.url_base}/spm.git", "main", dest)
    assert (dest / "keep.txt").read_text() == "mine"


# --- bad input never reaches git ----------------------------------------------------------------


@pytest.fixture
def no_git_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any git process is started through GitPython."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a git process was started: {args!r}")

    monkeypatch.setattr(git.Git, "execute", refuse)


def bad_urls(tmp: Path) -> list[str]:
    pwned = tmp / "pwned"
    return [
        f"--upload-pack=touch {pwned}",
        f"--upload-pack=touch%20{pwned}",
        "-u",
        f"-u touch {pwned}",
        f"ext::sh -c touch% {pwned}",
        f"ext::sh%20-c%20touch%20{pwned}",
        "fd::0",
        f"ssh://-oProxyCommand=touch%20{pwned}/x",
        "https://user:s3cret@127.0.0.1/spm.git",
        "https://s3cret@127.0.0.1/spm.git",
        "http://127.0.0.1/spm.git",
        "file:///srv/git/spm.git",
        "git://127.0.0.1/spm.git\n--upload-pack=x",
        "git://127.0.0.1/sp m.git",
        "",
    ]


def test_every_bad_url_is_refused_with_nothing_cloned(tmp_path: Path, no_git_process: None) -> None:
    for url in bad_urls(tmp_path):
        with pytest.raises(GitURLError):
            check_repo_url(url)
        # A RepoURL made by hand (skipping check_repo_url) is re-checked before git runs.
        forged = RepoURL("git", "127.0.0.1", None, "/x", None, url, url)
        dest = tmp_path / "design"
        with pytest.raises(StagingError) as error:
            stage_repository(forged, "main", dest)
        assert "s3cret" not in str(error.value)
        assert_nothing_left(dest)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "ref",
    ["--upload-pack=touch {tmp}/pwned", "-u", "main\n", "a..b", "main@{1}", "f" * 41, "x:y", ""],
)
def test_every_bad_ref_is_refused_with_nothing_cloned(
    git_daemon: GitServer, tmp_path: Path, ref: str, no_git_process: None
) -> None:
    dest = tmp_path / "design"
    with pytest.raises(StagingError):
        stage(f"{git_daemon.url_base}/spm.git", ref.replace("{tmp}", str(tmp_path)), dest)
    assert_nothing_left(dest)
    assert not (tmp_path / "pwned").exists()


def test_a_plain_string_url_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        stage_repository("git://127.0.0.1/spm.git", "main", tmp_path / "d")  # type: ignore[arg-type]
    assert not (tmp_path / "d").exists()


# --- git's own environment cannot widen what staging does --------------------------------------


@pytest.mark.parametrize(
    ("rewrite_to", "transport"),
    [("file://{base}/", "file"), ("ext::sh -c touch% {tmp}/pwned% >&2% #", "ext")],
)
def test_only_the_urls_own_protocol_is_allowed(
    git_daemon: GitServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rewrite_to: str,
    transport: str,
) -> None:
    # The service account's config rewrites the checked git:// URL to another transport
    # (url.<x>.insteadOf); protocol.allow=never + protocol.git.allow=always must stop it.
    target = rewrite_to.replace("{base}", str(git_daemon.base_path)).replace("{tmp}", str(tmp_path))
    config = tmp_path / "gitconfig"
    config.write_text(f'[url "{target}"]\n\tinsteadOf = git://rewritten.invalid/\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    dest = tmp_path / "design"
    allowed = [*LOOPBACK_ALLOWED, "rewritten.invalid"]  # let git itself see the URL
    with pytest.raises(StagingError, match=f"transport '{transport}' not allowed"):
        stage("git://rewritten.invalid/spm.git", "main", dest, allowed_private=allowed)
    assert_nothing_left(dest)
    assert not (tmp_path / "pwned").exists()


def test_inherited_git_dir_does_not_redirect_staging(
    git_daemon: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    before = sorted(p.name for p in (other / "objects").iterdir())
    monkeypatch.setenv("GIT_DIR", str(other))
    monkeypatch.setenv("GIT_WORK_TREE", str(tmp_path))
    staged = stage(f"{git_daemon.url_base}/spm.git", "main", tmp_path / "design")
    assert staged.commit == git_daemon.spm.head
    assert sorted(p.name for p in (other / "objects").iterdir()) == before
