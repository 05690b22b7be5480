"""Checks and raw-socket helpers shared by the API tests."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.servers import ROOT, Server

SEEDS = ROOT / "seeds"


def check_ask_contract(body: dict, question: str, top_k: int, corpus: Path = SEEDS) -> None:
    """The verbatim contract of POST /ask (README, HTTP API), checked against the files
    on disk: every citation is the file's text at its offsets; the answer too, inside
    citations[0]; no answer means no answer_source."""
    assert set(body) == {"question", "answer", "answer_source", "confidence", "citations"}
    assert body["question"] == question
    assert 0.0 <= body["confidence"] <= 1.0
    assert 1 <= len(body["citations"]) <= top_k
    for c in body["citations"]:
        assert set(c) == {"source", "paragraph", "start", "end", "text", "score", "also_in"}
        text = (corpus / c["source"]).read_text(encoding="utf-8")
        assert text[c["start"] : c["end"]] == c["text"]
        assert c["text"].strip() == c["text"] and c["text"]
        for other in c["also_in"]:
            assert set(other) == {"source", "paragraph"}
    if body["answer"] is not None:
        src = body["answer_source"]
        first = body["citations"][0]
        assert (src["source"], src["paragraph"]) == (first["source"], first["paragraph"])
        assert first["start"] <= src["start"] < src["end"] <= first["end"]
        text = (corpus / src["source"]).read_text(encoding="utf-8")
        assert text[src["start"] : src["end"]] == body["answer"]
    else:
        assert body["answer_source"] is None


def raw_request(server: Server, data: bytes, *, timeout: float = 10, pause: float = 0) -> bytes:
    """Send raw bytes (split at b'\\x00PAUSE\\x00' with a pause) and read the whole reply.
    Nothing normalises the request line on the way, unlike an HTTP client."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        for i, part in enumerate(data.split(b"\x00PAUSE\x00")):
            if i:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
        return b"".join(chunks)


def _complete(reply: bytes) -> bool:
    head, _, body = reply.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ")[1])


def get_raw(server: Server, path: bytes) -> bytes:
    return raw_request(
        server, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
