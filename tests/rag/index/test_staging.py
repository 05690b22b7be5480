"""Staging folders of killed builds: a build killed with SIGKILL runs no clean-up and
leaves its `.<index>.tmp-*` folder beside the index; the next build removes it, and
only folders whose building process is dead."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rag.embedder import Embedder
from rag.index import build_index, load_index
from rag.index.build import remove_stale_staging, staging_folder
from tests.servers import ROOT

# A process that makes its staging folder, writes into it and dies by SIGKILL.
_DIE = """
import os, signal, sys
from pathlib import Path
from rag.index.build import staging_folder
tmp = staging_folder(Path(sys.argv[1]))
(tmp / "chunks.jsonl").write_text("half written")
print(tmp, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_build_folder(out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-c", _DIE, str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    folder = Path(proc.stdout.strip())
    assert folder.is_dir() and folder.parent == out.parent
    return folder


def test_staging_folder_names_its_process(tmp_path: Path) -> None:
    tmp = staging_folder(tmp_path / "index")
    assert tmp.is_dir() and not any(tmp.iterdir())
    assert tmp.name.startswith(".index.tmp-")
    assert tmp.name.endswith(f"-{os.getpid()}-{socket.gethostname()}")


def test_only_folders_of_dead_builds_on_this_host_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "index"
    dead = _killed_build_folder(out)
    live = staging_folder(out)  # this process: a build still running
    other_host = tmp_path / f".index.tmp-0123abcd-{dead.name.split('-')[2]}-elsewhere.example"
    unowned = tmp_path / ".index.tmp-0123abcd"  # no owner recorded: cannot tell
    other_index = tmp_path / f".other.tmp-0123abcd-{dead.name.split('-')[2]}-{socket.gethostname()}"
    for folder in (other_host, unowned, other_index):
        folder.mkdir()

    assert remove_stale_staging(out) == [dead]
    assert not dead.exists()
    assert all(p.is_dir() for p in (live, other_host, unowned, other_index))
    assert remove_stale_staging(out) == []


@pytest.mark.slow
def test_the_next_build_removes_a_killed_builds_folder(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Lisbon had sun and a light wind on Monday.\n")
    out = tmp_path / "index"
    dead = _killed_build_folder(out)
    report = build_index(corpus, out, embedder=embedder, use_cache=False)
    assert report.chunks == 1
    assert not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "index"]
    load_index(out)
