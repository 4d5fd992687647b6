"""tools/smoke.py: its argument handling, and the requests it sends, against a recording HTTP server.

The end-to-end run against the real app under the local runner is tests/e2e/test_smoke_e2e.py.
"""

from __future__ import annotations

import io
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tools import smoke

CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.ContainerService/managedClusters/aks1"
)

Route = Callable[[dict[str, Any]], tuple[int, Any]]


class Recorder:
    """A loopback server answering from ``routes`` ("GET /api/health" -> handler), recording each request."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.requests: list[dict[str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                seen = {
                    "method": self.command,
                    "path": path,
                    "query": self.path.partition("?")[2],
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(raw) if raw else None,
                }
                recorder.requests.append(seen)
                route = recorder.routes.get(f"{self.command} {path}")
                status, body = route(seen) if route else (404, {"error": "no route"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def healthy_app(key: str = "k1") -> dict[str, Route]:
    """Answers as the app does: function key required, strict explain body."""

    def keyed(answer: Route) -> Route:
        def route(req: dict[str, Any]) -> tuple[int, Any]:
            if req["headers"].get("x-functions-key") != key:
                return 401, {}
            return answer(req)

        return route

    def explain(req: dict[str, Any]) -> tuple[int, Any]:
        if not (req["body"] or {}).get("clusterId"):
            return 400, {"error": "invalid-input", "field": "clusterId", "message": "clusterId: required"}
        return 200, {
            "clusterId": req["body"]["clusterId"],
            "decision": {"selected": True, "reason": "included-by-tag"},
            "extensionState": "Succeeded",
            "outcome": {"kind": "done", "why": "every link is satisfied"},
        }

    return {
        "GET /api/health": keyed(
            lambda _r: (
                200,
                {"status": "healthy", "configValid": True, "dependencies": [{"name": "arm", "ok": True}]},
            )
        ),
        "POST /api/explain": keyed(explain),
        "GET /api/report": keyed(
            lambda _r: (
                200,
                {"reportVersion": 1, "generatedAt": "2026-12-05T14:00:00Z", "totals": {"clusters": 3}},
            )
        ),
    }


@pytest.fixture
def server() -> Iterator[Callable[[dict[str, Route]], Recorder]]:
    started: list[Recorder] = []

    def start(routes: dict[str, Route]) -> Recorder:
        started.append(Recorder(routes))
        return started[-1]

    yield start
    for recorder in started:
        recorder.close()


def run(argv: list[str], **kwargs: Any) -> tuple[int, str]:
    out = io.StringIO()
    code = smoke.main(argv, environ=kwargs.pop("environ", {}), out=out, sleep=lambda _s: None, **kwargs)
    return code, out.getvalue()


def test_every_check_passes_against_a_healthy_app(server: Callable[[dict[str, Route]], Recorder]) -> None:
    app = server(healthy_app())
    code, out = run(["--url", app.url, "--key", "k1", "--cluster-id", CLUSTER, "--report"])
    assert code == 0, out
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "PASS health",
        "PASS keys-enforced",
        "PASS explain-rejects-bad-input",
        "PASS explain",
        "PASS report",
        "smoke",
    ]
    assert "a reconcile would: done" in out and "5 passed, 0 failed" in out
    # what it sent: reads only, the key on every request but the one that checks keys are enforced
    sent = [(r["method"], r["path"], r["body"], "x-functions-key" in r["headers"]) for r in app.requests]
    assert sent == [
        ("GET", "/api/health", None, True),
        ("GET", "/api/health", None, False),
        ("POST", "/api/explain", {}, True),
        ("POST", "/api/explain", {"clusterId": CLUSTER}, True),
        ("GET", "/api/report", None, True),
    ]
    assert app.requests[-1]["query"] == "format=json"
    assert all("authorization" not in r["headers"] for r in app.requests)


def test_the_key_comes_from_the_environment_and_the_token_is_sent_as_bearer(
    server: Callable[[dict[str, Route]], Recorder],
) -> None:
    app = server(healthy_app())
    code, out = run(["--url", app.url], environ={"REMEDIATOR_FUNCTION_KEY": "k1", "REMEDIATOR_TOKEN": "t0k"})
    assert code == 0, out
    assert "3 passed" in out
    assert {r["headers"].get("authorization") for r in app.requests} == {"Bearer t0k"}


def test_an_app_that_answers_without_a_key_fails_keys_enforced(
    server: Callable[[dict[str, Route]], Recorder],
) -> None:
    routes = healthy_app()
    routes["GET /api/health"] = lambda _r: (200, {"status": "healthy", "dependencies": []})
    app = server(routes)
    code, out = run(["--url", app.url, "--key", "k1"])
    assert code == 1
    assert "FAIL keys-enforced: GET /api/health without a function key: 200, expected 401" in out
    assert out.splitlines()[-1] == "smoke: 2 passed, 1 failed (keys-enforced)"


def test_health_is_retried_while_the_app_starts(server: Callable[[dict[str, Route]], Recorder]) -> None:
    answers = iter([(503, {"status": "unhealthy"}), (503, {"status": "unhealthy"})])
    routes = healthy_app()
    healthy = routes["GET /api/health"]
    routes["GET /api/health"] = lambda req: next(answers, None) or healthy(req)
    app = server(routes)
    code, out = run(["--url", app.url, "--key", "k1", "--wait", "30"])
    assert code == 0, out
    assert (
        sum(1 for r in app.requests if r["path"] == "/api/health" and "x-functions-key" in r["headers"]) == 3
    )


def test_an_unhealthy_app_fails_after_the_wait(server: Callable[[dict[str, Route]], Recorder]) -> None:
    routes = healthy_app()
    routes["GET /api/health"] = lambda _r: (503, {"status": "unhealthy", "configValid": False})
    app = server(routes)
    code, out = run(["--url", app.url, "--key", "k1", "--wait", "0"])
    assert code == 1
    assert out.startswith(
        'FAIL health: 503 {"status": "unhealthy", "configValid": false} (gave up after --wait 0 s)'
    )


def test_a_wrong_key_fails_health_at_once(server: Callable[[dict[str, Route]], Recorder]) -> None:
    app = server(healthy_app())
    code, out = run(["--url", app.url, "--key", "wrong", "--wait", "600"])
    assert code == 1
    assert "FAIL health: 401" in out and "check the function key" in out
    assert len([r for r in app.requests if r["path"] == "/api/health"]) == 2  # no waiting on a 401


def test_an_unreachable_app_is_one_failed_line(server: Callable[[dict[str, Route]], Recorder]) -> None:
    app = server({})
    url = app.url
    app.close()
    code, out = run(["--url", url, "--key", "k1", "--wait", "0"])
    assert code == 1
    assert out.splitlines()[0].startswith("FAIL health: unreachable")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "https://app.example.net"], "--key: no function key"),
        (["--url", "ftp://app", "--key", "k"], "--url: 'ftp://app' is not an http(s) URL"),
        (["--url", "http://app.example.net", "--key", "k"], "plain http only for a local runner"),
        (["--url", "https://app.example.net/api/health", "--key", "k"], "give the app's base URL only"),
        (
            ["--url", "https://a.example.net", "--key", "k", "--cluster-id", "aks1"],
            "--cluster-id: 'aks1' is not",
        ),
        (
            ["--url", "https://a.example.net", "--key", "k", "--token", "t", "--entra-resource", "api://x"],
            "give one",
        ),
        (["--url", "https://a.example.net", "--key", "k", "--timeout", "0"], "--timeout > 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_no_request(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(argv)
    err = capsys.readouterr().err
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and message in err


def test_url_forms() -> None:
    assert smoke.base_url("https://app.azurewebsites.net/") == "https://app.azurewebsites.net"
    assert smoke.base_url("https://app.azurewebsites.net/api") == "https://app.azurewebsites.net"
    assert smoke.base_url("http://127.0.0.1:7071") == "http://127.0.0.1:7071"


def fake_az(tmp_path: Path, script: str) -> str:
    """A stand-in ``az`` on PATH that records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "az-args"}\n{script}\n')
    az.chmod(az.stat().st_mode | stat.S_IEXEC)
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def test_entra_resource_fetches_the_token_with_az(
    server: Callable[[dict[str, Route]], Recorder], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", fake_az(tmp_path, "echo az-token"))
    app = server(healthy_app())
    code, out = run(["--url", app.url, "--key", "k1", "--entra-resource", "api://1234"])
    assert code == 0, out
    args = (tmp_path / "az-args").read_text().split()
    assert args == [
        "account",
        "get-access-token",
        "--resource",
        "api://1234",
        "--query",
        "accessToken",
        "-o",
        "tsv",
    ]
    assert {r["headers"].get("authorization") for r in app.requests} == {"Bearer az-token"}


def test_entra_resource_when_az_fails_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", fake_az(tmp_path, "echo 'ERROR: Please run az login' >&2; exit 1"))
    code, _out = run(["--url", "https://a.example.net", "--key", "k", "--entra-resource", "api://1234"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --entra-resource: az account get-access-token failed: ERROR: Please run az login"
    )
