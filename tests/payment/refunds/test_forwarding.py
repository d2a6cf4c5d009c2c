"""payment.refund forwards: signed like payment.result (checked by the reference library), one webhook-id per
refund, retried on the shared schedule, every attempt recorded."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from payment_service.models import RefundForward, RefundForwardAttempt, Tenant
from payment_service.refunds.forwarding import deliver_refund_forward
from shared.db import utcnow
from tests.fakes.payment_server import Answer, NotifyReceiver, running
from tests.payment.orders.helpers import ALIPAY_SITE
from tests.payment.refunds.helpers import paid_order, refund_of, refunded


@pytest.fixture
def allow_private(payment_app, monkeypatch):
    monkeypatch.setitem(payment_app.config, "NOTIFY_ALLOW_PRIVATE", True)


def test_a_settled_refund_is_forwarded_signed_and_retried(
    payment_client, admin, payment_db, payment_tenant, fakes, sites, published, allow_private
):
    _, alipay = fakes
    answers = iter([Answer(500, b"busy"), Answer(200, b"ok")])
    receiver = NotifyReceiver(lambda notification: next(answers))
    with running(receiver) as url:
        transaction_id = paid_order(
            payment_client,
            admin,
            alipay,
            site_id=ALIPAY_SITE,
            channel="alipay",
            amount=20,
            out_order_no="BIZ-R1",
            notify_url=url + "/pay/result",
        )
        data = refunded(
            payment_client,
            admin,
            transaction_id,
            amount=5,
            out_refund_no="R-9",
            notify_url=url + "/refund/cb",
        )
        refund_id = data["refund_id"]
        delay = deliver_refund_forward(payment_db, refund_id)
        assert delay is not None and delay > 0
        assert deliver_refund_forward(payment_db, refund_id) is None  # not due yet
        forward = payment_db.query(RefundForward).filter_by(refund_id=refund_id).one()
        forward.next_attempt_at = utcnow()
        payment_db.commit()
        assert deliver_refund_forward(payment_db, refund_id) is None

    first, second = [item for item in receiver.received if item.path == "/refund/cb"]
    secret = payment_db.get(Tenant, payment_tenant[0].id).notify_secret
    payload = Webhook(secret).verify(second.body, second.headers)
    assert payload == {
        "event": "payment.refund",
        "data": {
            "refund_id": refund_id,
            "out_refund_no": "R-9",
            "transaction_id": transaction_id,
            "out_order_no": "BIZ-R1",
            "amount": 5.0,
            "status": "success",
            "success_at": refund_of(payment_client, admin, refund_id)["success_at"],
        },
    }
    assert first.headers["Webhook-Id"] == second.headers["Webhook-Id"] == f"payment_refund_{refund_id}"
    assert json.loads(first.body) == payload
    attempts = payment_db.query(RefundForwardAttempt).order_by(RefundForwardAttempt.attempt).all()
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 200, "delivered"),
    ]
    shown = refund_of(payment_client, admin, refund_id)["forwarding"]
    assert (shown["status"], shown["attempts"], shown["last_http_status"]) == ("delivered", 2, 200)


def test_the_order_notify_url_is_the_default(payment_client, admin, payment_db, fakes, sites, published):
    _, alipay = fakes
    transaction_id = paid_order(
        payment_client,
        admin,
        alipay,
        site_id=ALIPAY_SITE,
        channel="alipay",
        amount=20,
        notify_url="https://biz.example.com/pay",
    )
    refund_id = refunded(payment_client, admin, transaction_id, amount=1)["refund_id"]
    assert refund_of(payment_client, admin, refund_id)["notify_url"] == "https://biz.example.com/pay"
    assert (
        payment_db.query(RefundForward).filter_by(refund_id=refund_id).one().url
        == "https://biz.example.com/pay"
    )
