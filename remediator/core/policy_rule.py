"""Evaluate an Azure Policy ``if`` condition on a resource body, answering yes, no or "can't tell".

Preflight asks whether an ARM-side assignment would deny the extension PUT before the PUT is sent. The
definition (built-in or custom) is data read from Azure; this module interprets the documented rule language
(``definition-structure-policy-rule``: ``allOf``/``anyOf``/``not``; ``field``/``value`` operands; the
conditions ``equals``, ``notEquals``, ``like``, ``notLike``, ``match``, ``matchInsensitively``, ``notMatch``,
``notMatchInsensitively``, ``contains``, ``notContains``, ``in``, ``notIn``, ``containsKey``,
``notContainsKey``, ``less``, ``lessOrEquals``, ``greater``, ``greaterOrEquals``, ``exists``; template
functions
``parameters``, ``field``, ``concat``, ``toLower``, ``toUpper``, ``empty``, ``equals``, ``not``, ``and``,
``or``, ``if``, ``contains``, ``length``). String comparison is case-insensitive except for ``match``, as the
documentation says. Anything else (``count``, unknown functions or aliases we cannot map) makes the answer
``None`` ("can't tell") instead of a guess; preflight reports such an assignment as a warning.

Why not ``checkPolicyRestrictions``: it is a per-scope POST
(``Microsoft.PolicyInsights/checkPolicyRestrictions``,
subscription or resource-group scope, 2023-03-01) that needs an action permission beyond ``*/read`` and one
call per resource group, while this evaluation needs no call beyond the Resource Graph rows already read. It
is the right confirmation for a "can't tell" answer and is left to the wiring.
[https://learn.microsoft.com/rest/api/policy/policy-restrictions/check-at-resource-group-scope]
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

logger = logging.getLogger(__name__)

Tri = bool | None
"""True, False, or None = can't tell."""

EXTENSION_TYPE_ARM = "Microsoft.KubernetesConfiguration/extensions"


class CannotEvaluate(Exception):
    """The rule uses a construct this evaluator does not interpret."""


_MISSING = object()


def evaluate(condition: Mapping[str, Any], resource: Mapping[str, Any], parameters: Mapping[str, Any]) -> Tri:
    """True/False when the condition holds/does not on ``resource``; None when it cannot be told."""
    try:
        return _eval(condition, resource, parameters)
    except CannotEvaluate as exc:
        logger.debug("policy rule not evaluated: %s", exc)
        return None


def _and(values: Sequence[Tri]) -> Tri:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or(values: Sequence[Tri]) -> Tri:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _eval(cond: Any, resource: Mapping[str, Any], params: Mapping[str, Any]) -> Tri:
    if not isinstance(cond, Mapping):
        raise CannotEvaluate(f"condition is not an object: {cond!r}")
    keys = {k.lower(): k for k in cond}
    if "allof" in keys:
        return _and([_safe(c, resource, params) for c in _list(cond[keys["allof"]])])
    if "anyof" in keys:
        return _or([_safe(c, resource, params) for c in _list(cond[keys["anyof"]])])
    if "not" in keys:
        inner = _eval(cond[keys["not"]], resource, params)
        return None if inner is None else not inner
    if "count" in keys:
        raise CannotEvaluate("count expressions")
    if "field" in keys:
        name = _template(cond[keys["field"]], resource, params)
        if not isinstance(name, str):
            raise CannotEvaluate(f"field name {name!r}")
        actual = field_value(resource, name)
    elif "value" in keys:
        actual = _template(cond[keys["value"]], resource, params)
    else:
        raise CannotEvaluate(f"no operand in {sorted(cond)}")
    operators = [k for k in keys if k not in ("field", "value")]
    if len(operators) != 1:
        raise CannotEvaluate(f"expected one condition operator, got {operators}")
    operator = operators[0]
    expected = _template(cond[keys[operator]], resource, params)
    return _compare(operator, actual, expected)


def _safe(cond: Any, resource: Mapping[str, Any], params: Mapping[str, Any]) -> Tri:
    """One branch of allOf/anyOf: a branch that cannot be evaluated is unknown, the others still count."""
    try:
        return _eval(cond, resource, params)
    except CannotEvaluate as exc:
        logger.debug("policy rule branch not evaluated: %s", exc)
        return None


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise CannotEvaluate("allOf/anyOf must be a list")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str | bool | int | float) and isinstance(b, str | bool | int | float):
        return _text(a).lower() == _text(b).lower()
    return bool(a == b)


