"""A real `rag serve` (uvicorn) in a subprocess on a free port: start it, wait until it
answers, stop it cleanly.

One harness for the tests (`tests/servers.py` re-exports it) and the benchmarks
(`scripts/benchmarks/`). It lives under scripts/ so that tests may import scripts and
scripts never import tests.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
# How the server is started: the command line's `serve`, exactly as a user runs it.
SERVE = ("-m", "rag", "serve")
# Linux prctl(PR_SET_PDEATHSIG): looked up here, in the parent, so that the child only
# makes the call between fork and exec.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the thread that started it dies, so
    that a killed test run or benchmark leaves no server behind."""
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    started: float = 0.0  # time.perf_counter() just before the process was started

    def wait_until(
        self, probe: Callable[[str], bool], timeout: float, interval: float = 0.05
    ) -> float:
        """Poll `probe(url)` until it is true; seconds from process start. Raises with the
        server's log if the process exits or the timeout passes first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}:\n{self.log()[-3000:]}"
                )
            with suppress(httpx.HTTPError):
                if probe(self.url):
                    return time.perf_counter() - self.started
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not answer in {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(interval)

    def wait_ready(self, timeout: float = 120, interval: float = 0.05) -> float:
        """Seconds from process start until GET /health answers 200."""
        return self.wait_until(_health_ok, timeout, interval)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (uvicorn's graceful shutdown), then SIGKILL if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_size(self) -> int:
        """Bytes of log written so far: an offset to read only what follows."""
        return self.log_path.stat().st_size


def _health_ok(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=1).status_code == 200


def start(
    index_dir: Path,
    log_path: Path,
    env: dict[str, str] | None = None,
    launcher: Sequence[str] = SERVE,
    args: Sequence[str] = (),
    port: int | None = None,
) -> Server:
    """Start `python <launcher> --index index_dir --port <port> *args` (a free port by
    default), output to `log_path`; returns at once (see `Server.wait_ready`).
    `launcher` is `SERVE` or a script taking the same arguments as `rag serve`. Start it
    from a thread that outlives it (the main thread): the server dies with that thread."""
    port = port or free_port()
    cmd = [sys.executable, *launcher, "--index", str(index_dir), "--port", str(port), *args]
    started = time.perf_counter()
    with log_path.open("w") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            preexec_fn=_die_with_parent,
        )
    return Server(f"http://127.0.0.1:{port}", process, log_path, started)


@contextmanager
def serve(
    index_dir: Path,
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    *,
    log_name: str | None = None,
    launcher: Sequence[str] = SERVE,
    args: Sequence[str] = (),
) -> Iterator[Server]:
    """A real server over `index_dir`; yields once GET /health answers 200, stops it on
    exit. The log is `log_dir/log_name` (default `server-<port>.log`)."""
    port = free_port()
    log_path = log_dir / (log_name or f"server-{port}.log")
    server = start(index_dir, log_path, env, launcher, args, port)
    try:
        server.wait_ready(timeout)
        yield server
    finally:
        server.stop()
