"""Bad input gets a clear 4xx in the one error shape, never a 500, a traceback or a hang.

Every case runs in-process (TestClient over `create_app`) and, for what only a real
server shows (chunked uploads, raw paths, slow bodies, the server log), against a real
`rag serve` over raw sockets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from rag.pipeline import QA
from tests.api.helpers import check_ask_contract, get_raw, raw_request, status_of
from tests.servers import ROOT, Server, serve

pytestmark = pytest.mark.slow

SOURCE = "000_7144c9d64f512035.txt"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(seed_index_dir: Path, qa: QA) -> Iterator[TestClient]:
    app = create_app(Settings(index_dir=seed_index_dir, api_key=None), qa=qa)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real server of our own, with a short body timeout so slow bodies are quick to test."""
    env = {"RAG_BODY_TIMEOUT": "1.5", "RAG_API_KEY": ""}
    with serve(seed_index_dir, tmp_path_factory.mktemp("errors-server"), env=env) as s:
        yield s


def assert_error(r: httpx.Response, status: int, code: str | None = None, says: str = "") -> str:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if code:
        assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert says.lower() in message.lower(), message
    assert "Traceback" not in message
    return message


def post_raw(client: TestClient, content: bytes, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return client.post("/ask", content=content, headers=headers)


# --- POST /ask: the question -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "question is required"),
        ({"top_k": 3}, "question is required"),
        ({"question": ""}, "empty or only whitespace"),
        ({"question": "   "}, "empty or only whitespace"),
        ({"question": "\t\n\r \u3000"}, "empty or only whitespace"),
        ({"question": None}, "question"),
        ({"question": 42}, "valid string"),
        ({"question": ["a"]}, "valid string"),
        ({"question": {"q": "a"}}, "valid string"),
    ],
)
def test_missing_or_empty_question_is_422(client: TestClient, body: dict, says: str) -> None:
    assert_error(client.post("/ask", json=body), 422, says=says)


def test_question_over_the_limit_is_422(client: TestClient) -> None:
    assert client.post("/ask", json={"question": "a " * 1000}).status_code == 200  # 2000
    message = assert_error(
        client.post("/ask", json={"question": "a" * 2001}), 422, "invalid_question"
    )
    assert "2001" in message
    assert "2000" in message


def test_question_limit_counts_characters_not_bytes(client: TestClient) -> None:
    # 2000 emoji are 8000 UTF-8 bytes: within the body limit and exactly at the limit.
    r = client.post("/ask", json={"question": "\U0001f600" * 2000})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "question",
    [
        "What happened?\x00",
        "\x00",
        "\x01\x02\x03 protests \x7f",
        "When did the protests start? \U0001f525\U0001f1ee\U0001f1f7",
        "\U0001f600\U0001f600\U0001f600",
        "متى بدأت الاحتجاجات في إيران؟",
        "?!.,;:'\"()[]{}",
        "...",
        "\u200b\u200d\ufeff",
        "e\u0301\u0301\u0301",
        "a\u202eb\u202c",
        "<script>alert(1)</script>",
        "'; DROP TABLE chunks; --",
        "%s %n {0} ${x}",
        "\\u0000",
        "Iran " * 399,
    ],
)
def test_odd_but_valid_questions_get_an_answer_or_null(client: TestClient, question: str) -> None:
    r = client.post("/ask", json={"question": question})
    assert r.status_code == 200, r.text
    # Whatever the question, what comes back is verbatim text at its offsets.
    check_ask_contract(r.json(), question.strip(), 5)  # echoed without surrounding spaces


def test_lone_surrogate_is_422_not_500(client: TestClient) -> None:
    # Valid JSON ("\ud800" escape) but not valid Unicode: the tokenizer raised on it (a 500).
    r = post_raw(client, b'{"question": "why \\ud800?"}')
    assert_error(r, 422, "invalid_question", "unpaired surrogate")


# --- POST /ask: top_k --------------------------------------------------------------


@pytest.mark.parametrize("top_k", [1, 20, 3.0])
def test_top_k_bounds_are_accepted(client: TestClient, top_k: int) -> None:
    # 3.0 is an integer in JSON Schema (the API's OpenAPI contract), so it is accepted.
    r = client.post("/ask", json={"question": "When did the protests begin?", "top_k": top_k})
    assert r.status_code == 200, r.text
    assert len(r.json()["citations"]) <= top_k


