"""Where a repository host is on the network: loopback, private, link-local... are refused.

No test here connects anywhere. Literal addresses need no lookup (the resolver is made to fail
the test if it is called for one); ``localhost`` comes from /etc/hosts; numeric spellings are
resolved with ``AI_NUMERICHOST`` (no DNS); every other name goes to a fake resolver.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from portal.submit import gitpolicy
from portal.submit.gitpolicy import (
    GitURLError,
    RepoURL,
    check_host_address,
    check_repo_url,
    unreachable_message,
)

GetAddrInfo = Callable[..., list[tuple]]
REAL_GETADDRINFO = socket.getaddrinfo


def use_resolver(monkeypatch: pytest.MonkeyPatch, resolver: GetAddrInfo) -> None:
    monkeypatch.setattr(gitpolicy.socket, "getaddrinfo", resolver)


def answers(*addresses: str) -> GetAddrInfo:
    """A resolver that gives ``addresses`` for any name."""

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, 0, 0, 0) if ":" in a else (a, 0),
            )
            for a in addresses
        ]

    return resolve


def no_such_name(host: str, *args: object, **kwargs: object) -> list[tuple]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def never_called(host: str, *args: object, **kwargs: object) -> list[tuple]:
    raise AssertionError(f"{host!r} was looked up")


@pytest.fixture
def no_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    use_resolver(monkeypatch, never_called)


def refused_with(url: RepoURL, allowed: list[str] | None = None) -> str:
    with pytest.raises(GitURLError) as error:
        check_host_address(url, allowed or [])
    return str(error.value)


# --- what the probe found, and its relatives ------------------------------------------------

INTERNAL = [
    # the probe (a path added where it had none: the policy wants one)
    "https://127.0.0.1:1/x.git",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/x.git",
    "git://127.0.0.1:1/x.git",
    "git://127.0.0.1:22/x.git",
    "git://127.0.0.1:6379/x.git",
    "git://127.0.0.1:65535/x.git",
    # the brief's extra cases
    "https://[fe80::1]/x.git",
    "git://10.0.0.1/x",
    "ssh://192.168.1.1/x",
    "https://100.64.0.1/x.git",  # shared address space (carrier-grade NAT)
    "https://0.0.0.0/x.git",
    # every address class, and IPv6 spellings of IPv4 ones
    "https://127.255.0.1/x.git",
    "https://172.16.0.1/x.git",
    "https://172.31.255.254/x.git",
    "https://192.168.0.1/x.git",
    "https://0.1.2.3/x.git",
    "https://198.18.0.1/x.git",
    "https://192.0.2.1/x.git",
    "https://224.0.0.1/x.git",
    "https://239.255.255.250/x.git",
    "https://240.0.0.1/x.git",
    "https://255.255.255.255/x.git",
    "https://[::]/x.git",
    "https://[fc00::1]/x.git",
    "https://[fd12:3456::1]/x.git",
    "https://[fec0::1]/x.git",
    "https://[ff02::1]/x.git",
    "https://[2001:db8::1]/x.git",
    "https://[::ffff:127.0.0.1]/x.git",  # IPv4-mapped
    "https://[::ffff:169.254.169.254]/x.git",
    "https://[::ffff:10.0.0.1]/x.git",
    "https://[::127.0.0.1]/x.git",  # IPv4-compatible (deprecated)
    "https://[2002:7f00:1::]/x.git",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::1]/x.git",  # 6to4 of 169.254.169.254
    "https://[64:ff9b::a9fe:a9fe]/x.git",  # NAT64 of 169.254.169.254
    "https://[64:ff9b::7f00:1]/x.git",  # NAT64 of 127.0.0.1
    "https://[64:ff9b:1::a00:1]/x.git",  # local-use NAT64 prefix
    "https://[2001::1]/x.git",  # Teredo
    "git@10.1.2.3:org/x.git",  # scp-like ssh
    "ssh://git@[fe80::1]:2222/x.git",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_without_a_lookup(url: str, no_lookups: None) -> None:
    repo = check_repo_url(url)  # the string policy alone lets them through
    message = refused_with(repo)
    assert message == unreachable_message(repo.host)
    if repo.port:  # one text whatever the port: nothing tells open ports from closed ones
        assert f":{repo.port}" not in message


def test_the_message_names_the_host_only() -> None:
    assert unreachable_message("10.0.0.1") == (
        "cannot reach the repository host 10.0.0.1 "
        "(unknown, unreachable, or not allowed by this site)"
    )
    assert unreachable_message("::1").startswith("cannot reach the repository host [::1] (")


def test_plain_http_to_a_mapped_loopback_is_refused_by_the_policy_first() -> None:
    with pytest.raises(GitURLError, match="plain http:// is not accepted"):
        check_repo_url("http://[::ffff:127.0.0.1]/")


def test_localhost_is_refused_through_its_addresses() -> None:
    # /etc/hosts, not DNS: localhost is 127.0.0.1 (and ::1).
    addresses = {info[4][0] for info in REAL_GETADDRINFO("localhost", None)}
    assert "127.0.0.1" in addresses or "::1" in addresses
    repo = check_repo_url("https://localhost/x.git")
    assert refused_with(repo) == unreachable_message("localhost")
    assert refused_with(check_repo_url("git@LocalHost:org/x.git")) == unreachable_message(
        "localhost"
    )


@pytest.mark.parametrize(
    ("resolved", "refused"),
    [
        (["10.0.0.5"], True),
        (["93.184.216.34", "10.0.0.5"], True),  # ANY bad address refuses the name
        (["2606:2800:220:1::1", "fe80::1%eth0"], True),
        (["169.254.169.254"], True),
        (["::ffff:192.168.1.1"], True),
        (["93.184.216.34"], False),
        (["93.184.216.34", "2606:2800:220:1::1"], False),
        (["64:ff9b::5db8:d822"], False),  # NAT64 (DNS64) of a public address
    ],
)
def test_every_resolved_address_is_checked(
    monkeypatch: pytest.MonkeyPatch, resolved: list[str], refused: bool
) -> None:
    use_resolver(monkeypatch, answers(*resolved))
    repo = check_repo_url("https://git.example.com/org/x.git")
    if refused:
        assert refused_with(repo) == unreachable_message("git.example.com")
    else:
        check_host_address(repo, [])


# --- numeric spellings of 127.0.0.1 -------------------------------------------------------

NUMERIC = [
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "0x7f.0.0.1",
    "127.0.1",
    "017700000001",
]


@pytest.mark.parametrize("host", NUMERIC)
def test_numeric_host_spellings_are_refused_by_the_policy(host: str) -> None:
    for url in (f"https://{host}/x.git", f"git://{host}:9418/x.git", f"git@{host}:org/x.git"):
        with pytest.raises(GitURLError, match="numeric host must be a plain dotted IPv4"):
            check_repo_url(url)


@pytest.mark.parametrize("host", NUMERIC)
def test_numeric_host_spellings_are_caught_by_resolution_too(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    # A RepoURL made by hand skips the policy; the C library reads these as 127.0.0.1.
    def numeric_only(name: str, port: object, *args: object, **kwargs: object) -> list[tuple]:
        kwargs["flags"] = socket.AI_NUMERICHOST  # never DNS
        return REAL_GETADDRINFO(name, port, *args, **kwargs)

    use_resolver(monkeypatch, numeric_only)
    url = f"https://{host}/x.git"
    assert refused_with(RepoURL("https", host, None, "/x.git", None, url, url)) == (
        unreachable_message(host)
    )


def test_canonical_dotted_quads_and_names_with_numbers_stay_valid() -> None:
    assert check_repo_url("https://93.184.216.34/x.git").host == "93.184.216.34"
    assert check_repo_url("https://1.example.org/x.git").host == "1.example.org"
    assert check_repo_url("https://git-2.example.org/x.git").host == "git-2.example.org"


# --- what passes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.216.34/x.git",
        "git://93.184.216.34:9418/x.git",
        "ssh://git@93.184.216.34/x.git",
        "https://[2606:4700:4700::1111]/x.git",
        "https://[64:ff9b::5db8:d822]/x.git",
        "https://[2002:5db8:d822::1]/x.git",  # 6to4 of a public address
    ],
)
def test_public_literal_addresses_pass_without_a_lookup(url: str, no_lookups: None) -> None:
    check_host_address(check_repo_url(url), [])


def test_file_urls_are_not_looked_up(no_lookups: None) -> None:
    check_host_address(check_repo_url("/srv/git/spm.git", allow_file=True), [])
    check_host_address(check_repo_url("file:///srv/git/spm.git", allow_file=True), [])


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("git://127.0.0.1:9418/spm.git", ["127.0.0.1", "localhost"]),
        ("https://localhost/spm.git", ["127.0.0.1", "localhost"]),
        ("https://LOCALHOST./spm.git", [" localhost. "]),
        ("https://[::1]/spm.git", ["::1"]),
        ("https://[::1]/spm.git", ["[::1]"]),
        ("git://10.20.30.40/spm.git", ["10.20.0.0/16"]),
        ("https://gitlab.corp.example/spm.git", ["gitlab.corp.example"]),
        ("https://gitlab.corp.example/spm.git", ["*.corp.example"]),
        ("git@gitlab.corp.example:org/spm.git", ["*.CORP.example"]),
    ],
)
def test_the_allow_list_lets_private_hosts_through(
    url: str, allowed: list[str], no_lookups: None
) -> None:
    check_host_address(check_repo_url(url), allowed)


def test_an_allowed_address_lets_a_name_resolving_to_it_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_resolver(monkeypatch, answers("10.1.2.3", "93.184.216.34"))
    repo = check_repo_url("https://gitlab.corp.example/spm.git")
    check_host_address(repo, ["10.1.0.0/16"])
    check_host_address(repo, ["10.1.2.3"])
    assert refused_with(repo, ["10.1.2.4"]) == unreachable_message("gitlab.corp.example")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("git://10.0.0.1/spm.git", ["127.0.0.1", "localhost"]),
        ("https://169.254.169.254/x", ["127.0.0.1", "localhost", "10.0.0.0/8"]),
        ("https://127.0.0.2/x", ["127.0.0.1"]),
        ("https://corp.example/x", ["*.corp.example"]),  # the suffix needs a label before it
        ("https://evilcorp.example/x", ["*.corp.example"]),
    ],
)
def test_the_allow_list_is_exact(
    monkeypatch: pytest.MonkeyPatch, url: str, allowed: list[str]
) -> None:
    use_resolver(monkeypatch, answers("10.9.9.9"))
    repo = check_repo_url(url)
    assert refused_with(repo, allowed) == unreachable_message(repo.host)


def test_a_single_name_setting_is_one_entry_not_letters(monkeypatch: pytest.MonkeyPatch) -> None:
    # PORTAL_GIT_ALLOWED_PRIVATE_HOSTS=gitlab.internal (not JSON) arrives as a string.
    use_resolver(monkeypatch, answers("10.0.0.7"))
    check_host_address(check_repo_url("https://gitlab.internal/x.git"), "gitlab.internal")
    with pytest.raises(GitURLError):
        check_host_address(check_repo_url("https://g/x.git"), "gitlab.internal")


# --- one answer for unknown, refused and slow -----------------------------------------------


@pytest.fixture
def slow_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A resolver that hangs until the test ends."""
    release = threading.Event()

    def hang(host: str, *args: object, **kwargs: object) -> list[tuple]:
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    use_resolver(monkeypatch, hang)
    yield release
    release.set()


