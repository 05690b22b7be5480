"""Security defaults: loopback bind, CORS off unless allow-listed, optional API key checked
in constant time, and size/length limits configurable from the environment."""

from __future__ import annotations

import asyncio
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from api import deps
from api.main import create_app
from api.settings import Settings, SettingsError
from rag.pipeline import QA
from tests.servers import ROOT, Server, serve

KEY = "s3cret-key-\u00e9"  # non-ASCII on purpose: compared as UTF-8 bytes
GOOD = "https://app.example"
EVIL = "https://evil.example"
QUESTION = {"question": "When did the protests in Iran begin?"}
SOURCE = "000_7144c9d64f512035.txt"


# --- settings (fast: no model, no index) -------------------------------------------


def test_defaults_are_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAG_HOST", "RAG_API_KEY", "RAG_CORS_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings()
    assert s.host == "127.0.0.1"
    assert s.api_key is None
    assert s.cors_origins == []
    assert s.max_body_bytes == 64 * 1024
    assert s.max_question_chars == 2000


def test_cli_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import serve_settings
    from rag.cli import build_parser

    monkeypatch.delenv("RAG_HOST", raising=False)
    assert serve_settings(build_parser().parse_args(["serve"])).host == "127.0.0.1"
    monkeypatch.setenv("RAG_HOST", "0.0.0.0")
    assert serve_settings(build_parser().parse_args(["serve"])).host == "0.0.0.0"
    args = build_parser().parse_args(["serve", "--host", "127.0.0.2"])
    assert serve_settings(args).host == "127.0.0.2"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_KEY", "k-9f3a")
    monkeypatch.setenv("RAG_CORS_ORIGINS", f"{GOOD}, https://b.example")
    monkeypatch.setenv("RAG_MAX_QUESTION_CHARS", "50")
    monkeypatch.setenv("RAG_MAX_BODY_BYTES", "1000")
    monkeypatch.setenv("RAG_BODY_TIMEOUT", "2.5")
    monkeypatch.setenv("RAG_RELOAD_INTERVAL", "0")
    s = Settings()
    assert s.api_key is not None and s.api_key.get_secret_value() == "k-9f3a"
    assert "9f3a" not in repr(s)  # the key is a SecretStr, never logged by accident
    assert s.cors_origins == [GOOD, "https://b.example"]
    assert (s.max_question_chars, s.max_body_bytes, s.body_timeout) == (50, 1000, 2.5)
    assert s.reload_interval == 0
    monkeypatch.setenv("RAG_CORS_ORIGINS", f'["{GOOD}"]')
    assert Settings().cors_origins == [GOOD]


def test_an_empty_api_key_means_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # Otherwise RAG_API_KEY= would make an empty bearer token the key.
    monkeypatch.setenv("RAG_API_KEY", "")
    assert Settings().api_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAG_MAX_BODY_BYTES", "0"),
        ("RAG_MAX_BODY_BYTES", "lots"),
        ("RAG_MAX_QUESTION_CHARS", "-1"),
        ("RAG_BODY_TIMEOUT", "0"),
        ("RAG_CORS_ORIGINS", "[not json"),
    ],
)
def test_a_bad_setting_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        Settings()


@pytest.mark.slow  # runs `rag serve` in a subprocess
def test_bad_setting_stops_rag_serve_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rag", "serve", "--index", str(tmp_path), "--port", "1"],
        cwd=ROOT,
        env={**_env(), "RAG_MAX_BODY_BYTES": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "RAG_MAX_BODY_BYTES" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_api_key_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(deps.secrets, "compare_digest", spy)
    settings = Settings(api_key="abc")
    with pytest.raises(Exception, match="API key"):
        asyncio.run(deps.require_api_key(settings, None))
    assert calls == [(b"", b"abc")]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}


# --- in-process app ----------------------------------------------------------------


def make_client(seed_index_dir: Path, qa: QA, **settings) -> TestClient:
    app = create_app(Settings(index_dir=seed_index_dir, reload_interval=0, **settings), qa=qa)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def open_client(seed_index_dir: Path, qa: QA) -> Iterator[TestClient]:
    with make_client(seed_index_dir, qa, api_key=None, cors_origins=[]) as c:
        yield c


@pytest.fixture(scope="module")
def locked_client(seed_index_dir: Path, qa: QA) -> Iterator[TestClient]:
    with make_client(seed_index_dir, qa, api_key=KEY, cors_origins=[GOOD]) as c:
        yield c


def preflight(client: TestClient, origin: str, path: str = "/ask") -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


