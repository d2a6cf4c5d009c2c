"""The SMS service as deployed: gunicorn, a celery worker and beat on RabbitMQ and PostgreSQL, the Aliyun and
Tencent fakes over real sockets, and a tenant's callback receiver verifying signatures."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from standardwebhooks import Webhook

from tests.e2e.processes import (
    run_cli,
    running,
    service_env,
    start_beat,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve_in_thread
from tests.sms.conftest import CallbackReceiver

pytestmark = pytest.mark.e2e

TOKEN = "e2e-receipt-token"
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1//"
VARIABLES = {"code": "123456", "minutes": "5"}


class Stack:
    def __init__(self, base_url, env, aliyun, tencent, receiver, log_dir):
        self.base_url, self.env, self.aliyun, self.tencent = base_url, env, aliyun, tencent
        self.receiver, self.log_dir = receiver, log_dir

    def tenant(self, *options: str) -> dict:
        return json.loads(run_cli("sms_service", self.env, "tenant", "create", "--name", "e2e", *options))

    def template(self, tenant: dict) -> str:
        body = {
            "name": "验证码",
            "content": "验证码${code}, ${minutes}分钟有效",
            "sign_name": "洗衣云",
            "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
        }
        response = requests.post(
            self.base_url + "/api/v1/sms/templates", json=body, headers=self.auth(tenant)
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]["template_id"]

    @staticmethod
    def auth(tenant: dict) -> dict:
        return {"X-Api-Key": tenant["api_key"]}

    def send(self, tenant, template_id, mobiles, base_url=None, **extra):
        body = {"template_id": template_id, "mobiles": mobiles, "variables": VARIABLES, **extra}
        return requests.post(
            (base_url or self.base_url) + "/api/v1/sms/send", json=body, headers=self.auth(tenant), timeout=10
        )

    def record(self, tenant, message_id) -> dict:
        url = f"{self.base_url}/api/v1/sms/records/{message_id}"
        return requests.get(url, headers=self.auth(tenant), timeout=5).json()["data"]

    def wait_for_status(self, tenant, message_id, statuses, timeout=30) -> dict:
        wait_until(
            lambda: self.record(tenant, message_id)["status"] in statuses, timeout, f"{message_id} {statuses}"
        )
        return self.record(tenant, message_id)


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("sms-e2e")
    aliyun, tencent, receiver = aliyun_sms.FakeAliyunSms(), tencent_sms.FakeTencentSms(), CallbackReceiver()
    aliyun_url, stop_aliyun = serve_in_thread(aliyun)
    tencent_url, stop_tencent = serve_in_thread(tencent)
    receiver_url, stop_receiver = serve_in_thread(receiver)
    receiver.url = receiver_url + "sms/callback"
    env = service_env(
        "SMS",
        ENV="production",
        DATABASE_URL=databases.create("sms_e2e"),
        BROKER_URL=broker_url,
        PROVIDERS="aliyun,tencent",
        **aliyun_sms.service_settings(aliyun_url),
        **tencent_sms.service_settings(tencent_url),
        PROVIDER_TIMEOUT_SECONDS=3,
        PROVIDER_RETRY_DELAY_SECONDS=0.05,
        CIRCUIT_FAILURE_THRESHOLD=1000,
        RECEIPT_TOKEN=TOKEN,
        CALLBACK_ALLOW_PRIVATE="true",
        CALLBACK_RETRY_DELAYS="1,1,1",
        SWEEP_INTERVAL_SECONDS=1,
        SWEEP_QUEUED_AFTER_SECONDS=2,
    )
    run_cli("sms_service", env, "db", "upgrade")
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir)
    worker = start_worker("sms_service.worker", env, log_dir, extra=["--concurrency", "2"])
    beat = start_beat("sms_service.worker", env, log_dir)
    with running(api, worker, beat):
        yield Stack(base_url, env, aliyun, tencent, receiver, log_dir)
        for process in (api, worker, beat):
            assert "Traceback" not in process.log(), process.log()[-3000:]
    for stop in (stop_aliyun, stop_tencent, stop_receiver):
        stop()


def callbacks_for(receiver: CallbackReceiver, message_id: str):
    return [(h, b) for h, b in list(receiver.requests) if json.loads(b)["data"]["message_id"] == message_id]


def test_send_submitted_receipt_success_and_a_signed_callback(stack):
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    response = stack.send(tenant, template_id, ["13800138000"], callback_url=stack.receiver.url)
    assert response.status_code == 200, response.text
    message_id = response.json()["data"]["message_id"]

    submitted = stack.wait_for_status(tenant, message_id, {"submitted"})
    assert submitted["provider"] == "aliyun" and submitted["channel_response"]["biz_id"]
    assert stack.aliyun.push_receipts(f"{stack.base_url}/api/v1/sms/receipts/aliyun?token={TOKEN}") >= 1

    done = stack.wait_for_status(tenant, message_id, {"success"})
    assert done["sent_at"].endswith("Z")
    wait_until(lambda: callbacks_for(stack.receiver, message_id), 20, "callback")
    [(headers, body)] = callbacks_for(stack.receiver, message_id)
    Webhook(tenant["callback_secret"]).verify(body, headers)
    assert json.loads(body) == {
        "event": "sms.result",
        "data": {
            "message_id": message_id,
            "status": "success",
            "sent_at": done["sent_at"],
            "error_code": None,
            "error_message": None,
        },
    }


def test_fails_over_to_tencent_when_aliyun_answers_5xx(stack):
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    stack.aliyun.fail_for(8, status=503)
    message_id = stack.send(tenant, template_id, ["13900139000"]).json()["data"]["message_id"]
    record = stack.wait_for_status(tenant, message_id, {"submitted", "success", "failed"})
    stack.aliyun.fail_for(0)
    assert record["status"] == "submitted" and record["provider"] == "tencent"
    assert [m for m in stack.tencent.accepted() if m.reference == message_id]
    assert not [m for m in stack.aliyun.accepted() if m.reference == message_id]


def test_callback_is_retried_after_the_receiver_failed_twice(stack):
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    message_id = stack.send(tenant, template_id, ["15000150000"], callback_url=stack.receiver.url).json()[
        "data"
    ]["message_id"]
    stack.wait_for_status(tenant, message_id, {"submitted"})
    stack.receiver.statuses = [500, 503]
    stack.aliyun.push_receipts(f"{stack.base_url}/api/v1/sms/receipts/aliyun?token={TOKEN}")
    wait_until(lambda: len(callbacks_for(stack.receiver, message_id)) >= 3, 30, "three callback attempts")
    wait_until(lambda: stack.record(tenant, message_id)["callback"]["status"] == "delivered", 10, "delivered")
    attempts = stack.record(tenant, message_id)["callback"]["attempts"]
    assert [(a["status_code"], a["outcome"]) for a in attempts] == [
        (500, "retry"),
        (503, "retry"),
        (200, "delivered"),
    ]
    received = callbacks_for(stack.receiver, message_id)
    assert {headers["Webhook-Id"] for headers, _ in received} == {f"sms_result_{message_id}"}
    for headers, body in received:
        Webhook(tenant["callback_secret"]).verify(body, headers)


def test_quota_edge_under_50_concurrent_requests(stack):
    tenant = stack.tenant("--daily-quota", "10")
    template_id = stack.template(tenant)
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda n: stack.send(tenant, template_id, [f"137{n:08d}"]), range(50)))
    codes = [response.status_code for response in responses]
    assert codes.count(200) == 10 and codes.count(429) == 40
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["data"]["limit"] == "daily_quota" and int(refused.headers["Retry-After"]) >= 1


def test_broker_down_at_accept_time_the_message_still_arrives_once(stack):
    tenant = stack.tenant()
    template_id = stack.template(tenant)
    env = {**stack.env, "SMS_BROKER_URL": DEAD_BROKER}
    api, base_url = start_gunicorn("sms_service:create_app()", env, stack.log_dir, workers=1)
    with running(api):
        started = time.monotonic()
        response = stack.send(tenant, template_id, ["18800188000"], base_url=base_url)
        assert response.status_code == 200 and time.monotonic() - started < 5, response.text
    message_id = response.json()["data"]["message_id"]
    record = stack.wait_for_status(tenant, message_id, {"submitted", "success"}, timeout=40)
    assert record["provider"] == "aliyun"
    time.sleep(3)  # a few more sweeps: nothing may be sent again
    sent = [m for m in stack.aliyun.accepted() if m.reference == message_id]
    assert len(sent) == 1 and stack.aliyun.duplicates() == []
