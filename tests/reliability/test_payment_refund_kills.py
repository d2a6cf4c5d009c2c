"""Refunds survive processes killed mid-step (real gunicorn, celery worker and beat, PostgreSQL, RabbitMQ,
fakes over sockets): the refund row is committed processing with its id before any upstream call and every
call reuses the same refund id and return number, so whatever dies, reconciliation ends the refund settled
once, with nothing returned or refunded twice."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.processes import start_gunicorn, start_worker, wait_until
from tests.e2e.test_payment_refunds_e2e import RefundStack, refund_stack

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def stack(databases, broker_url, postgres_required, tmp_path_factory) -> Iterator[RefundStack]:
    with refund_stack(databases, broker_url, tmp_path_factory.mktemp("refund-kills")) as built:
        yield built


def restart_api(stack: RefundStack) -> None:
    stack.processes["api"].kill(signal.SIGKILL)
    stack.processes["api"].popen.wait(10)
    port = int(stack.base_url.rsplit(":", 1)[1])
    stack.processes["api"], _ = start_gunicorn(
        "payment_service:create_app()", stack.env, stack.log_dir, port=port, workers=2
    )


def restart_worker(stack: RefundStack) -> None:
    stack.processes["worker"].kill(signal.SIGKILL)
    stack.processes["worker"].popen.wait(10)
    stack.processes["worker"] = start_worker(
        "payment_service.worker",
        stack.env,
        stack.log_dir,
        name="worker-again",
        extra=["-P", "threads", "-c", "4"],
    )


def in_background(call) -> threading.Thread:
    """Run a request whose process is about to be killed: its connection error is the point."""

    def run():
        try:
            call()
        except requests.RequestException:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def refund_ids_at(fake, transaction_id: str) -> list[str]:
    return [r.out_refund_no for r in fake.refunds.values() if r.out_trade_no == transaction_id]


def test_an_api_killed_between_the_return_and_the_refund_call_ends_settled_once(stack):
    stack.wechat.config.refund_delay_ms = 200
    transaction_id = stack.paid(amount=20)
    stack.split_finished(transaction_id)  # 300 fen with the platform
    calls = stack.wechat.calls["create_return"]
    stack.wechat.fail_next(kind="delay", delay_ms=3000, endpoint="create_return")

    in_background(lambda: stack.refund(transaction_id, amount=20, out_refund_no="KILL-1"))
    wait_until(lambda: stack.wechat.calls["create_return"] > calls, 10, "the return call")
    restart_api(stack)  # the return reaches WeChat; our answer to it is lost with the process

    wait_until(lambda: refund_ids_at(stack.wechat, transaction_id), 30, "the refund sent by reconciliation")
    [refund_id] = refund_ids_at(stack.wechat, transaction_id)
    wait_until(lambda: stack.shown(refund_id)["status"] == "success", 30, "the refund settled")
    returns = [r for r in stack.wechat.return_orders.values() if r.out_order_no == f"PS_{transaction_id}"]
    assert [(r.out_return_no, r.amount) for r in returns] == [(f"{refund_id}_1001", 300)]  # once
    assert stack.shown(refund_id)["profit_sharing_returns"][0]["status"] == "success"
    assert stack.wechat.calls["create_return"] - calls == 2  # asked again with the same out_return_no
    order = stack.order(transaction_id)
    assert (order["status"], order["refunded_amount"], order["refunding_amount"]) == ("refunded", 20.0, 0.0)
    assert stack.wechat.refundable(transaction_id) == 0


def test_an_api_killed_during_the_alipay_refund_call_ends_settled_once(stack):
    transaction_id = stack.paid(channel="alipay", amount=9.9)
    calls = stack.alipay.calls["alipay.trade.refund"]
    stack.alipay.fail_next(kind="delay", delay_ms=3000, method="alipay.trade.refund")

    in_background(lambda: stack.refund(transaction_id, amount=9.9))
    wait_until(lambda: stack.alipay.calls["alipay.trade.refund"] > calls, 10, "the refund call")
    restart_api(stack)

    wait_until(lambda: stack.order(transaction_id)["status"] == "refunded", 30, "reconciliation")
    refunds = [r for r in stack.alipay.refunds.values() if r.out_trade_no == transaction_id]
    assert len(refunds) == 1 and stack.alipay.refundable(transaction_id) == "0.00"
    order = stack.order(transaction_id)
    assert (order["refunded_amount"], order["refunding_amount"]) == (9.9, 0.0)


def test_a_worker_killed_during_the_refund_call_ends_settled_once(stack):
    stack.wechat.config.refund_delay_ms = 200
    transaction_id = stack.paid(amount=20)
    stack.split_finished(transaction_id)
    first = stack.refund(transaction_id, amount=5).json()["data"]["refund_id"]
    stack.wechat.config.refund_interval_ms = 60_000
    limited = stack.refund(transaction_id, amount=5).json()["data"]
    assert limited["status"] == "processing"  # FREQUENCY_LIMITED: the worker sends it again later
    calls = stack.wechat.calls["refund"]
    stack.wechat.config.refund_interval_ms = 0
    stack.wechat.fail_next(kind="delay", delay_ms=3000, endpoint="refund")

    wait_until(lambda: stack.wechat.calls["refund"] > calls, 20, "the worker's refund call")
    restart_worker(stack)  # killed during the call; WeChat takes the refund anyway

    refund_id = limited["refund_id"]
    wait_until(lambda: stack.shown(refund_id)["status"] == "success", 30, "the refund settled")
    assert sorted(refund_ids_at(stack.wechat, transaction_id)) == sorted([first, refund_id])
    assert stack.wechat.find_refund(refund_id).refund == 500
    wait_until(lambda: stack.shown(first)["status"] == "success", 10, "the first refund")
    order = stack.order(transaction_id)
    assert (order["refunded_amount"], order["refunding_amount"]) == (10.0, 0.0)
    assert stack.wechat.refundable(transaction_id) == 1000
    returns = [
        r.amount for r in stack.wechat.return_orders.values() if r.out_order_no == f"PS_{transaction_id}"
    ]
    assert returns == [75, 75]  # floor(500 × 0.15) per refund, each once
