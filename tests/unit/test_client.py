"""portal.apiclient against a real HTTP server on loopback that answers with recorded API
responses (a test double of the portal): token lookup, the requests it sends, error mapping,
pagination, downloads that never leave partial files, unreachable and stalled servers."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from portal.apiclient import (
    PortalAPIError,
    PortalClient,
    PortalConfigError,
    config_path,
    load_token,
)
from portal.models import Submission, Task
from portal.results.table import results_table
from portal.serialize import results_from_dict
from tests.fixtures.gitdaemon import closed_port, stalled_server

TOKEN = "olp_test-token"


class Recorded:
    """Answers (method, path) with a recorded (status, headers, body); keeps every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[tuple[int, dict[str, str], bytes]]] = {}
        self.requests: list[dict] = []

    def answer(self, method, path, status=200, body=None, headers=None, raw=None):
        data = raw if raw is not None else json.dumps(body).encode()
        self.routes.setdefault((method, path), []).append((status, headers or {}, data))


@pytest.fixture
def server():
    recorded = Recorded()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def handle_one(self, method):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            recorded.requests.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": dict(self.headers),
                    "body": json.loads(body) if body else None,
                }
            )
            queue = recorded.routes.get((method, url.path))
            if not queue:
                status, headers, data = 404, {}, b'{"error": {"code": "not_found", "message": "?"}}'
            else:
                status, headers, data = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(status)
            headers = {"Content-Type": "application/json", **headers}
            headers.setdefault("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            if int(headers["Content-Length"]) != len(data):
                self.close_connection = True

        def do_GET(self):
            self.handle_one("GET")

        def do_POST(self):
            self.handle_one("POST")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    recorded.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield recorded
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- configuration


def test_token_from_environment_wins(tmp_path):
    env = {"PORTAL_TOKEN": " olp_env ", "XDG_CONFIG_HOME": str(tmp_path)}
    assert load_token(env) == "olp_env"


def test_config_path_follows_xdg_then_home(tmp_path):
    assert config_path({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path(
        "/x/cfg/openlane-portal/config.toml"
    )
    assert config_path({"HOME": "/h"}) == Path("/h/.config/openlane-portal/config.toml")


def test_token_from_config_file_and_clear_errors(tmp_path, capsys):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = tmp_path / "openlane-portal" / "config.toml"
    with pytest.raises(PortalConfigError) as missing:
        load_token(env)
    assert "no API token" in str(missing.value) and str(path) in str(missing.value)
    assert "PORTAL_TOKEN" in str(missing.value)
    path.parent.mkdir()
    path.write_text('token = "olp_from_file"\n')
    path.chmod(0o600)
    assert load_token(env) == "olp_from_file"
    assert capsys.readouterr().err == ""
    path.chmod(0o640)
    assert load_token(env) == "olp_from_file"
    assert "readable by other users" in capsys.readouterr().err
    for text, fragment in [
        ("token = 42\n", "has no token"),
        ('token = ""\n', "has no token"),
        ("[server]\nurl = 'x'\n", "has no token"),
        ("token = 'unclosed\n", "not valid TOML"),
    ]:
        path.write_text(text)
        with pytest.raises(PortalConfigError) as bad:
            load_token(env)
        assert fragment in str(bad.value)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("portal.example.org", "http:// or https://"), ("ftp://x", "http"), ("", "http")],
)
def test_server_url_must_be_http(url, fragment):
    with pytest.raises(PortalConfigError) as error:
        PortalClient(url, TOKEN)
    assert fragment in str(error.value)


def test_base_url_normalized_and_token_required():
    assert PortalClient("https://p.example/api/v1/", TOKEN).url("/me") == (
        "https://p.example/api/v1/me"
    )
    with pytest.raises(PortalConfigError):
        PortalClient("https://p.example", "")


# --------------------------------------------------------------------------- requests


def test_submit_sends_the_documented_body_with_the_token(server):
    server.answer("POST", "/api/v1/submissions", 201, {"submission": {"uuid": "u-1"}})
    client = PortalClient(server.url, TOKEN)
    sub = client.submit(
        "https://example.org/chip.git",
        design_path="designs/counter",
        params={"FP_CORE_UTIL": 40},
        sweeps=["CLOCK_PERIOD=10,20"],
        resources={"time_minutes": 10},
    )
    assert sub == {"uuid": "u-1"}
    sent = server.requests[-1]
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert sent["body"] == {
        "repo_url": "https://example.org/chip.git",
        "ref": "main",
        "design_path": "designs/counter",
        "flow": "openlane1",
        "params": {"FP_CORE_UTIL": 40},
        "sweeps": ["CLOCK_PERIOD=10,20"],
        "resources": {"time_minutes": 10},
        "name": "",
        "notify": True,
        "dry_run": False,
    }
    server.answer("POST", "/api/v1/submissions", 200, {"script": "#!/bin/bash", "tasks": 1})
    server.routes[("POST", "/api/v1/submissions")].pop(0)
    dry = client.submit("https://example.org/chip.git", sweep={"kind": "single"}, dry_run=True)
    assert dry == {"script": "#!/bin/bash", "tasks": 1}
    assert server.requests[-1]["body"]["sweep"] == {"kind": "single"}


def test_api_errors_keep_code_message_status_and_details(server):
    server.answer(
        "POST",
        "/api/v1/submissions",
        422,
        {"error": {"code": "validation_failed", "message": "cpus must be positive", "details": 1}},
    )
    with pytest.raises(PortalAPIError) as error:
        PortalClient(server.url, TOKEN).submit("https://example.org/chip.git")
    assert (error.value.code, error.value.message, error.value.status, error.value.details) == (
        "validation_failed",
        "cpus must be positive",
        422,
        1,
    )


def test_non_json_failures_and_redirects(server):
    server.answer(
        "GET",
        "/api/v1/me",
        502,
        raw=b"<html><h1>502 Bad Gateway</h1></html>",
        headers={"Content-Type": "text/html"},
    )
    client = PortalClient(server.url, TOKEN)
    with pytest.raises(PortalAPIError) as error:
        client.me()
    assert error.value.code == "http_error" and error.value.status == 502
    assert "Bad Gateway" in error.value.message
    server.routes.clear()
    server.answer("GET", "/api/v1/me", 302, raw=b"", headers={"Location": "/auth/login"})
    with pytest.raises(PortalAPIError) as moved:
        client.me()
    assert moved.value.code == "redirected" and "/auth/login" in moved.value.message
    server.routes.clear()
    server.answer("GET", "/api/v1/me", 200, raw=b"not json", headers={"Content-Type": "text/plain"})
    with pytest.raises(PortalAPIError) as garbled:
        client.me()
    assert garbled.value.code == "bad_response"


def test_tasks_follow_every_page_and_list_filters(server):
    path = "/api/v1/submissions/abc/tasks"
    server.answer("GET", path, body={"items": [{"index": 0}, {"index": 1}], "total": 3})
    server.answer("GET", path, body={"items": [{"index": 2}], "total": 3})
    tasks = PortalClient(server.url, TOKEN).tasks("abc")
    assert [t["index"] for t in tasks] == [0, 1, 2]
    assert [r["query"]["page"] for r in server.requests] == [["1"], ["2"]]
    server.answer(
        "GET", "/api/v1/submissions", body={"items": [], "page": 1, "per_page": 20, "total": 0}
    )
    PortalClient(server.url, TOKEN).list(state=["QUEUED", "RUNNING"], mine=True, q="a b")
    assert server.requests[-1]["query"] == {
        "state": ["QUEUED,RUNNING"],
        "mine": ["true"],
        "q": ["a b"],
        "page": ["1"],
        "per_page": ["20"],
    }


def test_path_segments_are_quoted(server):
    server.answer("GET", "/api/v1/submissions/a%2Fb%3Fc", body={"submission": {"uuid": "x"}})
    assert PortalClient(server.url, TOKEN).get("a/b?c") == {"uuid": "x"}


def test_export_writes_the_file_only_when_complete(server, tmp_path):
    data = os.urandom(200_000)
    server.answer(
        "GET",
        "/api/v1/submissions/abc/export",
        raw=data,
        headers={"Content-Type": "application/gzip", "X-Unpack-Dir": "/runs/abc"},
    )
    dest = tmp_path / "out" / "bundle.tar.gz"
    assert PortalClient(server.url, TOKEN).export("abc", dest, run_dir="/runs/abc") == "/runs/abc"
    assert dest.read_bytes() == data
    assert server.requests[-1]["query"] == {"run_dir": ["/runs/abc"]}
    server.routes.clear()
    server.answer(  # the connection drops half way
        "GET",
        "/api/v1/submissions/cut/export",
        raw=data[:1000],
        headers={"Content-Type": "application/gzip", "Content-Length": str(len(data))},
    )
    broken = tmp_path / "broken.tar.gz"
    with pytest.raises(PortalAPIError) as error:
        PortalClient(server.url, TOKEN, timeout=5).export("cut", broken)
    assert error.value.code == "download_failed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing partial left
    server.routes.clear()
    with pytest.raises(PortalAPIError) as missing:
        PortalClient(server.url, TOKEN).export("gone", tmp_path / "gone.tar.gz")
    assert missing.value.code == "not_found" and not (tmp_path / "gone.tar.gz").exists()


def test_unreachable_and_stalled_servers():
    with closed_port() as port, pytest.raises(PortalAPIError) as refused:
        PortalClient(f"http://127.0.0.1:{port}", TOKEN).me()
    assert refused.value.code == "unreachable" and refused.value.status is None
    assert "Connection refused" in refused.value.message
    with stalled_server() as port, pytest.raises(PortalAPIError) as stalled:
        PortalClient(f"http://127.0.0.1:{port}", TOKEN, timeout=0.5).me()
    assert stalled.value.code == "unreachable" and "did not answer within 0.5 s" in str(
        stalled.value
    )


# --------------------------------------------------------------------------- shared output


def test_results_survive_the_json_round_trip():
    """The remote CLI rebuilds the results table from the API's JSON: same text, same CSV."""
    sub = Submission(uuid="u")
    sub.tasks = [
        Task(
            index=0,
            state="COMPLETED",
            params={"FP_CORE_UTIL": 50, "CLOCK_PERIOD": 10},
            metrics={"die_area_um2": 900.5, "setup_ws_ns": 1.25},
        ),
        Task(
            index=1,
            state="COMPLETED",
            params={"FP_CORE_UTIL": 30, "CLOCK_PERIOD": 20},
            metrics={"die_area_um2": 1200.0, "setup_ws_ns": 3.5},
        ),
        Task(
            index=2,
            state="FAILED",
            params={"FP_CORE_UTIL": 40, "CLOCK_PERIOD": 10},
            exit_code=3,
            metrics=None,
        ),
    ]
    table = results_table(sub, "area:min,setup_ws:max")
    again = results_from_dict(json.loads(json.dumps(table.to_dict())))
    assert again.to_text() == table.to_text()
    assert again.to_csv() == table.to_csv()
    assert again.to_csv().splitlines()[0].startswith("index,state,FP_CORE_UTIL,CLOCK_PERIOD")
    assert again.pareto == [0, 1]
