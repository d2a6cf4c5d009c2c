"""The payment service's Prometheus metrics: orders by status and channel, refused notifications, upstream
call latency, and the backlog on ``/metrics``."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from payment_service.orders.reconciliation import close_expired_orders
from tests.payment.orders.helpers import ALIPAY_SITE, DIRECT_SITE, placed
from tests.payment.orders.test_reconciliation import age


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_orders_are_counted_by_status_and_channel(payment_client, admin, payment_db, fakes, sites, published):
    wechat, _ = fakes
    before = {
        (status, channel): sample("payment_orders_total", status=status, channel=channel)
        for status in ("pending", "paid", "closed")
        for channel in ("wechat", "alipay")
    }
    calls = sample("payment_channel_call_duration_seconds_count", channel="wechat", outcome="2xx")
    paid = placed(payment_client, admin, site_id=DIRECT_SITE)["transaction_id"]
    expired = placed(payment_client, admin, site_id=ALIPAY_SITE, channel="alipay")["transaction_id"]
    for _ in range(2):  # a redelivered notification pays once
        assert wechat.pay(paid).status == 204
    age(payment_db, expired, 121)
    assert close_expired_orders(payment_db) == 1

    def moved(status, channel):
        return sample("payment_orders_total", status=status, channel=channel) - before[(status, channel)]

    assert (moved("pending", "wechat"), moved("paid", "wechat"), moved("closed", "wechat")) == (1, 1, 0)
    assert (moved("pending", "alipay"), moved("paid", "alipay"), moved("closed", "alipay")) == (1, 0, 1)
    assert sample("payment_channel_call_duration_seconds_count", channel="wechat", outcome="2xx") > calls


def test_refused_notifications_are_counted(payment_client, fakes, sites):
    before = sample("payment_notification_verification_failures_total", channel="wechat")
    response = payment_client.post(
        "/api/v1/payment/notify/wechat", data=b'{"forged": true}', headers={"Wechatpay-Serial": "nobody"}
    )
    assert response.status_code == 400
    assert sample("payment_notification_verification_failures_total", channel="wechat") - before == 1


def test_metrics_endpoint_shows_pending_orders(payment_client, admin, fakes, sites, published):
    placed(payment_client, admin, site_id=DIRECT_SITE)
    response = payment_client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f.samples for f in text_string_to_metric_families(response.get_data(as_text=True))}
    assert families["payment_orders_pending"][0].value >= 1
    assert {s.labels["kind"] for s in families["payment_followups_backlog"]} == {"forward", "profit_sharing"}
