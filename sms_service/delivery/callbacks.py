"""Result callbacks: ``POST callback_url`` with ``{"event": "sms.result", "data": {…}}``, signed.

Signed with the tenant's callback secret (``shared.webhooks``), 5 s timeout, no redirects, the address checked
again before each attempt. Network errors, 5xx and 429 are retried on a schedule (about 10 s, 30 s, 1 min,
5 min, 10 min, 30 min, 1 h, with jitter); other answers end it. Every attempt is recorded. Each attempt is
claimed with a guarded UPDATE on the attempt number, so a task delivered twice posts once.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta

import requests
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import isoformat, utcnow
from shared.webhook_urls import UrlRefused, check_before_delivery
from shared.webhooks import signature_headers
from sms_service.metrics import CALLBACK_ATTEMPTS
from sms_service.models import (
    CALLBACK_DELIVERED,
    CALLBACK_FAILED,
    CALLBACK_PENDING,
    CallbackAttempt,
    Message,
    Tenant,
)

logger = logging.getLogger(__name__)

EVENT = "sms.result"
USER_AGENT = "laundry-sms-callback/1.0"
LEASE_SECONDS = 60  # how long a claimed attempt may take before the sweep may publish it again

DELIVERED = "delivered"
RETRY = "retry"
GAVE_UP = "gave_up"
REJECTED = "rejected"


@dataclass(frozen=True)
class AttemptResult:
    outcome: str
    next_delay: float | None = None


def payload(message: Message) -> dict:
    return {
        "event": EVENT,
        "data": {
            "message_id": message.id,
            "status": message.status,
            "sent_at": isoformat(message.sent_at),
            "error_code": message.error_code,
            "error_message": message.error_message,
        },
    }


def deliver_callback(session: Session, message_id: str, attempt: int) -> AttemptResult | None:
    """Make attempt number ``attempt`` (1-based); None when it was already made or is not due."""
    now = utcnow()
    claimed = session.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.callback_status == CALLBACK_PENDING,
            Message.callback_attempts == attempt - 1,
        )
        .values(callback_attempts=attempt, callback_next_at=now + timedelta(seconds=LEASE_SECONDS))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if not claimed:
        return None
    message, secret = session.execute(
        select(Message, Tenant.callback_secret)
        .join(Tenant, Tenant.id == Message.tenant_id)
        .where(Message.id == message_id)
    ).one()
    body = json.dumps(payload(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    status_code, error, started = None, None, time.perf_counter()
    try:
        check_before_delivery(message.callback_url, current_app.config["CALLBACK_ALLOW_PRIVATE"])
        response = requests.post(
            message.callback_url,
            data=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                **signature_headers(secret, body),
            },
            timeout=current_app.config["CALLBACK_TIMEOUT_SECONDS"],
            allow_redirects=False,
        )
        status_code = response.status_code
    except UrlRefused as exc:
        error = f"refused: {exc}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    duration_ms = int((time.perf_counter() - started) * 1000)
    result = _classify(status_code, error, attempt)
    _record(session, message, attempt, status_code, error, duration_ms, result)
    CALLBACK_ATTEMPTS.labels(result.outcome).inc()
    logger.info("callback %s attempt %d: %s (%s)", message_id, attempt, result.outcome, status_code or error)
    return result


def _classify(status_code: int | None, error: str | None, attempt: int) -> AttemptResult:
    if status_code is not None and 200 <= status_code < 300:
        return AttemptResult(DELIVERED)
    if error is not None and error.startswith("refused"):
        return AttemptResult(REJECTED)
    retryable = status_code is None or status_code >= 500 or status_code == 429
    schedule = current_app.config["CALLBACK_RETRY_SCHEDULE"]
    if not retryable:
        return AttemptResult(REJECTED)
    if attempt > len(schedule):
        return AttemptResult(GAVE_UP)
    return AttemptResult(RETRY, schedule[attempt - 1] * random.uniform(0.9, 1.1))


def _record(session, message, attempt, status_code, error, duration_ms, result: AttemptResult) -> None:
    now = utcnow()
    session.add(
        CallbackAttempt(
            message_id=message.id,
            attempt=attempt,
            attempted_at=now,
            status_code=status_code,
            error=error[:300] if error else None,
            duration_ms=duration_ms,
            outcome=result.outcome,
        )
    )
    if result.outcome == RETRY:
        values = {"callback_next_at": now + timedelta(seconds=result.next_delay or 0)}
    else:
        status = CALLBACK_DELIVERED if result.outcome == DELIVERED else CALLBACK_FAILED
        values = {"callback_status": status, "callback_next_at": None}
    session.execute(
        update(Message)
        .where(Message.id == message.id, Message.callback_attempts == attempt)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def attempts_of(session: Session, message_id: str) -> list[CallbackAttempt]:
    return list(
        session.scalars(
            select(CallbackAttempt)
            .where(CallbackAttempt.message_id == message_id)
            .order_by(CallbackAttempt.attempt)
        ).all()
    )
