"""What a designer may ask the portal to clone: repository URL, ref and design folder.

Everything here except :func:`check_host_address` is pure string checking (no process, no
network), so a form can call it on every keystroke and the staging code can call it again before
it runs ``git``. :func:`check_host_address` resolves the host name (see below).

Decisions, in one place:

* Accepted: ``https://``, ``ssh://`` (``git+ssh://`` and ``ssh+git://`` are normalized to
  ``ssh://``), ``git://`` and the scp-like ``[user@]host:path`` form (an ssh URL, kept in
  its scp-like spelling because ``host:org/repo`` is relative to the login's home directory
  while ``ssh://host/org/repo`` is not).
* ``http://`` is always refused: it is where passwords and tokens travel in clear text, and a
  cluster admin wants https. (``git://`` carries no credentials at all; restrict it with the
  host allowlist if it is not wanted.)
* ``file://`` URLs and absolute local paths only with ``allow_file`` (an admin setting);
  local paths are normalized to ``file://`` URLs.
* Credentials in the URL are refused (``https://user:token@...`` and also ``https://token@...``
  since a token can be sent as the user name); only a plain ssh login name is kept. Error
  messages carry the :func:`redact`-ed form only, never the secret.
* Refused outright: a leading ``-`` (option injection such as ``--upload-pack=...``), the
  ``<transport>::<address>`` remote-helper syntax (``ext::``, ``fd::``...), whitespace and
  control characters, non-ASCII text (use punycode and %-escapes), query strings and fragments.
* Numeric hosts must be plain dotted-quad IPv4 (``127.0.0.1``): other spellings that the C
  library and curl read as an IPv4 address (``0x7f000001``, ``2130706433``, ``0177.0.0.1``,
  ``127.1``) are refused, so what is checked is what git connects to.
* Refs follow ``git check-ref-format --allow-onelevel`` plus: printable ASCII only, no leading
  ``-``, and an all-hex string longer than 40 digits is refused (it is a mistyped commit id).

Where the host is on the network (:func:`check_host_address`, called before every clone and when
a submission is planned): the host name is resolved (``socket.getaddrinfo``, every address) and
refused when ANY address is not a public unicast address: loopback, private (RFC 1918, IPv6
unique-local), shared (100.64/10), link-local (including 169.254.169.254, the cloud metadata
service), unspecified, multicast, reserved or documentation ranges, IPv6 site-local, and the
IPv4-mapped, 6to4 and NAT64 forms of any of these. The admin setting
``GIT_ALLOWED_PRIVATE_HOSTS`` names exceptions (an internal GitLab): host names, ``*.domain``
suffixes, addresses or networks. A name that does not resolve and a refused address get the same
message (:func:`unreachable_message`), which says nothing about which it was, nor about ports.
Resolution runs in a daemon thread and is given up after ``timeout_s`` (3 s by default): a slow
resolver cannot hold a request, and at most 8 lookups are in flight at once (beyond that a check
fails rather than queueing threads). The address is resolved again by git (no pinning), so a DNS
answer that changes between the check and the clone is not caught; redirects are not followed
(see :mod:`portal.submit.checkout`).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from portal.config import SettingsLike, as_settings

__all__ = [
    "GitPolicy",
    "GitURLError",
    "RepoURL",
    "check_design_path",
    "check_host_address",
    "check_ref",
    "check_repo_url",
    "is_commit_sha",
    "redact",
    "unreachable_message",
]

MAX_URL_LENGTH = 2048
MAX_REF_LENGTH = 255
MAX_DESIGN_PATH_LENGTH = 1024
DEFAULT_PORTS = {"https": 443, "ssh": 22, "git": 9418}

_SCHEME_ALIASES = {"git+ssh": "ssh", "ssh+git": "ssh"}
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<rest>.*)\Z")
_HELPER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
_SCP_RE = re.compile(r"^(?:(?P<user>[^@/:]*)@)?(?P<host>[^@/:\[\]]+|\[[^\]/]*\]):(?P<path>.*)\Z")
_USER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_LABEL_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\Z")
# RFC 3986 pchar plus "/" and "~"; "%" is checked separately (escapes must be well formed).
_PATH_RE = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@/%-]*\Z")
_PCT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*)@")
_SCP_SECRET_RE = re.compile(r"^[^/@\s:]*:[^/@\s]*@")
_HEX_RE = re.compile(r"^[0-9a-fA-F]+\Z")
_DESIGN_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_.+@=,-]+\Z")
# WHATWG URL rule: a host whose last label is a number is an IPv4 address (in any spelling).
_NUMERIC_LABEL_RE = re.compile(r"^(?:[0-9]+|0[xX][0-9A-Fa-f]*)\Z")
RESOLVE_TIMEOUT_S = 3.0
_RESOLVER_SLOTS = threading.BoundedSemaphore(8)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Not global, whatever the Python version's is_global says.
_NOT_PUBLIC: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv4Network("0.0.0.0/8"),
    ipaddress.IPv4Network("100.64.0.0/10"),
    ipaddress.IPv4Network("192.0.0.0/24"),
    ipaddress.IPv4Network("198.18.0.0/15"),
    ipaddress.IPv4Network("240.0.0.0/4"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("100::/64"),
    ipaddress.IPv6Network("2001::/23"),
    ipaddress.IPv6Network("2001:db8::/32"),
    ipaddress.IPv6Network("fc00::/7"),
    ipaddress.IPv6Network("fec0::/10"),
)
_CREDENTIALS_REFUSED = (
    "credentials in the repository URL are not allowed (the portal clones without passwords; "
    "use a public URL or one the cluster's deploy key can read)"
)


class GitURLError(ValueError):
    """A repository URL, ref or design path the portal refuses; the message is user-facing."""


@dataclass(frozen=True)
class RepoURL:
    """A checked, normalized repository URL.

    ``url`` is what git is given; ``redacted`` is what logs and messages show (identical
    today, since URLs with credentials are refused, but always use ``redacted`` for display).
    ``port`` is ``None`` when the scheme's default applies; ``host`` is empty for ``file``.
    """

    scheme: str
    host: str
    port: int | None
    path: str
    user: str | None
    url: str
    redacted: str

    @property
    def endpoint(self) -> str:
        """``host:port`` with the scheme's default port filled in (for messages)."""
        port = self.port or DEFAULT_PORTS.get(self.scheme)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}" if port else host

    def __str__(self) -> str:
        return self.redacted


