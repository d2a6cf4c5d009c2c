"""Result callbacks: ``POST callback_url`` with ``{"event": "sms.result", "data": {…}}`` (shared.webhooks).

Signed by the Standard Webhooks specification with the tenant's callback secret(s); the ``webhook-id`` is
derived from the message, so every retry of one result carries the same id. Retried on the shared schedule
(``SMS_CALLBACK_RETRY_DELAYS``); every attempt is recorded in ``callback_attempts``.

One delivery is two units of work around the POST: the claim is committed first (a guarded UPDATE on the
attempt number, so a task delivered twice posts once, and a lease so the sweep leaves it alone meanwhile),
then the attempt and the message's next step are committed together. No transaction is open during the POST.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.db import isoformat, utcnow
from shared.transactions import atomic
from shared.webhooks import (
    DELIVERED,
    GAVE_UP,
    REJECTED,
    RETRY,
    Attempt,
    SigningSecrets,
    WebhookSender,
    event_webhook_id,
)
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

__all__ = ["DELIVERED", "GAVE_UP", "REJECTED", "RETRY", "attempts_of", "deliver_callback", "payload"]

EVENT = "sms.result"
USER_AGENT = "laundry-sms-callback/1.0"
LEASE_SECONDS = 60  # how long a claimed attempt may take before the sweep may publish it again


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


def sender() -> WebhookSender:
    config = current_app.config
    return WebhookSender(
        user_agent=USER_AGENT,
        retry_delays=config["CALLBACK_RETRY_SCHEDULE"],
        allow_private=config["CALLBACK_ALLOW_PRIVATE"],
        timeout=config["CALLBACK_TIMEOUT_SECONDS"],
    )


def deliver_callback(session: Session, message_id: str, attempt: int) -> Attempt | None:
    """Make attempt number ``attempt`` (1-based); None when it was already made or is not due."""
    now = utcnow()
    with atomic(session):  # the claim, committed before the POST
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
        if not claimed:
            return None
        message, *signing = session.execute(
            select(
                Message,
                Tenant.callback_secret,
                Tenant.previous_callback_secret,
                Tenant.previous_callback_secret_expires_at,
            )
            .join(Tenant, Tenant.id == Message.tenant_id)
            .where(Message.id == message_id)
        ).one()
        url, body = message.callback_url, payload(message)
    result = sender().send(
        url, event_webhook_id(EVENT, message_id), body, SigningSecrets(*signing).active(now), attempt
    )
    with atomic(session):  # the attempt and the message's next step, together
        _record(session, message_id, result)
    CALLBACK_ATTEMPTS.labels(result.outcome).inc()
    return result


def _record(session: Session, message_id: str, result: Attempt) -> None:
    session.add(CallbackAttempt(message_id=message_id, **result.columns()))
    if result.outcome == RETRY:
        values = {"callback_next_at": utcnow() + timedelta(seconds=result.next_delay or 0)}
    else:
        status = CALLBACK_DELIVERED if result.delivered else CALLBACK_FAILED
        values = {"callback_status": status, "callback_next_at": None}
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.callback_attempts == result.number)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def attempts_of(session: Session, message_id: str) -> list[CallbackAttempt]:
    return list(
        session.scalars(
            select(CallbackAttempt)
            .where(CallbackAttempt.message_id == message_id)
            .order_by(CallbackAttempt.attempt)
        ).all()
    )
