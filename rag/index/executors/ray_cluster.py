"""Where a Ray build runs: an existing cluster, or a local one started for the build.

Entry point: `ray_session(address, cpus)`, a context manager that connects this process
to Ray as a driver and disconnects at the end.

- `address` given (or `RAY_ADDRESS` set): join that cluster; it is left running.
- Neither: start a local Ray head with this machine's cores and stop it at the end.

A local head is started by a small supervisor process (`ray_supervisor.py`), not by
`ray.init()` in this process. Ray's own
clean-up does not survive a killed driver: measured here, after `kill -9` of a driver that
had called `ray.init()`, its `ray::DashboardAgent` and `ray::RuntimeEnvAgent` were still
running minutes later. The supervisor is a child subreaper (prctl), so every process Ray
starts stays its descendant even when orphaned; it runs `ray start --head` and then waits
on a pipe from the driver. When the pipe closes (the build ended, or the driver died by
any signal, SIGKILL included), it terminates every descendant and exits. Nothing of Ray
outlives the build.

The local head requires token authentication (a fresh random token per head, passed to
the driver and the supervisor through the environment; Ray resolves 127.0.0.1 to the
machine's address, so the ports are reachable from its network), and usage statistics
are off (`RAY_USAGE_STATS_ENABLED=0`): nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError

log = logging.getLogger(__name__)

# Set before Ray is imported anywhere in this process, and inherited by the supervisor.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# The driver's own Ray (C++) log lines stay in the session's log files instead of the
# terminal: Ray Data's actors always trip an "E" line about restartable actors whose
# arguments sit in the object store, which is expected here. Failures still reach the
# caller as exceptions. RAY_BACKEND_LOG_LEVEL=info brings the lines back.
_DRIVER_LOG_LEVEL = os.environ.get("RAY_BACKEND_LOG_LEVEL")
os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")

# How long a local head may take to come up (about 8 s on 2 busy cores).
START_TIMEOUT = 120.0
# The supervisor waits this long after SIGTERM before SIGKILL (ray_supervisor.py).
STOP_GRACE = 1.0
SUPERVISOR = Path(__file__).with_name("ray_supervisor.py")
# One token per process: Ray reads it once (its loader caches the first one it sees), so
# every local head this process starts must use the same.
_TOKEN = secrets.token_hex(32)


class RayStartError(RagError):
    """Ray could not be started or joined."""


@dataclass(frozen=True)
class RaySession:
    address: str
    # Seconds from asking for Ray to a connected driver (starting a local head included).
    startup_seconds: float
    # True when this session started (and will stop) a local head.
    local: bool
    # CPUs of the cluster, as Ray counts them.
    cpus: float
    # Pid of the supervisor of a local head (None when joining a cluster).
    supervisor_pid: int | None = None


def resolve_address(address: str | None) -> str | None:
    """The cluster to join: `address`, else $RAY_ADDRESS, else None (start a local head).
    "local" (either way) also means a local head."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address in (None, "local") else address


class LocalHead:
    """A local Ray head run by a supervisor process; `stop()` (or the death of this
    process) ends it and every process it started."""

    def __init__(self, cpus: int, object_store_bytes: int | None = None) -> None:
        self.cpus = cpus
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        env = {**os.environ, **self.auth_env(), "RAY_USAGE_STATS_ENABLED": "0"}
        env.pop("RAY_ADDRESS", None)
        # The head's processes log at Ray's default level (or the caller's).
        env.pop("RAY_BACKEND_LOG_LEVEL", None)
        if _DRIVER_LOG_LEVEL is not None:
            env["RAY_BACKEND_LOG_LEVEL"] = _DRIVER_LOG_LEVEL
        command = [
            sys.executable,
            str(SUPERVISOR),
            "--port",
            str(self.port),
            "--cpus",
            str(cpus),
        ]
        if object_store_bytes:
            command += ["--object-store-bytes", str(object_store_bytes)]
        # Its own session: a Ctrl-C meant for the driver must not kill the supervisor
        # before it has stopped Ray.
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )

    @staticmethod
    def auth_env() -> dict[str, str]:
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": _TOKEN}

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Block until the head is up; raise RayStartError with Ray's output if not."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline().decode(errors="replace").strip()
                if line == "ready":
                    return
                if not line and self.process.poll() is not None:
                    break
            elif self.process.poll() is not None:
                break
        timed_out = self.process.poll() is None
        lines = [ln.strip() for ln in self.stop().splitlines() if ln.strip()]
        # Ray's last line says what went wrong (the traceback above it, how).
        why = f"no answer within {timeout:.0f} s" if timed_out else "it stopped"
        raise RayStartError(
            f"could not start a local Ray head ({why}): "
            f"{lines[-1][-500:] if lines else 'no output'}; pass --ray-address to join a "
            "running cluster instead"
        )

    def stop(self) -> str:
        """Close the pipe (the supervisor then stops Ray), wait for it to finish, and
        return what it wrote to stderr (Ray's output when the head did not start)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_GRACE * 4 + 10)
        except subprocess.TimeoutExpired:
            # It should never get here; a stuck supervisor is killed with its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        err = ""
        if self.process.stderr is not None and not self.process.stderr.closed:
            # Without blocking: a process the supervisor started could still hold the
            # pipe open.
            os.set_blocking(self.process.stderr.fileno(), False)
            with contextlib.suppress(OSError):
                err = (self.process.stderr.read() or b"").decode(errors="replace")
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    cpus: int | None = None,
    object_store_bytes: int | None = None,
) -> Iterator[RaySession]:
    """This process connected to Ray as a driver (see the module docstring)."""
    started = time.perf_counter()
    address = resolve_address(address)
    head: LocalHead | None = None
    try:
        if address is None:
            head = LocalHead(cpus or os.cpu_count() or 1, object_store_bytes)
            _use_token(head.auth_env())
        import ray

        if head is not None:
            head.wait_ready()
        connect = head.address if head is not None else address
        try:
            ray.init(
                address=connect,
                logging_level=logging.WARNING,
                log_to_driver=False,
                configure_logging=True,
                include_dashboard=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayStartError(
                f"could not connect to Ray at {connect}: {exc}; check RAY_ADDRESS or "
                "--ray-address (host:port of the head's GCS), or leave both unset to run a "
                "local Ray"
            ) from None
        try:
            yield RaySession(
                address=connect,
                startup_seconds=time.perf_counter() - started,
                local=head is not None,
                cpus=float(ray.cluster_resources().get("CPU", 0.0)),
                supervisor_pid=head.process.pid if head is not None else None,
            )
        finally:
            ray.shutdown()
    finally:
        if head is not None:
            head.stop()


def _use_token(env: dict[str, str]) -> None:
    """Make this process present the local head's token. Ray reads the mode and token
    when it first needs them and caches them; if Ray is already loaded, its caches are
    reset (the reset Ray's own authentication tests use)."""
    if all(os.environ.get(k) == v for k, v in env.items()):
        return
    os.environ.update(env)
    if "ray" in sys.modules:
        try:
            from ray._raylet import AuthenticationTokenLoader, Config

            Config.initialize("")
            AuthenticationTokenLoader.instance().reset_cache()
        except (ImportError, AttributeError) as exc:
            log.warning("could not reset Ray's authentication cache (%s)", exc)
