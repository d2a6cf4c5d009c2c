"""Each service started exactly as its containers start it: the commands of deploy/compose.yaml (the same as
the Kubernetes manifests), the environment of its image and its compose service, against PostgreSQL and the
real broker. Then what operations rely on: metrics from the API and the worker, JSON logs without
mobiles, and a SIGTERM that lets an in-flight request and the worker's tasks finish."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from payment_service.settings import generate_secret_key
from tests.conftest import REDIS_URL
from tests.deploy.manifests import (
    SERVICES,
    compose_environment,
    consumed_queues,
    dockerfile_env,
    load_compose,
    parse_dockerfile,
)
from tests.e2e.processes import BIN, Process, free_port, run_cli, running, wait_until

pytestmark = pytest.mark.e2e

MOBILE = "13800138000"


class Deployment:
    """One service's processes, each with its container's command and environment."""

    def __init__(self, service, database_url: str, broker_url: str, tmp_path, **settings: str) -> None:
        self.service = service
        self.compose = load_compose()["services"]
        self.tmp_path = tmp_path
        self.api_port, self.metrics_port = free_port(), free_port()
        secret = generate_secret_key()
        _, final = parse_dockerfile(service.dockerfile)
        image_env = {k: v for k, v in dockerfile_env(final).items() if k != "PATH"}
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SMS_", "PAYMENT_", "GUNICORN_"))},
            **image_env,
            "PYTHONUNBUFFERED": "1",
        }
        self.overrides = {
            # What the compose network names are here.
            f"{service.prefix}_DATABASE_URL": database_url,
            f"{service.prefix}_BROKER_URL": broker_url,
            f"{service.prefix}_REDIS_URL": REDIS_URL,
            f"{service.prefix}_WORKER_METRICS_PORT": str(self.metrics_port),
            "GUNICORN_BIND": f"127.0.0.1:{self.api_port}",
            "GUNICORN_WORKERS": "2",
            **{f"{service.prefix}_{name}": str(value) for name, value in settings.items()},
        }
        self.interpolation = {"PAYMENT_SECRET_KEY": secret}
        self.base_url = f"http://127.0.0.1:{self.api_port}"

    def command(self, role: str) -> list[str]:
        command = list(self.compose[f"{self.service.key}-{role}"]["command"])
        return [str(BIN / command[0]), *command[1:]]

    def env(self, role: str) -> dict[str, str]:
        container = compose_environment(self.compose[f"{self.service.key}-{role}"], self.interpolation)
        metrics_dir = self.tmp_path / f"prometheus-{role}"  # each container has its own /tmp
        return {
            **self.base_env,
            **container,
            **self.overrides,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        }

    def migrate(self) -> None:
        process = Process(
            f"{self.service.key}-migrate", self.command("migrate"), self.env("migrate"), self.tmp_path
        )
        assert process.popen.wait(120) == 0, process.log()[-3000:]
        process.stop()

    def start(self, role: str) -> Process:
        process = Process(f"{self.service.key}-{role}", self.command(role), self.env(role), self.tmp_path)
        if role == "api":
            wait_until(lambda: _ok(self.base_url + "/healthz"), 60, "api", process)
        elif role == "worker":
            wait_until(lambda: " ready." in process.log(), 90, "worker", process)
            wait_until(lambda: _ok(self.worker_metrics_url), 30, "worker metrics", process)
        return process

    @property
    def worker_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def cli(self, *args: str) -> str:
        return run_cli(self.service.package, self.env("api"), *args)


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url, timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def stops_cleanly(process: Process, timeout: float = 60) -> int:
    """SIGTERM to the container's PID 1 only, as Kubernetes and docker stop send it."""
    os.kill(process.popen.pid, signal.SIGTERM)
    return process.popen.wait(timeout)


@pytest.fixture
def deployment(databases, broker_url, postgres_required, tmp_path):
    def make(service_key: str, **settings: str) -> Deployment:
        [service] = [s for s in SERVICES if s.key == service_key]
        return Deployment(service, databases.create(f"prod_{service_key}"), broker_url, tmp_path, **settings)

    return make


