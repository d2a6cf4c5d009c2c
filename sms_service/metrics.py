"""Prometheus metrics of the SMS service, counted where the domain decides (transitions, provider calls,
callback attempts), and the outbox backlog read from the database at scrape time."""

from __future__ import annotations

import logging

from flask import Flask
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shared.db import utcnow

logger = logging.getLogger(__name__)

MESSAGES = Counter(
    "sms_messages_total",
    "SMS messages reaching a status (queued, submitted, success, failed), by provider",
    ["status", "provider"],
)
PROVIDER_CALLS = Histogram(
    "sms_provider_call_duration_seconds",
    "Time of one upstream call, by provider and action, whatever it answered",
    ["provider", "action"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0),
)
PROVIDER_ERRORS = Counter(
    "sms_provider_call_errors_total",
    "Upstream calls that failed: connect_timeout, read_timeout, connection_refused, connection_dropped, "
    "http_5xx, or refused (the upstream answered no to the whole call)",
    ["provider", "error"],
)
CALLBACK_ATTEMPTS = Counter(
    "sms_callback_attempts_total",
    "Result callback POSTs to tenants, by outcome (delivered, retry, gave_up, rejected)",
    ["outcome"],
)


def count_messages(status: str, provider: str | None, count: int = 1) -> None:
    if count:
        MESSAGES.labels(status, provider or "none").inc(count)


class BacklogCollector(Collector):
    """Messages not yet handed to an upstream (``queued``, ``sending``); the age of the oldest queued one."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self):
        from sms_service.extensions import db
        from sms_service.models import QUEUED, SENDING, Message

        backlog = GaugeMetricFamily(
            "sms_messages_backlog", "Messages waiting in the database, by status", labels=["status"]
        )
        oldest = GaugeMetricFamily(
            "sms_oldest_queued_age_seconds", "Age of the oldest message still queued (0: none)"
        )
        try:
            with self.app.app_context():
                counts = dict(
                    db.session.execute(
                        select(Message.status, func.count())
                        .where(Message.status.in_((QUEUED, SENDING)))
                        .group_by(Message.status)
                    ).all()
                )
                first = db.session.scalar(
                    select(func.min(Message.updated_at)).where(Message.status == QUEUED)
                )
        except Exception as exc:  # a scrape must answer even when the database does not
            logger.warning("metrics: backlog query failed: %s", type(exc).__name__)
            return
        for status in (QUEUED, SENDING):
            backlog.add_metric([status], counts.get(status, 0))
        oldest.add_metric([], (utcnow() - first).total_seconds() if first is not None else 0)
        yield backlog
        yield oldest
