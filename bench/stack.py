"""Processes and databases a benchmark runs against: real PostgreSQL, the real broker, gunicorn, Celery."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
import sqlalchemy as sa

from shared.db import normalize_url
from tests.broker import private_vhost
from tests.e2e import processes
from tests.e2e.processes import (  # noqa: F401 (re-exported for the benchmarks)
    Process,
    free_port,
    run_cli,
    start_gunicorn,
    start_worker,
)

POSTGRES_URL = normalize_url(
    os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
_broker = {"url": BROKER_URL}


def broker_url() -> str:
    """The broker of this run: its own RabbitMQ virtual host inside :func:`own_vhost`."""
    return _broker["url"]


@contextmanager
def own_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of this run's own, so the benchmark never takes (or leaves behind) other
    processes' tasks; deleted afterwards with whatever is still queued in it."""
    with private_vhost(BROKER_URL, f"bench_{os.getpid()}_{int(time.time())}") as url:
        _broker["url"] = url
        try:
            yield url
        finally:
            _broker["url"] = BROKER_URL


GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", str((os.cpu_count() or 2) * 2 + 1)))


def create_database(label: str) -> str:
    name = f"bench_{label}_{int(time.time())}_{os.getpid()}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


#: Settings given with ``--set NAME=VALUE``: they override what a benchmark sets, to price one lever (e.g.
#: ``SMS_PUBLISH_LINGER_MS=0``); an empty value unsets the setting.
OVERRIDES: dict[str, str] = {}


def service_env(prefix: str, **settings) -> dict[str, str]:
    """The environment of a service process with the settings ``{prefix}_{NAME}``, then the overrides."""
    env = processes.service_env(prefix, **settings)
    for name, value in OVERRIDES.items():
        if name.startswith(prefix + "_"):
            if value:
                env[name] = value
            else:
                env.pop(name, None)
    return env


def sms_env(database_url: str, **settings) -> dict[str, str]:
    env = service_env("SMS", ENV="production", DATABASE_URL=database_url, BROKER_URL=broker_url(), **settings)
    env["GUNICORN_ACCESS_LOG"] = ""  # the floor logs no access lines either
    return env


def sms_tenant(env: dict[str, str]) -> dict:
    run_cli("sms_service", env, "db", "upgrade")
    return json.loads(
        run_cli(
            "sms_service", env, "tenant", "create", "--name", "bench", "--daily-quota", "1000000000",
            "--mobile-per-minute", "1000", "--mobile-per-hour", "1000", "--mobile-per-day", "1000",
        )
    )  # fmt: skip


def sms_template(base_url: str, api_key: str) -> str:
    response = requests.post(
        base_url + "/api/v1/sms/templates",
        headers={"X-Api-Key": api_key},
        json={
            "name": "验证码",
            "content": "您的验证码是${code}",
            "sign_name": "洗衣云",
            "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
        },
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["data"]["template_id"]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` 0.5 for the median, 0.99 for p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_pids(pid: int) -> list[int]:
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def max_child_rss_mb(process: Process) -> float:
    pids = child_pids(process.popen.pid) or [process.popen.pid]
    return max(rss_mb(pid) for pid in pids)


def machine_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.0f} GiB, {platform.platform()}"