@pytest.mark.parametrize(
    "top_k",
    [0, -1, 21, 21.0, 10**30, True, False, "5", "five", 5.5, None, [5], {"k": 5}],
)
def test_top_k_out_of_range_or_not_an_integer_is_422(client: TestClient, top_k: object) -> None:
    # "5" and true are not coerced (documented in docs/reliability.md).
    message = assert_error(
        client.post("/ask", json={"question": "hi", "top_k": top_k}), 422, "invalid_request"
    )
    assert "top_k" in message


@pytest.mark.parametrize("raw", [b"1e400", b"-1e400", b"NaN", b"Infinity", b"99999999999999999999"])
def test_top_k_odd_json_numbers_are_422(client: TestClient, raw: bytes) -> None:
    assert_error(post_raw(client, b'{"question": "hi", "top_k": ' + raw + b"}"), 422)


# --- POST /ask: the body -----------------------------------------------------------


def test_unknown_fields_are_rejected(client: TestClient) -> None:
    message = assert_error(
        client.post("/ask", json={"question": "hi", "topk": 3}), 422, "invalid_request"
    )
    assert "unknown field 'topk'" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b'{"question": ', "not valid JSON"),
        (b"{question: 'hi'}", "not valid JSON"),
        (b'{"question": "hi",}', "not valid JSON"),
        (b'{"question": "hi"} trailing', "not valid JSON"),
        (b"\x00\x01", "not valid"),
    ],
)
def test_malformed_json_is_400(client: TestClient, content: bytes, says: str) -> None:
    assert_error(post_raw(client, content), 400, "invalid_json", says)


def test_invalid_utf8_is_400_naming_the_offset(client: TestClient) -> None:
    message = assert_error(
        post_raw(client, b'{"question": "caf\xe9?"}'), 400, "invalid_json", "not valid UTF-8"
    )
    assert "byte offset 17" in message


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_non_json_content_type_is_400_and_says_what_to_send(
    client: TestClient, content_type: str | None
) -> None:
    r = post_raw(client, b'{"question": "hi"}', content_type)
    message = assert_error(r, 400, "unsupported_media_type", "Content-Type: application/json")
    assert "valid dictionary" not in message


def test_json_content_type_variants_are_accepted(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/problem+json"):
        assert post_raw(client, b'{"question": "hi"}', content_type).status_code == 200


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"", "body is missing"),
        (b"[]", "JSON object"),
        (b'"hi"', "JSON object"),
        (b"42", "JSON object"),
        (b"null", "JSON object"),
    ],
)
def test_body_that_is_not_an_object_is_422(client: TestClient, content: bytes, says: str) -> None:
    assert_error(post_raw(client, content), 422, "invalid_request", says)


def test_body_over_64_kib_is_413(client: TestClient) -> None:
    big = b'{"question": "' + b"a" * (64 * 1024) + b'"}'
    assert_error(post_raw(client, big), 413, "too_large", "65536 bytes")


def test_body_of_exactly_the_limit_is_read(client: TestClient) -> None:
    head = b'{"question": "When did the protests begin?"'
    body = head + b" " * (64 * 1024 - len(head) - 1) + b"}"
    assert len(body) == 64 * 1024
    assert client.post("/ask", content=body, headers=JSON).status_code == 200


def test_wrong_methods_and_paths(client: TestClient) -> None:
    r = client.delete("/ask")
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"  # the route's, not the chat page's "GET, HEAD"
    assert_error(client.delete("/sources"), 405)
    assert_error(client.put("/health"), 405)
    assert_error(client.get("/no-such-route"), 404, "not_found")


# --- GET /sources/{name} -------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/sources/%2e%2e",
        "/sources/%2e%2e%2fpyproject.toml",
        "/sources/..%2F..%2F..%2Fetc%2Fpasswd",
        "/sources/%2e%2e/%2e%2e/etc/passwd",
        "/sources/%2Fetc%2Fpasswd",
        "/sources//etc/passwd",
        f"/sources/..%2Fseeds%2F{SOURCE}",
        f"/sources/seeds/{SOURCE}",
        f"/sources/{SOURCE}%00",
        f"/sources/{SOURCE}%00.txt",
        "/sources/%00",
        "/sources/%252e%252e%252fpyproject.toml",
        "/sources/~root",
        "/sources/" + "a" * 5000,
    ],
)
def test_sources_outside_the_corpus_are_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] in {"source_not_found", "not_found"}


def test_sources_lists_only_indexed_names_and_serves_them(client: TestClient) -> None:
    names = [s["source"] for s in client.get("/sources").json()["sources"]]
    assert SOURCE in names
    for name in names:
        assert ".." not in name
        assert not name.startswith("/")
    assert client.get(f"/sources/{SOURCE}").status_code == 200


