"""Faults around payments with real processes (gunicorn, celery worker and beat, PostgreSQL, RabbitMQ) and the
WeChat Pay / Alipay fakes over real sockets: duplicate and early notifications, unknown orders, an upstream
failing order creation, a lost notification, a business receiver down or always failing."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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
)
from tests.fakes.payment_server import Answer, NotifyReceiver
from tests.fakes.payment_server import running as serving
from tests.payment.conftest import params_for, secret_fragments
from tests.payment.orders.helpers import alipay_fake_app, order_body, wechat_fake_app
from tests.reliability.stacks import assert_logs_clean, wait_for

pytestmark = pytest.mark.reliability

SITE = "SITE_REL"
MAX_FORWARD_ATTEMPTS = 4


@dataclasses.dataclass
class PaymentStack:
    base_url: str
    api_key: str
    wechat: object
    alipay: object
    receiver: NotifyReceiver
    receiver_url: str
    config_ids: dict
    log_dir: object
    notify_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def place(self, path: str = "/pay/callback", **overrides) -> requests.Response:
        body = order_body(site_id=SITE, notify_url=self.receiver_url + path, **overrides)
        return requests.post(
            f"{self.base_url}/api/v1/payment/order", json=body, headers=self.headers, timeout=20
        )

    def order(self, transaction_id: str) -> dict:
        url = f"{self.base_url}/api/v1/payment/orders/{transaction_id}"
        return requests.get(url, headers=self.headers, timeout=5).json()["data"]

    def forwarded(self, transaction_id: str) -> list[dict]:
        """The forwards of one order, each verified as the business would, with the reference library."""
        return [
            Webhook(self.notify_secret).verify(item.body, item.headers)
            for item in list(self.receiver.received)
            if json.loads(item.body)["data"]["transaction_id"] == transaction_id
        ]

    def notify_url(self, channel: str) -> str:
        mode = "wechat_split" if channel == "wechat" else "alipay_direct"
        return f"{self.base_url}/api/v1/payment/notify/{channel}/{self.config_ids[mode]}"


def business_answer(notification) -> Answer:
    """The business's endpoint: /pay/callback accepts; /pay/always-fails answers 500."""
    return Answer(500 if notification.path.endswith("/always-fails") else 200, b"ok")


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory) -> Iterator[PaymentStack]:
    log_dir = tmp_path_factory.mktemp("payment-reliability")
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    receiver = NotifyReceiver(business_answer)
    port = free_port()
    with serving(wechat) as wechat_url, serving(alipay) as alipay_url, serving(receiver) as receiver_url:
        secret_key = generate_secret_key()
        env = service_env(
            "PAYMENT",
            ENV="production",
            DATABASE_URL=databases.create("payment_reliability"),
            BROKER_URL=broker_url,
            SECRET_KEY=secret_key,
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            WECHATPAY_BASE_URL=wechat_url,
            ALIPAY_GATEWAY_URL=alipay_url + "/gateway.do",
            CHANNEL_TIMEOUT_SECONDS="3",
            NOTIFY_ALLOW_PRIVATE="true",
            RETRY_BASE_SECONDS="0.5",
            FORWARD_RETRY_DELAYS=",".join(["0.5"] * (MAX_FORWARD_ATTEMPTS - 1)),
            PROFIT_SHARING_DELAY_SECONDS="0",
            PROFIT_SHARING_POLL_SECONDS="1",
            RECONCILE_INTERVAL_SECONDS="1",
            PENDING_QUERY_AFTER_MINUTES="0",
            PENDING_QUERY_INTERVAL_MINUTES="0",
        )
        env["GUNICORN_THREADS"] = "8"
        run_cli("payment_service", env, "db", "upgrade")
        tenant = json.loads(run_cli("payment_service", env, "tenant", "create", "--name", "reliability"))
        api, base_url = start_gunicorn("payment_service:create_app()", env, log_dir, port=port, workers=2)
        worker = start_worker("payment_service.worker", env, log_dir, extra=["-P", "threads", "-c", "4"])
        beat = start_beat("payment_service.worker", env, log_dir)
        with running(api, worker, beat):
            headers = {"X-Api-Key": tenant["api_key"]}
            config_ids = {}
            for mode in ("wechat_split", "alipay_direct"):
                created = requests.post(
                    f"{base_url}/api/v1/payment/configs",
                    json={"name": f"reliability-{mode}", "mode": mode, "params": params_for(mode)},
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
            yield PaymentStack(
                base_url,
                tenant["api_key"],
                wechat,
                alipay,
                receiver,
                receiver_url,
                config_ids,
                log_dir,
                tenant["notify_secret"],
            )
        watched = [tenant["api_key"], tenant["notify_secret"], secret_key, *secret_fragments()]
        logs = {path.name: path.read_text(errors="replace") for path in log_dir.glob("*.log")}
        assert_logs_clean(logs, watched, [])


def paid_in_fake(order) -> None:
    order.trade_state, order.transaction_id = "SUCCESS", "42000000000000" + order.out_trade_no[-14:].upper()
    order.success_time = "2026-05-10T18:00:05+08:00"


def test_twenty_concurrent_duplicate_notifications_transition_once(stack):
    transaction_id = stack.place(amount=10.00).json()["data"]["transaction_id"]
    fake_order = stack.wechat.find_order(transaction_id)
    paid_in_fake(fake_order)
    headers, body = stack.wechat.build_notification(fake_order)
    gate = threading.Barrier(20)

    def deliver(_):
        gate.wait()
        return requests.post(stack.notify_url("wechat"), data=body, headers=headers, timeout=15).status_code

    with ThreadPoolExecutor(20) as pool:
        assert list(pool.map(deliver, range(20))) == [204] * 20
    wait_for(
        lambda: (stack.order(transaction_id)["profit_sharing"] or {}).get("status") == "finished", 30, "split"
    )
    wait_for(lambda: stack.forwarded(transaction_id), 20, "the forward")
    time.sleep(2)  # room for a second forward or split, if there were one
    order = stack.order(transaction_id)
    assert order["status"] == "paid" and order["forwarding"]["attempts"] == 1
    assert len(stack.forwarded(transaction_id)) == 1
    transaction = fake_order.transaction_id
    assert len([s for s in stack.wechat.sharing_orders.values() if s.transaction_id == transaction]) == 1


def test_notification_arriving_before_the_order_call_returned(stack):
    # An order like the one to come, to shape the early notification (same merchant, amount and payer).
    shape = stack.wechat.find_order(stack.place(amount=6.60).json()["data"]["transaction_id"])
    known = {order["transaction_id"] for order in _orders(stack)}
    stack.wechat.fail_next(kind="delay", delay_ms=2000, endpoint="create_partner")  # the order call waits
    with ThreadPoolExecutor(1) as pool:
        placing = pool.submit(stack.place, amount=6.60, out_order_no="REL-EARLY")
        wait_for(lambda: {o["transaction_id"] for o in _orders(stack)} - known, 10, "the order row", 0.05)
        [transaction_id] = {order["transaction_id"] for order in _orders(stack)} - known
        early = dataclasses.replace(shape, out_trade_no=transaction_id)
        paid_in_fake(early)
        headers, body = stack.wechat.build_notification(early)
        notified = requests.post(stack.notify_url("wechat"), data=body, headers=headers, timeout=10)
        assert not placing.done()  # the notification came while the order call was still waiting
        placed = placing.result(timeout=20)
    assert notified.status_code == 204
    assert placed.status_code == 200, placed.text
    assert placed.json()["data"]["transaction_id"] == transaction_id
    wait_for(lambda: stack.forwarded(transaction_id), 20, "the forward")
    time.sleep(1.5)
    order = stack.order(transaction_id)
    assert order["status"] == "paid" and order["channel_order_ref"]  # paid, and the prepay id kept
    assert len(stack.forwarded(transaction_id)) == 1


def _orders(stack) -> list[dict]:
    url = f"{stack.base_url}/api/v1/payment/orders?size=100"
    return requests.get(url, headers=stack.headers, timeout=5).json()["data"]["list"]


def test_notifications_for_unknown_orders_are_refused_and_change_nothing(stack):
    transaction_id = stack.place(amount=2.00).json()["data"]["transaction_id"]
    fake_order = stack.wechat.find_order(transaction_id)
    stranger = dataclasses.replace(fake_order, out_trade_no="TXN_20260510_unknownunknown01")
    paid_in_fake(stranger)
    headers, body = stack.wechat.build_notification(stranger)
    for url in (stack.notify_url("wechat"), f"{stack.base_url}/api/v1/payment/notify/wechat"):
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        assert answer.status_code == 400 and answer.json() == {"code": "FAIL", "message": "失败"}

    alipay_id = stack.place(channel="alipay", amount=3.00).json()["data"]["transaction_id"]
    trade = stack.alipay.find_trade(alipay_id)
    unknown_trade = dataclasses.replace(
        trade, out_trade_no="TXN_20260510_unknownunknown02", trade_status="TRADE_SUCCESS"
    )
    form = stack.alipay.build_notification(unknown_trade)
    for url in (stack.notify_url("alipay"), f"{stack.base_url}/api/v1/payment/notify/alipay"):
        answer = requests.post(url, data=form, timeout=10)
        assert (answer.status_code, answer.text) == (400, "fail")
    assert stack.order(transaction_id)["status"] == "pending"
    assert stack.order(alipay_id)["status"] == "pending"
    listed = requests.get(f"{stack.base_url}/api/v1/payment/orders", headers=stack.headers, timeout=5).json()
    assert "TXN_20260510_unknownunknown01" not in json.dumps(listed)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 500, "code": "SYSTEM_ERROR", "message": "系统错误"},
        {"kind": "delay", "delay_ms": 4000},  # longer than the 3 s channel timeout
    ],
    ids=["500", "timeout"],
)
def test_wechat_failing_order_creation_is_502_and_the_retry_is_safe(stack, fault):
    out_order_no = f"REL-RETRY-{fault['kind']}"
    # The order's own call: the beat's reconciliation queries of earlier orders must not take the fault.
    stack.wechat.fail_next(**fault, endpoint="create_partner")
    started = time.monotonic()
    failed = stack.place(out_order_no=out_order_no, amount=7.00)
    assert time.monotonic() - started < 8
    body = failed.json()
    assert failed.status_code == 502 and set(body) == {"code", "data", "message"} and body["code"] == 502
    assert body["data"]["upstream_code"] in ("SYSTEM_ERROR", "TIMEOUT")
    transaction_id = body["data"]["transaction_id"]
    assert stack.order(transaction_id)["status"] == "pending"  # recorded, not failed: it may exist upstream
    time.sleep(1.5)  # a delayed first call finishes at the fake meanwhile

    retried = stack.place(out_order_no=out_order_no, amount=7.00)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["transaction_id"] == transaction_id
    assert len([o for o in stack.wechat.orders.values() if o.out_trade_no == transaction_id]) == 1
    assert (
        stack.place(out_order_no=out_order_no, amount=7.00).json()["data"]["transaction_id"] == transaction_id
    )


