"""The payment service as deployed: gunicorn, a celery worker (and beat), PostgreSQL, RabbitMQ, the upstream
fakes and a business receiver over real sockets. Order → notification → paid → forwarded → split."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
from standardwebhooks import Webhook

from payment_service.settings import generate_secret_key
from tests.e2e.processes import (
    free_port,
    run_cli,
    running,
    service_env,
    start_beat,
    start_gunicorn,
    start_worker,
    wait_until,
)
from tests.fakes.payment_server import Answer, NotifyReceiver
from tests.fakes.payment_server import running as serving
from tests.payment.conftest import params_for
from tests.payment.orders.helpers import alipay_fake_app, order_body, wechat_fake_app

pytestmark = pytest.mark.e2e

SITE = "SITE_E2E"


@dataclass
class Stack:
    base_url: str
    api_key: str
    notify_secret: str
    wechat: object
    alipay: object
    receiver: NotifyReceiver
    receiver_url: str
    env: dict
    log_dir: object
    config_ids: dict

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def place(self, **overrides) -> requests.Response:
        body = order_body(site_id=SITE, notify_url=self.receiver_url, **overrides)
        return requests.post(
            f"{self.base_url}/api/v1/payment/order", json=body, headers=self.headers, timeout=15
        )

    def order(self, transaction_id: str) -> dict:
        answer = requests.get(
            f"{self.base_url}/api/v1/payment/orders/{transaction_id}", headers=self.headers, timeout=5
        )
        return answer.json()["data"]

    def forwarded(self, transaction_id: str) -> list[dict]:
        """The forwards of one order, each verified as the business would, with the reference library."""
        return [
            Webhook(self.notify_secret).verify(item.body, item.headers)
            for item in self.receiver.received
            if json.loads(item.body)["data"]["transaction_id"] == transaction_id
        ]


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("payment-e2e")
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    port = free_port()
    with serving(wechat) as wechat_url, serving(alipay) as alipay_url, serving(receiver) as receiver_url:
        env = service_env(
            "PAYMENT",
            ENV="production",
            DATABASE_URL=databases.create("payment_e2e"),
            BROKER_URL=broker_url,
            SECRET_KEY=generate_secret_key(),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            WECHATPAY_BASE_URL=wechat_url,
            ALIPAY_GATEWAY_URL=alipay_url + "/gateway.do",
            CHANNEL_TIMEOUT_SECONDS="2",
            NOTIFY_ALLOW_PRIVATE="true",
            RETRY_BASE_SECONDS="1",
            PROFIT_SHARING_DELAY_SECONDS="0",
            PROFIT_SHARING_POLL_SECONDS="1",
            RECONCILE_INTERVAL_SECONDS="1",
            PENDING_QUERY_AFTER_MINUTES="0",
            PENDING_QUERY_INTERVAL_MINUTES="0",
        )
        env["GUNICORN_THREADS"] = "8"
        run_cli("payment_service", env, "db", "upgrade")
        tenant = json.loads(run_cli("payment_service", env, "tenant", "create", "--name", "e2e"))
        api, base_url = start_gunicorn("payment_service:create_app()", env, log_dir, port=port, workers=2)
        worker = start_worker("payment_service.worker", env, log_dir, extra=["-P", "threads", "-c", "4"])
        with running(api, worker):
            headers = {"X-Api-Key": tenant["api_key"]}
            config_ids = {}
            for mode, overrides in (("wechat_split", {}), ("alipay_direct", {})):
                created = requests.post(
                    f"{base_url}/api/v1/payment/configs",
                    json={"name": f"e2e-{mode}", "mode": mode, "params": params_for(mode, **overrides)},
                    headers=headers,
                    timeout=10,
                )
                config_ids[mode] = created.json()["data"]["config_id"]
                bound = requests.post(
                    f"{base_url}/api/v1/sites/{SITE}/payment-binding",
                    json={"config_id": config_ids[mode]},
                    headers=headers,
                    timeout=10,
                )
                assert bound.status_code == 200, bound.text
            yield Stack(
                base_url,
                tenant["api_key"],
                tenant["notify_secret"],
                wechat,
                alipay,
                receiver,
                receiver_url + "/pay/callback",
                env,
                log_dir,
                config_ids,
            )
            assert "Traceback" not in api.log(), api.log()[-3000:]
            assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_wechat_order_is_paid_forwarded_and_split(stack):
    placed = stack.place(amount=20.00, out_order_no="E2E-1")
    assert placed.status_code == 200, placed.text
    transaction_id = placed.json()["data"]["transaction_id"]
    assert placed.json()["data"]["pay_params"]["signType"] == "RSA"

    delivery = stack.wechat.pay(transaction_id)
    assert (delivery.status, delivery.body) == (204, "")

    wait_until(lambda: stack.forwarded(transaction_id), 20, "the forward to the business")
    [received] = [item for item in stack.receiver.received if transaction_id.encode() in item.body]
    Webhook(stack.notify_secret).verify(received.body, received.headers)
    payload = json.loads(received.body)
    assert payload["event"] == "payment.result" and payload["data"]["status"] == "paid"
    assert payload["data"]["amount"] == 20.0 and payload["data"]["out_order_no"] == "E2E-1"

    wait_until(
        lambda: (stack.order(transaction_id)["profit_sharing"] or {}).get("status") == "finished", 30, "split"
    )
    order = stack.order(transaction_id)
    assert order["status"] == "paid" and order["forwarding"]["status"] == "delivered"
    assert [(r["merchant_id"], r["amount"], r["state"]) for r in order["profit_sharing"]["receivers"]] == [
        ("1001", 3.0, "success"),
        ("1900000110", 17.0, "retained"),
    ]


def test_alipay_order_is_paid_and_forwarded(stack):
    placed = stack.place(channel="alipay", amount=8.8)
    transaction_id = placed.json()["data"]["transaction_id"]
    assert stack.alipay.pay(transaction_id).body == "success"
    wait_until(lambda: stack.forwarded(transaction_id), 20, "the forward to the business")
    assert stack.order(transaction_id)["status"] == "paid"


def test_twenty_concurrent_duplicate_notifications_make_one_transition_forward_and_split(stack):
    transaction_id = stack.place(amount=10.00).json()["data"]["transaction_id"]
    fake_order = stack.wechat.find_order(transaction_id)
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000077"
    fake_order.success_time = "2026-05-10T18:00:05+08:00"
    headers, body = stack.wechat.build_notification(fake_order)
    url = f"{stack.base_url}/api/v1/payment/notify/wechat/{stack.config_ids['wechat_split']}"
    start = threading.Barrier(20)

    def deliver(_):
        start.wait()
        return requests.post(url, data=body, headers=headers, timeout=15).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(deliver, range(20)))
    assert statuses == [204] * 20

    wait_until(
        lambda: (stack.order(transaction_id)["profit_sharing"] or {}).get("status") == "finished", 30, "split"
    )
    wait_until(lambda: stack.forwarded(transaction_id), 20, "the forward")
    time.sleep(1.5)  # room for a duplicate forward or split to show up, if there were one
    assert len(stack.forwarded(transaction_id)) == 1
    assert stack.order(transaction_id)["forwarding"]["attempts"] == 1
    splits = [
        s for s in stack.wechat.sharing_orders.values() if s.transaction_id == fake_order.transaction_id
    ]
    assert len(splits) == 1


def test_forged_notification_over_the_network_changes_nothing(stack):
    transaction_id = stack.place(amount=5).json()["data"]["transaction_id"]
    fake_order = stack.wechat.find_order(transaction_id)
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000088"
    headers, body = stack.wechat.build_notification(fake_order, amount={"total": 1, "currency": "CNY"})
    answer = requests.post(
        f"{stack.base_url}/api/v1/payment/notify/wechat", data=body, headers=headers, timeout=10
    )
    assert answer.status_code == 400 and answer.json() == {"code": "FAIL", "message": "失败"}
    assert stack.order(transaction_id)["status"] == "pending"
    fake_order.trade_state = "NOTPAY"  # so the beat test below does not find it paid


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 500, "code": "SYSTEM_ERROR", "message": "系统错误"},
        {"kind": "delay", "delay_ms": 3000},
    ],
)
def test_upstream_5xx_or_timeout_is_502_and_a_retry_with_the_same_out_order_no_is_safe(stack, fault):
    out_order_no = f"E2E-RETRY-{fault['kind']}"
    stack.wechat.fail_next(**fault)
    failed = stack.place(out_order_no=out_order_no)
    body = failed.json()
    assert failed.status_code == 502 and body["code"] == 502
    assert body["data"]["upstream_code"] in ("SYSTEM_ERROR", "TIMEOUT")
    transaction_id = body["data"]["transaction_id"]
    time.sleep(1.5)  # a delayed first call finishes at the fake meanwhile

    retried = stack.place(out_order_no=out_order_no)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["transaction_id"] == transaction_id
    assert len([o for o in stack.wechat.orders.values() if o.out_trade_no == transaction_id]) == 1
    assert stack.place(out_order_no=out_order_no, amount=99).status_code == 409


def test_beat_finds_a_payment_whose_notification_was_lost(stack):
    transaction_id = stack.place(amount=3.00).json()["data"]["transaction_id"]
    fake_order = stack.wechat.find_order(transaction_id)
    fake_order.trade_state, fake_order.transaction_id = "SUCCESS", "4200000000000000000000000099"
    fake_order.success_time = "2026-05-10T18:00:05+08:00"
    beat = start_beat("payment_service.worker", stack.env, stack.log_dir)
    with running(beat):
        wait_until(lambda: stack.forwarded(transaction_id), 30, "the beat's query and the forward", beat)
    assert stack.order(transaction_id)["status"] == "paid"