def test_sources_are_served_from_the_index_not_the_disk(embedder, tmp_path: Path) -> None:
    """A corpus file changed on disk after the build is never read: /sources and /ask
    serve the indexed text, which now differs from the file; a file next to the corpus
    is 404."""
    import hashlib
    import shutil

    from rag.config import PipelineConfig
    from rag.index import build_index

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in (SOURCE, "001_77e29c8a411f06ba.txt"):
        shutil.copy(ROOT / "seeds" / name, corpus / name)
    (tmp_path / "secret.txt").write_text("SECRET next to the corpus\n")
    build_index(corpus, tmp_path / "index", PipelineConfig(), embedder=embedder)
    original = (corpus / SOURCE).read_text(encoding="utf-8")
    # Edited on disk after the build: every "Iran" becomes "IRAN-EDITED".
    edited = original.replace("Iran", "IRAN-EDITED")
    assert edited != original
    (corpus / SOURCE).write_text(edited, encoding="utf-8")

    qa = QA.load(tmp_path / "index", embedder=embedder)
    app = create_app(Settings(index_dir=tmp_path / "index", reload_interval=0), qa=qa)
    with TestClient(app) as c:
        stored = c.get(f"/sources/{SOURCE}").json()
        for para in stored["paragraphs"]:
            assert original[para["start"] : para["end"]] == para["text"]
        served = [p["text"] for p in stored["paragraphs"]]
        assert any("Iran" in t for t in served)
        assert not any("IRAN-EDITED" in t for t in served)
        assert stored["sha256"] == hashlib.sha256(original.encode()).hexdigest()
        body = c.post("/ask", json={"question": "What does Russia think about Iran?"}).json()
        cited = [x for x in body["citations"] if x["source"] == SOURCE]
        assert cited, body
        for x in cited:
            assert original[x["start"] : x["end"]] == x["text"]
        assert any(edited[x["start"] : x["end"]] != x["text"] for x in cited)
        # Names on disk but not in the index are 404, however they are spelled.
        for name in ("secret.txt", "../secret.txt", str(tmp_path / "secret.txt"), "pyproject.toml"):
            r = c.get(f"/sources/{name}")
            assert r.status_code == 404 and "SECRET" not in r.text


# --- errors never leak tracebacks ----------------------------------------------------


