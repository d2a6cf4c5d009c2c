"""Delivery receipts, pushed by the upstreams or found by polling: ``submitted → success | failed``.

A receipt moves a message only forward; a duplicate, late or unknown receipt changes nothing and is logged.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, or_, select, tuple_
from sqlalchemy.orm import Session

from shared.transactions import atomic
from sms_service.delivery import outbox
from sms_service.delivery.transitions import finish
from sms_service.mobiles import mask_mobile
from sms_service.models import FAILED, SENDING, SUBMITTED, SUCCESS, HeldReceipt, Message
from sms_service.providers import AliyunSmsProvider, DeliveryReport, SmsProvider, TencentSmsProvider

logger = logging.getLogger(__name__)

# Parsing a push needs no credentials; these instances are never used to call the upstream.
_PARSERS: dict[str, SmsProvider] = {
    "aliyun": AliyunSmsProvider(access_key_id="unused", access_key_secret="unused"),
    "tencent": TencentSmsProvider(secret_id="unused", secret_key="unused", sdk_app_id="unused"),
}
RECEIPT_PROVIDERS = tuple(_PARSERS)


def parse_push(provider: str, body: bytes) -> list[DeliveryReport]:
    """Decode an upstream's push; ValueError when it is not in that upstream's format."""
    try:
        return _PARSERS[provider].parse_receipts(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def apply_reports(session: Session, reports: list[DeliveryReport]) -> tuple[int, int]:
    """Apply the reports in one transaction; returns ``(applied, ignored)`` and, after the commit,
    publishes the due callbacks. A report that fails undoes the whole push, which the upstream sends again."""
    with atomic(session):
        applied, ignored, callbacks = record_reports(session, reports)
    for message_id in callbacks:
        outbox.publish_callback(message_id, 1)
    return applied, ignored


def record_reports(session: Session, reports: list[DeliveryReport]) -> tuple[int, int, list[str]]:
    """Apply each report to its message in the caller's transaction: ``(applied, ignored, callbacks due)``."""
    applied = ignored = 0
    callbacks: list[str] = []
    for report in reports:
        message_id = _find_message(session, report)
        moved = []
        if message_id is not None:
            moved = finish(
                session,
                [message_id],
                SUCCESS if report.success else FAILED,
                from_statuses=(SENDING, SUBMITTED),
                error_code=report.error_code or "DELIVERY_FAILED",
                error_message=report.error_message,
                completed_at=report.reported_at,
            )
        if moved:
            applied += 1
            callbacks += [mid for mid, has_callback in moved if has_callback]
            continue
        ignored += 1
        if message_id is None and report.biz_id:
            # Perhaps its call's answer (which stores the biz_id) is still on its way: held until it comes.
            session.add(_held(report))
        logger.info(
            "receipt from %s for %s (biz_id %s) matched no open message; acknowledged and held",
            report.provider,
            mask_mobile(report.mobile),
            report.biz_id,
        )
    return applied, ignored, callbacks


def apply_held(session: Session, provider: str, message_ids: list[str]) -> list[str]:
    """Apply the held receipts of messages just submitted (their biz_id now stored), in the caller's
    transaction; returns the callbacks due."""
    keys = session.execute(
        select(Message.biz_id, Message.mobile).where(
            Message.id.in_(message_ids), Message.provider == provider, Message.biz_id.is_not(None)
        )
    ).all()
    if not keys:
        return []
    held = session.scalars(
        select(HeldReceipt).where(
            HeldReceipt.provider == provider,
            tuple_(HeldReceipt.biz_id, HeldReceipt.mobile).in_([tuple(key) for key in keys]),
        )
    ).all()
    if not held:
        return []
    _, _, callbacks = record_reports(session, [_report(row) for row in held])
    session.execute(delete(HeldReceipt).where(HeldReceipt.id.in_([row.id for row in held])))
    return callbacks


def held_for(session: Session, message: Message) -> DeliveryReport | None:
    """A held receipt of ``message`` (by its biz_id or its call reference, and its mobile), taken out of the
    held ones: reconciliation applies it instead of asking the upstream."""
    keys = [HeldReceipt.biz_id == message.biz_id] if message.biz_id else []
    if message.call_ref:
        keys.append(HeldReceipt.reference == message.call_ref)
    if not keys:
        return None
    row = session.scalar(
        select(HeldReceipt)
        .where(HeldReceipt.provider == message.provider, HeldReceipt.mobile == message.mobile, or_(*keys))
        .limit(1)
    )
    if row is None:
        return None
    session.delete(row)
    return _report(row)


def purge_held(session: Session, older_than) -> int:
    """Forget held receipts received before ``older_than`` (the caller's transaction)."""
    return session.execute(delete(HeldReceipt).where(HeldReceipt.received_at < older_than)).rowcount or 0


def _held(report: DeliveryReport) -> HeldReceipt:
    return HeldReceipt(
        provider=report.provider,
        mobile=report.mobile,
        biz_id=report.biz_id,
        reference=report.reference,
        success=report.success,
        error_code=report.error_code,
        error_message=(report.error_message or "")[:500] or None,
        reported_at=report.reported_at,
    )


def _report(row: HeldReceipt) -> DeliveryReport:
    return DeliveryReport(
        provider=row.provider,
        biz_id=row.biz_id,
        mobile=row.mobile,
        success=row.success,
        error_code=row.error_code,
        error_message=row.error_message,
        reported_at=row.reported_at,
        reference=row.reference,
    )


def _find_message(session: Session, report: DeliveryReport) -> str | None:
    """By our message id when the upstream echoes it, else by (provider, biz_id, mobile), else by the call
    reference and the mobile: a message whose call never answered (worker killed, read timeout) has no biz_id,
    but its call reference was committed before the call, and a number is in a call at most once."""
    if report.out_id:
        found = session.scalar(
            select(Message.id).where(Message.id == report.out_id, Message.provider == report.provider)
        )
        if found:
            return found
    if report.biz_id:
        found = session.scalar(
            select(Message.id)
            .where(
                Message.provider == report.provider,
                Message.biz_id == report.biz_id,
                Message.mobile == report.mobile,
            )
            .limit(1)
        )
        if found:
            return found
    if not report.reference:
        return None
    return session.scalar(
        select(Message.id)
        .where(
            Message.call_ref == report.reference,
            Message.mobile == report.mobile,
            Message.provider == report.provider,
            Message.status == SENDING,
        )
        .limit(1)
    )
