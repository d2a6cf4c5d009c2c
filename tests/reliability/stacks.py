"""The services as deployed, for fault tests: gunicorn, celery worker and beat as real processes on PostgreSQL
and RabbitMQ, the upstream fakes and a callback receiver over real sockets; plus a private PostgreSQL cluster
that a test may stop and start without disturbing anyone else's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from standardwebhooks import Webhook
from werkzeug.wrappers import Request, Response

from shared.db import normalize_url
from tests.e2e.processes import (
    Process,
    free_port,
    run_cli,
    service_env,
    start_beat,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve_in_thread
from tests.reliability.logs import leaks

RECEIPT_TOKEN = "reliability-receipt-token"
VARIABLES = {"code": "123456", "minutes": "5"}
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def mobiles(prefix: str, count: int) -> list[str]:
    """``count`` distinct mainland mobiles starting with the 7-digit ``prefix`` (one prefix per test)."""
    assert len(prefix) == 7 and count <= 10_000
    return [f"{prefix}{n:04d}" for n in range(count)]


@dataclass
class SmsStack:
    base_url: str
    env: dict[str, str]
    database_url: str
    aliyun: aliyun_sms.FakeAliyunSms
    tencent: tencent_sms.FakeTencentSms
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    watched: list[str] = field(default_factory=list)  # secrets that must not show up in any log

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(normalize_url(self.database_url))

    def tenant(self, daily_quota: int = 100_000) -> dict:
        tenant = json.loads(
            run_cli(
                "sms_service", self.env, "tenant", "create", "--name", "reliability",
                "--daily-quota", str(daily_quota),
            )
        )  # fmt: skip
        self.watched += [tenant["api_key"], tenant["callback_secret"]]
        return tenant

    def template(self, tenant: dict) -> str:
        body = {
            "name": "验证码",
            "content": "验证码${code}, ${minutes}分钟有效",
            "sign_name": "洗衣云",
            "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
        }
        response = requests.post(
            self.base_url + "/api/v1/sms/templates", json=body, headers=auth(tenant), timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["template_id"]

    def send(self, tenant, template_id, numbers, base_url=None, timeout=10, **extra) -> requests.Response:
        body = {"template_id": template_id, "mobiles": numbers, "variables": VARIABLES, **extra}
        return requests.post(
            (base_url or self.base_url) + "/api/v1/sms/send", json=body, headers=auth(tenant), timeout=timeout
        )

    def push_receipts(self) -> int:
        url = f"{self.base_url}/api/v1/sms/receipts/aliyun?token={RECEIPT_TOKEN}"
        pushed = self.aliyun.push_receipts(url)
        url = f"{self.base_url}/api/v1/sms/receipts/tencent?token={RECEIPT_TOKEN}"
        return pushed + self.tencent.push_receipts(url)

    def messages(self, tenant_id: str) -> list[sa.Row]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    sa.text(
                        "SELECT id, mobile, status, provider, error_code, callback_status, callback_attempts "
                        "FROM messages WHERE tenant_id = :tenant"
                    ),
                    {"tenant": tenant_id},
                )
            )

    def statuses(self, tenant_id: str) -> Counter:
        return Counter(row.status for row in self.messages(tenant_id))

    def start(self, name: str, process: Process) -> Process:
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", concurrency: int = 2, env: dict | None = None) -> Process:
        extra = ["--concurrency", str(concurrency), "-Q", "sms-send,sms-callbacks,sms-receipts,sms-periodic"]
        return self.start(
            name, start_worker("sms_service.worker", env or self.env, self.log_dir, name, extra)
        )

    def start_beat(self, env: dict | None = None) -> Process:
        return self.start("beat", start_beat("sms_service.worker", env or self.env, self.log_dir))

    def accepted_mobiles(self) -> Counter:
        return Counter(m.mobile for m in self.aliyun.accepted() + self.tencent.accepted())

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.engine.dispose()

    def logs(self) -> dict[str, str]:
        return {path.name: path.read_text(errors="replace") for path in self.log_dir.glob("*.log")}


def auth(tenant: dict) -> dict[str, str]:
    return {"X-Api-Key": tenant["api_key"]}


def sms_settings(database_url: str, broker_url: str, aliyun_url: str, tencent_url: str, **overrides) -> dict:
    settings = {
        "ENV": "production",
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "PROVIDERS": "aliyun,tencent",
        **aliyun_sms.service_settings(aliyun_url),
        **tencent_sms.service_settings(tencent_url),
        "PROVIDER_TIMEOUT_SECONDS": 2,
        "PROVIDER_RETRY_DELAY_SECONDS": 0.05,
        "RECEIPT_TOKEN": RECEIPT_TOKEN,
        "CALLBACK_ALLOW_PRIVATE": "true",
        "SWEEP_INTERVAL_SECONDS": 1,
        "SWEEP_QUEUED_AFTER_SECONDS": 2,
        "SENDING_STALE_AFTER_SECONDS": 5,
        "RECEIPT_POLL_AFTER_SECONDS": 30,
        "RECEIPT_GIVE_UP_AFTER_SECONDS": 20,
        "DEFAULT_MOBILE_PER_MINUTE": 5,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def sms_stack_factory(databases, broker_url, postgres_required, tmp_path_factory):
    """Builds an SMS stack (API only; tests start workers and beat when their scenario says so)."""
    stacks: list[SmsStack] = []
    stops = []

    def build(database_url: str | None = None, api_env: dict | None = None, **overrides) -> SmsStack:
        log_dir = tmp_path_factory.mktemp("sms-reliability")
        aliyun, tencent = aliyun_sms.FakeAliyunSms(), tencent_sms.FakeTencentSms()
        aliyun_url, stop_aliyun = serve_in_thread(aliyun)
        tencent_url, stop_tencent = serve_in_thread(tencent)
        stops.extend([stop_aliyun, stop_tencent])
        database_url = database_url or databases.create("sms_reliability")
        env = service_env(
            "SMS", **sms_settings(database_url, broker_url, aliyun_url, tencent_url, **overrides)
        )
        env["GUNICORN_THREADS"] = "4"
        run_cli("sms_service", env, "db", "upgrade")
        stack = SmsStack("", env, database_url, aliyun, tencent, log_dir)
        stack.watched += [aliyun_sms.ACCESS_KEY_SECRET, tencent_sms.SECRET_KEY]
        api, stack.base_url = start_gunicorn("sms_service:create_app()", {**env, **(api_env or {})}, log_dir)
        stack.start("api", api)
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()
    for stop in stops:
        stop()


def assert_logs_clean(logs: dict[str, str], watched: list[str], mobile_prefixes: list[str]) -> None:
    """No secret, API key or full mobile of ours in any process log; no unhandled error in the API."""
    mobile = (
        re.compile(r"(?<!\d)(?:" + "|".join(mobile_prefixes) + r")\d{4}(?!\d)") if mobile_prefixes else None
    )
    for name, text in logs.items():
        found = leaks([text], watched)
        if mobile is not None and (match := mobile.search(text)):
            line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
            found.append(f"full mobile in: {line.replace(match.group(0), match.group(0)[:3] + '****')[:600]}")
        assert not found, f"{name}: {found}"
        if name.startswith("gunicorn"):
            assert "unhandled error" not in text and "Traceback" not in text, text[-3000:]


class CallbackServer:
    """A callback receiver on a fixed port that can go down (connection refused) and come back.

    It answers 200, except 500 to every request whose path ends in ``/always-fails``.
    """

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.port = free_port()
        self._stop = None
        self._lock = threading.Lock()
        self.start()

    def url(self, path: str = "sms/callback") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.received.append((request.path, dict(request.headers), request.get_data()))
        status = 500 if request.path.endswith("/always-fails") else 200
        return Response('{"ok": true}', status=status, mimetype="application/json")(environ, start_response)

    def start(self) -> None:
        _, self._stop = serve_in_thread(self, port=self.port)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None

    def bodies_for(self, key: str, value: str, secret: str) -> list[dict]:
        """The callbacks about ``value``, each verified with ``secret`` by the reference library."""
        with self._lock:
            received = list(self.received)
        return [
            Webhook(secret).verify(body, headers)
            for _, headers, body in received
            if json.loads(body or b"{}").get("data", {}).get(key) == value
        ]


# --- a private PostgreSQL cluster ---------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway cluster (initdb) on its own port, so a test can stop and start "the database"."""

    def __init__(self) -> None:
        runner = shutil.which("runuser")
        if os.geteuid() != 0 or runner is None or not (PG_BIN / "initdb").exists():
            pytest.skip("a private PostgreSQL cluster needs root, runuser and PostgreSQL 15 binaries")
        self.directory = Path(tempfile.mkdtemp(prefix="reliability-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        shutil.chown(self.directory, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")  # fmt: skip
        self.start()

    def _as_postgres(self, *argv: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
            "-c fsync=off"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "server.log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        admin = sa.create_engine(normalize_url(self.url("postgres")), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.directory, ignore_errors=True)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25) -> None:
    wait_until(predicate, timeout, what, interval=interval)


def elapsed(since: float) -> float:
    return round(time.monotonic() - since, 2)