def test_unexpected_error_is_a_generic_500_and_the_traceback_goes_to_the_log(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = client.app.state.engine

    async def boom(question: str, top_k: int, sources=None):
        raise RuntimeError("secret internal detail /etc/shadow")

    monkeypatch.setattr(engine, "ask_with_build", boom)
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        r = client.post("/ask", json={"question": "hi"})
    message = assert_error(r, 500, "internal_error")
    assert "secret" not in r.text
    assert "RuntimeError" not in r.text
    assert "server log" in message
    assert any(
        rec.exc_info and "secret internal detail" in str(rec.exc_info[1]) for rec in caplog.records
    )


# --- against a real server -----------------------------------------------------------


def test_live_bad_requests_get_4xx(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        cases = [
            (c.post("/ask", json={}), 422),
            (c.post("/ask", json={"question": " "}), 422),
            (c.post("/ask", json={"question": "x" * 2001}), 422),
            (c.post("/ask", json={"question": "hi", "top_k": "5"}), 422),
            (c.post("/ask", json={"question": "hi", "extra": 1}), 422),
            (c.post("/ask", content=b"{", headers=JSON), 400),
            (c.post("/ask", content=b'{"question": "\xff"}', headers=JSON), 400),
            (
                c.post(
                    "/ask", content=b'{"question": "hi"}', headers={"content-type": "text/plain"}
                ),
                400,
            ),
            (c.post("/ask", data={"question": "hi"}), 400),
            (c.post("/ask", content=b'{"question": "\\udfff"}', headers=JSON), 422),
            (c.get("/sources/%2e%2e%2f%2e%2e%2fetc%2fpasswd"), 404),
            (c.get("/sources/..%2Fpyproject.toml"), 404),
            (c.get("/sources/%00"), 404),
        ]
        for r, status in cases:
            assert_error(r, status)
        ok = c.post("/ask", json={"question": "When did the protests in Iran begin?"})
        assert ok.status_code == 200


def test_live_oversized_body_by_content_length_is_413_before_it_is_sent(server: Server) -> None:
    head = (
        b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )
    # Only the head is sent: the 413 must come without the server waiting for 10 MB.
    reply = raw_request(server, head, timeout=10)
    assert status_of(reply) == 413
    assert b'"too_large"' in reply


def test_live_chunked_upload_over_the_limit_is_413(server: Server) -> None:
    chunk = b"a" * 16384
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    head = (
        b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    # 5 x 16 KiB = 80 KiB, then (were it still reading) 10 MB more that is never sent.
    reply = raw_request(server, head + b'14\r\n{"question": "aaaaaa\r\n' + piece * 5, timeout=10)
    assert status_of(reply) == 413
    assert b'"too_large"' in reply


def test_live_streamed_upload_over_the_limit_is_413_without_reading_it_whole(
    server: Server,
) -> None:
    sent = 0

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield b'{"question": "'
        for _ in range(128):  # 2 MiB, 32 times the limit
            sent += 16384
            yield b"a" * 16384

    with httpx.Client(timeout=30) as c:
        try:
            r = c.post(f"{server.url}/ask", content=body(), headers=JSON)
        except httpx.HTTPError:
            pytest.fail("the server dropped the connection instead of replying 413")
    assert_error(r, 413, "too_large")
    assert sent > 64 * 1024
    assert "Traceback" not in server.log()


def test_live_chunked_upload_within_the_limit_is_answered(server: Server) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"question": "When did the protests'
        yield b' in Iran begin?"}'

    r = httpx.post(f"{server.url}/ask", content=body(), headers=JSON, timeout=30)
    assert r.status_code == 200, r.text


def test_live_slow_body_gets_408_instead_of_holding_the_connection(server: Server) -> None:
    head = (
        b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"question": '
    )
    started = time.monotonic()
    reply = raw_request(server, head, timeout=15)  # 13 of 100 bytes, then silence
    assert status_of(reply) == 408
    assert b'"timeout"' in reply
    assert time.monotonic() - started < 10


def test_live_raw_paths_cannot_escape(server: Server) -> None:
    secret = (ROOT / "api" / "settings.py").read_bytes()[:60]
    paths = [
        b"/sources/../../etc/passwd",
        b"/sources/..%2f..%2f..%2fetc%2fpasswd",
        b"/sources/%2e%2e/%2e%2e/api/settings.py",
        b"/sources/%2e%2e%2fapi%2fsettings.py",
        b"/../api/settings.py",
        b"/%2e%2e/settings.py",
        b"/..%2fsettings.py",
        b"/static/../../settings.py",
        b"/sources/\x00",
        b"/sources/%00",
        b"/sources/./" + SOURCE.encode() + b"%00",
        b"/sources/seeds/" + SOURCE.encode(),
        b"/etc/passwd",
    ]
    for path in paths:
        reply = raw_request(server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status = status_of(reply) if reply else 0
        assert status in {400, 404}, (path, reply[:300])
        assert b"root:" not in reply
        assert secret not in reply


def test_live_server_log_has_no_tracebacks_after_bad_input(
    seed_index_dir: Path, tmp_path: Path
) -> None:
    """Hostile input of every kind, sent here to a server of this test's own (so the
    check holds however the tests are ordered or selected), leaves no traceback and no
    500 in its log."""
    env = {"RAG_BODY_TIMEOUT": "1.5", "RAG_API_KEY": ""}
    with serve(seed_index_dir, tmp_path, env=env) as server:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            for content in (
                b"\xff\xfe",
                b"{",
                b"[" * 5000 + b"]" * 5000,
                b'{"question": "\\ud800"}',
                b'{"question": "hi", "top_k": 1e400}',
                b'{"question": "' + b"a" * 70000 + b'"}',
            ):
                assert 400 <= c.post("/ask", content=content, headers=JSON).status_code < 500
            for path in ("/sources/%2e%2e%2fpyproject.toml", "/sources/%00", "/nope"):
                assert c.get(path).status_code == 404
        head = b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        assert status_of(raw_request(server, head + b"Content-Length: 10000000\r\n\r\n")) == 413
        chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"4000\r\n" + b"a" * 16384
        assert status_of(
            raw_request(server, chunked + b"\r\n" + b"4000\r\n" + b"a" * 16384 * 5)
        ) in {400, 413}
        slow = head + b'Content-Length: 100\r\n\r\n{"question": '
        assert status_of(raw_request(server, slow, timeout=15)) == 408
        for path in (b"/sources/../../etc/passwd", b"/../api/settings.py", b"/sources/\x00"):
            reply = get_raw(server, path)
            assert not reply or status_of(reply) in {400, 404}
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
        log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert " 500 " not in log, log[-3000:]
    assert " 413 " in log and " 408 " in log  # the log is the one these requests reached
