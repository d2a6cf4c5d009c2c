"""Polling fallback: ask the upstream about messages whose receipt is late or whose send outcome is unknown.

An upstream call that timed out after the request left may have been accepted; rather than resend (the
upstreams are not idempotent) the message is looked up with the upstream's query API until it shows up or a
deadline passes, and then it is failed, never sent twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.delivery import outbox, simulated
from sms_service.delivery.dispatch import provider_named
from sms_service.delivery.receipts import held_for, record_reports
from sms_service.delivery.transitions import finish
from sms_service.mobiles import mask_mobile
from sms_service.models import FAILED, SENDING, SUBMITTED, Message
from sms_service.providers import DeliveryReport, ProviderError

logger = logging.getLogger(__name__)

RECEIPT_TIMEOUT = "RECEIPT_TIMEOUT"
OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"


def due_messages(session: Session) -> list[Message]:
    """Claim the submitted messages past the poll delay (the sandbox's own delay for it) and unknown outcomes.

    Claimed in one transaction: the rows are locked with ``SKIP LOCKED`` and ``updated_at`` moved to now,
    so a run that overlaps this one skips them, and the next run asks about them a poll delay later. Each
    message is asked about once per ``SMS_RECEIPT_POLL_AFTER_SECONDS``, however many runs overlap.
    """
    config = current_app.config
    now = utcnow()
    poll_before = now - timedelta(seconds=config["RECEIPT_POLL_AFTER_SECONDS"])
    sandbox_before = now - timedelta(milliseconds=config["SANDBOX_DELAY_MS"])
    with atomic(session):
        ids = session.scalars(
            select(Message.id)
            .where(
                or_(
                    and_(Message.status == SUBMITTED, Message.updated_at < poll_before),
                    and_(
                        Message.status == SUBMITTED,
                        Message.provider == "sandbox",
                        Message.updated_at <= sandbox_before,
                    ),
                    and_(
                        Message.status == SENDING,
                        Message.outcome_unknown.is_(True),
                        Message.updated_at < poll_before,
                    ),
                )
            )
            .order_by(Message.updated_at)
            .limit(config["POLL_BATCH_SIZE"])
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        return list(
            session.scalars(
                update(Message)
                .where(Message.id.in_(ids))
                .values(updated_at=now)
                .returning(Message)
                .execution_options(synchronize_session=False, populate_existing=True)
            ).all()
        )


def poll(session: Session) -> dict[str, int]:
    """Query the upstream for each due message; apply what it knows, give up on what is too old."""
    config = current_app.config
    give_up_before = utcnow() - timedelta(seconds=config["RECEIPT_GIVE_UP_AFTER_SECONDS"])
    counts = {"applied": 0, "waiting": 0, "given_up": 0}
    for message in due_messages(session):
        if message.status not in (SENDING, SUBMITTED):
            continue  # a receipt settled it since the claim: nothing to ask
        with atomic(session):
            held = held_for(session, message)
        report = held or _ask_upstream(message)
        callbacks: list[str] = []
        # Each message its own transaction, between upstream calls: one that fails undoes no other's result.
        with atomic(session):
            if report is not None:
                applied, _, callbacks = record_reports(session, [report])
                counts["applied"] += applied
            elif (message.sent_at or message.created_at) < give_up_before:
                code = OUTCOME_UNKNOWN if message.status == SENDING else RECEIPT_TIMEOUT
                moved = finish(
                    session,
                    [message.id],
                    FAILED,
                    from_statuses=(message.status,),
                    error_code=code,
                    error_message="上游未返回最终状态",
                )
                callbacks = [message_id for message_id, has_callback in moved if has_callback]
                counts["given_up"] += len(moved)
            else:
                counts["waiting"] += 1  # not final yet: its claim makes the next look a poll delay later
        for message_id in callbacks:
            outbox.publish_callback(message_id, 1)
    return counts


def _ask_upstream(message: Message) -> DeliveryReport | None:
    """What the message's upstream knows of it; None when it knows nothing final or cannot be asked."""
    if message.test:
        return simulated.query(message)
    provider = provider_named(message.provider)
    if provider is None:
        return None
    try:
        return provider.query(
            message_id=message.id,
            mobile=message.mobile,
            biz_id=message.biz_id,
            sent_at=message.sent_at or message.created_at,
            reference=message.call_ref,
        )
    except ProviderError as exc:
        logger.warning(
            "query of %s at %s failed: %s", mask_mobile(message.mobile), message.provider, exc.code
        )
        return None
