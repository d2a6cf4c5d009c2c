"""Test keys' messages: the live lifecycle, simulated, with no upstream called.

A message sent with a test key is accepted, stored and claimed like any other; dispatch hands it here instead
of to a provider. It is submitted under the provider name ``test`` with request and message ids starting with
``TEST``, and its receipt is made up from the mobile and applied through the receipt path of an upstream's
(so the status changes, the callbacks and their signatures are those of live messages):

- ``13800000001`` ends ``failed`` with ``SIMULATED_FAILURE``;
- ``13800000002`` stays ``submitted``: no receipt ever comes (reconciliation asks :func:`query`, which knows
  nothing final, so like a live message it is failed ``RECEIPT_TIMEOUT`` after
  ``SMS_RECEIPT_GIVE_UP_AFTER_SECONDS``);
- every other mobile ends ``success``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from shared.db import utcnow
from shared.transactions import atomic
from sms_service.delivery.receipts import record_reports
from sms_service.delivery.transitions import submit
from sms_service.models import Message
from sms_service.providers import DeliveryReport

PROVIDER = "test"
ID_PREFIX = "TEST"
FAILING_MOBILE = "13800000001"
SILENT_MOBILE = "13800000002"
SIMULATED_FAILURE = "SIMULATED_FAILURE"
SIMULATED_FAILURE_MESSAGE = "测试密钥的模拟失败号码"


@dataclass
class Simulated:
    """What one simulated delivery did: counts, and the callbacks now due."""

    submitted: int = 0
    failed: int = 0
    callbacks: list[str] = field(default_factory=list)


def deliver(session: Session, messages: list[Message]) -> Simulated:
    """``sending → submitted``, then each message's simulated receipt, in two transactions as live."""
    result = Simulated()
    if not messages:
        return result
    # One request id and one message id per call, as Aliyun answers a batch call.
    call_id = uuid.uuid4().hex.upper()
    with atomic(session):
        result.submitted = submit(
            session,
            [m.id for m in messages],
            PROVIDER,
            f"{ID_PREFIX}-{call_id}",
            f"{ID_PREFIX}{call_id[:20]}",
        )
    reports = [report for m in messages if (report := receipt_of(m.id, m.mobile)) is not None]
    with atomic(session):
        _, _, result.callbacks = record_reports(session, reports)
    result.failed = sum(1 for report in reports if not report.success)
    return result


def query(message: Message) -> DeliveryReport | None:
    """What reconciliation learns of a test message, asked no upstream: its simulated receipt, if any."""
    return receipt_of(message.id, message.mobile)


def receipt_of(message_id: str, mobile: str) -> DeliveryReport | None:
    """The simulated receipt of one message, decided by its mobile; None for the mobile that gets none."""
    if mobile == SILENT_MOBILE:
        return None
    failed = mobile == FAILING_MOBILE
    return DeliveryReport(
        provider=PROVIDER,
        biz_id=None,
        mobile=mobile,
        success=not failed,
        error_code=SIMULATED_FAILURE if failed else None,
        error_message=SIMULATED_FAILURE_MESSAGE if failed else None,
        reported_at=utcnow(),
        out_id=message_id,
    )
