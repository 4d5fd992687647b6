"""A tiny evaluator for the ARM template expressions the built-in AKS-backup DINE policy uses.

It evaluates the policy definition's own expressions (``[first(skip(split(parameters('storageAccountId'),
'/'), 4))]``, ``[take(concat('azure-aks-backup-', parameters('clusterName')), 63)]``, ...) so tests compare
our extension body with what the policy would deploy, read from the official JSON rather than retyped by
hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>\d+)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[(),.\[\]]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot tokenise {text[pos:]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class Evaluator:
    """Evaluates ``[...]`` expressions with the given parameters, variables and ``reference()`` results."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        variables: Mapping[str, str] | None = None,
        fields: Mapping[str, Any] | None = None,
        references: Mapping[str, Mapping[str, Any]] | None = None,
        tenant_id: str = "",
    ) -> None:
        self.parameters = dict(parameters)
        self.variables = dict(variables or {})
        self.fields = dict(fields or {})
        self.references = dict(references or {})
        self.tenant_id = tenant_id
        self.functions: dict[str, Callable[..., Any]] = {
            "parameters": lambda name: self.parameters[name],
            "variables": lambda name: self.evaluate(self.variables[name]),
            "field": lambda name: self.fields[name],
            "concat": lambda *xs: "".join(str(x) for x in xs),
            "take": lambda s, n: s[: int(n)],
            "split": lambda s, sep: s.split(sep),
            "skip": lambda xs, n: xs[int(n) :],
            "first": lambda xs: xs[0],
            "subscription": lambda: {"tenantId": self.tenant_id},
            "reference": lambda rid, _api=None: self.references[rid],
        }

    def evaluate(self, value: Any) -> Any:
        if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
            return value
        tokens = _tokens(value[1:-1])
        result, pos = self._expr(tokens, 0)
        if pos != len(tokens):
            raise ValueError(f"trailing tokens in {value!r}")
        return result

    def _expr(self, tokens: list[tuple[str, str]], pos: int) -> tuple[Any, int]:
        kind, text = tokens[pos]
        if kind == "str":
            return text[1:-1].replace("''", "'"), pos + 1
        if kind == "num":
            return int(text), pos + 1
        if kind != "ident":
            raise ValueError(f"unexpected {text!r}")
        pos += 1
        assert tokens[pos][1] == "("
        pos += 1
        args: list[Any] = []
        while tokens[pos][1] != ")":
            arg, pos = self._expr(tokens, pos)
            args.append(arg)
            if tokens[pos][1] == ",":
                pos += 1
        pos += 1
        result = self.functions[text](*args)
        while pos < len(tokens) and tokens[pos][1] == ".":
            result = result[tokens[pos + 1][1]]
            pos += 2
        return result, pos


def dine_extension_resource(policy_file: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The extension resource of the DINE's deployment template, and the whole deployment block."""
    definition = json.loads(policy_file.read_text(encoding="utf-8"))
    deployment = definition["properties"]["policyRule"]["then"]["details"]["deployment"]["properties"]
    resources = deployment["template"]["resources"]
    (extension,) = [r for r in resources if r["type"] == "Microsoft.KubernetesConfiguration/extensions"]
    return extension, deployment


def dine_rendered_extension(
    policy_file: Path, *, cluster_name: str, storage_account_id: str, tenant_id: str, blob_endpoint: str
) -> dict[str, Any]:
    """The extension resource as the DINE would deploy it for one cluster: every expression evaluated."""
    extension, deployment = dine_extension_resource(policy_file)
    template = deployment["template"]
    outer = Evaluator(
        parameters={"storageAccountId": storage_account_id},
        fields={"name": cluster_name},
        tenant_id=tenant_id,
    )
    params = {name: outer.evaluate(spec["value"]) for name, spec in deployment["parameters"].items()}
    for name, spec in template["parameters"].items():
        if name not in params and "defaultValue" in spec:
            params[name] = spec["defaultValue"]
    inner = Evaluator(
        parameters=params,
        variables=template["variables"],
        references={storage_account_id: {"primaryEndpoints": {"blob": blob_endpoint}}},
    )

    def render(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        return inner.evaluate(value)

    return {"name": inner.evaluate(extension["name"]), "properties": render(extension["properties"])}
