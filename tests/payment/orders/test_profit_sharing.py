"""Profit sharing of paid wechat_split orders on the WeChat fake: amounts, receivers, polling, retries."""

from __future__ import annotations

import pytest

from payment_service.channels import WechatPayClient
from payment_service.models import ProfitSharing, SharingReceiverRegistration
from payment_service.orders.profit_sharing import run_profit_sharing
from shared.db import utcnow
from tests.payment.orders.helpers import PLATFORM_RECEIVER, SUB_MCHID, order_of, placed


@pytest.fixture
def immediate(payment_app, monkeypatch):
    """Split at once and poll without waiting, so each call of run_profit_sharing is one step."""
    monkeypatch.setitem(payment_app.config, "PROFIT_SHARING_DELAY_SECONDS", 0.0)
    monkeypatch.setitem(payment_app.config, "PROFIT_SHARING_POLL_SECONDS", 0.0)


def paid_split_order(client, api_key, wechat, amount) -> str:
    transaction_id = placed(client, api_key, amount=amount)["transaction_id"]
    assert wechat.pay(transaction_id).status == 204
    return transaction_id


def test_split_is_placed_polled_and_recorded_per_receiver(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = paid_split_order(payment_client, admin, wechat, amount=20.07)

    assert run_profit_sharing(payment_db, transaction_id) == 0.0  # placed; WeChat is still processing
    [sharing] = wechat.sharing_orders.values()
    assert sharing.out_order_no == f"PS_{transaction_id}"
    assert sharing.transaction_id == wechat.find_order(transaction_id).transaction_id
    # floor(2007 × 0.15) = 301 fen to the platform; the sub-merchant keeps 1706 (its 0.85 and the rest).
    assert [(r["account"], r["amount"]) for r in sharing.receivers] == [(PLATFORM_RECEIVER, 301)]
    assert wechat.find_order(transaction_id).sharing_closed  # unfreeze_unsplit: true
    assert order_of(payment_client, admin, transaction_id)["profit_sharing"]["status"] == "processing"

    assert run_profit_sharing(payment_db, transaction_id) is None  # polled: FINISHED
    state = order_of(payment_client, admin, transaction_id)["profit_sharing"]
    assert state["status"] == "finished" and state["finished_at"].endswith("Z")
    assert [(r["merchant_id"], r["amount"], r["state"]) for r in state["receivers"]] == [
        (PLATFORM_RECEIVER, 3.01, "success"),
        (SUB_MCHID, 17.06, "retained"),
    ]
    assert run_profit_sharing(payment_db, transaction_id) is None
    assert len(wechat.sharing_orders) == 1


def test_each_receiver_is_added_once_per_sub_merchant(
    payment_client, admin, payment_db, fakes, sites, published, immediate, monkeypatch
):
    wechat, _ = fakes
    added = []
    original = WechatPayClient.add_receiver

    def counting(self, receiver):
        added.append(receiver.account)
        return original(self, receiver)

    monkeypatch.setattr(WechatPayClient, "add_receiver", counting)
    for amount in (10, 11):
        transaction_id = paid_split_order(payment_client, admin, wechat, amount=amount)
        run_profit_sharing(payment_db, transaction_id)
        run_profit_sharing(payment_db, transaction_id)
        assert order_of(payment_client, admin, transaction_id)["profit_sharing"]["status"] == "finished"
    assert added == [PLATFORM_RECEIVER]
    receiver = wechat.receivers[("1900000109", SUB_MCHID, "MERCHANT_ID", PLATFORM_RECEIVER)]
    assert receiver["name"] == "华北洗衣平台有限公司" and receiver["relation_type"] == "PARTNER"
    assert payment_db.query(SharingReceiverRegistration).count() == 1


def test_upstream_failures_are_retried_then_the_split_completes(
    payment_client, admin, payment_db, fakes, sites, published, immediate
):
    wechat, _ = fakes
    transaction_id = paid_split_order(payment_client, admin, wechat, amount=20)
    wechat.fail_next(kind="error", status=500, code="SYSTEM_ERROR", message="系统繁忙")
    delay = run_profit_sharing(payment_db, transaction_id)
    assert delay is not None and delay >= 30
    state = order_of(payment_client, admin, transaction_id)["profit_sharing"]
    assert state["status"] == "pending" and state["attempts"] == 1 and "SYSTEM_ERROR" in state["last_error"]

    assert run_profit_sharing(payment_db, transaction_id) is None  # not due yet
    sharing = payment_db.query(ProfitSharing).filter_by(order_id=transaction_id).one()
    sharing.next_attempt_at = utcnow()
    payment_db.commit()
    run_profit_sharing(payment_db, transaction_id)
    run_profit_sharing(payment_db, transaction_id)
    assert order_of(payment_client, admin, transaction_id)["profit_sharing"]["status"] == "finished"


def test_split_gives_up_after_the_maximum_attempts(
    payment_client, admin, payment_db, payment_app, fakes, sites, published, immediate, monkeypatch
):
    wechat, _ = fakes
    monkeypatch.setitem(payment_app.config, "PROFIT_SHARING_MAX_ATTEMPTS", 1)
    transaction_id = paid_split_order(payment_client, admin, wechat, amount=20)
    wechat.fail_next(kind="error", status=403, code="RULE_LIMIT", message="分账金额超出最大分账比例")
    assert run_profit_sharing(payment_db, transaction_id) is None
    state = order_of(payment_client, admin, transaction_id)["profit_sharing"]
    assert state["status"] == "failed" and "RULE_LIMIT" in state["last_error"]
    assert wechat.sharing_orders == {}
