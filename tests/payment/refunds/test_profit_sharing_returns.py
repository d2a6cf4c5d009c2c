"""Refunds of wechat_split orders: after a finished split the receivers' shares come back first (floor of the
refund × ratio, capped at what each received); before the split, the split takes only what remains."""

from __future__ import annotations

import pytest

from payment_service.channels import WechatPayClient
from payment_service.orders.profit_sharing import run_profit_sharing
from payment_service.outbox import REFUND_TASK
from payment_service.refunds.sending import advance_refund
from tests.payment.orders.helpers import PLATFORM_RECEIVER, SUB_MCHID, order_of
from tests.payment.refunds.helpers import ask_refund, paid_order, refund_of, refunded


@pytest.fixture
def immediate(payment_app, monkeypatch):
    monkeypatch.setitem(payment_app.config, "PROFIT_SHARING_DELAY_SECONDS", 0.0)
    monkeypatch.setitem(payment_app.config, "PROFIT_SHARING_POLL_SECONDS", 0.0)


@pytest.fixture
def upstream_calls(monkeypatch) -> list[str]:
    """The order of return and refund calls made to WeChat."""
    calls: list[str] = []
    for name in ("create_profit_sharing_return", "refund"):
        original = getattr(WechatPayClient, name)

        def recording(self, request, _original=original, _name=name):
            calls.append(_name)
            return _original(self, request)

        monkeypatch.setattr(WechatPayClient, name, recording)
    return calls


def split_order(client, api_key, payment_db, wechat, amount) -> str:
    """A paid wechat_split order (15 % to the platform) whose split WeChat has finished."""
    transaction_id = paid_order(client, api_key, wechat, amount=amount)
    run_profit_sharing(payment_db, transaction_id)
    run_profit_sharing(payment_db, transaction_id)
    assert order_of(client, api_key, transaction_id)["profit_sharing"]["status"] == "finished"
    return transaction_id


def test_a_refund_after_the_split_returns_the_shares_first(
    payment_client, admin, payment_db, fakes, sites, published, immediate, upstream_calls
):
    wechat, _ = fakes
    transaction_id = split_order(payment_client, admin, payment_db, wechat, amount=20.07)  # 301 fen to 1001

    first = refunded(payment_client, admin, transaction_id, amount=10, out_refund_no="BIZ-R-1")
    assert upstream_calls == ["create_profit_sharing_return", "refund"]
    [returned] = wechat.return_orders.values()
    assert (returned.return_mchid, returned.amount) == (PLATFORM_RECEIVER, 150)  # floor(1000 × 0.15)
    assert returned.out_return_no == f"{first['refund_id']}_{PLATFORM_RECEIVER}"  # not from BIZ-R-1
    assert wechat.find_refund(first["refund_id"]).refund == 1000
    shown = refund_of(payment_client, admin, first["refund_id"])
    assert shown["profit_sharing_returns"] == [
        {"merchant_id": PLATFORM_RECEIVER, "amount": 1.5, "status": "success", "fail_reason": None}
    ]

    second = refunded(payment_client, admin, transaction_id, amount=10.07)
    # floor(1007 × 0.15) = 151, exactly what 1001 still holds (301 − 150): never more than it received.
    assert sorted(r.amount for r in wechat.return_orders.values()) == [150, 151]
    assert (
        refund_of(payment_client, admin, second["refund_id"])["profit_sharing_returns"][0]["amount"] == 1.51
    )
    wechat.settle_refund(first["refund_id"])
    wechat.settle_refund(second["refund_id"])
    assert order_of(payment_client, admin, transaction_id)["status"] == "refunded"


def test_a_refund_before_the_split_leaves_the_split_only_what_remains(
    payment_client, admin, payment_db, fakes, sites, published, immediate, upstream_calls
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, amount=20)
    refund_id = refunded(payment_client, admin, transaction_id, amount=5)["refund_id"]
    assert (
        upstream_calls == ["refund"]
        and refund_of(payment_client, admin, refund_id)["profit_sharing_returns"] == []
    )

    run_profit_sharing(payment_db, transaction_id)
    [sharing] = wechat.sharing_orders.values()
    assert [(r["account"], r["amount"]) for r in sharing.receivers] == [
        (PLATFORM_RECEIVER, 225)
    ]  # 1500 × 0.15
    run_profit_sharing(payment_db, transaction_id)
    receivers = order_of(payment_client, admin, transaction_id)["profit_sharing"]["receivers"]
    assert [(r["merchant_id"], r["amount"]) for r in receivers] == [
        (PLATFORM_RECEIVER, 2.25),
        (SUB_MCHID, 12.75),
    ]


def test_a_fully_refunded_order_is_never_split(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, amount=20)
    refund_id = refunded(payment_client, admin, transaction_id, amount=20)["refund_id"]
    wechat.settle_refund(refund_id)

    assert run_profit_sharing(payment_db, transaction_id) is None
    assert wechat.sharing_orders == {}
    assert order_of(payment_client, admin, transaction_id)["profit_sharing"]["status"] == "finished"


def test_a_receiver_refusing_the_return_stops_the_refund_before_money_leaves(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = split_order(payment_client, admin, payment_db, wechat, amount=20)
    wechat.fail_next(
        kind="error", status=400, code="INVALID_REQUEST", message="回退方账户异常", endpoint="create_return"
    )

    answer = ask_refund(payment_client, admin, transaction_id, amount=20)
    body = answer.get_json()
    assert answer.status_code == 502 and body["data"]["upstream_code"] == "INVALID_REQUEST"
    shown = refund_of(payment_client, admin, body["data"]["refund_id"])
    assert (shown["status"], shown["error_code"]) == ("failed", "PROFIT_SHARING_RETURN_FAILED")
    assert shown["profit_sharing_returns"][0]["status"] == "failed"
    assert wechat.calls["refund"] == 0
    assert order_of(payment_client, admin, transaction_id)["refunding_amount"] == 0.0


def test_a_split_still_processing_is_waited_for(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = paid_order(payment_client, admin, wechat, amount=20)
    run_profit_sharing(payment_db, transaction_id)  # placed; WeChat still processing
    refund_id = refunded(payment_client, admin, transaction_id, amount=20)["refund_id"]
    assert wechat.calls["refund"] == 0 and wechat.return_orders == {}
    assert REFUND_TASK in [name for name, rid, _ in published.tasks if rid == refund_id]

    run_profit_sharing(payment_db, transaction_id)  # FINISHED: 300 fen with the platform
    advance_refund(payment_db, refund_id)
    assert [r.amount for r in wechat.return_orders.values()] == [300]
    assert wechat.find_refund(refund_id).refund == 2000


def test_a_return_still_processing_is_polled_before_the_refund(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = split_order(payment_client, admin, payment_db, wechat, amount=20)
    wechat.config.return_result = "PROCESSING"
    refund_id = refunded(payment_client, admin, transaction_id, amount=10)["refund_id"]
    assert wechat.calls["refund"] == 0
    assert refund_of(payment_client, admin, refund_id)["profit_sharing_returns"][0]["status"] == "processing"

    advance_refund(payment_db, refund_id)  # still processing: asked, nothing more
    assert wechat.calls["refund"] == 0 and wechat.calls["create_return"] == 1
    wechat.settle_return(f"{refund_id}_{PLATFORM_RECEIVER}")
    advance_refund(payment_db, refund_id)
    assert wechat.calls["refund"] == 1 and wechat.calls["create_return"] == 1
    assert refund_of(payment_client, admin, refund_id)["profit_sharing_returns"][0]["status"] == "success"
