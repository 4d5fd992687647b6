"""The operator's documentation points at things that exist, and its command lines parse.

README.md and docs/*.md were written by many hands; a renamed heading or file leaves a dead link, and a
changed option leaves a command a person copies and gets exit 2 from. This checks every relative link (file
and ``#anchor``, with GitHub's heading slugs), and every ``aks-backup-remediator`` / ``aksbr`` /
``python -m remediator`` / ``python -m tools.smoke`` line of the shell blocks against the real parser.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from remediator.cli import build_parser
from tools import smoke

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CLI_PREFIXES = (
    "aks-backup-remediator ",
    "aksbr ",
    "python -m remediator ",
    ".venv/bin/python -m remediator ",
)
SMOKE_PREFIX = "python -m tools.smoke "


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    return {slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def dead_links(page: Path, text: str) -> list[str]:
    dead = []
    for match in LINK.finditer(text):
        target = match.group(1)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path) if path else page
        if not dest.exists():
            dead.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            dead.append(f"{target} (no such heading)")
    return dead


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page: Path) -> None:
    assert dead_links(page, page.read_text(encoding="utf-8")) == []


def test_the_link_check_bites() -> None:
    readme = ROOT / "README.md"
    assert dead_links(readme, "[x](docs/no-such-page.md)") == ["docs/no-such-page.md (no such file)"]
    assert dead_links(readme, "[x](docs/deploy.md#nowhere)") == ["docs/deploy.md#nowhere (no such heading)"]
    assert dead_links(readme, "[x](docs/deploy.md#uninstall)") == []


def commands(text: str) -> list[str]:
    """Command lines in the shell blocks (continuations joined; after a pipe, the last command)."""
    found = []
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(line.split(" | ")[-1].split())
            if command.startswith((*CLI_PREFIXES, SMOKE_PREFIX)):
                found.append(command)
    return found


def parser_and_argv(command: str) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser that reads ``command`` and its arguments; a ``<placeholder>`` is one word."""
    words = shlex.split(re.sub(r"<[^<>]*>", "PLACEHOLDER", command), comments=True)
    if command.startswith(SMOKE_PREFIX):
        return smoke.build_parser(), words[3:]
    for prefix in CLI_PREFIXES:
        if command.startswith(prefix):
            return build_parser(), words[len(prefix.split()) :]
    raise AssertionError(command)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_documented_command_parses(page: Path, capsys: pytest.CaptureFixture[str]) -> None:
    refused = []
    for command in commands(page.read_text(encoding="utf-8")):
        parser, argv = parser_and_argv(command)
        try:
            parser.parse_args(argv)
        except SystemExit:
            refused.append(f"{command}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert refused == []


def test_the_docs_hold_commands_to_check() -> None:
    found = [c for page in PAGES for c in commands(page.read_text(encoding="utf-8"))]
    assert len(found) >= 15
    assert any(c.startswith(SMOKE_PREFIX) for c in found)


def test_the_command_check_bites(capsys: pytest.CaptureFixture[str]) -> None:
    parser, argv = parser_and_argv("aks-backup-remediator reconcile --cluster <id> --dry-run --wait")
    with pytest.raises(SystemExit):
        parser.parse_args(argv)
    assert "not allowed with argument" in capsys.readouterr().err
    assert commands("```sh\naz aks list -o json | aksbr explain --cluster - \\\n  -o table\n```") == [
        "aksbr explain --cluster - -o table"
    ]
