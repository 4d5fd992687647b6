"""The HTTPS server: TLS, keep-alive, and the per-call pipeline (latency → faults → throttling → route).

Built on the stdlib ThreadingHTTPServer (spike Q4): HTTP/1.1 keep-alive, Nagle disabled (44 ms → ~2 ms per
call), TLS handshakes done in the connection's own thread. :class:`Emulator` is the in-process API;
``python -m emulator serve`` wraps the same class.
"""

from __future__ import annotations

import collections
import contextlib
import http.server
import json
import logging
import random
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from emulator.api_versions import check_api_version, namespace_of
from emulator.certs import generate_certificates
from emulator.clock import Clock, SystemClock
from emulator.config import EmulatorConfig
from emulator.credentials import EmulatorCredential, principal_from_authorization
from emulator.errors import ArmError, retry_after
from emulator.estate import apply_estate
from emulator.faults import FaultRules
from emulator.model.ids import fold
from emulator.quotas import ProviderQuotas
from emulator.routing import (
    CaseInsensitiveDict,
    PluginContext,
    Request,
    Response,
    Route,
    Router,
    as_response,
    discover_route_modules,
    load_routes,
    parse_query,
)
from emulator.state import EmulatorState
from emulator.throttle import Throttler, operation_kind

logger = logging.getLogger(__name__)

__all__ = ["Emulator", "EmulatorConfig", "Runtime"]

ADMIN_PREFIX = "/_emulator"
_SLASHES = re.compile(r"/{2,}")
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE | re.ASCII)


