"""Test keys as deployed: gunicorn, a celery worker and beat on RabbitMQ and PostgreSQL, with the Aliyun and
Tencent fakes over real sockets that a test key's messages never reach."""

from __future__ import annotations

import json
import threading

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

VARIABLES = {"code": "123456", "minutes": "5"}
OK, FAILING, SILENT = "13900139000", "13800000001", "13800000002"


class Counted:
    """An upstream fake that counts every request it is sent, whatever it is."""

    def __init__(self, app) -> None:
        self.app, self.requests, self._lock = app, 0, threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.requests += 1
        return self.app(environ, start_response)


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("sms-test-keys-e2e")
    aliyun, tencent = Counted(aliyun_sms.FakeAliyunSms()), Counted(tencent_sms.FakeTencentSms())
    receiver = CallbackReceiver()
    aliyun_url, stop_aliyun = serve_in_thread(aliyun)
    tencent_url, stop_tencent = serve_in_thread(tencent)
    receiver_url, stop_receiver = serve_in_thread(receiver)
    receiver.url = receiver_url + "sms/callback"
    env = service_env(
        "SMS",
        ENV="production",
        DATABASE_URL=databases.create("sms_test_keys_e2e"),
        BROKER_URL=broker_url,
        PROVIDERS="aliyun,tencent",
        **aliyun_sms.service_settings(aliyun_url),
        **tencent_sms.service_settings(tencent_url),
        CALLBACK_ALLOW_PRIVATE="true",
        # The sweeps and the receipt poll run every second and would ask about a submitted message at once.
        SWEEP_INTERVAL_SECONDS=1,
        SWEEP_QUEUED_AFTER_SECONDS=2,
        RECEIPT_POLL_AFTER_SECONDS=1,
    )
    run_cli("sms_service", env, "db", "upgrade")
    api, base_url = start_gunicorn("sms_service:create_app()", env, log_dir)
    worker = start_worker("sms_service.worker", env, log_dir, extra=["--concurrency", "2"])
    beat = start_beat("sms_service.worker", env, log_dir)
    with running(api, worker, beat):
        yield base_url, env, aliyun, tencent, receiver, worker
        for process in (api, worker, beat):
            assert "Traceback" not in process.log(), process.log()[-3000:]
    for stop in (stop_aliyun, stop_tencent, stop_receiver):
        stop()


def test_a_test_key_goes_through_the_lifecycle_without_an_upstream(stack):
    base_url, env, aliyun, tencent, receiver, worker = stack
    tenant = json.loads(
        run_cli("sms_service", env, "tenant", "create", "--name", "e2e", "--daily-quota", "2")
    )
    test_key = json.loads(
        run_cli("sms_service", env, "key", "create", "--tenant", tenant["tenant_id"], "--test")
    )
    assert test_key["api_key"].startswith("sk_test_") and tenant["api_key"].startswith("sk_live_")
    live, test = {"X-Api-Key": tenant["api_key"]}, {"X-Api-Key": test_key["api_key"]}
    template = requests.post(
        base_url + "/api/v1/sms/templates",
        json={
            "name": "验证码",
            "content": "验证码${code}, ${minutes}分钟有效",
            "sign_name": "洗衣云",
            "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
        },
        headers=live,
        timeout=5,
    ).json()["data"]["template_id"]

    def send(headers, mobiles, **extra):
        body = {"template_id": template, "mobiles": mobiles, "variables": VARIABLES, **extra}
        return requests.post(base_url + "/api/v1/sms/send", json=body, headers=headers, timeout=10)

    def record(headers, message_id):
        return requests.get(f"{base_url}/api/v1/sms/records/{message_id}", headers=headers, timeout=5)

    answer = send(test, [OK, FAILING, SILENT], callback_url=receiver.url)
    assert answer.status_code == 200, answer.text
    ok_id, failing_id, silent_id = answer.json()["data"]["message_ids"]
    for _ in range(3):  # past the daily quota of 2, were test sends counted
        assert send(test, ["15000150000"]).status_code == 200

    def status(message_id):
        return record(test, message_id).json()["data"]["status"]

    wait_until(
        lambda: status(ok_id) == "success" and status(failing_id) == "failed", 10, "simulated receipts"
    )
    ok = record(test, ok_id).json()["data"]
    assert ok["provider"] == "test" and ok["test"] is True
    assert ok["channel_response"]["req_id"].startswith("TEST") and ok["channel_response"][
        "biz_id"
    ].startswith("TEST")
    assert record(test, failing_id).json()["data"]["error_code"] == "SIMULATED_FAILURE"

    # The beat's receipt poll looks at the silent message (the only one submitted) and leaves it submitted.
    wait_until(lambda: "'waiting': 1" in worker.log(), 15, "a receipt poll that saw the silent message")
    assert status(silent_id) == "submitted"

    wait_until(lambda: len(receiver.requests) == 2, 15, "the two final results' callbacks")
    results = {}
    for headers, body in receiver.requests:
        Webhook(tenant["callback_secret"]).verify(body, headers)
        data = json.loads(body)["data"]
        results[data["message_id"]] = (data["status"], data["error_code"])
    assert results == {ok_id: ("success", None), failing_id: ("failed", "SIMULATED_FAILURE")}
    assert aliyun.requests == 0 and tencent.requests == 0

    # Isolation both ways, then the live quota, untouched by the test sends.
    assert record(live, ok_id).status_code == 404
    found = requests.get(base_url + "/api/v1/sms/records", headers=live, timeout=5).json()["data"]
    assert found["total"] == 0
    assert [send(live, [m]).status_code for m in ("13700137000", "13700137001", "13700137002")] == [
        200,
        200,
        429,
    ]
    live_ids = [
        row["message_id"]
        for row in requests.get(base_url + "/api/v1/sms/records", headers=live, timeout=5).json()["data"][
            "list"
        ]
    ]
    assert len(live_ids) == 2 and all(record(test, mid).status_code == 404 for mid in live_ids)
    tests_seen = requests.get(base_url + "/api/v1/sms/records?size=100", headers=test, timeout=5).json()[
        "data"
    ]
    assert tests_seen["total"] == 6 and all(row["test"] for row in tests_seen["list"])
