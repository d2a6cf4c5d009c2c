"""Concurrent refund requests for one order, on PostgreSQL with committed data and real threads.

The amount is reserved under the order's row lock, so 20 requests for the whole amount reserve it once and
reach the upstream once; the fake's call counter says how many refund calls it received.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from payment_service.outbox import REFUND_FORWARD_TASK
from tests.factories import create_payment_tenant
from tests.fakes.payment_server import running
from tests.payment.conftest import headers_of
from tests.payment.orders.helpers import (
    ALIPAY_SITE,
    DIRECT_SITE,
    ORDERS_URL,
    alipay_fake_app,
    route_notifications_to,
    set_up_sites,
    wechat_fake_app,
)
from tests.payment.refunds.helpers import paid_order

pytestmark = pytest.mark.postgres
REQUESTS = 20


@pytest.fixture
def race(committed_app, published, monkeypatch):
    """(app, api_key, wechat fake, alipay fake) on a committed database, the fakes over sockets."""
    from payment_service.extensions import db

    wechat, alipay = wechat_fake_app(), alipay_fake_app()
    with running(wechat) as wechat_url, running(alipay) as alipay_url:
        monkeypatch.setitem(committed_app.config, "WECHATPAY_BASE_URL", wechat_url)
        monkeypatch.setitem(committed_app.config, "ALIPAY_GATEWAY_URL", alipay_url + "/gateway.do")
        with committed_app.app_context():
            _tenant, api_key = create_payment_tenant(db.session)
            db.session.remove()
        client = committed_app.test_client()
        route_notifications_to(client, wechat, alipay)
        set_up_sites(client, api_key)
        yield committed_app, api_key, wechat, alipay


def all_at_once(app, api_key: str, transaction_id: str, bodies: list[dict]) -> list[tuple[int, dict]]:
    barrier = threading.Barrier(len(bodies))

    def ask(body):
        barrier.wait()
        answer = app.test_client().post(
            f"{ORDERS_URL}/{transaction_id}/refunds", json=body, headers=headers_of(api_key)
        )
        return answer.status_code, answer.get_json()

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(ask, bodies))


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_twenty_full_refunds_at_once_reserve_the_amount_once(race, channel):
    app, api_key, wechat, alipay = race
    fake, site = (wechat, DIRECT_SITE) if channel == "wechat" else (alipay, ALIPAY_SITE)
    transaction_id = paid_order(app.test_client(), api_key, fake, site_id=site, channel=channel, amount=20)

    answers = all_at_once(app, api_key, transaction_id, [{"amount": 20}] * REQUESTS)

    codes = Counter(code for code, _ in answers)
    # Those that found the amount reserved answer 400; an Alipay refund can succeed at once, and those that
    # come after it find the order fully refunded (409).
    assert codes[200] == 1 and codes[400] + codes[409] == REQUESTS - 1, answers
    assert {body["data"]["refundable"] for code, body in answers if code == 400} <= {0.0}
    assert {body["message"] for code, body in answers if code == 409} <= {"订单已全额退款"}
    calls = fake.calls["refund"] if channel == "wechat" else fake.calls["alipay.trade.refund"]
    assert calls == 1
    order = app.test_client().get(f"{ORDERS_URL}/{transaction_id}", headers=headers_of(api_key)).get_json()
    data = order["data"]
    assert data["refunded_amount"] + data["refunding_amount"] == 20.0


def test_twenty_requests_with_one_out_refund_no_are_one_refund(race):
    app, api_key, wechat, _ = race
    transaction_id = paid_order(app.test_client(), api_key, wechat, site_id=DIRECT_SITE, amount=20)

    answers = all_at_once(
        app, api_key, transaction_id, [{"amount": 20, "out_refund_no": "R-RACE-1"}] * REQUESTS
    )

    assert Counter(code for code, _ in answers) == {200: REQUESTS}, answers
    assert len({body["data"]["refund_id"] for _, body in answers}) == 1
    assert wechat.calls["refund"] == 1
    assert wechat.refundable(transaction_id) == 0


def test_concurrent_duplicate_notifications_settle_the_refund_once(race, published):
    app, api_key, wechat, _ = race
    transaction_id = paid_order(
        app.test_client(),
        api_key,
        wechat,
        site_id=DIRECT_SITE,
        amount=20,
        notify_url="https://biz.example.com/cb",
    )
    answer = app.test_client().post(
        f"{ORDERS_URL}/{transaction_id}/refunds", json={"amount": 20}, headers=headers_of(api_key)
    )
    refund_id = answer.get_json()["data"]["refund_id"]
    refund = wechat.find_refund(refund_id)
    refund.status, refund.success_time = "SUCCESS", "2026-05-10T18:00:05+08:00"
    headers, body = wechat.build_refund_notification(refund)
    config_id = (
        app.test_client()
        .get(f"{ORDERS_URL}/{transaction_id}", headers=headers_of(api_key))
        .get_json()["data"]["config_id"]
    )
    barrier = threading.Barrier(8)

    def deliver(_):
        barrier.wait()
        url = f"/api/v1/payment/notify/wechat/refunds/{config_id}"
        return app.test_client().post(url, data=body, headers=headers).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(deliver, range(8))) == {204}
    order = app.test_client().get(f"{ORDERS_URL}/{transaction_id}", headers=headers_of(api_key)).get_json()
    assert (order["data"]["status"], order["data"]["refunded_amount"]) == ("refunded", 20.0)
    assert published.of(REFUND_FORWARD_TASK) == [refund_id]
