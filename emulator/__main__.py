"""``python -m emulator serve|generate``: run the ARM emulator as a process, or write a generated estate.

``serve`` prints ONE JSON line on stdout once listening — ``{"baseUrl": ..., "caBundle": ..., "pid": ...}`` —
so tools can start it as a subprocess and read that line; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _estate_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from emulator.estate import generate_estate, load_estate_file, parse_generate_spec

    if args.estate and args.generate:
        raise SystemExit("use either --estate or --generate, not both")
    if args.estate:
        return load_estate_file(args.estate)
    if args.generate:
        return generate_estate(**parse_generate_spec(args.generate))
    return {}


def cmd_serve(args: argparse.Namespace) -> int:
    from emulator.server import Emulator, EmulatorConfig

    config = EmulatorConfig()
    config.latency_ms = args.latency_ms
    config.jitter_ms = args.jitter_ms
    config.throttle.enabled = args.throttle
    if args.retry_after is not None:
        config.lro_retry_after_s = args.retry_after
    estate = _estate_from_args(args)
    emu = Emulator(
        estate=estate,
        config=config,
        port=args.port,
        workdir=Path(args.workdir) if args.workdir else None,
        plugins=tuple(args.plugin or ()),
    )
    import os

    print(
        json.dumps(
            {
                "baseUrl": emu.base_url,
                "caBundle": str(emu.ca_bundle),
                "pid": os.getpid(),
                "counts": emu.state.counts(),
            }
        ),
        flush=True,
    )

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from emulator.estate import generate_estate, parse_generate_spec

    estate = generate_estate(**parse_generate_spec(args.spec))
    text = json.dumps(estate, indent=None if len(estate["clusters"]) > 1000 else 1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    if args.config_out:
        from emulator.remediator_config import remediator_config_for

        Path(args.config_out).write_text(
            json.dumps(remediator_config_for(estate), indent=1) + "\n", encoding="utf-8"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTPS ARM emulator")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--estate", help="estate JSON/YAML file")
    serve.add_argument(
        "--generate", nargs="+", metavar="KEY=VALUE", help="e.g. subscriptions=100 clusters=100 seed=7"
    )
    serve.add_argument("--latency-ms", type=float, default=0.0)
    serve.add_argument("--jitter-ms", type=float, default=0.0)
    serve.add_argument("--throttle", action="store_true", help="enable ARM token-bucket throttling")
    serve.add_argument("--retry-after", type=float, default=None, help="Retry-After seconds on LRO responses")
    serve.add_argument("--workdir", help="where to write the CA bundle and certs (default: a temp dir)")
    serve.add_argument("--plugin", action="append", help="extra route module (has register(router, ctx))")
    serve.add_argument("-v", "--verbose", action="store_true")
    serve.set_defaults(func=cmd_serve)
    gen = sub.add_parser("generate", help="write a deterministic estate (and optionally a remediator config)")
    gen.add_argument("spec", nargs="+", metavar="KEY=VALUE")
    gen.add_argument("--out", help="estate file to write (default stdout)")
    gen.add_argument("--config-out", help="also write a matching remediator config JSON here")
    gen.set_defaults(func=cmd_generate)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
