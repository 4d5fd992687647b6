"""``python -m tools.smoke``: the smoke test to run after ``azd up`` (or ``terraform apply`` + code deploy).

It answers one question a change board asks after a deployment: is the app up, does it hold a valid config and
reach its dependencies, are its routes guarded, and does it answer about a real cluster? It only reads:

1. ``keys-enforced``: ``GET /api/health`` **without** a function key is refused (401);
2. ``health``: ``GET /api/health`` with the key answers 200 ``healthy`` (settings and config valid; ARM, queue
   and journal table answer). While the app starts (a cold Flex instance, a remote build just finished) it is
   retried until ``--wait`` runs out;
3. ``explain-rejects-bad-input``: ``POST /api/explain {}`` is a 400 naming ``clusterId`` (the route runs, the
   strict body rules hold, nothing is read from a cluster);
4. ``explain`` (with ``--cluster-id``): ``POST /api/explain {clusterId}`` answers 200 with the decision, the
   extension state and what a reconcile would do (a dry run: nothing is written);
5. ``report`` (with ``--report``): ``GET /api/report?format=json`` answers a version 1 report document (a
   Resource Graph read of the whole scope: opt in).

Credentials: the function key (``--key``, or ``REMEDIATOR_FUNCTION_KEY``; ``az functionapp keys list -g <rg>
-n <app> --query functionKeys.default -o tsv``) and, when App Service authentication is on
(``REMEDIATOR_ENTRA_CLIENT_ID`` at deploy time), an Entra token: ``--token`` (or ``REMEDIATOR_TOKEN``), or
``--entra-resource api://<client id>`` to have ``az account get-access-token`` fetch one. Each check prints
one line (``PASS``/``FAIL``); exit 0 when every check passed, 1 when one failed, 2 for bad arguments.

Standard library only (plus ``az`` for ``--entra-resource``), so it runs from any checkout with ``python3``.
Tested against the local Functions runner (``tests/e2e/test_smoke_e2e.py``) and a recording server
(``tests/unit/test_smoke.py``); it has not been run against a deployed app from this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

KEY_ENV = "REMEDIATOR_FUNCTION_KEY"
TOKEN_ENV = "REMEDIATOR_TOKEN"


class UsageError(Exception):
    """Bad arguments: one line, exit 2."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class Client:
    """The app's base URL and the credentials each request carries."""

    base_url: str
    key: str
    token: str | None = None
    timeout_s: float = 60.0
    context: ssl.SSLContext | None = None

    def request(
        self, method: str, route: str, *, body: Any = None, with_key: bool = True, query: str = ""
    ) -> Answer:
        url = f"{self.base_url}/api/{route}" + (f"?{query}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json", "User-Agent": "aks-backup-remediator-smoke"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if with_key:
            headers["x-functions-key"] = self.key
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s, context=self.context) as resp:
                return Answer(resp.status, resp.read())
        except urllib.error.HTTPError as err:
            return Answer(err.code, err.read())


def base_url(raw: str) -> str:
    """``https://<app host>`` (or a local runner's ``http://127.0.0.1:<port>``), without a path."""
    parsed = urllib.parse.urlsplit(raw.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"--url: {raw!r} is not an http(s) URL such as https://<app>.azurewebsites.net")
    if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(f"--url: {raw!r}: plain http only for a local runner; the deployed app is https")
    if parsed.path.strip("/") not in ("", "api") or parsed.query or parsed.fragment:
        raise UsageError(f"--url: {raw!r}: give the app's base URL only (no path, query or fragment)")
    return f"{parsed.scheme}://{parsed.netloc}"


def token_from_az(resource: str, *, run: Callable[..., Any] = subprocess.run) -> str:
    """An Entra access token for ``resource`` from the signed-in Azure CLI."""
    az = shutil.which("az")
    if az is None:
        raise UsageError("--entra-resource needs the Azure CLI (az) on PATH; or pass --token")
    done = run(
        [az, "account", "get-access-token", "--resource", resource, "--query", "accessToken", "-o", "tsv"],
        capture_output=True,
        text=True,
        check=False,
    )
    token = (done.stdout or "").strip()
    if done.returncode != 0 or not token:
        first = ((done.stderr or "").strip().splitlines() or ["no token printed"])[0]
        raise UsageError(f"--entra-resource: az account get-access-token failed: {first}")
    return str(token)


def check_keys_enforced(client: Client) -> Check:
    answer = client.request("GET", "health", with_key=False)
    if answer.status == 401:
        return Check("keys-enforced", True, "GET /api/health without a function key: 401")
    return Check(
        "keys-enforced", False, f"GET /api/health without a function key: {answer.status}, expected 401"
    )


def check_health(client: Client, *, wait_s: float, poll_s: float, sleep: Callable[[float], None]) -> Check:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            answer: Answer | None = client.request("GET", "health")
            problem = None
        except (urllib.error.URLError, OSError) as exc:  # not up yet, or unreachable
            answer, problem = None, f"unreachable: {getattr(exc, 'reason', exc)}"
        if answer is not None and answer.status == 200:
            body = answer.json() or {}
            names = ", ".join(d.get("name", "?") for d in body.get("dependencies", []))
            return Check("health", True, f"200 {body.get('status', '?')} ({names})")
        if answer is not None:
            body = answer.json()
            shown = json.dumps(body) if body is not None else repr(answer.body[:200])
            problem = f"{answer.status} {shown}"
            if answer.status in (401, 403):  # credentials will not get better by waiting
                return Check("health", False, f"{problem}: check the function key (and the Entra token)")
        if time.monotonic() >= deadline:
            return Check("health", False, f"{problem} (gave up after --wait {wait_s:g} s)")
        sleep(poll_s)


