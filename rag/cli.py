"""Command line: `rag index`, `rag ask`, `rag serve`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from api.settings import Settings

DEFAULT_CORPUS = Path("seeds")
DEFAULT_INDEX = Path("index")


def _index(args: argparse.Namespace) -> int:
    from rag.index import build_index, stale_reason

    if args.if_stale:
        reason = stale_reason(args.out, args.corpus)
        if reason is None:
            print(f"index at {args.out} is up to date with {args.corpus}")
            return 0
        print(f"building index: {reason}")
    report = build_index(args.corpus, args.out, use_cache=not args.no_cache)
    if report.unchanged:
        print(
            f"index at {args.out} is up to date with {args.corpus} ({report.documents} "
            f"documents, {report.chunks} chunks): kept as it is, nothing embedded "
            f"(--no-cache rebuilds it anyway)"
        )
        return 0
    print(
        f"indexed {report.documents} documents into {report.chunks} chunks and "
        f"{report.sentences} sentences at {args.out} in {report.seconds:.2f}s "
        f"(embedded {report.embedded} texts, reused {report.reused} cached vectors)"
    )
    return 0


def _ask(args: argparse.Namespace) -> int:
    from rag.pipeline import QA

    result = QA.load(args.index).ask(args.question, args.top_k)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return 0
    if result.answer is None:
        print("The articles don't answer this.")
    else:
        src = result.answer_source
        print(result.answer)
        where = f"{src.source} ¶{src.paragraph} [{src.start}:{src.end}]"
        print(f"  — {where}  confidence {result.confidence:.2f}")
    if result.citations:
        print("\nSources:")
    for c in result.citations:
        also = ", ".join(f"{a.source} ¶{a.paragraph}" for a in c.also_in)
        print(
            f"  {c.source} ¶{c.paragraph} [{c.start}:{c.end}] score {c.score:.3f}"
            + (f"  (also in {also})" if also else "")
        )
    return 0


def serve_settings(args: argparse.Namespace) -> Settings:
    """Flags override the environment (RAG_INDEX_DIR, RAG_HOST, RAG_PORT), which
    overrides the defaults (index/, 127.0.0.1, 8000)."""
    from api.settings import Settings

    given = {"index_dir": args.index, "host": args.host, "port": args.port}
    return Settings(**{k: v for k, v in given.items() if v is not None})


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.main import create_app

    settings = serve_settings(args)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("index", help="build the index from a folder of articles")
    p.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="folder of .txt/.md files (default: seeds)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_INDEX, help="index folder (default: index)")
    p.add_argument("--if-stale", action="store_true", help="build only if missing or out of date")
    p.add_argument(
        "--no-cache", action="store_true", help="re-embed everything, ignoring the previous index"
    )
    p.set_defaults(func=_index)

    p = sub.add_parser("ask", help="answer a question from the index")
    p.add_argument("question")
    p.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the API's JSON response")
    p.set_defaults(func=_ask)

    p = sub.add_parser("serve", help="serve the HTTP API and the chat page")
    p.add_argument("--index", type=Path, help="index folder (default: $RAG_INDEX_DIR or index)")
    p.add_argument("--host", help="address to bind (default: $RAG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: $RAG_PORT or 8000)")
    p.add_argument("--log-level", default="info")
    p.set_defaults(func=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
