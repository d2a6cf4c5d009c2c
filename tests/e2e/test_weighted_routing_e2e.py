"""Weighted routing as deployed: 1,000 single sends through gunicorn and a celery worker split between the
Aliyun and Tencent fakes (over real sockets) within 5 points of SMS_PROVIDER_WEIGHTS, as the records show."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.processes import run_cli, running, service_env, start_gunicorn, start_worker, wait_until
from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.e2e

SENDS = 1000


def test_one_thousand_single_sends_split_by_weight(databases, broker_url, postgres_required, tmp_path):
    aliyun, tencent = aliyun_sms.FakeAliyunSms(), tencent_sms.FakeTencentSms()
    aliyun_url, stop_aliyun = serve_in_thread(aliyun)
    tencent_url, stop_tencent = serve_in_thread(tencent)
    env = service_env(
        "SMS",
        ENV="production",
        DATABASE_URL=databases.create("sms_routing"),
        BROKER_URL=broker_url,
        PROVIDERS="aliyun,tencent",
        PROVIDER_WEIGHTS="aliyun:70,tencent:30",
        **aliyun_sms.service_settings(aliyun_url),
        **tencent_sms.service_settings(tencent_url),
        DISPATCH_BATCH_SIZE=1,  # one upstream call per message: the draw is per call
        CIRCUIT_FAILURE_THRESHOLD=1000,
    )
    run_cli("sms_service", env, "db", "upgrade")
    tenant = json.loads(run_cli("sms_service", env, "tenant", "create", "--name", "routing"))
    headers = {"X-Api-Key": tenant["api_key"]}
    api, base_url = start_gunicorn("sms_service:create_app()", env, tmp_path)
    worker = start_worker("sms_service.worker", env, tmp_path, extra=["--concurrency", "4"])
    try:
        with running(api, worker):
            template = requests.post(
                base_url + "/api/v1/sms/templates",
                headers=headers,
                json={
                    "name": "通知",
                    "content": "您的衣物已洗好",
                    "sign_name": "洗衣云",
                    "provider_codes": {"aliyun": "SMS_100", "tencent": "1000"},
                },
                timeout=10,
            ).json()["data"]["template_id"]
            session = requests.Session()

            def send(n: int) -> str:
                body = {"template_id": template, "mobiles": [f"139{n:08d}"], "variables": {}}
                answer = session.post(base_url + "/api/v1/sms/send", json=body, headers=headers, timeout=10)
                assert answer.status_code == 200, answer.text
                return answer.json()["data"]["message_id"]

            with ThreadPoolExecutor(8) as pool:
                ids = set(pool.map(send, range(SENDS)))
            providers: Counter = Counter()

            def all_submitted() -> bool:
                providers.clear()
                for page in range(1, SENDS // 100 + 1):
                    listed = session.get(
                        base_url + "/api/v1/sms/records",
                        params={"page": page, "size": 100, "status": "submitted"},
                        headers=headers,
                        timeout=10,
                    ).json()["data"]
                    providers.update(row["provider"] for row in listed["list"] if row["message_id"] in ids)
                return sum(providers.values()) == SENDS

            wait_until(all_submitted, 45, "1,000 messages submitted")
    finally:
        stop_aliyun()
        stop_tencent()
    assert abs(providers["aliyun"] / SENDS - 0.70) <= 0.05, providers
    assert abs(providers["tencent"] / SENDS - 0.30) <= 0.05, providers
