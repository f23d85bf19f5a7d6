"""URL, ref and design-path policy: what the portal agrees to hand to git."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from portal.submit.gitpolicy import (
    GitPolicy,
    GitURLError,
    RepoURL,
    check_design_path,
    check_ref,
    check_repo_url,
    is_commit_sha,
    redact,
)

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("url", "scheme", "host", "port", "path", "normalized"),
    [
        (
            "https://github.com/efabless/spm.git",
            "https",
            "github.com",
            None,
            "/efabless/spm.git",
            "https://github.com/efabless/spm.git",
        ),
        (
            "HTTPS://GitLab.Example.ORG:8443/chips/spm",
            "https",
            "gitlab.example.org",
            8443,
            "/chips/spm",
            "https://gitlab.example.org:8443/chips/spm",
        ),
        (
            "ssh://git@git.example.org:2222/chips/spm.git",
            "ssh",
            "git.example.org",
            2222,
            "/chips/spm.git",
            "ssh://git@git.example.org:2222/chips/spm.git",
        ),
        (
            "git+ssh://git.example.org/~alice/spm.git",
            "ssh",
            "git.example.org",
            None,
            "/~alice/spm.git",
            "ssh://git.example.org/~alice/spm.git",
        ),
        (
            "git://127.0.0.1:9418/spm.git",
            "git",
            "127.0.0.1",
            9418,
            "/spm.git",
            "git://127.0.0.1:9418/spm.git",
        ),
        (
            "git@github.com:efabless/spm.git",
            "ssh",
            "github.com",
            None,
            "efabless/spm.git",
            "git@github.com:efabless/spm.git",
        ),
        ("Build-Host:repos/spm", "ssh", "build-host", None, "repos/spm", "build-host:repos/spm"),
        (
            "https://[::1]:8443/spm.git",
            "https",
            "::1",
            8443,
            "/spm.git",
            "https://[::1]:8443/spm.git",
        ),
    ],
)
def test_accepted_urls_are_parsed_and_normalized(
    url: str, scheme: str, host: str, port: int | None, path: str, normalized: str
) -> None:
    repo = check_repo_url(url)
    assert (repo.scheme, repo.host, repo.port, repo.path) == (scheme, host, port, path)
    assert repo.url == normalized
    assert repo.redacted == normalized
    assert str(repo) == repo.redacted


def test_scp_like_url_keeps_user_and_default_port() -> None:
    repo = check_repo_url("git@github.com:efabless/spm.git")
    assert repo.user == "git"
    assert repo.endpoint == "github.com:22"


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://h.example/x", "h.example:443"),
        ("git://h.example/x", "h.example:9418"),
        ("ssh://h.example:2222/x", "h.example:2222"),
        ("https://[::1]/x", "[::1]:443"),
    ],
)
def test_endpoint_names_host_and_port(url: str, endpoint: str) -> None:
    assert check_repo_url(url).endpoint == endpoint


BAD_URLS = [
    ("", "required"),
    ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
    ("-u", "must not start with '-'"),
    ("--config=core.sshCommand=touch /tmp/pwned", "must not start with '-'"),
    ("ext::sh -c touch% /tmp/pwned", "remote-helper"),
    ("fd::17", "remote-helper"),
    ("fd::0,1/repo", "remote-helper"),
    ("ext::git-remote-http", "remote-helper"),
    ("https://user:s3cret@github.com/org/repo.git", "credentials"),
    ("https://ghp_t0kenvalue@github.com/org/repo.git", "credentials"),
    ("ssh://git:s3cret@github.com/org/repo.git", "credentials"),
    ("git://user@host.example/repo.git", "credentials"),
    ("user:s3cret@host.example:org/repo.git", "credentials"),
    ("http://github.com/org/repo.git", "use https"),
    ("file:///srv/git/spm.git", "not allowed"),
    ("/srv/git/spm.git", "not allowed"),
    ("ftp://host.example/repo.git", "unsupported URL scheme"),
    ("javascript://host.example/%0aalert(1)", "unsupported URL scheme"),
    ("https://github.com/org/repo.git\n", "whitespace or control"),
    ("https://github.com/org/repo.git --upload-pack=x", "whitespace or control"),
    ("https://github.com/org/re po.git", "whitespace or control"),
    ("https://github.com/org/repo.git\x00", "whitespace or control"),
    ("https://github.com/org/repo.git\x1b[31m", "whitespace or control"),
    (" https://github.com/org/repo.git", "whitespace or control"),
    ("https://github.com/org/repo.git\t", "whitespace or control"),
    ("https://gíthub.com/org/repo.git", "ASCII"),
    ("https://github.com", "path missing"),
    ("https://github.com/", "path missing"),
    ("https://github.com/org/repo.git?x=1", "query strings"),
    ("https://github.com/org/repo.git#main", "query strings"),
    ("https://github.com:99999/org/repo.git", "invalid port"),
    ("https://github.com:/org/repo.git", "invalid port"),
    ("https://github.com:22a/org/repo.git", "invalid port"),
    ("ssh://-oProxyCommand=touch%20pwned/x", "invalid host"),
    ("ssh://-oProxyCommand=touch@host.example/x", "invalid ssh user"),
    ("ssh://host_-.example/x", "invalid host"),
    ("https://[not-ipv6]/x", "invalid IPv6"),
    ("https://[::1/x", "IPv6"),
    ("https://host.example/org/%0arepo.git", "encoded control"),
    ("https://host.example/org/%zzrepo.git", "invalid characters"),
    ("https://host.example/org\\repo.git", "invalid characters"),
    ("https://host.example/-org/repo.git", "must not start with '-'"),
    ("git@host.example:-oProxyCommand=x", "must not start with '-'"),
    ("git@host.example::x", "path missing"),
    ("git@host.example:", "path missing"),
    ("-oProxyCommand=x@host:repo", "must not start with '-'"),
    ("repo.git", "not a repository URL"),
    ("./repo.git", "not a repository URL"),
    ("org/repo:name", "not a repository URL"),
    ("https://" + "a" * 3000 + ".example/x", "longer than"),
]


@pytest.mark.parametrize(("url", "fragment"), BAD_URLS)
def test_refused_urls_have_clear_messages(url: str, fragment: str) -> None:
    with pytest.raises(GitURLError) as error:
        check_repo_url(url)
    assert fragment in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@github.com/org/repo.git",
        "https://s3cret@github.com/org/repo.git",
        "ssh://git:s3cret@github.com/org/repo.git",
        "user:s3cret@host.example:org/repo.git",
        "https://user:s3cret@github.com/org/re po.git",
        "https://user:s3cret@github.com/org/repo.git\n",
        "https://user:s3cret@github.com/org/repo.git?x",
        "http://user:s3cret@github.com/org/repo.git",
        "ftp://user:s3cret@github.com/org/repo.git",
        "https://user:s3cret@gíthub.com/org/repo.git",
        "https://user:s3cret@github.com:99999/org/repo.git",
    ],
)
def test_secrets_never_reach_error_messages(url: str) -> None:
    with pytest.raises(GitURLError) as error:
        check_repo_url(url)
    assert "s3cret" not in str(error.value)
    assert "***" in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok@h/x", "https://***@h/x"),
        ("https://tok@h/x", "https://***@h/x"),
        ("ssh://git@h/x", "ssh://git@h/x"),
        ("ssh://git:pw@h/x", "ssh://***@h/x"),
        (
            "fatal: unable to access 'https://u:p@h/x/': 403",
            "fatal: unable to access 'https://***@h/x/': 403",
        ),
        ("user:pw@h:org/x", "***@h:org/x"),
        ("git@h:org/x", "git@h:org/x"),
        ("https://h/x", "https://h/x"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_file_urls_only_when_allowed() -> None:
    repo = check_repo_url("file:///srv/git/../git/spm.git", allow_file=True)
    assert (repo.scheme, repo.host, repo.path) == ("file", "", "/srv/git/spm.git")
    assert repo.url == "file:///srv/git/spm.git"
    local = check_repo_url("/srv/git/spm.git", allow_file=True)
    assert local.url == "file:///srv/git/spm.git"
    assert check_repo_url("file://localhost/srv/spm.git", allow_file=True).path == "/srv/spm.git"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file://otherhost/srv/spm.git", "local path"),
        ("file://srv/spm.git", "local path"),
        ("file:///srv/%0a/spm.git", "whitespace or control"),
        ("//srv/spm.git", "absolute"),
    ],
)
def test_bad_file_urls_refused_even_when_allowed(url: str, fragment: str) -> None:
    with pytest.raises(GitURLError) as error:
        check_repo_url(url, allow_file=True)
    assert fragment in str(error.value)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://github.com/o/r", True),
        ("https://GITHUB.com/o/r", True),
        ("git@github.com:o/r", True),
        ("https://gitlab.example.org/o/r", True),
        ("ssh://git@deep.sub.example.org/o/r", True),
        ("https://example.org/o/r", False),
        ("https://evilexample.org/o/r", False),
        ("https://github.com.evil.net/o/r", False),
        ("https://gitlab.com/o/r", False),
        ("git://127.0.0.1/o/r", False),
    ],
)
def test_host_allowlist(url: str, allowed: bool) -> None:
    hosts = ["github.com", "*.Example.org."]
    if allowed:
        check_repo_url(url, allowed_hosts=hosts)
    else:
        with pytest.raises(GitURLError, match="not on this portal's list"):
            check_repo_url(url, allowed_hosts=hosts)


def test_allowlist_does_not_apply_to_allowed_local_repos() -> None:
    assert check_repo_url("/srv/spm.git", allow_file=True, allowed_hosts=["github.com"])


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("main", "main"),
        ("feature/new-floorplan", "feature/new-floorplan"),
        ("v1.0.2", "v1.0.2"),
        ("refs/tags/v1", "refs/tags/v1"),
        ("HEAD", "HEAD"),
        ("release@2024", "release@2024"),
        (SHA, SHA),
        (SHA.upper(), SHA),
        ("0123abc", "0123abc"),
        ("cafe", "cafe"),
        ("a" * 39, "a" * 39),
    ],
)
def test_good_refs(ref: str, expected: str) -> None:
    assert check_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "fragment"),
    [
        ("", "required"),
        ("-u", "must not start with '-'"),
        ("--upload-pack=touch /tmp/pwned", "must not start with '-'"),
        ("-", "must not start with '-'"),
        ("a..b", "'..'"),
        ("..", "'..'"),
        ("main@{1}", "'@{'"),
        ("@", "'@'"),
        ("main~1", "'~'"),
        ("main^", "'^'"),
        ("main:evil", "':'"),
        ("ma in", "' '"),
        ("main\n", "control"),
        ("main\x00", "control"),
        ("main\x7f", "control"),
        ("main\\x", "'\\\\'"),
        ("ma?n", "'?'"),
        ("ma*n", "'*'"),
        ("ma[n", "'['"),
        ("/main", "'/'"),
        ("main/", "'/'"),
        ("a//b", "'//'"),
        ("main.", "end with '.'"),
        (".hidden", "start with '.'"),
        ("a/.b", "start with '.'"),
        ("main.lock", ".lock"),
        ("a.lock/b", ".lock"),
        ("brånch", "ASCII"),
        ("a" * 41, "more than 40 hex"),
        (SHA + "0", "more than 40 hex"),
        ("x" * 300, "longer than"),
    ],
)
def test_bad_refs(ref: str, fragment: str) -> None:
    with pytest.raises(GitURLError) as error:
        check_ref(ref)
    assert fragment in str(error.value)


REF_CORPUS = [
    "main", "feature/x", "refs/heads/main", "HEAD", "a..b", "a/.b", ".a", "a.lock",
    "a/b.lock/c", "a/", "/a", "a//b", "a.", "@", "a@{b", "a@b", "a b", "a~1", "a^", "a:b",
    "a?", "a*", "a[", "a\\b", "foo.lock.x", "x/..", "@{", "a/./b", "+x", "#x", "a$b", ".",
    "a/.lock", "lock", "x.lock/", "a/b/c", "v1.0", "a\tb",
]  # fmt: skip


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
@pytest.mark.parametrize("ref", REF_CORPUS)
def test_ref_rules_agree_with_git_check_ref_format(ref: str) -> None:
    argv = ["git", "check-ref-format", "--allow-onelevel", ref]
    git_ok = subprocess.run(argv, capture_output=True, check=False).returncode == 0
    try:
        check_ref(ref)
        ours = True
    except GitURLError:
        ours = False
    assert ours == git_ok


def test_is_commit_sha() -> None:
    assert is_commit_sha(SHA)
    assert not is_commit_sha(SHA[:39])
    assert not is_commit_sha("g" * 40)
    assert not is_commit_sha(SHA[:39] + "\n")


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("designs/spm", "designs/spm"),
        ("./designs//spm/", "designs/spm"),
        (".", "."),
        ("spm", "spm"),
        ("designs/spm-v2.1_final", "designs/spm-v2.1_final"),
    ],
)
def test_good_design_paths(path: str, expected: str) -> None:
    assert check_design_path(path) == expected


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("", "required"),
        ("/etc", "relative"),
        ("../other", "inside the repository"),
        ("designs/../../x", "inside the repository"),
        ("-rf", "must not start with '-'"),
        ("designs/-x", "must not start with '-'"),
        (".git/hooks", ".git"),
        ("designs/.GIT", ".git"),
        ("designs/sp m", "letters, digits"),
        ("designs/spm\n", "letters, digits"),
        ("designs\\spm", "letters, digits"),
        ("designs/$(id)", "letters, digits"),
        ("x" * 2000, "longer than"),
    ],
)
def test_bad_design_paths(path: str, fragment: str) -> None:
    with pytest.raises(GitURLError) as error:
        check_design_path(path)
    assert fragment in str(error.value)


def test_repo_url_is_immutable() -> None:
    repo = check_repo_url("https://github.com/o/r")
    assert isinstance(repo, RepoURL)
    with pytest.raises(AttributeError):
        repo.url = "--upload-pack=x"  # type: ignore[misc]


def test_policy_from_settings_applies_the_sites_rules() -> None:
    policy = GitPolicy.from_settings(
        {"GIT_ALLOW_FILE_URLS": False, "GIT_ALLOWED_HOSTS": "*.example.org"}
    )
    assert policy.allowed_hosts == ("*.example.org",)  # one name, not its letters
    assert policy.check_url("https://git.example.org/a/b.git").host == "git.example.org"
    with pytest.raises(GitURLError, match="not on this portal's list"):
        policy.check_url("https://github.com/a/b.git")
    with pytest.raises(GitURLError, match="not allowed on this portal"):
        policy.check_url("file:///srv/repo.git")
    assert GitPolicy.from_settings({"GIT_ALLOW_FILE_URLS": True}).check_url("/srv/r").scheme == (
        "file"
    )
