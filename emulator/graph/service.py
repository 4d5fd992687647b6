"""Resource Graph query execution: scope, paging with skip tokens, result formats and the per-user quota.

A sweep pages through up to 100,000 clusters, so a query is evaluated once per (query, scope) and later pages
are served from that cached result, addressed by the `$skipToken`. Like Resource Graph, a skip token is only
returned when the result projects `id`; each call (page) costs one unit of the user's quota (15 per 5 s by
default) and every response carries `x-ms-user-quota-remaining` / `x-ms-user-quota-resets-after`.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from emulator.graph.tables import EXTENSION_CASINGS, GraphTables
from emulator.kql import ARG_TABLE_TYPE_NAMES, KqlError, compile_query
from emulator.model.hierarchy import ManagementGroupTree
from emulator.model.ids import fold

logger = logging.getLogger(__name__)

DEFAULT_TOP = 100
MAX_TOP = 1000


OBJECT_ARRAY_DEFAULT_FROM = "2021-03-01"


def default_result_format(api_version: str | None) -> str:
    """``resultFormat`` when the request names none. Microsoft's own examples answer the same option-less
    ``ResourcesBasicQuery`` with a table at 2019-04-01 and with an object array at 2021-03-01 and 2024-04-01
    (azure-rest-api-specs stable/<version>/examples/ResourcesBasicQuery.json). Versions in between (previews)
    follow their date: our assumption. No api-version (in-process calls; HTTP requires one) → table."""
    if not api_version:
        return "table"
    return "table" if api_version[:10] < OBJECT_ARRAY_DEFAULT_FROM else "objectArray"


class GraphRequestError(Exception):
    """A request Resource Graph answers with an error (status, code, message, details)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


