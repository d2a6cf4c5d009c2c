"""Forwarding a paid order's result to the business's notify_url: signed, retried with backoff, recorded.

Body ``{"event": "payment.result", "data": {...}}``, signed with the tenant's notify secret by
``shared.webhooks`` (``X-Signature`` / ``X-Signature-Timestamp``). Success is any 2xx; redirects are not
followed. The address is checked again before every attempt (no private addresses unless
``PAYMENT_NOTIFY_ALLOW_PRIVATE``). A row lock held during the attempt keeps two workers from delivering the
same result at once.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import requests
from flask import current_app
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from payment_service.metrics import FORWARD_ATTEMPTS
from payment_service.models import ForwardAttempt, OrderForward, PaymentOrder, Tenant
from payment_service.orders.views import yuan
from payment_service.retry_schedule import retry_delay
from shared.db import isoformat, utcnow
from shared.transactions import atomic
from shared.webhook_urls import UrlRefused, check_before_delivery
from shared.webhooks import signature_headers

logger = logging.getLogger(__name__)

EVENT = "payment.result"
USER_AGENT = "laundry-payment-service/1.0 (payment.result)"
# A task arriving this early (a sweep's copy of a scheduled retry) leaves the attempt to the retry.
EARLY_SLACK = timedelta(seconds=1)


_INSERT_FORWARD = insert(OrderForward.__table__)


class PaidOrder(Protocol):
    id: str
    notify_url: str | None


def schedule_forward(session: Session, order: PaidOrder) -> bool:
    """Owe the order's result to its notify_url; called in the transaction that marks it paid."""
    if not order.notify_url:
        return False
    now = utcnow()
    session.connection().execute(
        _INSERT_FORWARD,
        {
            "order_id": order.id,
            "url": order.notify_url,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
    )
    return True


def forward_payload(order: PaymentOrder) -> dict[str, Any]:
    return {
        "event": EVENT,
        "data": {
            "transaction_id": order.id,
            "out_order_no": order.out_order_no,
            "site_id": order.site_id,
            "channel": order.channel,
            "amount": yuan(order.amount_fen),
            "status": order.status,
            "paid_at": isoformat(order.paid_at),
            "channel_transaction_id": order.channel_transaction_id,
        },
    }


def deliver_forward(session: Session, order_id: str) -> float | None:
    """Make the attempt that is due; return the seconds until the next one, None when no retry is owed."""
    settings = current_app.config
    with atomic(session):
        forward = session.scalar(
            select(OrderForward)
            .where(OrderForward.order_id == order_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if forward is None or forward.status != "pending":
            return None
        now = utcnow()
        if forward.next_attempt_at > now + EARLY_SLACK:
            return None
        order = session.get(PaymentOrder, order_id)
        tenant = session.get(Tenant, order.tenant_id)
        number = forward.attempts + 1
        outcome = _post(forward.url, forward_payload(order), tenant.notify_secret)
        session.add(
            ForwardAttempt(
                forward_id=forward.id,
                number=number,
                at=now,
                http_status=outcome.http_status,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        forward.attempts = number
        forward.last_http_status = outcome.http_status
        forward.last_error = outcome.error
        if outcome.delivered:
            forward.status, forward.delivered_at = "delivered", utcnow()
            FORWARD_ATTEMPTS.labels("delivered").inc()
            logger.info("payment result of %s forwarded (attempt %d)", order_id, number)
            return None
        if outcome.refused or number >= settings["FORWARD_MAX_ATTEMPTS"]:
            forward.status = "failed"
            FORWARD_ATTEMPTS.labels("failed").inc()
            logger.warning("forwarding %s gave up after attempt %d: %s", order_id, number, outcome.error)
            return None
        delay = retry_delay(number, settings["RETRY_BASE_SECONDS"], settings["RETRY_MAX_SECONDS"])
        forward.next_attempt_at = utcnow() + timedelta(seconds=delay)
        FORWARD_ATTEMPTS.labels("retry").inc()
        logger.info(
            "forwarding %s failed (attempt %d: %s); retry in %.0f s", order_id, number, outcome.error, delay
        )
        return delay


@dataclass(frozen=True)
class _Outcome:
    http_status: int | None
    error: str | None
    duration_ms: int = 0
    refused: bool = False  # the address itself is not allowed: retrying cannot help

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


def _post(url: str, payload: dict[str, Any], secret: str) -> _Outcome:
    """POST the signed payload once and say what happened."""
    try:
        check_before_delivery(url, current_app.config["NOTIFY_ALLOW_PRIVATE"])
    except UrlRefused as exc:
        return _Outcome(None, str(exc), refused=True)
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(secret, body),
    }
    started = time.perf_counter()
    try:
        answer = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=current_app.config["FORWARD_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
        status = answer.status_code
        error = None if 200 <= status < 300 else f"HTTP {status}"
    except requests.Timeout:
        status, error = None, "timeout"
    except requests.RequestException as exc:
        status, error = None, type(exc).__name__
    return _Outcome(status, error, int((time.perf_counter() - started) * 1000))