@pytest.mark.slow
def test_cors_is_off_by_default(open_client: TestClient) -> None:
    r = preflight(open_client, GOOD)
    assert r.status_code in (400, 405)
    assert "access-control-allow-origin" not in r.headers
    r = open_client.post("/ask", json=QUESTION, headers={"Origin": GOOD})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


@pytest.mark.slow
def test_cors_allows_only_listed_origins(locked_client: TestClient) -> None:
    r = preflight(locked_client, GOOD)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == GOOD
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"].lower()

    r = preflight(locked_client, EVIL)
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers

    auth = {"Authorization": f"Bearer {KEY}".encode()}
    r = locked_client.get("/health", headers={"Origin": EVIL, **auth})
    assert "access-control-allow-origin" not in r.headers
    r = locked_client.get("/health", headers={"Origin": GOOD})
    assert r.headers["access-control-allow-origin"] == GOOD


@pytest.mark.slow
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        "Bearer s3cret-key-",  # a prefix of the key
        f"Bearer {KEY}x",
        f"Basic {KEY}",
        KEY,
    ],
)
def test_api_key_missing_or_wrong_is_401(locked_client: TestClient, authorization) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.encode()}
    for method, path, body in (
        ("POST", "/ask", QUESTION),
        ("GET", "/sources", None),
        ("GET", f"/sources/{SOURCE}", None),
        ("GET", "/sources/..%2Fpyproject.toml", None),
    ):
        r = locked_client.request(method, path, json=body, headers=headers)
        assert r.status_code == 401, (method, path, r.text)
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert KEY not in r.text


@pytest.mark.slow
def test_api_key_right_is_200_and_health_and_page_stay_open(locked_client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {KEY}".encode()}
    assert locked_client.post("/ask", json=QUESTION, headers=auth).status_code == 200
    assert locked_client.get("/sources", headers=auth).status_code == 200
    assert locked_client.get(f"/sources/{SOURCE}", headers=auth).status_code == 200
    lower = {"Authorization": f"bearer {KEY}".encode()}  # the scheme is case-insensitive
    assert locked_client.get("/sources", headers=lower).status_code == 200
    for path in ("/health", "/", "/openapi.json", "/docs"):
        assert locked_client.get(path).status_code == 200, path


# --- against a real server -----------------------------------------------------------


@pytest.fixture(scope="module")
def locked_server(
    seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    env = {
        "RAG_API_KEY": KEY,
        "RAG_CORS_ORIGINS": GOOD,
        "RAG_MAX_QUESTION_CHARS": "50",
        "RAG_MAX_BODY_BYTES": "1000",
    }
    with serve(seed_index_dir, tmp_path_factory.mktemp("locked-server"), env=env) as s:
        yield s


@pytest.mark.slow
def test_live_server_listens_on_loopback_only(locked_server: Server) -> None:
    port = int(locked_server.url.rsplit(":", 1)[1])
    listening = [
        c
        for c in psutil.Process(locked_server.process.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening, "the server listens on no socket"
    assert {(c.laddr.ip, c.laddr.port) for c in listening} == {("127.0.0.1", port)}
    # Not reachable on any other local address.
    for ip in _other_local_ips():
        with socket.socket() as sock:
            sock.settimeout(1)
            assert sock.connect_ex((ip, port)) != 0, ip


def _other_local_ips() -> list[str]:
    ips = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                ips.append(a.address)
    return ips


@pytest.mark.slow
def test_live_api_key_cors_and_limits_from_the_environment(locked_server: Server) -> None:
    auth = {"Authorization": f"Bearer {KEY}".encode()}
    with httpx.Client(base_url=locked_server.url, timeout=30) as c:
        assert c.post("/ask", json=QUESTION).status_code == 401
        assert (
            c.post("/ask", json=QUESTION, headers={"Authorization": "Bearer no"}).status_code == 401
        )
        assert c.get("/sources").status_code == 401
        assert c.get("/health").status_code == 200
        assert c.post("/ask", json=QUESTION, headers=auth).status_code == 200

        r = c.post("/ask", json={"question": "x" * 51}, headers=auth)
        assert r.status_code == 422
        assert "limit is 50" in r.json()["error"]["message"]
        r = c.post("/ask", json={"question": "What? " + " " * 1000}, headers=auth)
        assert r.status_code == 413
        assert "1000 bytes" in r.json()["error"]["message"]

        ok = c.options("/ask", headers={"Origin": GOOD, "Access-Control-Request-Method": "POST"})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == GOOD
        bad = c.options("/ask", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in bad.headers


@pytest.mark.slow
def test_live_default_server_has_no_cors_and_no_key(live_server: Server) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        r = c.options("/ask", headers={"Origin": GOOD, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers
        assert c.get("/sources").status_code == 200
