"""The benchmarks keep working: ``python -m bench --smoke`` end to end at tiny sizes (figures ignored)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import POSTGRES_URL, skip_unless_installed
from tests.e2e.processes import ROOT

pytestmark = pytest.mark.e2e


def test_benchmarks_run_in_smoke_mode(broker_url, postgres_required, tmp_path):
    skip_unless_installed(shutil.which("wrk"), "wrk (apt-get install wrk)")
    output = tmp_path / "results.md"
    # Two gunicorn workers, not the full run's 2 × CPUs + 1: the smoke run checks that the benchmarks work,
    # and each worker's start is most of what a tiny benchmark costs.
    env = {
        **os.environ,
        "BENCH_POSTGRES_URL": POSTGRES_URL,
        "BENCH_BROKER_URL": broker_url,
        "BENCH_GUNICORN_WORKERS": "2",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,  # minutes on a busy 2-core machine: it starts a dozen processes
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = output.read_text()
    for measure in (
        "throughput",
        "p99 latency",
        "gunicorn worker RSS",
        "batch-send median",
        "messages/s",
        "celery worker process RSS",
        "accept → upstream p50",
        "accept → upstream p99",
        "order throughput",
        "notification throughput",
        "payment gunicorn worker RSS",
        "payment celery worker process RSS",
        "GET /healthz p50 / p99 (HTTP, the floor)",
        "record by message_id p99 (HTTP)",
        "batch status p99 (HTTP)",
        "mobile search plan",
    ):
        assert f"| {measure} |" in report, measure
    assert "| 0 msg/s |" not in report
    assert "| 0 req/s |" not in report
    # Every send, order and notification of the smoke run was answered 2xx.
    for failures in ("non-2xx / socket errors", "failed sends"):
        assert f"| {failures} | 0 |" in report or failures not in report
    assert "order non-2xx / socket errors | 0 |" in report
    assert "notification non-2xx / socket errors | 0 |" in report
    # The records search by mobile is answered from an index even on the smoke run's small table.
    assert "Index" in report.split("| mobile search plan |")[1].split("\n")[0]
