"""Faults: a build killed with SIGKILL, damaged index files, and a rebuild while the
server answers (corpus files that are broken, binary, empty, links or vanish:
tests/rag/test_corpus.py).

Everything runs the real CLI in subprocesses over copies of the session's seed index;
the shared index itself is never touched.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from rag.chunker import split_paragraphs
from rag.config import ChunkerConfig
from rag.corpus import read_corpus
from rag.errors import IndexMismatchError
from rag.index import load_index
from tests.cli import fingerprint, rag
from tests.servers import ROOT, serve

pytestmark = pytest.mark.slow

SEEDS = ROOT / "seeds"
QUESTION = {"question": "When did the protests in Iran begin?"}


@pytest.fixture
def index_copy(seed_index_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "index"
    shutil.copytree(seed_index_dir, out)
    return out


def big_corpus(folder: Path, files: int = 15) -> Path:
    """Unique text, so nothing comes from the vector cache and embedding takes a while."""
    sentences = [
        s.strip() + "."
        for p in sorted(SEEDS.glob("*.txt"))
        for s in p.read_text().split(".")
        if len(s.split()) > 5
    ]
    rng = random.Random(7)
    folder.mkdir()
    for i in range(files):
        paragraphs = []
        for j in range(40):
            picked = rng.sample(sentences, 3)
            paragraphs.append(f"Report {i}-{j}. " + " ".join(picked))
        (folder / f"article_{i:03}.txt").write_text("\n\n".join(paragraphs))
    return folder


# A real `rag index` process, with the model's forward pass and numpy.save wrapped to
# leave a marker file when they first run, so the test knows which phase the build is in.
_HOOKED_BUILD = """
import sys, time
from pathlib import Path
import numpy as np
from rag.encoders import TorchEncoder
marker = Path(sys.argv[1])
phase = sys.argv[2]
forward = TorchEncoder.hidden
def hooked_forward(self, *a, **k):
    if phase == "embedding" and not marker.exists():
        marker.write_text("embedding")
    return forward(self, *a, **k)
TorchEncoder.hidden = hooked_forward
save = np.save
def hooked_save(*a, **k):
    save(*a, **k)
    if phase == "writing":
        marker.write_text("writing")
        time.sleep(600)