def redact(text: str) -> str:
    """Replace credentials in every ``scheme://userinfo@`` of ``text`` with ``***``.

    A plain ssh login name (``ssh://git@host``) is kept; anything else before ``@`` is hidden,
    because a token can be sent as the user name of an https URL.
    """

    def hide(match: re.Match[str]) -> str:
        scheme, userinfo = match["scheme"], match["userinfo"]
        name = scheme[:-3].lower()
        if _SCHEME_ALIASES.get(name, name) == "ssh" and _USER_RE.match(userinfo):
            return match[0]
        return f"{scheme}***@"

    return _SCP_SECRET_RE.sub("***@", _USERINFO_RE.sub(hide, text))


def _shown(url: str, limit: int = 120) -> str:
    """The redacted URL as it may appear in an error message (quoted, control chars visible)."""
    text = redact(url)
    if len(text) > limit:
        text = text[:limit] + "..."
    return repr(text)


def check_repo_url(
    url: str, *, allow_file: bool = False, allowed_hosts: Sequence[str] = ()
) -> RepoURL:
    """Check a repository URL against the portal's policy; return it parsed and normalized.

    ``allowed_hosts`` (when non-empty) lists exact host names or ``*.example.org`` suffixes.
    Raises :class:`GitURLError` with a message that never contains credentials.
    """
    if not isinstance(url, str) or not url:
        raise GitURLError("repository URL is required")
    if _HELPER_RE.match(url):
        helper = url.split("::", 1)[0]
        raise GitURLError(f"remote-helper URLs ('{helper}::...') are not allowed: {_shown(url)}")
    _check_raw_text(url, what="repository URL", shown=_shown(url))
    if "://" in url:
        repo = _parse_scheme_url(url, allow_file=allow_file)
    elif url.startswith("/"):
        repo = _local_path(url, allow_file=allow_file)
    else:
        repo = _parse_scp_like(url)
    if repo.scheme != "file":
        _check_host_allowed(repo.host, allowed_hosts, url)
    return repo


