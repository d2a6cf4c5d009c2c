"""Prometheus metrics of the payment service, counted where the domain decides (order transitions, refused
notifications, upstream calls, forwarding attempts), and the backlog of follow-up work read at scrape time."""

from __future__ import annotations

import logging

from flask import Flask
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

logger = logging.getLogger(__name__)

ORDERS = Counter(
    "payment_orders_total",
    "Payment orders reaching a status (pending when placed, paid, closed, failed), by channel",
    ["status", "channel"],
)
NOTIFICATION_REJECTED = Counter(
    "payment_notification_verification_failures_total",
    "Upstream payment notifications refused: bad signature, undecryptable, or not matching the order",
    ["channel"],
)
CHANNEL_CALLS = Histogram(
    "payment_channel_call_duration_seconds",
    "Time of one call to WeChat Pay / Alipay, by outcome (2xx, 4xx, 5xx, timeout, network)",
    ["channel", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0),
)
FORWARD_ATTEMPTS = Counter(
    "payment_forward_attempts_total",
    "POSTs of a payment result to a business notify_url, by outcome (delivered, retry, failed)",
    ["outcome"],
)


def count_order(status: str, channel: str) -> None:
    ORDERS.labels(status, channel).inc()


def observe_channel_call(label: str, outcome: str, seconds: float) -> None:
    """``label`` starts with the channel (``wechat POST /v3/…``); its path may hold ids, so it is dropped."""
    if outcome.isdigit():
        outcome = f"{outcome[0]}xx"
    elif outcome != "timeout":
        outcome = "network"
    CHANNEL_CALLS.labels(label.split(" ", 1)[0], outcome).observe(seconds)


class BacklogCollector(Collector):
    """Orders waiting for payment and follow-up work (forwards, profit sharing) not finished yet."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from payment_service.extensions import db
        from payment_service.models import OrderForward, PaymentOrder, ProfitSharing

        pending = GaugeMetricFamily("payment_orders_pending", "Orders placed and not yet paid or closed")
        work = GaugeMetricFamily(
            "payment_followups_backlog", "Forwards and profit sharings not finished, by kind", labels=["kind"]
        )
        try:
            with self.app.app_context():
                session = db.session
                orders = session.scalar(
                    select(func.count()).select_from(PaymentOrder).where(PaymentOrder.status == "pending")
                )
                forwards = session.scalar(
                    select(func.count()).select_from(OrderForward).where(OrderForward.status == "pending")
                )
                sharings = session.scalar(
                    select(func.count())
                    .select_from(ProfitSharing)
                    .where(ProfitSharing.status.in_(("pending", "processing")))
                )
        except Exception as exc:  # a scrape must answer even when the database does not
            logger.warning("metrics: backlog query failed: %s", type(exc).__name__)
            return
        pending.add_metric([], orders or 0)
        work.add_metric(["forward"], forwards or 0)
        work.add_metric(["profit_sharing"], sharings or 0)
        yield pending
        yield work
