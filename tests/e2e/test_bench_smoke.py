"""The benchmarks keep working: ``python -m bench --smoke`` end to end at tiny sizes (figures ignored)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import POSTGRES_URL
from tests.e2e.processes import ROOT

pytestmark = pytest.mark.e2e


def test_benchmarks_run_in_smoke_mode(broker_url, postgres_required, tmp_path):
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk); CI installs it")
    output = tmp_path / "results.md"
    env = {**os.environ, "BENCH_POSTGRES_URL": POSTGRES_URL, "BENCH_BROKER_URL": broker_url}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    report = output.read_text()
    for measure in (
        "throughput",
        "p99 latency",
        "gunicorn worker RSS",
        "messages/s",
        "celery worker process RSS",
    ):
        assert f"| {measure} |" in report
    assert "| 0 msg/s |" not in report
