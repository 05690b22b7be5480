"""A short run of scripts/load.py against a real server: zero errors, sane figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.servers import ROOT, Server

pytestmark = pytest.mark.slow

SHORT_RUN = ["--clients", "4", "--seconds", "5", "--json"]


def test_short_load_run_has_no_errors(live_server: Server) -> None:
    pid = ["--pid", str(live_server.process.pid)]
    proc = subprocess.run(
        [sys.executable, "scripts/load.py", "--url", live_server.url, *SHORT_RUN, *pid],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(proc.stdout)
    assert figures["errors"] == 0, figures
    assert figures["ok"] > 0
    assert figures["requests_per_s"] > 0
    lat = figures["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert figures["rss_mib_start"] > 0
    assert figures["rss_mib_end"] > 0
    assert "Traceback" not in live_server.log()


def test_load_script_reports_an_unreachable_server(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/load.py", "--url", "http://127.0.0.1:9", "--seconds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "cannot reach" in proc.stderr
