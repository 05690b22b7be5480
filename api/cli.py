"""`rag serve`: the HTTP layer's command, registered with `rag`'s command line through the
`rag.commands` entry point (pyproject.toml), so that the library does not import `api`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from api.settings import Settings


def serve_settings(args: argparse.Namespace) -> Settings:
    """Flags override the environment (RAG_INDEX_DIR, RAG_HOST, RAG_PORT), which
    overrides the defaults (index/, 127.0.0.1, 8000)."""
    given = {"index_dir": args.index, "host": args.host, "port": args.port}
    return Settings(**{k: v for k, v in given.items() if v is not None})


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app
    from api.observability.logs import configure_logging

    settings = serve_settings(args)
    # Before the index loads, so that its lines are in the chosen format too; uvicorn is
    # told to leave logging alone (log_config=None) and not to write its access log.
    configure_logging(settings.log_format, args.log_level)
    app = create_app(settings)
    # On SIGTERM uvicorn closes the listening socket, lets the requests in flight finish
    # for at most shutdown_timeout seconds, then runs the app's shutdown (the engine
    # answers what it still holds). Then it raises the signal again for the handler that
    # was there before its own; this one makes that a clean exit (status 0), as it does
    # for a SIGTERM that comes before uvicorn listens.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout,
    )
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    # os._exit rather than SystemExit: the interpreter's own teardown would first
    # garbage-collect the whole index and model, 5 s on an idle machine and ten times that
    # on a busy one, all after the server has finished. Nothing is left to clean up: the
    # requests are answered, the engine stopped, and the log flushed here.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def register(subparsers: Any) -> None:
    """Add `serve` to `rag`'s subcommands."""
    p = subparsers.add_parser("serve", help="serve the HTTP API and the chat page")
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX_DIR or index)")
    p.add_argument("--host", help="address to bind (default: $RAG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $RAG_PORT or 8000)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=serve)
