"""Fixtures of the index tests shared by more than one file."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


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