def check_bad_input(client: Client) -> Check:
    answer = client.request("POST", "explain", body={})
    body = answer.json() or {}
    if answer.status == 400 and isinstance(body, dict) and body.get("field") == "clusterId":
        return Check("explain-rejects-bad-input", True, "POST /api/explain {}: 400 naming clusterId")
    return Check(
        "explain-rejects-bad-input",
        False,
        f"POST /api/explain {{}}: {answer.status} {json.dumps(body)[:300]}, expected 400 naming clusterId",
    )


def check_explain(client: Client, cluster_id: str) -> Check:
    answer = client.request("POST", "explain", body={"clusterId": cluster_id})
    body = answer.json()
    if answer.status != 200 or not isinstance(body, dict) or "decision" not in body:
        detail = json.dumps(body)[:300] if body is not None else repr(answer.body[:300])
        return Check("explain", False, f"POST /api/explain: {answer.status} {detail}")
    decision = body.get("decision") or {}
    outcome = body.get("outcome") or {}
    selected = "selected" if decision.get("selected") else f"not selected ({decision.get('reason', '?')})"
    return Check(
        "explain",
        True,
        f"200 {selected}; extension {body.get('extensionState') or 'absent'};"
        f" a reconcile would: {outcome.get('kind', '?')} ({str(outcome.get('why', ''))[:120]})",
    )


def check_report(client: Client) -> Check:
    answer = client.request("GET", "report", query="format=json")
    body = answer.json()
    if answer.status != 200 or not isinstance(body, dict) or body.get("reportVersion") != 1:
        return Check("report", False, f"GET /api/report: {answer.status} {str(body)[:300]}")
    totals = body.get("totals") or {}
    return Check(
        "report",
        True,
        f"200 version 1, {totals.get('clusters', '?')} clusters, generatedAt {body.get('generatedAt')}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.smoke",
        description="Smoke-test a deployed aks-backup-remediator: health, keys, explain (reads only).",
        epilog=(
            "example:\n"
            "  KEY=$(az functionapp keys list -g <rg> -n <app> --query functionKeys.default -o tsv)\n"
            '  python -m tools.smoke --url https://<app>.azurewebsites.net --key "$KEY" \\\n'
            "      --cluster-id /subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.ContainerService/managedClusters/<name>\n"
            "exit codes: 0 every check passed, 1 a check failed, 2 bad arguments"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url",
        required=True,
        help="the app's base URL: https:// + az functionapp show -g RG -n APP --query defaultHostName",
    )
    parser.add_argument("--key", help=f"a function key (default: ${KEY_ENV})")
    parser.add_argument(
        "--token",
        help=f"an Entra access token, when App Service authentication is on (default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--entra-resource", metavar="api://CLIENT_ID", help="fetch the token with az account get-access-token"
    )
    parser.add_argument("--cluster-id", help="a cluster to explain (read only)")
    parser.add_argument(
        "--report", action="store_true", help="also fetch GET /api/report?format=json (reads the whole scope)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="retry health this long while the app starts (default 120)",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="per request (default 60)"
    )
    parser.add_argument(
        "--ca-bundle", metavar="PEM", help="CAs to trust (a TLS-intercepting proxy); default: the system's"
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
    out: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    run: Callable[..., Any] = subprocess.run,
) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        url = base_url(args.url)
        key = args.key or environ.get(KEY_ENV, "")
        if not key:
            raise UsageError(f"--key: no function key (pass --key or set {KEY_ENV})")
        if args.token and args.entra_resource:
            raise UsageError("--token and --entra-resource: give one of them")
        if args.wait < 0 or args.timeout <= 0:
            raise UsageError("--wait must be >= 0 and --timeout > 0")
        if args.cluster_id is not None and not args.cluster_id.lower().startswith("/subscriptions/"):
            raise UsageError(f"--cluster-id: {args.cluster_id!r} is not an ARM id (/subscriptions/...)")
        token = args.token or environ.get(TOKEN_ENV) or None
        if args.entra_resource:
            token = token_from_az(args.entra_resource, run=run)
        context = ssl.create_default_context(cafile=args.ca_bundle) if args.ca_bundle else None
    except (UsageError, OSError, ssl.SSLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    client = Client(url, key, token, timeout_s=args.timeout, context=context)
    checks: list[Check] = []

    def record(check: Check) -> None:
        checks.append(check)
        print(check.line(), file=out, flush=True)

    try:
        record(check_health(client, wait_s=args.wait, poll_s=min(5.0, max(args.wait / 10, 0.1)), sleep=sleep))
        record(check_keys_enforced(client))
        record(check_bad_input(client))
        if args.cluster_id:
            record(check_explain(client, args.cluster_id))
        if args.report:
            record(check_report(client))
    except (urllib.error.URLError, OSError) as exc:
        record(Check("connection", False, f"{url}: {getattr(exc, 'reason', exc)}"))
    failed = [c.name for c in checks if not c.ok]
    print(
        f"smoke: {len(checks) - len(failed)} passed, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else ""),
        file=out,
    )
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