def _check_raw_text(text: str, *, what: str, shown: str) -> None:
    """Refuse text git could take as an option, or that hides whitespace or odd characters."""
    if text.startswith("-"):
        raise GitURLError(f"{what} must not start with '-': {shown}")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in text):
        raise GitURLError(f"{what} must not contain whitespace or control characters: {shown}")
    if not text.isascii():
        raise GitURLError(f"{what} must be ASCII (use punycode host names and %-escapes): {shown}")
    if len(text) > MAX_URL_LENGTH:
        raise GitURLError(f"{what} is longer than {MAX_URL_LENGTH} characters")


def _parse_scheme_url(url: str, *, allow_file: bool) -> RepoURL:
    match = _URL_RE.match(url)
    if match is None:
        raise GitURLError(f"not a valid URL: {_shown(url)}")
    scheme = match["scheme"].lower()
    scheme = _SCHEME_ALIASES.get(scheme, scheme)
    authority, rest = match["authority"], match["rest"]
    if scheme == "http":
        raise GitURLError(f"plain http:// is not accepted, use https://: {_shown(url)}")
    if scheme == "file":
        return _file_url(authority, rest, url, allow_file=allow_file)
    if scheme not in DEFAULT_PORTS:
        raise GitURLError(
            f"unsupported URL scheme '{scheme}' (use https://, ssh:// or git://): {_shown(url)}"
        )
    if "?" in rest or "#" in rest:
        raise GitURLError(f"query strings and fragments are not allowed: {_shown(url)}")
    user, hostport = _split_userinfo(authority, scheme, url)
    host, port = _split_host_port(hostport, url)
    path = _check_url_path(rest, url)
    netloc = _format_host(host) + (f":{port}" if port else "")
    login = f"{user}@" if user else ""
    normalized = f"{scheme}://{login}{netloc}{path}"
    return RepoURL(scheme, host, port, path, user, normalized, redact(normalized))


def _split_userinfo(authority: str, scheme: str, url: str) -> tuple[str | None, str]:
    """Split ``user@host:port``; only ssh may carry a login name, and never a password."""
    if "@" not in authority:
        return None, authority
    userinfo, hostport = authority.rsplit("@", 1)
    if scheme != "ssh" or ":" in userinfo:
        raise GitURLError(f"{_CREDENTIALS_REFUSED}: {_shown(url)}")
    if not _USER_RE.match(userinfo):
        raise GitURLError(f"invalid ssh user name in URL: {_shown(url)}")
    return userinfo, hostport


