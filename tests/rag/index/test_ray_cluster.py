"""A local Ray head that cannot start: the error carries Ray's own words, and nothing
is left running."""

from __future__ import annotations

import psutil
import pytest

from rag.index.executors.ray_cluster import LocalHead, RayStartError


def _processes_of(port: int) -> list[int]:
    """Live processes whose command line names the head's port."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(port) in arg for arg in proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


@pytest.mark.slow  # runs `ray start`, which refuses the setting within seconds
def test_a_head_that_cannot_start_says_why_and_leaves_nothing() -> None:
    head = LocalHead(cpus=1, object_store_bytes=1)  # below Ray's minimum object store
    said = r"could not start a local Ray head \(it stopped\): ValueError: .*object store"
    with pytest.raises(RayStartError, match=said):
        head.wait_ready(timeout=120)
    assert head.process.poll() is not None
    assert _processes_of(head.port) == []