class CallLog:
    """Every non-admin call (bounded) and counters by operation and status."""

    def __init__(self, maxlen: int) -> None:
        self._lock = threading.Lock()
        self._calls: collections.deque[dict[str, Any]] = collections.deque(maxlen=maxlen)
        self._seq = 0
        self._counters: dict[str, dict[str, int]] = {}

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._calls.append(entry)
            per_op = self._counters.setdefault(entry["operation"], {})
            status = str(entry["status"])
            per_op[status] = per_op.get(status, 0) + 1

    def calls(self, *, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        with self._lock:
            out = [c for c in self._calls if c["seq"] > since]
        return out[-limit:] if limit else out

    def counters(self) -> dict[str, Any]:
        with self._lock:
            by_op = {op: dict(statuses) for op, statuses in self._counters.items()}
        return {"byOperation": by_op, "total": sum(sum(s.values()) for s in by_op.values())}

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._counters.clear()


def _topic_key_principal(path: str, headers: CaseInsensitiveDict) -> str | None:
    """The Event Grid custom topic (emulator/eventgrid) also accepts an ``aeg-sas-key`` / ``aeg-sas-token``
    instead of a bearer token; its handler checks the key. Every other path still requires a bearer token."""
    if path.rstrip("/").lower() == "/api/events" and ("aeg-sas-key" in headers or "aeg-sas-token" in headers):
        return "event-grid-topic-key"
    return None


_CONNECTION = threading.local()
"""Per server thread: when its connection was accepted (a new connection's first request counts its TLS
handshake), and the call-log entry of the request being answered, whose ``servedMs`` is filled in once the
response is written (``durationMs`` covers the dispatch only)."""


class _DropConnection(Exception):
    """Raised inside the handler to close the socket without a response (fault action ``drop``)."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: _TLSServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.client_address[0], *args)

    def parse_request(self) -> bool:
        # the request line has just been read: the request has arrived (or, first on a new connection, the
        # connection was accepted before its TLS handshake)
        self._arrived = getattr(_CONNECTION, "accepted", None) or time.monotonic()
        _CONNECTION.accepted = None
        _CONNECTION.entry = None
        return super().parse_request()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        runtime = self.server.runtime
        try:
            body = self._read_body()
            response = runtime.dispatch(self.command, self.path, self.headers.items(), body)
        except _DropConnection:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload: bytes
        if response.body is None:
            payload = b""
        elif isinstance(response.body, bytes | bytearray):
            payload = bytes(response.body)
        else:
            payload = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.status)
        headers = response.headers
        if payload and not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)
        entry = getattr(_CONNECTION, "entry", None)
        if entry is not None:  # from arrival (handshake included) to the response written
            entry["servedMs"] = round((time.monotonic() - self._arrived) * 1000, 3)
            _CONNECTION.entry = None

    do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], runtime: Runtime, context: ssl.SSLContext) -> None:
        self.runtime = runtime
        self.ssl_context = context
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the connection's own thread, not the accept loop.
        _CONNECTION.accepted = time.monotonic()
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            logger.debug("TLS handshake failed from %s: %s", client_address, exc)
            return
        with self._sockets_lock:
            self.open_sockets.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            pass
        finally:
            with self._sockets_lock:
                self.open_sockets.discard(tls)
            with contextlib.suppress(OSError):
                tls.close()

    def close_open_connections(self) -> None:
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class Runtime:
    """Everything a call goes through; shared by the server threads, the admin routes and plug-ins."""

    def __init__(self, state: EmulatorState, config: EmulatorConfig, router: Router) -> None:
        self.state = state
        self.config = config
        self.router = router
        self.faults = FaultRules(seed=config.seed)
        self.throttler = Throttler(config.throttle, state.clock)
        self.quotas = ProviderQuotas(config.quotas, state.clock)
        """Provider quotas (emulator.quotas); route modules attach their operations in ``register``."""
        self.calls = CallLog(config.call_log_max)
        self.base_url = ""
        self._random = random.Random(config.seed)
        self._random_lock = threading.Lock()

    def reset_knobs(self) -> None:
        self.faults.clear()
        self.throttler.reset()
        self.quotas.reset()
        self.calls.clear()

    def _latency(self) -> float:
        cfg = self.config
        if cfg.latency_ms <= 0 and cfg.jitter_ms <= 0:
            return 0.0
        with self._random_lock:
            jitter = self._random.uniform(0, cfg.jitter_ms) if cfg.jitter_ms > 0 else 0.0
        return (cfg.latency_ms + jitter) / 1000.0

    def dispatch(self, method: str, raw_target: str, header_items: Any, body: bytes) -> Response:
        """Run one call through the pipeline and return the response (raises _DropConnection for drops)."""
        started = time.monotonic()
        split = urlsplit(raw_target)
        path = _SLASHES.sub("/", unquote(split.path)) or "/"
        headers = CaseInsensitiveDict(header_items)
        query = parse_query(split.query)
        request = Request(
            method=method.upper(),
            path=path,
            query=query,
            headers=headers,
            body=body,
            principal=(
                principal_from_authorization(headers.get("Authorization"))
                or _topic_key_principal(path, headers)
            ),
            base_url=self.base_url,
            state=self.state,
            config=self.config,
            runtime=self,
        )
        if path.lower().startswith(ADMIN_PREFIX):
            try:
                return self._route(request)
            except ArmError as err:
                return Response(err.status, dict(err.headers), err.body())
        labels: dict[str, str] = {}
        try:
            response = self._pipeline(request, labels)
        except _DropConnection:
            self._finish(request, labels.get("operation", "fault:drop"), 0, started, None)
            raise
        except ArmError as err:
            response = Response(err.status, dict(err.headers), err.body())
        operation = request.route.operation if request.route else labels.get("operation", "unrouted")
        self._finish(request, operation, response.status, started, response)
        return response

    def _pipeline(self, request: Request, labels: dict[str, str]) -> Response:
        method, path = request.method, request.path
        self.state.advance()
        delay = self._latency()
        if delay:
            time.sleep(delay)
        fault = self.faults.pick(method, path, actions=("respond", "drop", "delay"))
        if fault is not None:
            labels["operation"] = f"fault:{fault.id}"
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000.0)
            if fault.action == "drop":
                raise _DropConnection()
            if fault.action == "respond":
                extra = {} if fault.retry_after_s is None else retry_after(fault.retry_after_s)
                raise ArmError(fault.status, fault.code, fault.message, headers=extra)
        if request.principal is None:
            labels["operation"] = "unauthenticated"
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing or is not a bearer token.",
            )
        throttle_headers = self._throttle(method, path, request.principal)
        if self.config.require_api_version and "api-version" not in request.query:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
                headers=throttle_headers,
            )
        try:
            version = request.query.get("api-version")
            if self.config.check_api_versions and version is not None:
                check_api_version(path, version)
            route = self._resolve(request)
            throttle_headers.update(self._provider_quotas(request, route.operation))
            response = as_response(route.handler(request))
        except ArmError as err:
            err.headers.update(throttle_headers)
            raise
        response.headers.update(throttle_headers)
        rewrite = self.faults.pick(method, path, actions=("rewrite",))
        if rewrite is not None and isinstance(response.body, dict):
            response.body = {**response.body, **rewrite.set}
        return response

    def _finish(self, request: Request, operation: str, status: int, started: float, response: Any) -> None:
        if isinstance(response, Response) and status:
            response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            response.headers.setdefault(
                "x-ms-correlation-request-id",
                request.headers.get("x-ms-client-request-id") or response.headers["x-ms-request-id"],
            )
        entry: dict[str, Any] = {
            "time": self.state.clock.now(),
            "method": request.method,
            "path": request.path,
            "apiVersion": request.query.get("api-version"),
            "status": status,
            "principal": request.principal,
            "operation": operation,
            "durationMs": round((time.monotonic() - started) * 1000, 3),
            "requestId": response.headers.get("x-ms-request-id") if isinstance(response, Response) else None,
        }
        self.calls.record(entry)
        _CONNECTION.entry = entry  # a server thread adds servedMs once the response is written

    def _throttle(self, method: str, path: str, principal: str) -> dict[str, str]:
        """ARM's request buckets: the remaining-requests headers on every answer; 429 only while throttling is
        switched on (see emulator.throttle)."""
        match = _SUBSCRIPTION.match(path)
        scope_kind = "subscription" if match else "tenant"
        scope = f"sub:{fold(match.group(1))}" if match else "tenant"
        kind = operation_kind(method, path)
        verdict = self.throttler.check(scope, principal, kind)
        header = f"x-ms-ratelimit-remaining-{scope_kind}-{kind}"
        global_header = f"x-ms-ratelimit-remaining-{scope_kind}-global-{kind}"
        if not verdict.allowed:
            message = (
                f"Number of '{kind[:-1] if kind != 'deletes' else 'delete'}' requests for {scope_kind} "
                f"'{match.group(1) if match else 'tenant'}' actor '{principal}' exceeded. "
                f"Please try again after '{verdict.retry_after_s}' seconds "
                "after additional tokens are available. "
                "Refer to https://aka.ms/arm-throttling for additional information."
            )
            raise ArmError(
                429,
                f"{scope_kind.capitalize()}RequestsThrottled",
                message,
                headers={"Retry-After": str(verdict.retry_after_s), header: "0", global_header: "0"},
            )
        return {header: str(verdict.remaining), global_header: str(verdict.global_remaining)}

    def _provider_quotas(self, request: Request, operation: str) -> dict[str, str]:
        """The provider quotas this call draws from (emulator.quotas): their headers, or a 429."""
        if not self.quotas.attachments:
            return {}
        match = _SUBSCRIPTION.match(request.path)
        verdict = self.quotas.check(
            operation=operation,
            namespace=namespace_of(request.path),
            method=request.method,
            subscription=fold(match.group(1)) if match else "tenant",
            principal=request.principal or "",
        )
        if not verdict.allowed:
            raise ArmError(
                429,
                verdict.error_code,
                f"The request was throttled by the resource provider's '{verdict.quota}' quota. "
                f"Please try again after '{verdict.retry_after_s}' seconds.",
                headers={"Retry-After": str(verdict.retry_after_s), **verdict.headers},
            )
        return verdict.headers

    def _resolve(self, request: Request) -> Route:
        resolved = self.router.resolve(request.method, request.path)
        if resolved is None:
            raise ArmError(
                404,
                "NotFound" if not request.path.lower().startswith(ADMIN_PREFIX) else "AdminRouteNotFound",
                f"No route for '{request.method} {request.path}': the emulator does not model this API.",
            )
        route, params = resolved
        request.route = route
        request.params = params
        return route

    def _route(self, request: Request) -> Response:
        return as_response(self._resolve(request).handler(request))


class Emulator:
    """In-process emulator: ``with Emulator.start(estate=...) as emu: ...``.

    Attributes: ``base_url`` (https://127.0.0.1:PORT), ``ca_bundle`` (Path of the CA PEM), ``state``,
    ``config``, ``runtime`` (faults, throttler, call log), ``admin`` (an HTTPS admin client), ``router``.
    """

    def __init__(
        self,
        *,
        estate: dict[str, Any] | None = None,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        workdir: Path | None = None,
        plugins: tuple[str, ...] = (),
        discover_plugins: bool = True,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(clock=clock or SystemClock(), estate_loader=apply_estate)
        self.router = Router()
        self.runtime = Runtime(self.state, self.config, self.router)
        self._tmp = tempfile.TemporaryDirectory(prefix="arm-emulator-") if workdir is None else None
        self.workdir = Path(self._tmp.name) if self._tmp else Path(workdir)  # type: ignore[arg-type]
        certs = generate_certificates(self.workdir)
        self.ca_bundle: Path = certs.ca_bundle
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs.server_cert, certs.server_key)
        self.ctx = PluginContext(
            state=self.state, config=self.config, base_url=lambda: self.base_url, runtime=self.runtime
        )
        self.ctx.extras["emulator_reset"] = self.reset
        load_routes(self.router, self.ctx, discover_route_modules(plugins, discover=discover_plugins))
        self.state.load_estate(estate or {})
        self._initial_config = json.loads(json.dumps(self.config.to_json()))
        self._server = _TLSServer((host, port), self.runtime, context)
        self.port: int = self._server.server_address[1]
        self.base_url = f"https://{host}:{self.port}"
        self.runtime.base_url = self.base_url
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        from emulator.admin_client import AdminClient

        self.admin = AdminClient(self.base_url, self.ca_bundle)

    @classmethod
    def start(
        cls,
        *,
        estate: dict[str, Any] | None = None,
        latency_ms: float = 0.0,
        throttle: bool = False,
        config: EmulatorConfig | None = None,
        clock: Clock | None = None,
        port: int = 0,
        workdir: Path | None = None,
        plugins: tuple[str, ...] = (),
        discover_plugins: bool = True,
    ) -> Emulator:
        config = config or EmulatorConfig()
        config.latency_ms = latency_ms or config.latency_ms
        config.throttle.enabled = throttle or config.throttle.enabled
        emu = cls(
            estate=estate,
            config=config,
            clock=clock,
            port=port,
            workdir=workdir,
            plugins=plugins,
            discover_plugins=discover_plugins,
        )
        emu.serve_in_background()
        return emu

    def serve_in_background(self) -> None:
        server_thread = threading.Thread(target=self._server.serve_forever, name="arm-emulator", daemon=True)
        ticker = threading.Thread(target=self._tick, name="arm-emulator-ticker", daemon=True)
        self._threads = [server_thread, ticker]
        for thread in self._threads:
            thread.start()

    def serve_forever(self) -> None:
        ticker = threading.Thread(target=self._tick, name="arm-emulator-ticker", daemon=True)
        ticker.start()
        self._threads = [ticker]
        self._server.serve_forever()

    def _tick(self) -> None:
        """Apply due lifecycle transitions even when nobody calls (so completion observers fire on time)."""
        while not self._stopping.wait(0.1):
            try:
                self.state.advance()
            except Exception:
                logger.exception("lifecycle tick failed")

    def reset(self, estate: dict[str, Any] | None = None) -> None:
        """State back to the estate (or a new one), knobs to their start values, faults/log/buckets
        cleared."""
        self.runtime.reset_knobs()
        self.config.throttle.update(self._initial_config["throttle"])
        self.config.update({k: v for k, v in self._initial_config.items() if k != "throttle"})
        self.state.reset(estate)

    def credential(self, principal: str | None = None) -> EmulatorCredential:
        return EmulatorCredential(principal) if principal else EmulatorCredential()

    def client_kwargs(self) -> dict[str, Any]:
        """What an azure-mgmt client needs besides credential and subscription: base_url and the CA bundle."""
        return {"base_url": self.base_url, "connection_verify": str(self.ca_bundle)}

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