@dataclass
class QuotaSettings:
    enabled: bool = True
    limit: int = 15
    window_s: float = 5.0
    retry_after_header: bool = False
    """Whether a 429 carries Retry-After (UNCONFIRMED for Resource Graph; off by default, see README.md)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "limit": self.limit,
            "windowSeconds": self.window_s,
            "retryAfterHeader": self.retry_after_header,
        }

    def update(self, data: Mapping[str, Any]) -> None:
        names = {"enabled", "limit", "windowSeconds", "retryAfterHeader"}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown quota fields: {sorted(unknown)}")
        if "enabled" in data:
            self.enabled = bool(data["enabled"])
        if "limit" in data:
            if int(data["limit"]) < 1:
                raise ValueError("limit must be >= 1")
            self.limit = int(data["limit"])
        if "windowSeconds" in data:
            if float(data["windowSeconds"]) <= 0:
                raise ValueError("windowSeconds must be > 0")
            self.window_s = float(data["windowSeconds"])
        if "retryAfterHeader" in data:
            self.retry_after_header = bool(data["retryAfterHeader"])


@dataclass
class _Window:
    start: float
    used: int = 0


TENANT_QUOTA_HEADER = "x-ms-ratelimit-remaining-tenant-resource-requests"
"""Resource Graph's tenant header; recorded answers carry it with the user quota's value (14/14, 12/12)."""
TABLE_OPERATORS = frozenset(
    {
        "where",
        "filter",
        "extend",
        "project",
        "join",
        "parse",
        "summarize",
        "order",
        "sort",
        "take",
        "limit",
        "count",
        "distinct",
        "top",
        "mv-expand",
        "union",
        "project-away",
        "project-rename",
    }
)
"""A query that starts with one of these names no table: Resource Graph runs it against ``Resources``
(recorded: ``project id, tags, properties | limit 2`` answered with resources)."""


def with_default_table(query_text: str) -> str:
    """``query_text`` with ``Resources | `` in front when it starts with a tabular operator, not a table."""
    words = query_text.lstrip().split(None, 1)
    if words and words[0].lower() in TABLE_OPERATORS:
        return "Resources | " + query_text.lstrip()
    return query_text


def quota_headers(remaining: int, resets_after: str) -> dict[str, str]:
    return {
        "x-ms-user-quota-remaining": str(remaining),
        "x-ms-user-quota-resets-after": resets_after,
        TENANT_QUOTA_HEADER: str(remaining),
    }


def _hhmmss(seconds: float) -> str:
    total = max(0, int(round(seconds)))
    return f"{total // 3600:02d}:{(total % 3600) // 60:02d}:{total % 60:02d}"


@dataclass
class _CachedResult:
    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]]
    created: float
    has_id: bool


@dataclass
class GraphService:
    """Runs queries against the state; holds the quota windows and the paging cache."""

    state: Any
    policy_records: Callable[[], Iterable[Mapping[str, Any]]] | None = None
    policy_objects: Callable[[], Iterable[Mapping[str, Any]]] | None = None
    """Policy assignments and custom definitions as ``policyresources`` rows."""
    management_groups: Callable[[], Any] = lambda: {}
    """The estate's ``managementGroups`` value, in any form :mod:`emulator.graph.hierarchy` reads."""
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    extension_casing: str = "pascal"
    cache_size: int = 64
    queries_run: int = 0
    _windows: dict[str, _Window] = field(default_factory=dict)
    _row_cache: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _cache: OrderedDict[str, _CachedResult] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- quota ----------------------------------------------------------------------------------
    def charge(self, principal: str) -> dict[str, str]:
        """Take one unit of `principal`'s quota; raises 429 GraphRequestError when none is left. Switched off,
        nothing is taken and the headers report a full window less this call (Azure always sends them)."""
        if not self.quota.enabled:
            return quota_headers(max(0, self.quota.limit - 1), _hhmmss(self.quota.window_s))
        now = self.state.now()
        with self._lock:
            window = self._windows.get(principal)
            if window is None or now - window.start >= self.quota.window_s:
                window = _Window(start=now)
                self._windows[principal] = window
            resets = window.start + self.quota.window_s - now
            if window.used >= self.quota.limit:
                headers = quota_headers(0, _hhmmss(resets))
                if self.quota.retry_after_header:
                    headers["Retry-After"] = str(max(1, int(resets + 0.999)))
                raise GraphRequestError(
                    429,
                    "RateLimiting",
                    "Please provide below info when asking for support: timestamp = "
                    f"{now}, correlationId = {uuid.uuid4()}.",
                    details=[
                        {
                            "code": "RateLimiting",
                            "message": "Client application has been throttled and "
                            "should not attempt to repeat the request until an amount of time has elapsed. "
                            "Please see https://aka.ms/resourcegraph-throttling for help.",
                        }
                    ],
                    headers=headers,
                )
            window.used += 1
            return quota_headers(self.quota.limit - window.used, _hhmmss(resets))

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()
            self._cache.clear()
            self._row_cache.clear()
            self.queries_run = 0

    # ---- query ----------------------------------------------------------------------------------
    def _scope(self, body: Mapping[str, Any]) -> set[str] | None:
        subs = body.get("subscriptions")
        mgs = body.get("managementGroups")
        if subs and mgs:
            raise GraphRequestError(
                400,
                "BadRequest",
                "Only one of 'subscriptions' and 'managementGroups' may be specified.",
                details=[
                    {
                        "code": "InvalidScope",
                        "message": "subscriptions and managementGroups cannot be combined",
                    }
                ],
            )
        if subs is not None:
            if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
                raise GraphRequestError(400, "BadRequest", "'subscriptions' must be an array of strings.")
            return {fold(s) for s in subs}
        if mgs is not None:
            if not isinstance(mgs, list) or not all(isinstance(s, str) for s in mgs):
                raise GraphRequestError(400, "BadRequest", "'managementGroups' must be an array of strings.")
            tree = self.group_tree()
            out: set[str] = set()
            for mg in mgs:
                if not tree.exists(mg):
                    raise GraphRequestError(
                        400,
                        "BadRequest",
                        f"Management group '{mg}' was not found or is not accessible.",
                        details=[{"code": "ManagementGroupNotFound", "message": mg}],
                    )
                out.update(tree.members(mg))  # descendants at any depth, like Resource Graph
            return out
        return None

    def group_tree(self) -> ManagementGroupTree:
        """The estate's management-group tree (rebuilt per query: estates are small and may be reloaded)."""
        with self.state.lock:
            tenants = {k: str(v.get("tenantId", "")) for k, v in self.state.subscriptions.items()}
        return ManagementGroupTree.from_estate(self.management_groups(), tenants=tenants)

    def _evaluate(
        self, query_text: str, scope: set[str] | None, *, groups: set[str] | None = None
    ) -> _CachedResult:
        compiled = compile_query(query_text)
        tables = GraphTables(
            self.state,
            subscriptions=scope,
            extension_casing=self.extension_casing,
            policy_records=self.policy_records,
            row_cache=self._row_cache,
            group_tree=self.group_tree,
            policy_objects=self.policy_objects,
            management_groups=groups,
        )
        rows = list(compiled.run(tables))
        with self._lock:
            self.queries_run += 1
        return _CachedResult(list(compiled.schema), rows, self.state.now(), "id" in compiled.columns)

    def query(self, body: Mapping[str, Any], *, api_version: str | None = None) -> dict[str, Any]:
        """The response body for one `POST /providers/Microsoft.ResourceGraph/resources`."""
        query_text = body.get("query")
        if not isinstance(query_text, str):
            raise GraphRequestError(400, "BadRequest", "The request body must contain a 'query' string.")
        options = body.get("options") or {}
        if not isinstance(options, Mapping):
            raise GraphRequestError(400, "BadRequest", "'options' must be an object.")
        top = options.get("$top")
        skip = options.get("$skip") or 0
        skip_token = options.get("$skipToken")
        result_format = str(options.get("resultFormat") or default_result_format(api_version))
        if result_format.lower() not in ("table", "objectarray"):
            raise GraphRequestError(400, "BadRequest", f"resultFormat '{result_format}' is not supported.")
        if top is not None and (not isinstance(top, int) or not 1 <= top <= MAX_TOP):
            raise GraphRequestError(
                400,
                "BadRequest",
                f"$top must be an integer between 1 and {MAX_TOP}.",
                details=[{"code": "InvalidTop", "message": str(top)}],
            )
        if not isinstance(skip, int) or skip < 0:
            raise GraphRequestError(400, "BadRequest", "$skip must be a non-negative integer.")
        page_size = top or DEFAULT_TOP
        scope = self._scope(body)
        if skip_token:
            cache_id, offset, token_top = self._decode_token(skip_token)
            # a later page keeps the first page's size unless the request names another (recorded: a
            # $skipToken call without $top answered 3 rows, the MaxRows its token carries)
            page_size = top or token_top or DEFAULT_TOP
            with self._lock:
                cached = self._cache.get(cache_id)
                if cached is not None:
                    self._cache.move_to_end(cache_id)
            if cached is None:
                raise GraphRequestError(
                    400,
                    "BadRequest",
                    "The $skipToken is invalid or has expired.",
                    details=[{"code": "InvalidSkipToken", "message": "unknown skip token"}],
                )
        else:
            try:
                mgs = body.get("managementGroups")
                groups = {str(g).lower() for g in mgs} if isinstance(mgs, list) else None
                cached = self._evaluate(with_default_table(query_text), scope, groups=groups)
            except KqlError as exc:
                raise GraphRequestError(
                    400,
                    "BadRequest",
                    "Please provide below info when asking for support: query is invalid.",
                    details=[
                        {
                            "code": "InvalidQuery",
                            "message": "Query is invalid. Please refer to the documentation "
                            "for the Azure Resource Graph service and fix the error before retrying.",
                        },
                        {"code": exc.code, "message": str(exc)},
                    ],
                ) from exc
            cache_id = uuid.uuid4().hex
            offset = skip
            with self._lock:
                self._cache[cache_id] = cached
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        page = cached.rows[offset : offset + page_size]
        end = offset + len(page)
        more = end < len(cached.rows)
        out: dict[str, Any] = {
            "totalRecords": len(cached.rows),
            "count": len(page),
            "resultTruncated": "true" if more and not cached.has_id else "false",
            "facets": [],
        }
        if more and cached.has_id:
            out["$skipToken"] = self._encode_token(cache_id, end, page_size)
        names = [name for name, _ in cached.columns]
        if result_format.lower() == "objectarray":
            out["data"] = page
        else:
            out["data"] = {
                "columns": [
                    {"name": n, "type": ARG_TABLE_TYPE_NAMES.get(t, "object")} for n, t in cached.columns
                ],
                "rows": [[row.get(n) for n in names] for row in page],
            }
        return out

    @staticmethod
    def _encode_token(cache_id: str, offset: int, top: int) -> str:
        raw = json.dumps({"$id": cache_id, "$skip": offset, "MaxRows": top}, separators=(",", ":")).encode()
        return base64.b64encode(raw).decode()

    @staticmethod
    def _decode_token(token: str) -> tuple[str, int, int | None]:
        """(cached result id, offset, page size of the page that made the token, if it says)."""
        try:
            data = json.loads(base64.b64decode(token.encode(), validate=True))
            top = data.get("MaxRows")
            return str(data["$id"]), int(data["$skip"]), None if top is None else int(top)
        except (ValueError, KeyError, TypeError) as exc:
            raise GraphRequestError(
                400,
                "BadRequest",
                "The $skipToken is malformed.",
                details=[{"code": "InvalidSkipToken", "message": "malformed"}],
            ) from exc

    def set_casing(self, casing: str) -> None:
        if casing not in EXTENSION_CASINGS:
            raise ValueError(f"extensionPropertyCasing must be one of {EXTENSION_CASINGS}")
        self.extension_casing = casing
        self._row_cache.clear()