def _split_host_port(hostport: str, url: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise GitURLError(f"unterminated IPv6 address in URL: {_shown(url)}")
        host, port_text = hostport[: end + 1], hostport[end + 1 :]
    else:
        colon = hostport.find(":")
        host, port_text = (hostport, "") if colon < 0 else (hostport[:colon], hostport[colon:])
    port = None
    if port_text:
        digits = port_text[1:]
        if not port_text.startswith(":") or not digits.isdigit() or not 0 < int(digits) < 65536:
            raise GitURLError(f"invalid port in URL: {_shown(url)}")
        port = int(digits)
    return _check_host(host, url), port


def _check_host(host: str, url: str) -> str:
    """Validate a host name or IP literal; return it lowercased (IPv6 without brackets)."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return str(ipaddress.IPv6Address(host[1:-1]))
        except ValueError:
            raise GitURLError(f"invalid IPv6 address in URL: {_shown(url)}") from None
    labels = host.rstrip(".").split(".") if host else []
    if not labels or len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise GitURLError(f"invalid host name in URL: {_shown(url)}")
    if _NUMERIC_LABEL_RE.match(labels[-1]):
        try:
            return str(ipaddress.IPv4Address(".".join(labels)))
        except ValueError:
            raise GitURLError(
                f"numeric host must be a plain dotted IPv4 address such as 192.0.2.1: {_shown(url)}"
            ) from None
    return host.rstrip(".").lower()


def _format_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _check_url_path(path: str, url: str) -> str:
    if not path or path == "/":
        raise GitURLError(f"repository path missing in URL: {_shown(url)}")
    if not _PATH_RE.match(path) or _PCT_RE.search(path):
        raise GitURLError(f"invalid characters in repository path: {_shown(url)}")
    decoded = unquote(path)
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        raise GitURLError(f"encoded control characters in repository path: {_shown(url)}")
    if any(part.startswith("-") for part in decoded.split("/")):
        raise GitURLError(f"repository path components must not start with '-': {_shown(url)}")
    return path


def _parse_scp_like(url: str) -> RepoURL:
    """``[user@]host:path`` (git's rule: a colon before any slash makes it an ssh address)."""
    colon, slash = url.find(":"), url.find("/")
    match = _SCP_RE.match(url)
    if colon < 0 or (0 <= slash < colon) or match is None:
        raise GitURLError(
            f"not a repository URL (expected https://, ssh://, git:// or user@host:path): "
            f"{_shown(url)}"
        )
    if 0 <= colon < url.find("@"):
        raise GitURLError(f"{_CREDENTIALS_REFUSED}: {_shown(url)}")
    user = match["user"]
    if user is not None and not _USER_RE.match(user):
        raise GitURLError(f"invalid ssh user name in URL: {_shown(url)}")
    host = _check_host(match["host"], url)
    path = match["path"]
    if not path or path.startswith(":"):
        raise GitURLError(f"repository path missing in URL: {_shown(url)}")
    _check_url_path(path if path.startswith("/") else "/" + path, url)
    login = f"{user}@" if user else ""
    normalized = f"{login}{_format_host(host)}:{path}"
    return RepoURL("ssh", host, None, path, user, normalized, normalized)


def _file_url(authority: str, rest: str, url: str, *, allow_file: bool) -> RepoURL:
    if authority not in ("", "localhost"):
        raise GitURLError(f"file:// URLs must name a local path: {_shown(url)}")
    return _local_path(unquote(rest), allow_file=allow_file, shown=_shown(url))


def _local_path(path: str, *, allow_file: bool, shown: str | None = None) -> RepoURL:
    shown = shown or _shown(path)
    if not allow_file:
        raise GitURLError(f"local repositories (file://) are not allowed on this portal: {shown}")
    if not path.startswith("/") or path.startswith("//"):
        raise GitURLError(f"local repository path must be absolute: {shown}")
    _check_raw_text(path, what="local repository path", shown=shown)
    normalized = posixpath.normpath(path)
    url = f"file://{normalized}"
    return RepoURL("file", "", None, normalized, None, url, url)


def _check_host_allowed(host: str, allowed_hosts: Sequence[str], url: str) -> None:
    if not allowed_hosts:
        return
    for pattern in (entry.strip().rstrip(".").lower() for entry in allowed_hosts):
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return
        elif host == pattern:
            return
    raise GitURLError(f"host '{host}' is not on this portal's list of Git hosts: {_shown(url)}")


def unreachable_message(host: str) -> str:
    """The one message for a host that does not resolve, is refused, or cannot be connected to.

    It must not tell these apart (or say anything about ports): otherwise the portal would be a
    probe of the networks it sits in.
    """
    return (
        f"cannot reach the repository host {_format_host(host)} "
        f"(unknown, unreachable, or not allowed by this site)"
    )


def check_host_address(
    url: RepoURL, allowed_private: Sequence[str] = (), *, timeout_s: float = RESOLVE_TIMEOUT_S
) -> None:
    """Refuse a URL whose host is, or resolves to, anything but public unicast addresses.

    ``allowed_private`` (the ``GIT_ALLOWED_PRIVATE_HOSTS`` setting) lists exceptions: a host
    name (``gitlab.internal``) or ``*.domain`` suffix lets the host through without resolving
    it; an address (``10.1.2.3``) or network (``10.1.0.0/16``) allows those addresses. ``file``
    URLs are not checked (``GIT_ALLOW_FILE_URLS`` governs them). Resolution is given up after
    ``timeout_s`` seconds. Raises :class:`GitURLError` with :func:`unreachable_message` for a
    name that does not resolve and for a refused address alike.
    """
    if url.scheme == "file":
        return
    host = url.host
    names, networks = _split_allowed(allowed_private)
    if _name_allowed(host, names):
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = _resolve(host, timeout_s)
    if not addresses:
        raise GitURLError(unreachable_message(host))
    for address in addresses:
        if not _is_public(address) and not any(
            address.version == net.version and address in net for net in networks
        ):
            raise GitURLError(unreachable_message(host))


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _split_allowed(entries: Sequence[str]) -> tuple[list[str], list[IPNetwork]]:
    """Host names and ``*.domain`` patterns (lowercased), and address networks."""
    names: list[str] = []
    networks: list[IPNetwork] = []
    if isinstance(entries, str):  # a single name from a hand-written setting
        entries = [entries]
    for raw in entries:
        entry = str(raw).strip().lower()
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        try:
            networks.append(ipaddress.ip_network(bare, strict=False))
        except ValueError:
            if entry.rstrip("."):
                names.append(entry.rstrip("."))
    return names, networks


def _name_allowed(host: str, names: Sequence[str]) -> bool:
    return any(host.endswith(name[1:]) if name.startswith("*.") else host == name for name in names)


def _resolve(host: str, timeout_s: float) -> list[IPAddress]:
    """Every address ``host`` resolves to; ``[]`` when it does not resolve within ``timeout_s``.

    ``getaddrinfo`` has no timeout of its own, so it runs in a daemon thread that is abandoned
    (it ends when the resolver gives up) if it takes too long; the semaphore bounds how many
    such threads can exist.
    """
    deadline = time.monotonic() + timeout_s
    if not _RESOLVER_SLOTS.acquire(timeout=max(0.0, timeout_s)):
        return []
    found: list[IPAddress] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            for _family, _type, _proto, _name, sockaddr in infos:
                found.append(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]))
        except Exception:  # any failure is "does not resolve" (refused)
            found.clear()
        finally:
            _RESOLVER_SLOTS.release()
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        return []
    return list(found)


