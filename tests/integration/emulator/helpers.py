"""Shared helpers for the emulator integration tests: raw requests through a real SDK pipeline, and the
"carries the example's fields" comparison used by the official-example tests."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from azure.core.rest import HttpRequest, HttpResponse


def send_raw(client: Any, method: str, path: str, api_version: str, body: Any = None) -> HttpResponse:
    """Send exact JSON through the client's own pipeline (auth, retry, TLS), bypassing model serialization."""
    sep = "&" if "?" in path else "?"
    request = HttpRequest(method, f"{path}{sep}api-version={api_version}", json=body)
    if hasattr(client, "send_request"):  # typespec-generated clients format "{endpoint}" themselves
        response = client.send_request(request)
    else:
        request.url = client._client.format_url(request.url)
        response = client._client.send_request(request)
    response.read()
    return response


def leaf_paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Flatten JSON into {"/a/b/0/c": leaf}; empty dicts/lists count as leaves."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for key, item in value.items():
            out.update(leaf_paths(item, f"{prefix}/{key}"))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            out.update(leaf_paths(item, f"{prefix}/{index}"))
    else:
        out[prefix] = value
    return out


def assert_carries_example_fields(
    ours: dict[str, Any], example: dict[str, Any], request: dict[str, Any] | None = None
) -> None:
    """Every field of the example response exists in ours; values the example echoes from its request match.

    Works on SDK-model dicts (``Model.deserialize(json).as_dict()``), so both sides went through the SDK.
    Fields the example leaves null may be null or absent in ours (msrest drops Nones in as_dict()).
    """
    ours_leaves = leaf_paths(ours)
    example_leaves = leaf_paths(example)
    request_leaves = leaf_paths(request or {})
    missing = []
    wrong = []
    for path, value in example_leaves.items():
        if value is None:
            continue
        if path not in ours_leaves and not any(p.startswith(path + "/") for p in ours_leaves):
            missing.append(path)
            continue
        if path in request_leaves and request_leaves[path] == value and ours_leaves.get(path) != value:
            wrong.append((path, value, ours_leaves.get(path)))
    assert not missing, f"fields of the example missing from the emulator's response: {missing}"
    assert not wrong, f"echoed request values differ (path, example, ours): {wrong}"


def load_example(azure_examples: Any, relative: str) -> dict[str, Any]:
    return json.loads((azure_examples / relative).read_text(encoding="utf-8"))


def model_dict(model_class: Any, data: dict[str, Any]) -> dict[str, Any]:
    """JSON → SDK model → dict, for both msrest models (``deserialize``) and the newer typespec models
    (constructed from the wire mapping, as azure-mgmt-containerservice 41.x generates them)."""
    if hasattr(model_class, "deserialize"):
        return dict(model_class.deserialize(data).as_dict())
    return dict(model_class(data).as_dict())


def raw_https(
    base_url: str,
    ca_bundle: Any,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "raw-test-token",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTPS call without SDK policies (no auto-registration, no retry): (status, headers, JSON body)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPSConnection(
        parts.hostname, parts.port, context=ssl.create_default_context(cafile=str(ca_bundle)), timeout=30
    )
    try:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            json.loads(raw) if raw else None,
        )
    finally:
        conn.close()