def _like(text: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(text.lower(), pattern.lower().replace("[", "[[]"))


def _match(text: str, pattern: str, *, insensitive: bool) -> bool:
    # '#' a digit, '?' a letter, '.' any character, anything else itself (definition-structure docs).
    regex = "".join(
        r"\d" if ch == "#" else "[A-Za-z]" if ch == "?" else "." if ch == "." else re.escape(ch)
        for ch in pattern
    )
    return re.fullmatch(regex, text, re.IGNORECASE if insensitive else 0) is not None


def _compare(operator: str, actual: Any, expected: Any) -> Tri:
    if operator == "exists":
        want = _text(expected).lower() == "true"
        return (actual is not _MISSING and actual is not None) == want
    if actual is _MISSING or actual is None:
        # A missing field equals nothing: positive conditions fail, negated ones hold.
        return operator.startswith("not")
    if operator == "equals":
        return _eq(actual, expected)
    if operator == "notequals":
        return not _eq(actual, expected)
    if operator in ("in", "notin"):
        if not isinstance(expected, list):
            raise CannotEvaluate(f"{operator} needs a list")
        found = any(_eq(actual, e) for e in expected)
        return found if operator == "in" else not found
    if operator in ("like", "notlike"):
        hit = _like(_text(actual), _text(expected))
        return hit if operator == "like" else not hit
    if operator in ("match", "notmatch", "matchinsensitively", "notmatchinsensitively"):
        hit = _match(_text(actual), _text(expected), insensitive="insensitively" in operator)
        return hit if not operator.startswith("not") else not hit
    if operator in ("contains", "notcontains"):
        if isinstance(actual, list):
            hit = any(_eq(a, expected) for a in actual)
        else:
            hit = _text(expected).lower() in _text(actual).lower()
        return hit if operator == "contains" else not hit
    if operator in ("containskey", "notcontainskey"):
        if not isinstance(actual, Mapping):
            return operator == "notcontainskey"
        hit = _text(expected).lower() in {k.lower() for k in actual}
        return hit if operator == "containskey" else not hit
    if operator in ("less", "lessorequals", "greater", "greaterorequals"):
        try:
            a, b = float(actual), float(expected)
        except (TypeError, ValueError):
            a_s, b_s = _text(actual).lower(), _text(expected).lower()
            return {"less": a_s < b_s, "lessorequals": a_s <= b_s, "greater": a_s > b_s}.get(
                operator, a_s >= b_s
            )
        return {"less": a < b, "lessorequals": a <= b, "greater": a > b}.get(operator, a >= b)
    raise CannotEvaluate(f"condition operator {operator!r}")


def field_value(resource: Mapping[str, Any], name: str) -> Any:
    """The value of a ``field`` operand on an ARM body: ``type``, ``name``, ``fullName``, ``kind``,
    ``location``, ``id``, ``tags``, ``tags[x]``/``tags.x``, ``identity.type`` and ``properties`` aliases of
    the
    resource's own type (``<Namespace>/<type>/<path>`` → ``properties.<path>``, the shape of the two
    extension aliases the built-in backup policies use). An alias of another type is missing."""
    lowered = name.lower()
    if lowered in ("type", "name", "kind", "location", "id"):
        return resource.get(lowered, _MISSING)
    if lowered == "fullname":
        return resource.get("name", _MISSING)
    if lowered == "identity.type":
        identity = resource.get("identity")
        return identity.get("type", _MISSING) if isinstance(identity, Mapping) else _MISSING
    tags = resource.get("tags") or {}
    if lowered == "tags":
        return tags
    tag = re.fullmatch(r"tags\[['\"]?(.+?)['\"]?\]|tags\.(.+)", name, re.IGNORECASE)
    if tag:
        wanted = (tag.group(1) or tag.group(2)).lower()
        return next((v for k, v in tags.items() if k.lower() == wanted), _MISSING)
    rtype = str(resource.get("type") or "")
    if rtype and lowered.startswith(rtype.lower() + "/"):
        path = name[len(rtype) + 1 :].split("/")
        current: Any = resource.get("properties") or {}
        for part in path:
            if part.endswith("[*]"):
                raise CannotEvaluate(f"array alias {name!r}")
            if not isinstance(current, Mapping):
                return _MISSING
            current = next((v for k, v in current.items() if k.lower() == part.lower()), _MISSING)
            if current is _MISSING:
                return _MISSING
        return current
    if "/" in name:
        return _MISSING  # an alias of another resource type does not apply
    raise CannotEvaluate(f"field {name!r}")


# ---- template expressions ---------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<name>[A-Za-z_][\w.]*)|(?P<sym>[(),\[\]]))"
)


