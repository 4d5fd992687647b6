"""``python -m bench <name> [args...]``: a small registry of benchmarks.

A benchmark is a module with ``main(argv: list[str] | None) -> int``. Register it in :data:`BENCHMARKS`, or
just name the module ``bench/<name with - as _>.py`` — unregistered names are resolved that way.
``python -m bench all`` runs every registered benchmark with its defaults; ``list`` prints them.
"""

from __future__ import annotations

import importlib
import logging
import sys

logger = logging.getLogger(__name__)

BENCHMARKS: dict[str, str] = {
    "emulator-throughput": "bench.emulator_throughput",
    "emulator-estates": "bench.emulator_estates",
    "sweep": "bench.sweep",
    "writes": "bench.writes",
    "events": "bench.events",
    "protect": "bench.protect",
}
"""Benchmark name → module (with ``main(argv)``)."""


def resolve(name: str) -> str:
    return BENCHMARKS.get(name) or f"bench.{name.replace('-', '_')}"


def run(name: str, argv: list[str]) -> int:
    module_name = resolve(name)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            print(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}", file=sys.stderr)
            return 2
        raise
    main = getattr(module, "main", None)
    if main is None:
        print(f"{module_name} has no main(argv)", file=sys.stderr)
        return 2
    return int(main(argv) or 0)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "list"):
        print(__doc__)
        for name, module in sorted(BENCHMARKS.items()):
            print(f"  {name:24s} {module}")
        return 0 if args else 2
    if args[0] == "all":
        failures = 0
        for name in BENCHMARKS:
            print(f"== bench {name}", flush=True)
            failures += run(name, []) != 0
        return 1 if failures else 0
    return run(args[0], args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
