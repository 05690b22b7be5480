"""`rag serve`: the HTTP layer's command, registered with `rag`'s command line through the
`rag.commands` entry point (pyproject.toml), so that the library does not import `api`."""

from __future__ import annotations

import argparse
from pathlib import Path
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

    settings = serve_settings(args)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


def register(subparsers: Any) -> None:
    """Add `serve` to `rag`'s subcommands."""
    p = subparsers.add_parser("serve", help="serve the HTTP API and the chat page")
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX_DIR or index)")
    p.add_argument("--host", help="address to bind (default: $RAG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $RAG_PORT or 8000)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=serve)