def test_sms_service_as_its_containers_run_it(deployment):
    stack = deployment("sms", SANDBOX_DELAY_MS=200, SWEEP_INTERVAL_SECONDS=1, PROVIDERS="sandbox")
    stack.migrate()
    tenant = json.loads(stack.cli("tenant", "create", "--name", "prod-like"))
    auth = {"X-Api-Key": tenant["api_key"]}
    api, worker, beat = stack.start("api"), stack.start("worker"), stack.start("beat")
    with running(api, worker, beat):
        assert requests.get(stack.base_url + "/readyz", timeout=5).json()["data"] == {
            "database": "ok",
            "broker": "ok",
        }
        template = requests.post(
            stack.base_url + "/api/v1/sms/templates",
            json={"name": "验证码", "content": "验证码${code}", "sign_name": "洗衣云"},
            headers=auth,
            timeout=10,
        ).json()["data"]["template_id"]
        sent = requests.post(
            stack.base_url + "/api/v1/sms/send",
            json={"template_id": template, "mobiles": [MOBILE], "variables": {"code": "1234"}},
            headers={**auth, "X-Request-Id": "prod-like-send-1"},
            timeout=10,
        )
        assert sent.headers["X-Request-Id"] == "prod-like-send-1"
        message_id = sent.json()["data"]["message_id"]

        def delivered() -> bool:
            record = requests.get(
                f"{stack.base_url}/api/v1/sms/records/{message_id}", headers=auth, timeout=5
            )
            return record.json()["data"]["status"] == "success"

        wait_until(delivered, 60, "the message to be delivered by worker and beat", worker, interval=0.5)

        # The worker's exporter adds up its prefork children; the API's /metrics adds up gunicorn workers.
        worker_metrics = scrape(stack.worker_metrics_url)
        assert value(worker_metrics, "sms_messages_total", status="success", provider="sandbox") >= 1
        assert value(worker_metrics, "celery_tasks_total", task="sms.deliver", outcome="success") >= 1
        api_metrics = scrape(stack.base_url + "/metrics")
        sent_count = value(
            api_metrics,
            "http_request_duration_seconds_count",
            method="POST",
            endpoint="/api/v1/sms/send",
            status="200",
        )
        assert sent_count == 1
        assert value(api_metrics, "sms_messages_total", status="queued", provider="none") == 1
        assert value(api_metrics, "celery_broker_up") == 1
        for queue in consumed_queues(stack.command("worker"), stack.service):
            assert value(api_metrics, "celery_queue_consumers", queue=queue) >= 1, queue

        # A request in flight when SIGTERM arrives still gets its answer.
        body = json.dumps({"template_id": template, "mobiles": ["13900139000"], "variables": {"code": "5"}})
        with socket.create_connection(("127.0.0.1", stack.api_port), timeout=30) as connection:
            head = (
                f"POST /api/v1/sms/send HTTP/1.1\r\nHost: sms\r\nX-Api-Key: {tenant['api_key']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            connection.sendall(head.encode() + body[:10].encode())
            time.sleep(0.5)
            os.kill(api.popen.pid, signal.SIGTERM)
            time.sleep(1)
            connection.sendall(body[10:].encode())
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert api.popen.wait(40) == 0
        assert stops_cleanly(worker) == 0 and "Warm shutdown" in worker.log()
        assert stops_cleanly(beat) == 0

    logs = {process.name: process.log() for process in (api, worker, beat)}
    assert not any(MOBILE in log for log in logs.values()), "a full mobile number reached the logs"
    access = [
        json.loads(line)
        for line in logs["sms-api"].splitlines()
        if line.startswith("{") and '"access"' in line
    ]
    [send_line] = [line for line in access if line.get("request_id") == "prod-like-send-1"]
    assert send_line["path"] == "/api/v1/sms/send" and send_line["status"] == 200
    task_lines = [json.loads(line) for line in logs["sms-worker"].splitlines() if line.startswith("{")]
    assert any(message_id in (line.get("message_ids") or []) for line in task_lines)


def test_payment_service_as_its_containers_run_it(deployment):
    stack = deployment("payment", RECONCILE_INTERVAL_SECONDS=1, PUBLIC_BASE_URL="https://pay.example.com")
    stack.migrate()
    tenant = json.loads(stack.cli("tenant", "create", "--name", "prod-like"))
    api, worker, beat = stack.start("api"), stack.start("worker"), stack.start("beat")
    with running(api, worker, beat):
        me = requests.get(
            stack.base_url + "/api/v1/payment/me", headers={"X-Api-Key": tenant["api_key"]}, timeout=5
        )
        assert me.json()["data"]["tenant_id"] == tenant["tenant_id"]

        def periodic_work_ran() -> bool:
            samples = scrape(stack.worker_metrics_url)
            return (
                value(samples, "celery_tasks_total", task="payment.close_expired_orders", outcome="success")
                >= 1
            )

        wait_until(periodic_work_ran, 60, "beat → broker → worker", worker, interval=0.5)
        api_metrics = scrape(stack.base_url + "/metrics")
        for queue in consumed_queues(stack.command("worker"), stack.service):
            assert value(api_metrics, "celery_queue_consumers", queue=queue) >= 1, queue
        assert value(api_metrics, "payment_orders_pending") == 0
        assert stops_cleanly(api) == 0
        assert stops_cleanly(worker) == 0
        assert stops_cleanly(beat) == 0
    assert tenant["api_key"] not in api.log() + worker.log() + beat.log()