np.save = hooked_save
from rag.cli import main
sys.exit(main(sys.argv[3:]))
"""


def kill_build_during(phase: str, corpus: Path, out: Path, marker: Path) -> None:
    args = ["index", "--corpus", str(corpus), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOOKED_BUILD, str(marker), phase, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the build never reached the phase"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the phase
        assert proc.poll() is None, "the build finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_9_mid_embedding_leaves_the_previous_index_intact_and_served(
    index_copy: Path, tmp_path: Path
) -> None:
    before = fingerprint(index_copy)
    build_id = json.loads((index_copy / "manifest.json").read_text())["build_id"]
    corpus = big_corpus(tmp_path / "big")
    kill_build_during("embedding", corpus, index_copy, tmp_path / "marker")

    assert fingerprint(index_copy) == before
    assert load_index(index_copy).manifest.build_id == build_id
    with serve(index_copy, tmp_path) as server:
        health = httpx.get(f"{server.url}/health", timeout=10).json()
        assert health["build_id"] == build_id
        r = httpx.post(f"{server.url}/ask", json=QUESTION, timeout=60)
        assert r.status_code == 200
        assert r.json()["answer"]


def test_kill_9_while_writing_the_new_index_leaves_the_previous_one(
    index_copy: Path, tmp_path: Path
) -> None:
    before = fingerprint(index_copy)
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    (corpus / "extra.txt").write_text("A new article about the weather in Lisbon today.\n")
    kill_build_during("writing", corpus, index_copy, tmp_path / "marker")

    # The half-written build is in a temporary folder beside the index, never in it.
    leftovers = list(tmp_path.glob(".index.tmp-*"))
    assert leftovers, "the build was expected to die with its temporary folder in place"
    # Killed mid-write: chunk rows written (wherever the backend stages them), no manifest.
    assert any(leftovers[0].rglob("chunks.jsonl")), sorted(leftovers[0].rglob("*"))
    assert not any(leftovers[0].rglob("manifest.json"))
    assert fingerprint(index_copy) == before
    load_index(index_copy)

    # The next build succeeds despite the leftover, and swaps in atomically.
    done = rag("index", "--corpus", str(corpus), "--out", str(index_copy))
    assert done.returncode == 0, done.stderr
    assert "extra.txt" in load_index(index_copy).documents


# --- damaged index -------------------------------------------------------------------


def _truncate(name: str) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        data = (index / name).read_bytes()
        (index / name).write_bytes(data[: len(data) // 2])

    return damage


def _drop_chunk_line(index: Path) -> None:
    lines = (index / "chunks.jsonl").read_text().splitlines(keepends=True)
    del lines[len(lines) // 2]
    (index / "chunks.jsonl").write_text("".join(lines))


def _edit_manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        manifest = json.loads((index / "manifest.json").read_text())
        edit(manifest)
        (index / "manifest.json").write_text(json.dumps(manifest))

    return damage


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(manifest: dict) -> None:
        target = manifest
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return _edit_manifest(edit)


def _drop(*path):
    def edit(manifest: dict) -> None:
        target = manifest
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return _edit_manifest(edit)


def _flip_byte(name: str) -> Callable[[Path], None]:
    def damage(index: Path) -> None:
        data = bytearray((index / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (index / name).write_bytes(bytes(data))

    return damage


DAMAGE = {
    "truncated dense.faiss": (_truncate("dense.faiss"), "dense.faiss is damaged"),
    "empty dense.faiss": (lambda i: (i / "dense.faiss").write_bytes(b""), "dense.faiss"),
    "chunks.jsonl line removed": (_drop_chunk_line, "chunks.jsonl is damaged"),
    "chunks.jsonl byte flipped": (_flip_byte("chunks.jsonl"), "chunks.jsonl is damaged"),
    "documents.jsonl byte flipped": (_flip_byte("documents.jsonl"), "documents.jsonl"),
    "truncated tokens.npy": (_truncate("tokens.npy"), "tokens.npy is damaged"),
    "sparse index removed": (lambda i: shutil.rmtree(i / "sparse"), "sparse"),
    "missing token_offsets.npy": (
        lambda i: (i / "token_offsets.npy").unlink(),
        "token_offsets.npy is missing",
    ),
    "manifest chunk count changed": (
        _edit_manifest(lambda m: m["counts"].update(chunks=m["counts"]["chunks"] + 1)),
        "manifest says",
    ),
    "manifest document count changed": (
        _edit_manifest(lambda m: m["counts"].update(documents=m["counts"]["documents"] + 1)),
        "documents",
    ),
    "manifest model name changed": (_set("model", "name", "other-model"), "other-model"),
    "manifest and config model changed": (
        _edit_manifest(
            lambda m: (
                m["model"].update(name="all-mpnet-base-v2"),
                m["config"]["embedder"].update(model="all-mpnet-base-v2"),
            )
        ),
        "all-mpnet-base-v2",
    ),
    "manifest dimension changed": (_set("model", "dimension", 768), "dimension"),
    "manifest file checksum changed": (
        _set("files", "dense.faiss", "0" * 64),
        "dense.faiss is damaged",
    ),
    "manifest counts missing": (_drop("counts"), "lacks 'counts'"),
    "manifest not JSON": (
        lambda i: (i / "manifest.json").write_text("{not json"),
        "manifest.json is unreadable",
    ),
    "manifest a list": (lambda i: (i / "manifest.json").write_text("[]"), "not a JSON object"),
    "manifest count a string": (_set("counts", "chunks", "many"), "'counts.chunks'"),
    "format version changed": (_set("format_version", 99), "format version"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_is_refused_naming_the_problem_and_the_fix(
    index_copy: Path, damage: str
) -> None:
    apply, says = DAMAGE[damage]
    apply(index_copy)
    with pytest.raises(IndexMismatchError) as err:
        load_index(index_copy)
    message = str(err.value)
    assert says in message, message
    assert f"rag index --corpus <DIR> --out {index_copy}" in message

    # `rag serve` does not start on it: one line on stderr, exit code 2, no traceback.
    proc = rag("serve", "--index", str(index_copy), "--port", "1", timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr
    assert "rag index" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_missing_index_is_refused_with_the_build_command(tmp_path: Path) -> None:
    proc = rag("serve", "--index", str(tmp_path / "nothing"), "--port", "1", timeout=120)
    assert proc.returncode == 2
    assert "no index at" in proc.stderr
    assert "rag index" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- hot reload ----------------------------------------------------------------------


class Hammer:
    """N threads asking questions (and reading /sources) until stopped, keeping every
    response with the build id it says it came from."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.answers: list[tuple[str, dict]] = []  # (X-Index-Build, body) of POST /ask
        self.source_lists: list[frozenset[str]] = []
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> Hammer:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(60)

    def builds(self) -> set[str]:
        with self.lock:
            return {build for build, _ in self.answers}

    def _run(self, i: int) -> None:
        questions = [
            "When did the protests in Iran begin?",
            "What did Russia say about the protests?",
            "What is the weather like in Lisbon?",
            "How many people live in Iran?",
        ]
        with httpx.Client(base_url=self.url, timeout=60) as c:
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    if n % 10 == 0:
                        r = c.get("/sources")
                    else:
                        body = {"question": questions[(i + n) % len(questions)], "top_k": 3}
                        r = c.post("/ask", json=body)
                    if r.status_code != 200:
                        raise AssertionError(f"{r.status_code} {r.text[:200]}")
                    data = r.json()
                    with self.lock:
                        self.ok += 1
                        if n % 10 == 0:
                            self.source_lists.append(
                                frozenset(s["source"] for s in data["sources"])
                            )
                        else:
                            self.answers.append((r.headers.get("x-index-build", ""), data))
                except Exception as exc:
                    with self.lock:
                        self.failures.append(repr(exc))
                    time.sleep(0.5)


