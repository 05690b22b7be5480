"""The HTTP contract, in process (TestClient) and through a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from rag.pipeline import QA
from tests.api.helpers import check_ask_contract, get_raw, status_of
from tests.servers import ROOT

pytestmark = pytest.mark.slow

QUESTION = "When did the protests in Iran begin?"


@pytest.fixture(scope="module")
def client(seed_index_dir: Path, qa: QA) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(index_dir=seed_index_dir, reload_interval=0), qa=qa)) as c:
        yield c


def test_ask_answers_with_verbatim_citations(client: TestClient) -> None:
    response = client.post("/ask", json={"question": QUESTION, "top_k": 3})
    assert response.status_code == 200
    body = response.json()
    check_ask_contract(body, QUESTION, 3)
    assert "December" in body["answer"]
    # The build that answered, as /health and the manifest name it.
    build = client.get("/health").json()["build_id"]
    assert response.headers["x-index-build"] == build and len(build) == 32


def test_ask_defaults_to_five_citations(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "Who is Nikita Smagin?"}).json()
    assert len(body["citations"]) == 5


def test_ask_out_of_corpus_is_null(client: TestClient) -> None:
    body = client.post("/ask", json={"question": "Who won the 2018 FIFA World Cup?"}).json()
    check_ask_contract(body, "Who won the 2018 FIFA World Cup?", 5)
    assert body["answer"] is None


@pytest.mark.parametrize("top_k", [0, 21, "five", None])
def test_ask_rejects_bad_top_k(client: TestClient, top_k) -> None:
    response = client.post("/ask", json={"question": QUESTION, "top_k": top_k})
    assert response.status_code == 422
    assert "top_k" in response.json()["error"]["message"]


def test_health_reports_the_loaded_index(client: TestClient, seed_index_dir: Path) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["counts"]["documents"] == 5 and body["counts"]["chunks"] == 218
    assert body["built_at"]
    assert body["runtimes"]["documents"].startswith("torch ")
    assert body["runtimes"]["questions"].startswith("onnxruntime ")
    assert (body["backend"], body["dense_index"]) == ("local", "flat")


def test_sources_lists_the_corpus(client: TestClient) -> None:
    names = [s["source"] for s in client.get("/sources").json()["sources"]]
    assert names == sorted(p.name for p in (ROOT / "seeds").iterdir())


def test_source_paragraphs_have_numbers_and_offsets(client: TestClient) -> None:
    body = client.get("/sources/000_7144c9d64f512035.txt").json()
    text = (ROOT / "seeds" / "000_7144c9d64f512035.txt").read_text(encoding="utf-8")
    paragraphs = body["paragraphs"]
    assert [p["paragraph"] for p in paragraphs] == list(range(1, 25))
    assert paragraphs[1] == {
        "paragraph": 2,
        "start": 348,
        "end": 382,
        "kind": "heading",
        "text": "Kremlin Sees Protests as Contained",
    }
    assert all(text[p["start"] : p["end"]] == p["text"] for p in paragraphs)


@pytest.mark.parametrize(
    "name", ["nope.txt", "..%2Fpyproject.toml", "%2e%2e%2fREADME.md", "%2Fetc%2Fpasswd"]
)
def test_unknown_or_escaping_source_names_are_404(client: TestClient, name: str) -> None:
    response = client.get(f"/sources/{name}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "source_not_found"


# Lines that only the files themselves hold: a reply quoting one has read the file.
_PYPROJECT = (ROOT / "pyproject.toml").read_bytes()
_README = (ROOT / "README.md").read_bytes()


def _leaks(reply: bytes) -> bool:
    lines = [ln for text in (_PYPROJECT, _README) for ln in text.splitlines() if len(ln) > 20]
    return any(ln in reply for ln in lines) or b"root:x:0:0" in reply


@pytest.mark.parametrize(
    "path",
    [
        b"/sources/../pyproject.toml",
        b"/sources/../../pyproject.toml",
        b"/sources/..%2Fpyproject.toml",
        b"/sources/%2e%2e/README.md",
        b"/sources/%2e%2e%2fREADME.md",
        b"/sources/./../README.md",
        b"/sources/" + str(ROOT / "pyproject.toml").encode(),
        b"/sources//etc/passwd",
    ],
)
def test_raw_escaping_paths_never_read_the_file(live_server, path: bytes) -> None:
    """Sent as raw bytes: an HTTP client would normalise `../` away before it reached
    /sources/{name}. Whatever the status, the file's contents never come back."""
    reply = get_raw(live_server, path)
    assert status_of(reply) in {400, 404}, reply[:300]
    assert not _leaks(reply), reply[:500]


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/ask", "/health", "/sources", "/sources/{name}"} <= set(schema["paths"])


def test_real_server_answers_like_the_library(live_server, qa: QA) -> None:
    response = httpx.post(f"{live_server.url}/ask", json={"question": QUESTION}, timeout=30)
    assert response.status_code == 200
    body = response.json()
    check_ask_contract(body, QUESTION, 5)
    assert body == qa.ask(QUESTION).to_dict()
    health = httpx.get(f"{live_server.url}/health", timeout=10).json()
    assert health["counts"]["chunks"] == 218
    page = httpx.get(f"{live_server.url}/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
