"""A small Python client of the portal's REST API (``/api/v1``), used by ``portal --server``.

::

    from portal.apiclient import PortalClient, PortalAPIError, load_token

    client = PortalClient("https://portal.example.org", load_token())
    sub = client.submit("https://github.com/me/chip.git", design_path="designs/counter",
                        sweeps=["CLOCK_PERIOD=10,20"], resources={"time_minutes": 30})
    print(client.get(sub["uuid"])["state"])

Every failure raises :class:`PortalAPIError` with the API's stable ``code`` (``not_found``,
``validation_failed``, ...), its message and the HTTP status; a server that cannot be reached
gives code ``unreachable`` and status ``None``. Only :mod:`requests` and the standard library
are needed (no Flask), so it runs on a designer's laptop.

The token comes from ``PORTAL_TOKEN`` or ``token = "olp_..."`` in
``$XDG_CONFIG_HOME/openlane-portal/config.toml`` (``~/.config/...`` by default); see
:func:`load_token`.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

API_PREFIX = "/api/v1"
TOKEN_ENV = "PORTAL_TOKEN"  # noqa: S105  (the variable's name, not a secret)
SERVER_ENV = "PORTAL_SERVER"
CONFIG_NAME = "config.toml"


#: A dry run whose repository the portal is still fetching is asked again this often.
PREVIEW_POLLS, PREVIEW_POLL_SECONDS = 150, 2.0


class PortalAPIError(Exception):
    """A failed API call: ``code`` (stable, snake_case), ``message`` and HTTP ``status``."""

    def __init__(
        self, code: str, message: str, status: int | None = None, details: Any = None
    ) -> None:
        super().__init__(f"{message} ({code}{f', HTTP {status}' if status else ''})")
        self.code = code
        self.message = message
        self.status = status
        self.details = details


class PortalConfigError(ValueError):
    """No usable server URL or token."""


# --------------------------------------------------------------------------- configuration


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/openlane-portal/config.toml`` (``~/.config`` when unset)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "openlane-portal" / CONFIG_NAME


def load_token(env: Mapping[str, str] | None = None) -> str:
    """The API token: ``PORTAL_TOKEN``, else ``token`` in the config file.

    Raises :class:`PortalConfigError` with what to do when there is none or the file is bad.
    A config file readable by others is used, with a warning on stderr.
    """
    env = os.environ if env is None else env
    token = (env.get(TOKEN_ENV) or "").strip()
    if token:
        return token
    path = config_path(env)
    how = (
        f'set {TOKEN_ENV}, or write token = "olp_..." into {path} (create a token on your '
        "account page or ask an admin: portal token create USERNAME --name NAME)"
    )
    try:
        text = path.read_text()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PortalConfigError(f"no API token: {how}") from None
    except OSError as exc:
        raise PortalConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PortalConfigError(f"{path} is not valid TOML: {exc}") from None
    token = data.get("token")
    if not isinstance(token, str) or not token.strip():
        raise PortalConfigError(f"{path} has no token: {how}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: {path} is readable by other users; chmod 600 it", file=sys.stderr)
    return token.strip()


# --------------------------------------------------------------------------- the client


class PortalClient:
    """The portal's REST API over HTTP(S), authenticated by a personal API token."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise PortalConfigError(
                f"the server must be an http:// or https:// URL, got {base_url!r}"
            )
        if base_url.endswith(API_PREFIX):
            base_url = base_url[: -len(API_PREFIX)]
        if not token:
            raise PortalConfigError("an API token is required")
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = "openlane-portal-client"

    # -- plumbing --------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/submissions``."""
        return f"{self.base_url}{API_PREFIX}{path}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request; raise :class:`PortalAPIError` unless it succeeded."""
        try:
            response = self.session.request(
                method,
                self.url(path),
                params={k: v for k, v in (params or {}).items() if v is not None},
                json=json,
                timeout=self.timeout,
                stream=stream,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise PortalAPIError(
                "unreachable", f"{self.base_url} did not answer within {self.timeout:g} s"
            ) from None
        except requests.RequestException as exc:
            raise PortalAPIError(
                "unreachable", f"cannot reach {self.base_url}: {_reason(exc)}"
            ) from None
        if response.status_code >= 300:
            raise error_from(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise PortalAPIError(
                "bad_response",
                f"{self.base_url} answered {path} with something that is not JSON",
                response.status_code,
            ) from None

    # -- endpoints -------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        """The token's user and the token (``{"user": {...}, "token": {...}}``)."""
        return self._json("GET", "/me")

    def submit(
        self,
        repo_url: str,
        *,
        ref: str = "main",
        design_path: str = "",
        flow: str = "openlane1",
        params: Mapping[str, Any] | None = None,
        sweep: Mapping[str, Any] | None = None,
        sweeps: Sequence[str] = (),
        resources: Mapping[str, Any] | None = None,
        name: str = "",
        notify: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Submit a design; return the submission (with ``dry_run``: the script and points)."""
        body: dict[str, Any] = {
            "repo_url": repo_url,
            "ref": ref,
            "design_path": design_path,
            "flow": flow,
            "params": dict(params or {}),
            "sweeps": list(sweeps),
            "resources": dict(resources or {}),
            "name": name,
            "notify": notify,
            "dry_run": dry_run,
        }
        if sweep is not None:
            body["sweep"] = dict(sweep)
        for _attempt in range(PREVIEW_POLLS):
            try:
                data = self._json("POST", "/submissions", json=body)
            except PortalAPIError as exc:
                if exc.code != "repository_fetching":
                    raise
                time.sleep(PREVIEW_POLL_SECONDS)  # the portal clones off its request thread
                continue
            return data if dry_run else data["submission"]
        raise PortalAPIError("repository_fetching", "the repository is still being fetched")

    def list(
        self,
        *,
        state: str | Sequence[str] | None = None,
        mine: bool = False,
        flow: str | None = None,
        q: str | None = None,
        uuid: str | None = None,
        page: int = 1,
        per_page: int = 20,
    ) -> dict[str, Any]:
        """One page of submissions: ``{"items", "page", "per_page", "total"}``."""
        if state is not None and not isinstance(state, str):
            state = ",".join(state)
        params = {
            "state": state,
            "mine": "true" if mine else None,
            "flow": flow,
            "q": q,
            "uuid": uuid,
            "page": page,
            "per_page": per_page,
        }
        return self._json("GET", "/submissions", params=params)

    def iter_submissions(self, limit: int | None = None, **filters: Any) -> Iterator[dict]:
        """Every submission matching ``filters`` (newest first), page after page."""
        page, seen = 1, 0
        while True:
            data = self.list(page=page, per_page=100, **filters)
            for item in data["items"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield item
            if page * data["per_page"] >= data["total"] or not data["items"]:
                return
            page += 1

    def get(self, uuid: str) -> dict[str, Any]:
        """One submission."""
        return self._json("GET", f"/submissions/{_seg(uuid)}")["submission"]

    def tasks(self, uuid: str) -> list[dict[str, Any]]:
        """All of a submission's tasks in index order (every page)."""
        tasks: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._json("GET", f"/submissions/{_seg(uuid)}/tasks", params={"page": page})
            tasks.extend(data["items"])
            if len(tasks) >= data["total"] or not data["items"]:
                return tasks
            page += 1

    def results(self, uuid: str, objectives: str | None = None) -> dict[str, Any]:
        """Design features per task, the Pareto front and the best task per objective."""
        return self._json(
            "GET", f"/submissions/{_seg(uuid)}/results", params={"objectives": objectives}
        )

    def cancel(self, uuid: str, tasks: Sequence[int] | None = None) -> dict[str, Any]:
        """Cancel the submission, or only the task indices ``tasks``; return it."""
        body = {} if tasks is None else {"tasks": list(tasks)}
        return self._json("POST", f"/submissions/{_seg(uuid)}/cancel", json=body)["submission"]

    def resubmit(self, uuid: str) -> dict[str, Any]:
        """Run the failed tasks again as ONE new array: ``{"submission", "resubmitted"}``."""
        return self._json("POST", f"/submissions/{_seg(uuid)}/resubmit", json={})

    def retry(self, uuid: str) -> dict[str, Any]:
        """Launch a SUBMIT_FAILED submission again (the same one, ONE array):
        ``{"submission"}``; 409 in any other state."""
        return self._json("POST", f"/submissions/{_seg(uuid)}/retry", json={})

    def export(self, uuid: str, dest: str | Path, run_dir: str | None = None) -> str:
        """Download the export bundle to ``dest``; return the folder to unpack it as.

        The file appears only once it is complete (written beside ``dest``, then renamed).
        """
        dest = Path(dest)
        response = self.request(
            "GET",
            f"/submissions/{_seg(uuid)}/export",
            params={"run_dir": run_dir},
            stream=True,
        )
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    handle.write(chunk)
            os.replace(tmp, dest)
        except (OSError, requests.RequestException) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise PortalAPIError("download_failed", f"export download failed: {exc}") from None
        finally:
            response.close()
        return response.headers.get("X-Unpack-Dir", "")


def _reason(exc: Exception) -> str:
    """The useful end of a requests error (``Connection refused``, not the retry chain)."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1).strip() if found else text[:300]


def _seg(text: str) -> str:
    return quote(text, safe="")


def error_from(response: requests.Response) -> PortalAPIError:
    """The :class:`PortalAPIError` of a failed answer (JSON error body or not)."""
    status = response.status_code
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return PortalAPIError(
            error["code"], str(error.get("message", "")), status, error.get("details")
        )
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return PortalAPIError("redirected", f"the server redirected to {where}", status)
    text = " ".join(response.text.split())[:200] if response.text else response.reason
    return PortalAPIError("http_error", f"HTTP {status}: {text}", status)
