"""The runner's HTTP front door: HTTP triggers, the Event Grid webhook and the admin API, like the host's.

Status codes follow the host and its Event Grid extension: a webhook call without a valid ``aeg-event-type``
is a 400, an unknown ``functionName`` a 404, a validation handshake a 200 with ``validationResponse``, a
notification a 202 when every event's invocation succeeded and a 500 when one raised (Event Grid then
retries the delivery).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from remediator.core.untrusted_json import nesting_depth
from tools.local_runner.host import (
    LocalHost,
    RegisteredFunction,
    event_grid_trigger_value,
    timer_trigger_value,
)

logger = logging.getLogger(__name__)

_VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
HOST_MAX_JSON_DEPTH = 64
"""Newtonsoft.Json's default reader MaxDepth, which the host's Event Grid extension parses deliveries with."""


def _route_regex(route: str) -> re.Pattern[str]:
    """An HTTP trigger route template (``items/{id}``, ``{*rest}``) as a regex with named groups."""
    parts: list[str] = []
    for token in re.split(r"(\{[^}]+\})", route.strip("/")):
        if token.startswith("{"):
            name = token[1:-1].lstrip("*").split(":")[0].rstrip("?")
            parts.append(f"(?P<{name}>.+)" if token[1] == "*" else f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(token))
    return re.compile("^" + "".join(parts) + "$", re.IGNORECASE)


class RunnerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], host: LocalHost) -> None:
        super().__init__(address, RunnerRequestHandler)
        self.host = host
        self.routes = [
            (_route_regex(str(fn.trigger.get("route") or fn.name)), fn)
            for fn in host.index.by_trigger("httpTrigger")
        ]


class RunnerRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: RunnerServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        logger.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        for name, value in hdrs.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def _key_given(self, query: Mapping[str, str]) -> str | None:
        return query.get("code") or self.headers.get("x-functions-key")

    @staticmethod
    def _key_matches(given: str | None, *keys: str | None) -> bool:
        """Constant-time comparison of UTF-8 bytes: ``hmac.compare_digest`` refuses ``str`` with non-ASCII
        characters (TypeError, which was a 500 for ``?code=%C2%80``; the host answers 401)."""
        if given is None:
            return False
        given_bytes = given.encode("utf-8", "surrogatepass")
        return any(k is not None and hmac.compare_digest(given_bytes, k.encode("utf-8")) for k in keys)

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        path = parts.path
        try:
            body = self._body()
            if path == "/runtime/webhooks/eventgrid" and method == "POST":
                self._event_grid(query, body)
            elif path.startswith("/admin/"):
                self._admin(method, path, query, body)
            elif path.startswith(f"/{self.server.host.route_prefix}/"):
                self._http_trigger(method, path, query, body)
            elif path == "/" and method == "GET":
                self._send_json(200, {"state": "Running"})
            else:
                self._send_json(404, {"error": "not found"})
        except Exception as exc:  # the host answers 500 for anything the dispatcher did not expect
            logger.exception("runner failed to handle %s %s", method, path)
            self._send_json(500, {"error": f"{type(exc).__name__}: {exc}"})

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ Event Grid
    def _event_grid(self, query: Mapping[str, str], body: bytes) -> None:
        host = self.server.host
        if host.eventgrid_key is not None and not self._key_matches(
            self._key_given(query), host.eventgrid_key, host.master_key
        ):
            self._send_json(401, {"error": "the eventgrid_extension system key is required"})
            return
        fn = host.index.functions.get(query.get("functionName", ""))
        if fn is None or fn.trigger_type != "eventGridTrigger":
            self._send_json(404, {"error": f"no Event Grid function named {query.get('functionName')!r}"})
            return
        event_type = (self.headers.get("aeg-event-type") or "").strip()
        # The host's Event Grid extension parses the delivery with Newtonsoft's JToken.Parse, whose reader
        # stops at a depth of 64 (Json.NET >= 13.0.1): deeper deliveries never reach the worker.
        limit = HOST_MAX_JSON_DEPTH
        if nesting_depth(body.decode("utf-8", "replace"), stop_above=limit) > limit:
            self._send_json(400, {"error": f"the reader's MaxDepth of {limit} has been exceeded"})
            return
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            self._send_json(400, {"error": "request body is not JSON"})
            return
        events = payload if isinstance(payload, list) else [payload]
        if event_type.lower() == "subscriptionvalidation":
            event = events[0] if events and isinstance(events[0], dict) else {}
            data = event.get("data") if isinstance(event.get("data"), dict) else {}
            code = data.get("validationCode") if data else None
            if event.get("eventType") != _VALIDATION_EVENT or not code:
                self._send_json(400, {"error": "not a subscription validation event"})
                return
            self._send_json(200, {"validationResponse": code})
            return
        if event_type.lower() != "notification":
            self._send_json(400, {"error": "missing or unknown aeg-event-type header"})
            return
        failures = []
        for event in events:
            try:
                host.index.invoke(fn, event_grid_trigger_value(event), reason="EventGrid")
            except Exception as exc:  # the extension answers 500 so Event Grid redelivers the whole payload
                failures.append(f"{type(exc).__name__}: {exc}")
        if failures:
            self._send_json(500, {"error": "function failed", "failures": failures})
        else:
            self._send(202)

    # ------------------------------------------------------------------ HTTP triggers
    def _http_trigger(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> None:
        host = self.server.host
        sub = path[len(host.route_prefix) + 2 :]
        for regex, fn in self.server.routes:
            match = regex.match(sub)
            if match is None:
                continue
            methods = [m.upper() for m in fn.trigger.get("methods") or []]
            if methods and method not in methods:
                continue
            if not self._authorized(fn, query):
                self._send_json(
                    401, {"error": "a valid function key is required (?code= or x-functions-key)"}
                )
                return
            self._run_http(fn, method, query, body, match.groupdict())
            return
        self._send_json(404, {"error": f"no HTTP function for {method} {path}"})

    def _authorized(self, fn: RegisteredFunction, query: Mapping[str, str]) -> bool:
        host = self.server.host
        level = str(fn.trigger.get("authLevel", "FUNCTION")).upper()
        if level == "ANONYMOUS":
            return True
        given = self._key_given(query)
        if level == "ADMIN":
            return self._key_matches(given, host.master_key)
        return self._key_matches(given, host.function_key, host.master_key)

    def _run_http(
        self,
        fn: RegisteredFunction,
        method: str,
        query: Mapping[str, str],
        body: bytes,
        route_params: dict[str, str],
    ) -> None:
        request = func.HttpRequest(
            method=method,
            url=f"http://{self.headers.get('Host', 'localhost')}{self.path}",
            headers=dict(self.headers.items()),
            params=dict(query),
            route_params=route_params,
            body=body,
        )
        try:
            result, _ = self.server.host.index.invoke(fn, request, reason="HTTP")
        except Exception:
            self._send(500, b"")
            return
        if isinstance(result, func.HttpResponse):
            headers = dict(result.headers.items())
            # as azure-functions' HttpResponseConverter.encode: an explicit Content-Type header wins
            if result.mimetype and not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = f"{result.mimetype}; charset={result.charset or 'utf-8'}"
            self._send(result.status_code, result.get_body(), headers)
        elif result is None:
            self._send(204)
        else:
            self._send(200, str(result).encode(), {"Content-Type": "text/plain; charset=utf-8"})

    # ------------------------------------------------------------------ admin API
    def _admin(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> None:
        host = self.server.host
        if not self._key_matches(self._key_given(query), host.master_key):
            self._send_json(401, {"error": "the master key is required"})
            return
        if path == "/admin/host/status" and method == "GET":
            self._send_json(200, {"state": "Running", "functions": sorted(host.index.functions)})
            return
        if path == "/admin/runner/invocations" and method == "GET":
            name = query.get("functionName")
            rows = [vars(i) for i in list(host.index.invocations) if name in (None, i.function)]
            self._send_json(200, rows)
            return
        match = re.fullmatch(r"/admin/functions/([^/]+)", path)
        if match and method == "POST":
            fn = host.index.functions.get(match.group(1))
            if fn is None:
                self._send_json(404, {"error": f"no function named {match.group(1)!r}"})
                return
            self._admin_invoke(fn, body)
            return
        self._send_json(404, {"error": "not found"})

    def _admin_invoke(self, fn: RegisteredFunction, body: bytes) -> None:
        """Run a non-HTTP function now (the host's ``POST /admin/functions/<name>``); answers after it ran."""
        if fn.trigger_type != "timerTrigger":
            self._send_json(
                400, {"error": f"{fn.name} is a {fn.trigger_type} function; only timers run here"}
            )
            return
        try:
            self.server.host.index.invoke(fn, timer_trigger_value(past_due=False), reason="AdminInvoke")
        except Exception as exc:
            self._send_json(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._send(202)


def serve(
    host: LocalHost, *, bind: str = "127.0.0.1", port: int = 0
) -> tuple[RunnerServer, threading.Thread]:
    """Start serving in a daemon thread; returns the server (``server.server_address`` has the port)."""
    server = RunnerServer((bind, port), host)
    thread = threading.Thread(target=server.serve_forever, name="runner-http", daemon=True)
    thread.start()
    return server, thread