def test_unknown_and_refused_hosts_get_the_same_message(monkeypatch: pytest.MonkeyPatch) -> None:
    repo = check_repo_url("https://repo.invalid/x.git")  # RFC 2606: resolves nowhere
    use_resolver(monkeypatch, no_such_name)
    unknown = refused_with(repo)
    use_resolver(monkeypatch, answers("169.254.169.254"))
    refused = refused_with(repo)
    use_resolver(monkeypatch, answers())  # resolves to nothing at all
    empty = refused_with(repo)
    assert unknown == refused == empty == unreachable_message("repo.invalid")


def test_a_slow_resolver_gives_the_same_answer_within_the_timeout(
    slow_resolver: threading.Event,
) -> None:
    repo = check_repo_url("https://repo.invalid/x.git")
    started = time.monotonic()
    with pytest.raises(GitURLError) as error:
        check_host_address(repo, [], timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert str(error.value) == unreachable_message("repo.invalid")


def test_hung_lookups_are_bounded_and_fail_closed(slow_resolver: threading.Event) -> None:
    repo = check_repo_url("https://repo.invalid/x.git")
    before = threading.active_count()
    for _ in range(12):  # more than the 8 lookup threads allowed at once
        with pytest.raises(GitURLError):
            check_host_address(repo, [], timeout_s=0.05)
    assert threading.active_count() - before <= 8
    slow_resolver.set()


# --- planning a submission (form, API and CLI) ----------------------------------------------


def plan(url: str, tmp_path: Path, **request: Any) -> str:
    """The SubmissionError text of planning ``url`` with an empty allow-list, or "planned"."""
    from portal.config import DEFAULTS
    from portal.models import User
    from portal.submit import SubmissionError, SubmissionRequest, plan_submission

    (tmp_path / "sky130A").mkdir(exist_ok=True)
    settings = {**DEFAULTS, "PDK_ROOT": str(tmp_path), "GIT_ALLOWED_PRIVATE_HOSTS": []}
    owner = User(username="ada", email="ada@example.org", slurm_account="openlane")
    try:
        plan_submission(SubmissionRequest(repo_url=url, **request), settings, None, owner=owner)
    except SubmissionError as exc:
        return str(exc)
    return "planned"


def test_planning_refuses_internal_hosts_with_the_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert plan("https://169.254.169.254/latest/meta-data", tmp_path) == unreachable_message(
        "169.254.169.254"
    )
    assert plan("git://127.0.0.1:1/x.git", tmp_path) == unreachable_message("127.0.0.1")
    assert plan("https://93.184.216.34/x.git", tmp_path) == "planned"
    use_resolver(monkeypatch, no_such_name)
    assert plan("https://repo.invalid/x.git", tmp_path) == unreachable_message("repo.invalid")
    # The designer's own mistakes are named first (the lookup is the last check).
    assert "NOT_A_PARAMETER" in plan(
        "https://repo.invalid/x.git", tmp_path, params={"NOT_A_PARAMETER": 1}
    )
