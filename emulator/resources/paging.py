"""ARM list paging: ``{"value": [...], "nextLink": ...}`` with an opaque ``$skipToken`` (our assumption:
a fixed page size, default 1000; ARM services choose their own page sizes)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from emulator.errors import bad_request
from emulator.resources.common import state_of
from emulator.routing import Request, Response

logger = logging.getLogger(__name__)

PAGE_SIZE = 1000


def page(request: Request, items: list[dict[str, Any]], *, page_size: int | None = None) -> dict[str, Any]:
    if page_size is None:
        page_size = request.config.list_page_size if request.config is not None else PAGE_SIZE
    token = request.query.get("$skipToken")
    try:
        start = int(token) if token else 0
    except ValueError as exc:
        raise bad_request("InvalidSkipToken", f"The $skipToken '{token}' is not valid.") from exc
    chunk = items[start : start + page_size]
    out: dict[str, Any] = {"value": chunk}
    if start + page_size < len(items):
        query = {k: v for k, v in request.query.items() if k.lower() != "$skiptoken"}
        query["$skipToken"] = str(start + page_size)
        out["nextLink"] = f"{request.base_url}{request.path}?{urlencode(query)}"
    return out


def list_under(request: Request, store: dict[str, dict[str, Any]], prefix: str) -> Response:
    """A 200 list page of the resources in ``store`` (a state table) whose key starts with ``prefix``.

    The caller holds no lock; the table is read under the state lock."""
    state = state_of(request)
    with state.lock:
        items = [body for key, body in store.items() if key.startswith(prefix)]
    return Response(200, {}, page(request, items))
