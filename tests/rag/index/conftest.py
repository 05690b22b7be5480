"""Fixtures of the index tests shared by more than one file."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def clean_env() -> Iterator[None]:
    """The embedded store and the deployment's settings, whatever the shell exports."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("RAG_QDRANT_URL", "RAG_QDRANT_SETTINGS", "RAG_QDRANT_API_KEY"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="session")
def ray_head() -> Iterator[object]:
    """One local Ray for the session; every Ray build of the tests joins it
    (test_ray_executor.py, test_ray_qdrant.py)."""
    from rag.index.executors.ray_cluster import ray_session
    from tests.rag.index.test_ray_executor import _alive

    with ray_session(cpus=os.cpu_count() or 2) as session:
        yield session
    supervisor = session.supervisor_pid
    assert supervisor is not None
    assert not _alive(supervisor)
