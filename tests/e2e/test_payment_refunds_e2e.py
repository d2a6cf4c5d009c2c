"""Refunds with the payment service as deployed: gunicorn, a celery worker and beat, PostgreSQL, RabbitMQ, the
WeChat Pay / Alipay fakes and a business receiver over real sockets. Paid → (returns →) refunded →
notified → forwarded; concurrent requests reserve once; the frequency limit is retried, never failed."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import requests
from standardwebhooks import Webhook

from payment_service.settings import generate_secret_key
from tests.e2e.processes import (
    free_port,
    run_cli,
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

SITE = "SITE_RFD"
SETTINGS = {
    "CHANNEL_TIMEOUT_SECONDS": "5",
    "NOTIFY_ALLOW_PRIVATE": "true",
    "PROFIT_SHARING_DELAY_SECONDS": "0",
    "PROFIT_SHARING_POLL_SECONDS": "1",
    "RETRY_BASE_SECONDS": "1",
    "RECONCILE_INTERVAL_SECONDS": "1",
    "REFUND_QUERY_AFTER_SECONDS": "2",
    "REFUND_RETRY_SECONDS": "1",
    "REFUND_RESEND_AFTER_SECONDS": "1",
    "FORWARD_RETRY_DELAYS": "1,1,1",
}


@dataclass
class RefundStack:
    base_url: str
    api_key: str
    notify_secret: str
    wechat: object
    alipay: object
    receiver: NotifyReceiver
    receiver_url: str
    env: dict
    log_dir: object
    processes: dict = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def paid(self, channel: str = "wechat", amount: float = 20.0) -> str:
        body = order_body(site_id=SITE, channel=channel, amount=amount, notify_url=self.receiver_url)
        placed = requests.post(
            f"{self.base_url}/api/v1/payment/order", json=body, headers=self.headers, timeout=15
        )
        assert placed.status_code == 200, placed.text
        transaction_id = placed.json()["data"]["transaction_id"]
        fake = self.wechat if channel == "wechat" else self.alipay
        assert fake.pay(transaction_id).status in (200, 204)
        wait_until(lambda: self.order(transaction_id)["status"] == "paid", 10, "paid")
        return transaction_id

    def split_finished(self, transaction_id: str) -> None:
        wait_until(
            lambda: (self.order(transaction_id)["profit_sharing"] or {}).get("status") == "finished",
            30,
            "split",
        )

    def refund(self, transaction_id: str, **body) -> requests.Response:
        return requests.post(
            f"{self.base_url}/api/v1/payment/orders/{transaction_id}/refunds",
            json=body,
            headers=self.headers,
            timeout=20,
        )

    def order(self, transaction_id: str) -> dict:
        url = f"{self.base_url}/api/v1/payment/orders/{transaction_id}"
        return requests.get(url, headers=self.headers, timeout=5).json()["data"]

    def shown(self, refund_id: str) -> dict:
        url = f"{self.base_url}/api/v1/payment/refunds/{refund_id}"
        return requests.get(url, headers=self.headers, timeout=5).json()["data"]

    def refund_forwards(self, refund_id: str) -> list[dict]:
        """The payment.refund forwards of one refund, each verified with the reference library."""
        return [
            Webhook(self.notify_secret).verify(item.body, item.headers)
            for item in self.receiver.received
            if json.loads(item.body)["event"] == "payment.refund"
            and json.loads(item.body)["data"]["refund_id"] == refund_id
        ]


@contextmanager
def refund_stack(databases, broker_url, log_dir, **overrides: str) -> Iterator[RefundStack]:
    """The deployed payment service, a split and an Alipay config bound to SITE; worker and beat running."""
    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    receiver = NotifyReceiver(lambda notification: Answer(200, b"ok"))
    port = free_port()
    with serving(wechat) as wechat_url, serving(alipay) as alipay_url, serving(receiver) as receiver_url:
        env = service_env(
            "PAYMENT",
            ENV="production",
            DATABASE_URL=databases.create("payment_refunds"),
            BROKER_URL=broker_url,
            SECRET_KEY=generate_secret_key(),
            PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
            WECHATPAY_BASE_URL=wechat_url,
            ALIPAY_GATEWAY_URL=alipay_url + "/gateway.do",
            **{**SETTINGS, **overrides},
        )
        env["GUNICORN_THREADS"] = "8"
        run_cli("payment_service", env, "db", "upgrade")
        tenant = json.loads(run_cli("payment_service", env, "tenant", "create", "--name", "refunds"))
        api, base_url = start_gunicorn("payment_service:create_app()", env, log_dir, port=port, workers=2)
        worker = start_worker("payment_service.worker", env, log_dir, extra=["-P", "threads", "-c", "4"])
        beat = start_beat("payment_service.worker", env, log_dir)
        stack = RefundStack(
            base_url,
            tenant["api_key"],
            tenant["notify_secret"],
            wechat,
            alipay,
            receiver,
            receiver_url + "/biz/callback",
            env,
            log_dir,
            {"api": api, "worker": worker, "beat": beat},
        )
        try:
            for mode in ("wechat_split", "alipay_direct"):
                created = requests.post(
                    f"{base_url}/api/v1/payment/configs",
                    json={"name": f"refunds-{mode}", "mode": mode, "params": params_for(mode)},
                    headers=stack.headers,
                    timeout=10,
                )
                config_id = created.json()["data"]["config_id"]
                bound = requests.post(
                    f"{base_url}/api/v1/sites/{SITE}/payment-binding",
                    json={"config_id": config_id},
                    headers=stack.headers,
                    timeout=10,
                )
                assert bound.status_code == 200, bound.text
            yield stack
        finally:
            for process in stack.processes.values():
                process.stop()
        assert "Traceback" not in api.log(), api.log()[-3000:]


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory) -> Iterator[RefundStack]:
    with refund_stack(databases, broker_url, tmp_path_factory.mktemp("refunds-e2e")) as built:
        yield built
        assert "Traceback" not in built.processes["worker"].log(), built.processes["worker"].log()[-3000:]


def test_a_split_order_is_refunded_in_two_parts_returns_first_then_notified_and_forwarded(stack):
    stack.wechat.config.refund_delay_ms = 300  # WeChat settles and notifies 0.3 s after accepting
    transaction_id = stack.paid(amount=20.07)
    stack.split_finished(transaction_id)  # 301 fen to the platform

    first = stack.refund(transaction_id, amount=10, out_refund_no="E2E-R-1", reason="洗衣机故障")
    assert first.status_code == 200, first.text
    first_id = first.json()["data"]["refund_id"]
    wait_until(lambda: stack.shown(first_id)["status"] == "success", 20, "the refund notification")
    second = stack.refund(transaction_id, amount=10.07)
    second_id = second.json()["data"]["refund_id"]
    wait_until(lambda: stack.shown(second_id)["status"] == "success", 20, "the second refund")

    order = stack.order(transaction_id)
    assert (order["status"], order["refunded_amount"], order["refunding_amount"]) == ("refunded", 20.07, 0.0)
    assert sorted(r.amount for r in stack.wechat.return_orders.values()) == [150, 151]
    assert [line["amount"] for line in stack.shown(first_id)["profit_sharing_returns"]] == [1.5]
    wait_until(lambda: stack.refund_forwards(first_id), 20, "the payment.refund forward")
    [payload] = stack.refund_forwards(first_id)
    assert payload["data"]["status"] == "success" and payload["data"]["out_refund_no"] == "E2E-R-1"
    assert payload["data"]["amount"] == 10.0 and payload["data"]["transaction_id"] == transaction_id
    assert stack.shown(first_id)["forwarding"]["status"] == "delivered"
    stack.wechat.config.refund_delay_ms = None


def test_an_alipay_order_is_refunded_in_full_at_once(stack):
    transaction_id = stack.paid(channel="alipay", amount=8.8)
    answer = stack.refund(transaction_id, amount=8.8)
    assert answer.status_code == 200 and answer.json()["data"]["status"] == "success"
    refund_id = answer.json()["data"]["refund_id"]
    wait_until(lambda: stack.refund_forwards(refund_id), 20, "the payment.refund forward")
    assert stack.order(transaction_id)["status"] == "refunded"


def test_twenty_concurrent_full_refunds_are_one_refund_upstream(stack):
    # WeChat answers PROCESSING, so the order stays paid with nothing left: every other request is a 400.
    # (On Alipay the accepted refund may already have succeeded: the order is refunded and the rest get 409.)
    transaction_id = stack.paid(amount=3)
    stack.split_finished(transaction_id)
    before = stack.wechat.calls["refund"]
    barrier = threading.Barrier(20)

    def ask(_):
        barrier.wait()
        answer = stack.refund(transaction_id, amount=3)
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(ask, range(20)))

    assert Counter(code for code, _ in answers) == {200: 1, 400: 19}, answers
    assert {body["data"]["refundable"] for code, body in answers if code == 400} == {0.0}
    assert stack.wechat.calls["refund"] - before == 1
    assert stack.wechat.refundable(transaction_id) == 0
    returns = [r for r in stack.wechat.return_orders.values() if r.out_order_no == f"PS_{transaction_id}"]
    assert [r.amount for r in returns] == [45]  # floor(300 × 0.15), once


def test_the_frequency_limit_is_retried_until_wechat_takes_the_refund(stack):
    transaction_id = stack.paid(amount=20)
    stack.split_finished(transaction_id)
    stack.wechat.config.refund_interval_ms = 2500
    try:
        first = stack.refund(transaction_id, amount=5).json()["data"]["refund_id"]
        second = stack.refund(transaction_id, amount=5)
        assert second.status_code == 200 and second.json()["data"]["status"] == "processing"
        second_id = second.json()["data"]["refund_id"]
        wait_until(lambda: _upstream_has(stack.wechat, second_id), 20, "the retried refund")
    finally:
        stack.wechat.config.refund_interval_ms = 0
    assert stack.shown(second_id)["status"] == "processing"  # accepted; WeChat settles it later
    assert stack.wechat.find_refund(second_id).refund == 500
    assert stack.wechat.find_refund(first).refund == 500


def _upstream_has(fake, refund_id: str) -> bool:
    try:
        fake.find_refund(refund_id)
    except LookupError:
        return False
    return True