def test_a_lost_notification_is_recovered_by_reconciliation(stack):
    transaction_id = stack.place(amount=3.00).json()["data"]["transaction_id"]
    paid_in_fake(stack.wechat.find_order(transaction_id))  # paid upstream; the notification never comes
    started = time.monotonic()
    wait_for(lambda: stack.forwarded(transaction_id), 30, "the beat's query and the forward")
    print(f"\nlost notification: paid and forwarded {time.monotonic() - started:.1f}s after the payment")
    assert stack.order(transaction_id)["status"] == "paid"
    assert len(stack.forwarded(transaction_id)) == 1


def test_business_receiver_down_then_back_and_one_that_always_fails(stack):
    down = stack.place(path="/pay/callback", amount=4.00).json()["data"]["transaction_id"]
    always = stack.place(path="/pay/always-fails", amount=5.00).json()["data"]["transaction_id"]
    original = stack.receiver.handler
    stack.receiver.handler = lambda notification: Answer(503, b"down")
    try:
        assert stack.wechat.pay(down).status == 204 and stack.wechat.pay(always).status == 204
        wait_for(lambda: stack.order(down)["forwarding"]["attempts"] >= 2, 20, "two failed forwards")
    finally:
        stack.receiver.handler = original
    wait_for(lambda: stack.order(down)["forwarding"]["status"] == "delivered", 30, "delivered once back")
    wait_for(lambda: stack.order(always)["forwarding"]["status"] == "failed", 40, "given up")
    time.sleep(2)
    delivered, failed = stack.order(down)["forwarding"], stack.order(always)["forwarding"]
    print(f"\nforward: delivered after {delivered['attempts']} attempts; gave up after {failed['attempts']}")
    assert delivered["last_http_status"] == 200 and delivered["attempts"] >= 3
    assert failed["attempts"] == MAX_FORWARD_ATTEMPTS and failed["last_http_status"] == 500
    assert len([b for b in stack.forwarded(down)]) == delivered["attempts"]
    assert len([b for b in stack.forwarded(always)]) == MAX_FORWARD_ATTEMPTS