def _is_public(address: IPAddress) -> bool:
    """True for a global unicast address (IPv4-mapped and NAT64 forms judged by their IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if address in _NAT64:
            return _is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not _is_public(address.sixtofour):
            return False
        if address.is_site_local:
            return False
    flags = (
        address.is_private,
        address.is_loopback,
        address.is_link_local,
        address.is_multicast,
        address.is_reserved,
        address.is_unspecified,
    )
    if any(flags) or not address.is_global:
        return False
    return not any(address.version == net.version and address in net for net in _NOT_PUBLIC)


def is_commit_sha(ref: str) -> bool:
    """True for a full 40-hex-digit commit id."""
    return len(ref) == 40 and bool(_HEX_RE.match(ref))


def check_ref(ref: str) -> str:
    """Check a branch, tag or commit id; return it (a full commit id lowercased).

    Branch and tag names follow ``git check-ref-format --allow-onelevel``; a commit id is 7 to
    40 hex digits (shorter all-hex strings are valid branch names, longer ones are refused).
    """
    if not isinstance(ref, str) or not ref:
        raise GitURLError("ref (branch, tag or commit) is required")
    shown = repr(ref[:80] + ("..." if len(ref) > 80 else ""))
    if ref.startswith("-"):
        raise GitURLError(f"ref must not start with '-': {shown}")
    if not ref.isascii() or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in ref):
        raise GitURLError(f"ref must be printable ASCII without control characters: {shown}")
    if len(ref) > MAX_REF_LENGTH:
        raise GitURLError(f"ref is longer than {MAX_REF_LENGTH} characters")
    if _HEX_RE.match(ref) and len(ref) > 40:
        raise GitURLError(f"commit id has more than 40 hex digits: {shown}")
    problem = _ref_format_problem(ref)
    if problem:
        raise GitURLError(f"invalid ref {shown}: {problem}")
    return ref.lower() if is_commit_sha(ref) else ref


def _ref_format_problem(ref: str) -> str | None:
    """The first ``git check-ref-format --allow-onelevel`` rule ``ref`` breaks, or None."""
    bad = sorted({ch for ch in ref if ch in " ~^:?*[\\"})
    checks: list[tuple[bool, str]] = [
        (bool(bad), f"must not contain {' '.join(repr(ch) for ch in bad)}"),
        (".." in ref, "must not contain '..'"),
        ("@{" in ref, "must not contain '@{'"),
        (ref == "@", "must not be '@'"),
        (ref.startswith("/") or ref.endswith("/"), "must not start or end with '/'"),
        ("//" in ref, "must not contain '//'"),
        (ref.endswith("."), "must not end with '.'"),
    ]
    for failed, message in checks:
        if failed:
            return message
    for component in ref.split("/"):
        if component.startswith("."):
            return "no path component may start with '.'"
        if component.endswith(".lock"):
            return "no path component may end with '.lock'"
    return None


def check_design_path(path: str) -> str:
    """Check the design folder; return it as a normalized relative POSIX path (``.`` = root).

    Components may use letters, digits and ``_ . + @ = , -``; no absolute paths, no ``..``,
    no ``.git``, no leading ``-``.
    """
    if not isinstance(path, str) or not path:
        raise GitURLError("design folder is required (use '.' for the repository root)")
    shown = repr(path[:120])
    if path.startswith("-"):
        raise GitURLError(f"design folder must not start with '-': {shown}")
    if path.startswith("/"):
        raise GitURLError(f"design folder must be relative to the repository: {shown}")
    if len(path) > MAX_DESIGN_PATH_LENGTH:
        raise GitURLError(f"design folder is longer than {MAX_DESIGN_PATH_LENGTH} characters")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    for part in parts:
        if part == "..":
            raise GitURLError(f"design folder must stay inside the repository: {shown}")
        if part.lower() == ".git":
            raise GitURLError(f"design folder must not be inside .git: {shown}")
        if not _DESIGN_COMPONENT_RE.match(part):
            raise GitURLError(
                f"design folder may only use letters, digits and _ . + @ = , -: {shown}"
            )
        if part.startswith("-"):
            raise GitURLError(f"design folder components must not start with '-': {shown}")
    return "/".join(parts) or "."


@dataclass(frozen=True)
class GitPolicy:
    """This site's Git rules, read once from its settings: which URLs may be cloned and which
    private hosts may be reached (``GIT_ALLOW_FILE_URLS``, ``GIT_ALLOWED_HOSTS``,
    ``GIT_ALLOWED_PRIVATE_HOSTS``)."""

    allow_file: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_private: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: SettingsLike) -> GitPolicy:
        settings = as_settings(settings)
        return cls(
            allow_file=settings.GIT_ALLOW_FILE_URLS,
            allowed_hosts=tuple(settings.GIT_ALLOWED_HOSTS),
            allowed_private=tuple(settings.GIT_ALLOWED_PRIVATE_HOSTS),
        )

    def check_url(self, url: str) -> RepoURL:
        """:func:`check_repo_url` under this site's rules (no network)."""
        return check_repo_url(url, allow_file=self.allow_file, allowed_hosts=self.allowed_hosts)

    def check_host(self, url: RepoURL, *, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
        """:func:`check_host_address` under this site's rules (resolves the host)."""
        check_host_address(url, self.allowed_private, timeout_s=timeout_s)
