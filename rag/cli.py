"""Command line: `rag index`, `rag ask`, and the commands other packages register
(`rag serve`, from the HTTP layer)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from importlib.metadata import entry_points
from pathlib import Path

from rag.errors import RagError
from rag.index.executors import EXECUTORS
from rag.runtime import configure

# Commands other packages add to `rag`: each entry point of this group is a function that
# takes the subparsers and adds its command. The HTTP layer adds `rag serve` this way
# (pyproject.toml), so that the library never imports it.
COMMANDS_GROUP = "rag.commands"

DEFAULT_CORPUS = Path("seeds")
DEFAULT_INDEX = Path("index")


def _index(args: argparse.Namespace) -> int:
    from rag.config import IndexConfig, PipelineConfig
    from rag.index import build_index, stale_reason
    from rag.index.backend import backend_class

    backend_class(args.backend)  # an unknown name fails now, naming the valid choices
    config = PipelineConfig(index=IndexConfig(backend=args.backend))
    qdrant = {"url": args.qdrant_url, "collection": args.qdrant_collection}
    settings = {k: v for k, v in qdrant.items() if v} if args.backend == "qdrant" else None
    if args.backend != "qdrant" and (args.qdrant_url or args.qdrant_collection):
        raise RagError("--qdrant-url and --qdrant-collection need --backend qdrant")
    if args.ray_address and args.executor != "ray":
        raise RagError("--ray-address needs --executor ray")
    if args.if_stale:
        reason = stale_reason(args.out, args.corpus, config)
        if reason is None:
            print(f"index at {args.out} is up to date with {args.corpus}")
            return 0
        print(f"building index: {reason}")
    executor = None
    if args.executor != "local":
        from rag.index.executors import make_executor
        from rag.index.executors.ray_executor import RayConfig

        executor = make_executor(args.executor, config, ray=RayConfig(address=args.ray_address))
    # A SIGTERM (kill, a service stop) unwinds like Ctrl-C: the staging folder is removed
    # and a local Ray is stopped. SIGKILL cannot be caught; the previous index still
    # serves, and a local Ray's supervisor stops it when this process is gone.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        report = build_index(
            args.corpus,
            args.out,
            config,
            executor=executor,
            use_cache=not args.no_cache,
            backend_settings=settings,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        if executor is not None:
            executor.close()
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
    session = getattr(executor, "session", None)
    if session is not None:
        where = "a local Ray" if session.local else f"the Ray cluster at {session.address}"
        print(
            f"embedded on {where} ({session.cpus:g} CPUs; Ray started or joined in "
            f"{session.startup_seconds:.1f}s)"
        )
    workers = {name: n for name, n in report.writers.items() if name != "driver"}
    if workers:
        print(
            f"points upserted by {len(workers)} Ray writer process(es): {sum(workers.values())}; "
            f"by this process (reused vectors): {report.writers.get('driver', 0)}"
        )
    return 0


def _terminate(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _ask(args: argparse.Namespace) -> int:
    from rag.pipeline import QA

    result = QA.load(args.index).ask(args.question, args.top_k, args.sources)
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
        "--backend",
        default="local",
        help="search backend the chunks are stored in: local (default) or qdrant",
    )
    p.add_argument(
        "--qdrant-url",
        default=None,
        help="Qdrant server or cluster for --backend qdrant (default: $RAG_QDRANT_URL; "
        "without either, an embedded store inside the index folder); API key from "
        "$RAG_QDRANT_API_KEY",
    )
    p.add_argument(
        "--qdrant-collection",
        default=None,
        help="alias the build's collection is published under (default: rag)",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="re-embed everything, ignoring the previous index"
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="where chunks are embedded: local (this process, default) or ray (a Ray Data "
        "pipeline on a Ray cluster, or on a local Ray started for the build)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="head of the Ray cluster to join for --executor ray, host:port (default: "
        "$RAY_ADDRESS; without either, a local Ray with this machine's cores)",
    )
    p.set_defaults(func=_index)

    p = sub.add_parser("ask", help="answer a question from the index")
    p.add_argument("question")
    p.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the API's JSON response")
    p.add_argument(
        "--source",
        dest="sources",
        action="append",
        metavar="NAME",
        help="search only this indexed file (repeatable; names as GET /sources lists them)",
    )
    p.set_defaults(func=_ask)

    for command in entry_points(group=COMMANDS_GROUP):
        command.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