class Build:
    """What a build holds, from its corpus on disk: each file's text and paragraphs."""

    def __init__(self, corpus: Path) -> None:
        docs = read_corpus(corpus)
        self.texts = {d.source: d.text for d in docs}
        self.paragraphs = {
            d.source: {p.number: p for p in split_paragraphs(d, ChunkerConfig())} for d in docs
        }

    def holds(self, source: str, paragraph: int, start: int, end: int, text: str) -> bool:
        """The span is this build's text, inside the paragraph it is numbered with."""
        p = self.paragraphs.get(source, {}).get(paragraph)
        return (
            p is not None
            and p.start <= start < end <= p.end
            and self.texts[source][start:end] == text
        )

    def explains(self, body: dict) -> bool:
        """Every citation and the answer of a response exist in this build."""
        spans = [
            (c["source"], c["paragraph"], c["start"], c["end"], c["text"])
            for c in body["citations"]
        ]
        if body["answer"] is not None:
            a = body["answer_source"]
            spans.append((a["source"], a["paragraph"], a["start"], a["end"], body["answer"]))
        return bool(body["citations"]) and all(self.holds(*span) for span in spans)


def build_id(index: Path) -> str:
    return json.loads((index / "manifest.json").read_text())["build_id"]


def test_hot_reload_under_concurrent_requests_loses_nothing(
    index_copy: Path, tmp_path: Path
) -> None:
    """Every response comes from one build, whole: its citations exist in the build its
    X-Index-Build header names, at their offsets and paragraph numbers. The new build
    moves every seed paragraph (a line is added at the top of each file), so a response
    mixing the two builds cannot pass for either."""
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    for f in corpus.glob("*.txt"):
        f.write_text(
            "Reprinted with corrections.\n" + f.read_text(encoding="utf-8"), encoding="utf-8"
        )
    (corpus / "lisbon.txt").write_text(
        "Lisbon weather\n\nThe weather in Lisbon today is sunny and mild, with a light "
        "breeze from the Atlantic and a high of 21 degrees.\n"
    )
    builds = {build_id(index_copy): Build(SEEDS)}
    old = build_id(index_copy)
    env = {"RAG_RELOAD_INTERVAL": "0.5"}
    with serve(index_copy, tmp_path, env=env) as server:
        with Hammer(server.url, clients=4) as load:
            wait_for(lambda: load.ok >= 4 or load.failures, 120, "no answers before the rebuild")
            done = rag("index", "--corpus", str(corpus), "--out", str(index_copy))
            assert done.returncode == 0, done.stderr
            new = build_id(index_copy)
            assert new != old
            builds[new] = Build(corpus)
            wait_for(
                lambda: httpx.get(f"{server.url}/health", timeout=30).json()["build_id"] == new,
                60,
                "the server did not reload the new build",
            )
            # Keep asking on the new index (the machine is shared: count answers, not time).
            wait_for(
                lambda: sum(b == new for b, _ in list(load.answers)) >= 8 or load.failures,
                120,
                "no answers from the new build",
            )
        assert load.failures == [], load.failures[:5]
        # Both builds answered, and each response is wholly from the build it names.
        served = [b for b, _ in load.answers]
        assert set(served) == {old, new}, set(served)
        assert served.count(old) >= 1 and served.count(new) >= 8
        for build, body in load.answers:
            other = new if build == old else old
            assert builds[build].explains(body), (build, body)
            assert not builds[other].explains(body), (build, body)
        # /sources lists one build's files, never a mixture.
        old_names, new_names = set(builds[old].texts), set(builds[new].texts)
        assert {frozenset(old_names), frozenset(new_names)} >= set(load.source_lists)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            names = {s["source"] for s in c.get("/sources").json()["sources"]}
            assert names == new_names and "lisbon.txt" in names
            r = c.post("/ask", json={"question": "What is the weather like in Lisbon today?"})
            assert r.headers["x-index-build"] == new
            assert r.json()["citations"][0]["source"] == "lisbon.txt"
        assert "Traceback" not in server.log()


def wait_for(condition: Callable[[], bool], seconds: float, message: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.2)


def test_damaged_build_on_disk_keeps_the_served_index(index_copy: Path, tmp_path: Path) -> None:
    """A new manifest whose files do not check out is refused; the old index stays."""
    old = build_id(index_copy)
    with serve(index_copy, tmp_path, env={"RAG_RELOAD_INTERVAL": "0.3"}) as server:
        broken = tmp_path / "broken"
        shutil.copytree(index_copy, broken)
        _set("build_id", "f" * 32)(broken)
        _truncate("dense.faiss")(broken)
        for name in ("dense.faiss", "manifest.json"):  # manifest last, as a build would
            os.replace(broken / name, index_copy / name)
        time.sleep(2)
        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert c.get("/health").json()["build_id"] == old
            assert c.post("/ask", json=QUESTION).status_code == 200
        log = server.log()
        assert "cannot be loaded, keeping the current one" in log
        assert "dense.faiss is damaged" in log
        assert log.count("cannot be loaded") == 1  # reported once, not every poll
        assert "Traceback" not in log
