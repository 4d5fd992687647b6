"""Screenshot an HTML coverage report in headless Chromium (``python -m tools.report_screenshot IN OUT``).

Uses :mod:`tools.browser`, the same browser, flags and offline isolation as the report's browser test, and
refuses to save a picture of a page that fetched anything or logged an error. ``docs/report.png`` is made with

    python -m tools.sample_report --format html -o /tmp/report.html   # or the demo estate's report
    python -m tools.report_screenshot /tmp/report.html docs/report.png

By default the picture is the top of the page (header, totals, charts, the clusters that need a human) at
1440 px wide; ``--full-page`` takes the whole list too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.browser import BrowserMissingError, open_page


def screenshot(
    report: Path, out: Path, *, width: int = 1440, height: int = 1500, full_page: bool = False
) -> None:
    """Save a PNG of ``report``; raises ``RuntimeError`` if the page fetched anything or logged an error."""
    with open_page(report, width=width, height=height) as (page, log):
        page.wait_for_function("document.fonts.status === 'loaded'")
        problems = log.foreign_requests + log.console_errors + log.page_errors
        if problems:
            raise RuntimeError(f"{report} did not render cleanly: {problems}")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page, animations="disabled")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; exit 0 on success, 1 if the page misbehaved, 2 on bad arguments or a missing browser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.report_screenshot", description=__doc__.split("\n")[0]
    )
    parser.add_argument("report", type=Path, help="the HTML report to open")
    parser.add_argument("out", type=Path, help="where to write the PNG")
    parser.add_argument("--width", type=int, default=1440, help="viewport width in CSS pixels (default 1440)")
    parser.add_argument(
        "--height", type=int, default=1500, help="viewport height in CSS pixels (default 1500)"
    )
    parser.add_argument("--full-page", action="store_true", help="capture the whole page, not just the top")
    args = parser.parse_args(argv)
    if not args.report.is_file():
        print(f"error: {args.report}: no such file", file=sys.stderr)
        return 2
    try:
        screenshot(args.report, args.out, width=args.width, height=args.height, full_page=args.full_page)
    except BrowserMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
