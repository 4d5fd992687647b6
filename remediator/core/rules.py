"""Tag selection semantics, in one small pure function.

The rules mirror the built-in policies' tag conditions (case-insensitive ``in``) and add what they lack:

* tag names and values compare case-insensitively the way Azure does (.NET ``OrdinalIgnoreCase``: each
  character upper-cased by its one-to-one mapping, see :func:`remediator.core.text.fold_case`), not by
  Unicode casefold, so a config never selects a cluster that the equivalent built-in policy would not
  (``straße`` != ``STRASSE``);
* in values, ``*`` matches any run of characters (also none) and is the ONLY wildcard: ``?``, ``[`` and every
  other character match themselves (no fnmatch);
* an entry matches when the tag is present and (no ``values``) or (any value pattern matches);
* OR within an entry's values and across entries; exclude wins over include;
* no ``include`` list means every cluster is included; an untagged cluster is matched by no entry at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from remediator.core.config import Selection, TagRule
from remediator.core.text import fold_case

__all__ = ["RuleMatch", "entry_matches", "fold_case", "match_selection", "value_matches"]


@dataclass(frozen=True)
class TagHit:
    """The cluster tag that made an include/exclude entry match, as a person reads it (not an index)."""

    kind: str
    """``include`` or ``exclude``."""
    tag: str
    """The tag name as written on the cluster (Azure compares names case-insensitively)."""
    value: str
    """The cluster's value of that tag."""
    pattern: str | None
    """The entry's value pattern that matched (``prod*``); ``None`` when the entry lists no values (any value
    of the tag matches)."""

    def to_json(self) -> dict[str, str | None]:
        return {"kind": self.kind, "tag": self.tag, "value": self.value, "pattern": self.pattern}

    def __str__(self) -> str:
        return f"{self.kind} {self.tag}={self.value}"


@dataclass(frozen=True)
class RuleMatch:
    """How a cluster's tags fare against the selection."""

    included: bool
    """Matched by an include entry, or there is no include list."""
    excluded: bool
    """Matched by an exclude entry."""
    rule: str | None
    """The entry that decided: the first matching ``exclude[i]`` if excluded, else the first matching
    ``include[i]``; ``None`` when no entry matched (or there is no include list)."""
    hit: TagHit | None = field(default=None, compare=False)
    """The tag and value behind ``rule`` (``None`` exactly when ``rule`` is); explanation only, so not part of
    equality."""

    @property
    def selected(self) -> bool:
        """Included and not excluded."""
        return self.included and not self.excluded


@lru_cache(maxsize=4096)
def _glob_parts(pattern: str) -> tuple[str, ...]:
    """The case-folded literal runs between the ``*`` of a value pattern (one part: no wildcard)."""
    return tuple(fold_case(pattern).split("*"))


def _glob_fullmatch(parts: tuple[str, ...], value: str) -> bool:
    """Whether ``value`` is ``parts`` joined by runs of any characters, in O(len(value) * len(pattern)).

    No regex and no backtracking: tag values are written by whoever may tag a cluster, and a backtracking
    ``.*a.*a...`` takes exponential time on a crafted value. For ``*``-only globs the greedy-leftmost scan is
    exact: the first and last parts are anchored at the ends, and placing each middle part at its earliest
    occurrence after the previous one leaves the most room for the rest, so if any placement works this one
    does.
    """
    if len(parts) == 1:
        return value == parts[0]
    first, *middle, last = parts
    if len(first) + len(last) > len(value) or not value.startswith(first) or not value.endswith(last):
        return False
    position, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


def value_matches(pattern: str, value: str) -> bool:
    """Whether a tag value matches one pattern (case-insensitive; ``*`` is the only wildcard)."""
    return _glob_fullmatch(_glob_parts(pattern), fold_case(value))


def entry_matches(entry: TagRule, folded_tags: Mapping[str, tuple[str, ...]]) -> bool:
    """Whether one include/exclude entry matches tags already keyed by :func:`fold_case` name."""
    values = folded_tags.get(fold_case(entry.tag))
    if values is None:
        return False
    if entry.values is None:
        return True
    return any(value_matches(pattern, value) for pattern in entry.values for value in values)


def tag_hit(entry: TagRule, tags: Mapping[str, str], *, kind: str) -> TagHit | None:
    """The first of the cluster's tags (in their order) that makes ``entry`` match, or ``None``."""
    name = fold_case(entry.tag)
    for key, value in tags.items():
        if fold_case(key) != name:
            continue
        if entry.values is None:
            return TagHit(kind=kind, tag=key, value=value, pattern=None)
        for pattern in entry.values:
            if value_matches(pattern, value):
                return TagHit(kind=kind, tag=key, value=value, pattern=pattern)
    return None


def _fold(tags: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Folded name -> values. Azure tag names are case-insensitive, so two spellings cannot both exist on a
    real resource; if a hand-written snapshot has them anyway, every value counts."""
    folded: dict[str, tuple[str, ...]] = {}
    for key, value in tags.items():
        name = fold_case(key)
        folded[name] = (*folded.get(name, ()), value)
    return folded


def match_selection(tags: Mapping[str, str], selection: Selection) -> RuleMatch:
    """Evaluate the include/exclude rules against a cluster's tags."""
    folded = _fold(tags)
    excluded_at = next(
        (index for index, entry in enumerate(selection.exclude) if entry_matches(entry, folded)), None
    )
    included_at = (
        None
        if selection.include is None
        else next(
            (index for index, entry in enumerate(selection.include) if entry_matches(entry, folded)), None
        )
    )
    included = selection.include is None or included_at is not None
    if excluded_at is not None:
        hit = tag_hit(selection.exclude[excluded_at], tags, kind="exclude")
        return RuleMatch(included=included, excluded=True, rule=f"exclude[{excluded_at}]", hit=hit)
    if selection.include is None or included_at is None:
        return RuleMatch(included=included, excluded=False, rule=None)
    hit = tag_hit(selection.include[included_at], tags, kind="include")
    return RuleMatch(included=True, excluded=False, rule=f"include[{included_at}]", hit=hit)
