"""The layout rules of ``terraform fmt`` that can be checked without the terraform binary.

``terraform fmt -check`` is the real gate and runs wherever the binary exists
(tests/unit/infra/test_terraform.py runs it when ``terraform`` is on PATH and says so when it is not). These
rules are the subset checked always, so a machine without the binary still catches the usual drift: two-space
indentation with no tabs, no trailing whitespace, one newline at the end, no run of blank lines, and the ``=``
of consecutive single-line attributes at one indentation aligned one space after the longest name (hclwrite's
alignment).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ATTRIBUTE = re.compile(r"^(?P<indent> *)(?P<name>\"[^\"]+\"|[A-Za-z_][A-Za-z0-9_-]*)(?P<pad> *)= ")
OPENS = re.compile(r"[\[{(]\s*$")


@dataclass(frozen=True)
class FormatProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def check(text: str) -> list[FormatProblem]:
    problems: list[FormatProblem] = []
    lines = text.split("\n")
    if not text.endswith("\n") or text.endswith("\n\n"):
        problems.append(FormatProblem(len(lines), "the file must end with exactly one newline"))
    blank_run = 0
    for number, line in enumerate(lines, start=1):
        if "\t" in line:
            problems.append(FormatProblem(number, "tab character (terraform fmt indents with two spaces)"))
        if line != line.rstrip():
            problems.append(FormatProblem(number, "trailing whitespace"))
        indent = len(line) - len(line.lstrip(" "))
        if line.strip() and indent % 2:
            problems.append(FormatProblem(number, f"indentation of {indent} spaces is not a multiple of two"))
        blank_run = blank_run + 1 if not line.strip() else 0
        if blank_run == 2:
            problems.append(FormatProblem(number, "more than one blank line in a row"))
    problems += _alignment(lines)
    return problems


def _alignment(lines: list[str]) -> list[FormatProblem]:
    """Consecutive attribute lines at one indentation have their ``=`` one space after the longest name.

    A group ends at a blank line, a comment, a line at another indentation or a non-attribute line. An
    attribute whose value opens a multi-line expression stands alone (one space before its ``=``), as hclwrite
    leaves it.
    """
    problems: list[FormatProblem] = []
    group: list[tuple[int, re.Match[str]]] = []
    depth = 0  # inside a multi-line expression opened by an attribute of the current group

    def flush() -> None:
        if len(group) > 1:
            width = max(len(m.group("name")) for _, m in group)
            for number, match in group:
                wanted = width - len(match.group("name")) + 1
                if len(match.group("pad")) != wanted:
                    problems.append(
                        FormatProblem(
                            number, f"'=' of {match.group('name')} is not aligned with its neighbours"
                        )
                    )
        elif len(group) == 1:
            number, match = group[0]
            if len(match.group("pad")) != 1:
                problems.append(FormatProblem(number, f"one space before '=' of {match.group('name')}"))
        group.clear()

    indent = -1
    for number, line in enumerate(lines, start=1):
        if depth:
            depth += line.count("{") + line.count("[") + line.count("(")
            depth -= line.count("}") + line.count("]") + line.count(")")
            continue
        match = ATTRIBUTE.match(line)
        stripped = line.strip()
        if not match or stripped.startswith(("#", "//")):
            flush()
            indent = -1
            continue
        if len(match.group("indent")) != indent:
            flush()
            indent = len(match.group("indent"))
        if OPENS.search(line):
            flush()
            group.append((number, match))
            flush()
            indent = -1
            depth = 1
            continue
        group.append((number, match))
    flush()
    return problems
