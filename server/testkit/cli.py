"""The `e2ee-stack` command: `manage.py` for an installed package, plus the ephemeral stack.

    e2ee-stack serve --ephemeral [--seed FILE] [--port 0] [--host 127.0.0.1] [--inline-signing]
    e2ee-stack <any management command>            # e.g. useradd, ca status, audit verify

`serve --ephemeral` never loads Django in this process: everything it starts runs against the
temporary data dir, so nothing is written outside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def ephemeral_parser(prog: str = "e2ee-stack serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="A disposable stack: prints one JSON line, stops on SIGTERM."
    )
    parser.add_argument("--ephemeral", action="store_true", required=True)
    parser.add_argument("--seed", type=Path, help="users, folders, shares, keys (YAML or JSON)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    parser.add_argument("--port", type=int, default=0, help="0 (default): a free port")
    parser.add_argument(
        "--inline-signing",
        action="store_true",
        help="the web process signs certificates itself (no worker process)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["serve"] and "--ephemeral" in args:
        from .ephemeral import Options, serve_ephemeral

        parsed = ephemeral_parser().parse_args(args[1:])
        sys.exit(
            serve_ephemeral(
                Options(
                    seed=parsed.seed,
                    host=parsed.host,
                    port=parsed.port,
                    signing="inline" if parsed.inline_signing else "worker",
                )
            )
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "server.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["e2ee-stack", *args])


if __name__ == "__main__":
    main()
