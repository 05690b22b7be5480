"""Supervisor of a local Ray head: starts it, and stops every process it started once
the driver is gone. Run by path (`python ray_supervisor.py --port P --cpus N`) by
`rag.index.executors.ray_cluster.LocalHead`; standard library only, so it starts in a
few milliseconds and imports nothing of the project.

It makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every process of
the head (GCS, raylet, agents, workers) stays its descendant even when its own parent
dies. It prints "ready" once `ray start --head` has returned, then waits for EOF on
stdin: the driver closed the pipe, or died by any signal. Then it sends SIGTERM to every
descendant, SIGKILL to those left after a grace period, reaps them all, and exits.
SIGINT is ignored (a Ctrl-C is the driver's to handle); SIGTERM stops Ray at once.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

START_TIMEOUT = 120.0
STOP_GRACE = 1.0
_PR_SET_CHILD_SUBREAPER = 36


def _children(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: parse after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _reap() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def kill_all(me: int) -> None:
    """SIGTERM every descendant, then SIGKILL whatever is left after STOP_GRACE, until
    none is left (orphans of killed processes are re-parented to this subreaper)."""
    deadline = time.monotonic() + STOP_GRACE
    sig = signal.SIGTERM
    while True:
        _reap()
        alive = descendants(me)
        if not alive:
            return
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.1)
        if time.monotonic() > deadline:
            sig = signal.SIGKILL


def supervise(port: int, cpus: int, object_store_bytes: int | None) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)
        return 1
    me = os.getpid()
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Whatever happens from here on (a failed start, a closed pipe, an exception), every
    # process started under this one is stopped before it exits.
    try:
        return _run_head(port, cpus, object_store_bytes, lambda: stopping)
    finally:
        kill_all(me)


def _run_head(
    port: int, cpus: int, object_store_bytes: int | None, stopping: Callable[[], bool]
) -> int:
    ray_cli = Path(sys.executable).with_name("ray")
    head = [str(ray_cli)] if ray_cli.exists() else [sys.executable, "-m", "ray.scripts.scripts"]
    command = [
        *head,
        "start",
        "--head",
        f"--port={port}",
        f"--num-cpus={cpus}",
        "--num-gpus=0",
        "--include-dashboard=false",
        "--disable-usage-stats",
        # A private head for one build on one machine needs neither, and each is a
        # Python process of about 50 MB: the autoscaler's monitor (the cluster is
        # fixed) and the log monitor (the driver takes no worker logs:
        # log_to_driver=False). The Ray Client server cannot be left out (ray start
        # refuses port 0 and starts it whenever the client is installed).
        "--no-monitor",
        "--include-log-monitor=false",
    ]
    if object_store_bytes:
        command.append(f"--object-store-memory={object_store_bytes}")
    # Idle workers are stopped after a second rather than kept for reuse: the read and
    # chunk tasks' worker stayed idle beside the embedding actor for the whole build
    # (190 MB of libraries). Starting a worker again costs about a second, once per
    # stage at most here, since the tasks run in a stream.
    env = {**os.environ, "RAY_num_workers_soft_limit": "0"}
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT, env=env
        )
    except subprocess.TimeoutExpired:
        print(f"ray start took over {START_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    if result.returncode != 0 or stopping():
        print((result.stderr or result.stdout)[-3000:], file=sys.stderr)
        return 1
    try:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    except OSError:  # the driver is gone already
        return 1
    # Wait for the driver: EOF on stdin when it closes the pipe or dies.
    while not stopping():
        try:
            ready, _, _ = select.select([sys.stdin], [], [], 1.0)
        except InterruptedError:
            continue
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="supervise a local Ray head")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpus", type=int, required=True)
    parser.add_argument("--object-store-bytes", type=int)
    args = parser.parse_args(argv)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    return supervise(args.port, args.cpus, args.object_store_bytes)


if __name__ == "__main__":
    sys.exit(main())
