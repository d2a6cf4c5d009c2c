"""Usage statistics as deployed: a send goes through a real worker to success, and beat's rebuild of the
daily counts brings ``GET /api/v1/sms/stats`` along with it."""

from __future__ import annotations

import json

import pytest
import requests

from sms_service.stats.facts import beijing_today
from tests.e2e.processes import (
    run_cli,
    running,
    service_env,
    start_beat,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.fakes import aliyun_sms
from tests.fakes.server import serve_in_thread

pytestmark = pytest.mark.e2e

TOKEN = "stats-receipt-token"


def test_stats_follow_a_send_to_success(databases, broker_url, postgres_required, tmp_path):
    aliyun = aliyun_sms.FakeAliyunSms()
    aliyun_url, stop_aliyun = serve_in_thread(aliyun)
    env = service_env(
        "SMS",
        ENV="production",
        DATABASE_URL=databases.create("sms_stats_e2e"),
        BROKER_URL=broker_url,
        PROVIDERS="aliyun",
        **aliyun_sms.service_settings(aliyun_url),
        RECEIPT_TOKEN=TOKEN,
        STATS_INTERVAL_SECONDS=1,
    )
    run_cli("sms_service", env, "db", "upgrade")
    api, base_url = start_gunicorn("sms_service:create_app()", env, tmp_path)
    worker = start_worker("sms_service.worker", env, tmp_path, extra=["--concurrency", "2"])
    beat = start_beat("sms_service.worker", env, tmp_path)
    try:
        with running(api, worker, beat):
            tenant = json.loads(run_cli("sms_service", env, "tenant", "create", "--name", "stats"))
            headers = {"X-Api-Key": tenant["api_key"]}
            body = {
                "name": "通知",
                "content": "您的衣物已洗好, 取件码${code}",
                "sign_name": "洗衣云",
                "provider_codes": {"aliyun": "SMS_100"},
            }
            template = requests.post(
                f"{base_url}/api/v1/sms/templates", json=body, headers=headers, timeout=5
            )
            template_id = template.json()["data"]["template_id"]
            send = {"template_id": template_id, "mobiles": ["13800138000"], "variables": {"code": "8"}}
            response = requests.post(f"{base_url}/api/v1/sms/send", json=send, headers=headers, timeout=5)
            message_id = response.json()["data"]["message_id"]
            today = beijing_today().isoformat()

            def stats() -> dict:
                url = f"{base_url}/api/v1/sms/stats?from={today}&to={today}&group_by=provider"
                return requests.get(url, headers=headers, timeout=5).json()["data"]

            def record() -> dict:
                url = f"{base_url}/api/v1/sms/records/{message_id}"
                return requests.get(url, headers=headers, timeout=5).json()["data"]

            wait_until(lambda: record()["status"] == "submitted", 30, "submitted")
            wait_until(
                lambda: stats()["totals"]["pending"] == 1 and stats()["list"][0]["key"] == "aliyun",
                30,
                "stats show the message pending at aliyun",
            )
            aliyun.push_receipts(f"{base_url}/api/v1/sms/receipts/aliyun?token={TOKEN}")
            wait_until(lambda: record()["status"] == "success", 30, "success")
            wait_until(lambda: stats()["totals"]["success"] == 1, 30, "stats show the success")
            assert stats() == {
                "list": [
                    {
                        "key": "aliyun",
                        "total": 1,
                        "success": 1,
                        "failed": 0,
                        "pending": 0,
                        "segments": record()["segments"],
                    }
                ],
                "totals": {
                    "total": 1,
                    "success": 1,
                    "failed": 0,
                    "pending": 0,
                    "segments": record()["segments"],
                },
            }
            for process in (api, worker, beat):
                assert "Traceback" not in process.log(), process.log()[-3000:]
    finally:
        stop_aliyun()