def _template(value: Any, resource: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return value
    if value.startswith("[["):
        return value[1:]
    tokens = _tokens(value[1:-1])
    result, pos = _call(tokens, 0, resource, params)
    if pos != len(tokens):
        raise CannotEvaluate(f"template {value!r}")
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise CannotEvaluate(f"template text {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _call(
    tokens: list[tuple[str, str]], pos: int, resource: Mapping[str, Any], params: Mapping[str, Any]
) -> Any:
    if pos >= len(tokens):
        raise CannotEvaluate("template ends early")
    kind, text = tokens[pos]
    if kind == "str":
        return text[1:-1].replace("''", "'"), pos + 1
    if kind == "num":
        return int(text), pos + 1
    if kind == "name" and text.lower() in ("true", "false"):
        return text.lower() == "true", pos + 1
    if kind != "name" or pos + 1 >= len(tokens) or tokens[pos + 1][1] != "(":
        raise CannotEvaluate(f"template token {text!r}")
    args: list[Any] = []
    pos += 2
    while tokens[pos][1] != ")":
        arg, pos = _call(tokens, pos, resource, params)
        args.append(arg)
        if tokens[pos][1] == ",":
            pos += 1
    value = _function(text.lower(), args, resource, params)
    pos += 1
    # property / index access after a call: parameters('x')[0] is not supported
    if pos < len(tokens) and tokens[pos][1] == "[":
        raise CannotEvaluate("index access in template")
    return value, pos


def _function(name: str, args: list[Any], resource: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    if name == "parameters":
        key = str(args[0]).lower()
        for k, v in params.items():
            if k.lower() == key:
                return v
        raise CannotEvaluate(f"parameter {args[0]!r} has no value")
    if name == "field":
        value = field_value(resource, str(args[0]))
        return None if value is _MISSING else value
    if name == "concat":
        if args and all(isinstance(a, list) for a in args):
            return [x for a in args for x in a]
        return "".join(_text(a) for a in args)
    if name == "tolower":
        return _text(args[0]).lower()
    if name == "toupper":
        return _text(args[0]).upper()
    if name == "empty":
        return args[0] is None or len(args[0]) == 0
    if name == "length":
        return len(args[0]) if args[0] is not None else 0
    if name == "equals":
        return _eq(args[0], args[1])
    if name == "not":
        return not bool(args[0])
    if name == "and":
        return all(bool(a) for a in args)
    if name == "or":
        return any(bool(a) for a in args)
    if name == "if":
        return args[1] if bool(args[0]) else args[2]
    if name == "contains":
        container, item = args[0], args[1]
        if isinstance(container, Mapping):
            return _text(item).lower() in {k.lower() for k in container}
        if isinstance(container, list):
            return any(_eq(c, item) for c in container)
        return _text(item).lower() in _text(container).lower()
    raise CannotEvaluate(f"template function {name}()")


def effective_parameters(
    spec: Mapping[str, Any], given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Assignment values (ARM ``{name: {value}}`` or plain) over the definition's defaults, by the spec's own
    parameter names. Returns the values and the names that have neither (those stay unset)."""
    lowered = {k.lower(): v for k, v in (given or {}).items()}
    values: dict[str, Any] = {}
    missing: list[str] = []
    for pname, pspec in spec.items():
        if pname.lower() in lowered:
            raw = lowered[pname.lower()]
            values[pname] = raw["value"] if isinstance(raw, Mapping) and "value" in raw else raw
        elif isinstance(pspec, Mapping) and "defaultValue" in pspec:
            values[pname] = pspec["defaultValue"]
        else:
            missing.append(pname)
    return values, tuple(missing)


def rule_effect(rule: Mapping[str, Any], values: Mapping[str, Any]) -> str | None:
    """The effect a definition's ``policyRule.then.effect`` takes under these parameter values (a literal, or
    ``[parameters('effect')]`` resolved case-insensitively), as written (``DeployIfNotExists``); ``None`` when
    it is absent or names a parameter without a value."""
    then = rule.get("then")
    raw = then.get("effect") if isinstance(then, Mapping) else None
    if isinstance(raw, str):
        m = re.fullmatch(r"\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]", raw)
        if m:
            raw = next((v for k, v in values.items() if k.lower() == m.group(1).lower()), None)
    return str(raw) if isinstance(raw, str) and raw else None


def resolve_binding(binding: Any, values: Mapping[str, Any]) -> tuple[Any, str | None]:
    """An initiative member's parameter binding: ``[parameters('x')]`` → (value of x, "x"); a literal →
    (literal, None). ``values`` are the initiative's effective parameters."""
    if isinstance(binding, Mapping) and "value" in binding:
        binding = binding["value"]
    if isinstance(binding, str):
        match = re.fullmatch(r"\[\s*parameters\(\s*'([^']+)'\s*\)\s*\]", binding)
        if match:
            name = match.group(1)
            for k, v in values.items():
                if k.lower() == name.lower():
                    return v, k
            return _MISSING_BINDING, name
    return binding, None


class _MissingBinding:
    def __repr__(self) -> str:
        return "<unset>"


_MISSING_BINDING: Any = _MissingBinding()


def is_unset(value: Any) -> bool:
    """True for a binding to an initiative parameter that has no value."""
    return value is _MISSING_BINDING
