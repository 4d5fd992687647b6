"""Open a local HTML file in Debian's headless Chromium with no network, recording everything the page does.

Shared by the HTML report's browser test (``tests/browser``) and ``python -m tools.report_screenshot``, so the
screenshot in the docs comes from the same browser, flags and isolation the tests assert on.

- The browser is Debian's ``/usr/bin/chromium`` (``make deps`` installs it), driven by Playwright for Python
  with ``executable_path``; Playwright's own browser download is never used (it cannot work here).
- Flags as the machine notes prescribe (``--no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync``), a fresh empty
  ``--user-data-dir`` per launch, and every host name resolving to nothing.
- The context is offline, and a route aborts every request that is not for the page's own ``file://`` URL;
  :class:`PageLog` keeps each request, each console message and each uncaught page error, so a test can assert
  that nothing left the page and nothing failed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, Route, sync_playwright

logger = logging.getLogger(__name__)

CHROMIUM = Path(os.environ.get("REMEDIATOR_CHROMIUM", "/usr/bin/chromium"))
"""The browser binary; ``REMEDIATOR_CHROMIUM`` overrides it (e.g. a Chromium elsewhere on a laptop)."""

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
"""Playwright adds ``--headless`` and the user data dir; these keep Chromium itself off the network."""


class BrowserMissingError(RuntimeError):
    """Debian's Chromium is not installed where :data:`CHROMIUM` says."""


@dataclass
class PageLog:
    """What a page did while it was open."""

    url: str
    requests: list[str] = field(default_factory=list)
    """Every request the page made, its own document included, in order."""
    blocked: list[str] = field(default_factory=list)
    """Requests the route aborted (anything but the page's own file)."""
    console: list[tuple[str, str]] = field(default_factory=list)
    """``(type, text)`` of every console message."""
    page_errors: list[str] = field(default_factory=list)
    """Uncaught exceptions in the page's scripts."""

    @property
    def console_errors(self) -> list[str]:
        """Console messages of type ``error`` or ``warning`` (CSP violations arrive as errors)."""
        return [text for kind, text in self.console if kind in ("error", "warning")]

    @property
    def foreign_requests(self) -> list[str]:
        """Requests for anything other than the page itself."""
        return [url for url in self.requests if url != self.url]


def require_chromium() -> Path:
    """The browser path, or a :class:`BrowserMissingError` saying how to install it."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        raise BrowserMissingError(
            f"{CHROMIUM} not found: run `make deps` (installs Debian's chromium) or set REMEDIATOR_CHROMIUM"
        )
    return CHROMIUM


@contextmanager
def open_page(
    path: Path, *, width: int = 1440, height: int = 900, scale: float = 1.0
) -> Iterator[tuple[Page, PageLog]]:
    """Open ``path`` in fresh, offline headless Chromium; yields the loaded page and its :class:`PageLog`."""
    executable = require_chromium()
    url = path.resolve().as_uri()
    log = PageLog(url=url)

    def route(route: Route) -> None:
        request_url = route.request.url
        if request_url == url:
            route.continue_()
        else:
            log.blocked.append(request_url)
            route.abort("blockedbyclient")

    def on_console(message: ConsoleMessage) -> None:
        log.console.append((message.type, message.text))

    with (
        tempfile.TemporaryDirectory(prefix="remediator-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(executable),
            headless=True,
            args=list(CHROMIUM_ARGS),
            offline=True,
            viewport={"width": width, "height": height},
            device_scale_factor=scale,
            service_workers="block",
            accept_downloads=False,
        )
        try:
            context.route("**/*", route)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("request", lambda request: log.requests.append(request.url))
            page.on("console", on_console)
            page.on("pageerror", lambda error: log.page_errors.append(str(error)))
            page.on(
                "dialog",
                lambda dialog: (log.page_errors.append(f"dialog: {dialog.message}"), dialog.dismiss()),
            )
            page.goto(url, wait_until="load")
            yield page, log
        finally:
            context.close()
