"""The runtime dependencies are locked with hashes, and the lock is what every install path uses.

requirements.in holds the hand-edited top-level pins; ``make lock`` compiles requirements.txt from it (every
transitive dependency pinned, a sha256 per distribution file). requirements.txt is the file the Flex remote
build installs (pip and uv switch to hash-checking mode as soon as one requirement carries ``--hash``), and
``make deps`` (so CI, ``.ci/run``) installs it with ``--require-hashes``. These checks run offline.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from tests.fixtures.paths import ROOT

LOCK = ROOT / "requirements.txt"
SOURCE = ROOT / "requirements.in"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from the pip-compile output (requirement lines continued with ``\\``)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    current: str | None = None
    for raw in LOCK.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            current = None
            continue
        pin = _PIN.match(line)
        if pin:
            current = _canonical(pin.group(1))
            assert current not in entries, f"{current} locked twice"
            entries[current] = (pin.group(2), [])
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        if hashes:
            assert current is not None, f"a hash outside a requirement: {line}"
            entries[current][1].extend(hashes)
        if not pin and not hashes:
            raise AssertionError(f"unexpected line in the lock: {raw!r}")
    return entries


def _top_level() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in SOURCE.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pin = _PIN.match(line)
        assert pin, f"requirements.in pins every top-level dependency exactly (name==version): {raw!r}"
        pins[_canonical(pin.group(1))] = pin.group(2)
    return pins


def test_every_locked_requirement_is_pinned_with_hashes() -> None:
    locked = _locked()
    assert len(locked) >= 20  # the Azure SDKs bring their transitive dependencies
    unhashed = sorted(name for name, (_, hashes) in locked.items() if not hashes)
    assert unhashed == [], f"pinned without --hash (pip would refuse the whole file): {unhashed}"


def test_the_lock_holds_exactly_the_top_level_pins() -> None:
    locked, top = _locked(), _top_level()
    missing = sorted(name for name in top if name not in locked)
    assert missing == [], f"in requirements.in but not in the lock: run `make lock` ({missing})"
    drifted = {name: (pin, locked[name][0]) for name, pin in top.items() if locked[name][0] != pin}
    assert drifted == {}, f"requirements.in pin != lock (in, lock): {drifted}; run `make lock`"
    text = LOCK.read_text()
    assert "pip-compile" in text and "--generate-hashes" in text  # made by `make lock`, not by hand


def test_every_pyproject_dependency_is_locked() -> None:
    """A runtime dependency declared in pyproject.toml but not in requirements.in would be installed
    (unpinned, unhashed) in the dev venv and be missing in Azure."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {_canonical(re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0]) for dep in declared}
    assert names - set(_top_level()) == set()


def test_this_environment_runs_the_locked_versions() -> None:
    """The dev/CI venv has the deployed versions of every runtime dependency (a dev tool that forced an
    upgrade would make the tests run against something Azure never installs)."""
    wrong = {}
    for name, (version, _) in _locked().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong[name] = (version, installed)
    assert wrong == {}, f"locked vs installed: {wrong}"


def test_every_install_path_uses_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*--require-hashes -r requirements\.txt", makefile)
    assert re.search(r"^lock:", makefile, re.MULTILINE) and "pip-tools==" in makefile
    funcignore = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines()]
    assert "requirements.txt" not in funcignore and "requirements.in" in funcignore
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # CI installs through the Makefile


def test_paths_fixture_is_the_repository() -> None:
    assert isinstance(ROOT, Path) and (ROOT / "requirements.in").is_file()
