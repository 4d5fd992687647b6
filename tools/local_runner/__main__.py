"""``python -m tools.local_runner``: serve a Functions app locally (see ``tools/local_runner/__init__.py``).

Prints one JSON line on stdout when ready — ``{"url", "functionKey", "masterKey", "eventGridKey",
"functions"}`` — then logs invocations on stderr until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import threading
from pathlib import Path

from tools.local_runner.host import FunctionIndex, LocalHost
from tools.local_runner.queues import QueueTriggerPoller
from tools.local_runner.server import serve
from tools.local_runner.settings import HostConfig, apply_settings, load_local_settings

logger = logging.getLogger(__name__)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.local_runner", description=__doc__)
    parser.add_argument(
        "--app-dir", type=Path, default=Path.cwd(), help="folder with function_app.py and host.json"
    )
    parser.add_argument(
        "--settings", type=Path, help="local.settings.json (Values become environment variables)"
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--function-key", help="the key HTTP triggers accept (generated when omitted)")
    parser.add_argument("--master-key", help="the admin key (generated when omitted)")
    parser.add_argument(
        "--eventgrid-key", help="the eventgrid_extension system key the webhook requires (none when omitted)"
    )
    parser.add_argument(
        "--max-poll-seconds",
        type=float,
        help="cap the queue polling back-off below host.json maxPollingInterval (tests use a short one)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # not azure-core's per-request logger: the product quiets that itself, as it must under the real worker
    for noisy in ("azure.identity", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.settings:
        apply_settings(load_local_settings(args.settings), os.environ)
    app_dir = args.app_dir.resolve()
    os.chdir(app_dir)
    index = FunctionIndex.load(app_dir, environ=os.environ)
    config = HostConfig.from_host_json(app_dir / "host.json")
    host = LocalHost(
        index=index,
        environ=os.environ,
        function_key=args.function_key or secrets.token_urlsafe(24),
        master_key=args.master_key or secrets.token_urlsafe(24),
        eventgrid_key=args.eventgrid_key,
        route_prefix=config.route_prefix,
    )
    pollers = [
        QueueTriggerPoller(
            index=index, function=fn, environ=os.environ, config=config, max_poll_s=args.max_poll_seconds
        )
        for fn in index.by_trigger("queueTrigger")
    ]
    for poller in pollers:
        poller.start()
    server, _ = serve(host, bind=args.bind, port=args.port)
    bound_port = server.server_address[1]
    ready = {
        "url": f"http://{args.bind}:{bound_port}",
        "functionKey": host.function_key,
        "masterKey": host.master_key,
        "eventGridKey": host.eventgrid_key,
        "functions": {name: fn.trigger_type for name, fn in sorted(index.functions.items())},
    }
    print(json.dumps(ready), flush=True)

    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    stopping.wait()
    logger.info("stopping the local runner")
    server.shutdown()
    for poller in pollers:
        poller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
