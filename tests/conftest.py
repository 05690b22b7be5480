"""Shared fixtures. The expensive ones (model, seed index, live server) are built once
per test session from the real components."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag.config import EmbedderConfig, PipelineConfig
from rag.embedder import Embedder
from rag.index import build_index
from rag.pipeline import QA
from rag.runtime import configure
from tests.servers import Server, serve

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    configure()
    return Embedder(EmbedderConfig())


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A real index (FAISS + BM25) over seeds/, built once."""
    out = tmp_path_factory.mktemp("seed-index") / "index"
    build_index(SEEDS, out, PipelineConfig(), embedder=embedder)
    return out


@pytest.fixture(scope="session")
def qa(seed_index_dir: Path, embedder: Embedder) -> QA:
    return QA.load(seed_index_dir, embedder=embedder)


@pytest.fixture(scope="session")
def live_server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real uvicorn server (`rag serve`) on a free port over the seed index."""
    with serve(seed_index_dir, tmp_path_factory.mktemp("server-logs")) as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A real browser is never part of the inner loop (`pytest -m "not slow"`), whatever
    # else its test needs.
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
