"""A receipt that matches no message yet is held, applied when its call's answer stores the biz_id, and purged
after SMS_HELD_RECEIPT_SECONDS."""

from __future__ import annotations

from sqlalchemy import func, select, update

from shared.transactions import atomic
from sms_service.delivery import receipts, sweeps
from sms_service.delivery.transitions import submit
from sms_service.models import SENDING, HeldReceipt, Message
from sms_service.providers import DeliveryReport
from tests.sms.domain.test_reconciliation_and_sweeps import accept, rows


def _report(biz_id: str, mobile: str = "13800138000", success: bool = True) -> DeliveryReport:
    return DeliveryReport(
        provider="tencent",
        biz_id=biz_id,
        mobile=mobile,
        success=success,
        error_code=None if success else "FAIL",
        error_message=None if success else "用户接收失败",
        reported_at=None,
    )


def _held(session) -> int:
    return session.scalar(select(func.count()).select_from(HeldReceipt))


def test_a_receipt_before_the_answer_is_held_and_applied_when_the_answer_arrives(
    sms_db, sms_tenant, template
):
    tenant, _ = sms_tenant
    ids = accept(sms_db, tenant, template, ["13800138000"])
    sms_db.execute(update(Message).where(Message.id.in_(ids)).values(status=SENDING, provider="tencent"))
    sms_db.commit()
    assert receipts.apply_reports(sms_db, [_report("serial-1", success=False)]) == (0, 1)
    assert _held(sms_db) == 1 and rows(sms_db, ids)[0].status == SENDING

    with atomic(sms_db):
        submit(sms_db, ids, "tencent", "req-1", "serial-1")
        callbacks = receipts.apply_held(sms_db, "tencent", ids)
    message = rows(sms_db, ids)[0]
    assert (message.status, message.error_code) == ("failed", "FAIL")
    assert _held(sms_db) == 0 and callbacks == []


def test_held_receipts_are_purged_by_the_sweep_after_their_time(sms_db, configure):
    receipts.apply_reports(sms_db, [_report("serial-2"), _report("serial-3", mobile="13900139000")])
    configure(HELD_RECEIPT_SECONDS=3600)
    assert sweeps.sweep(sms_db)["held_receipts_purged"] == 0 and _held(sms_db) == 2
    configure(HELD_RECEIPT_SECONDS=-1)
    assert sweeps.sweep(sms_db)["held_receipts_purged"] == 2 and _held(sms_db) == 0


def test_reconciliation_applies_a_held_receipt_instead_of_asking_the_upstream(
    sms_db, sms_tenant, template, aliyun, configure
):
    from sms_service.delivery import reconciliation
    from tests.sms.domain.test_receipts_by_call_reference import _unanswered_call
    from tests.sms.domain.test_reconciliation_and_sweeps import age

    ids = _unanswered_call(sms_db, sms_tenant, template, aliyun, configure)
    message = rows(sms_db, ids)[0]
    # Held before the call reference was on record (say, a receipt from before a restore of the database).
    with atomic(sms_db):
        sms_db.add(
            HeldReceipt(provider="aliyun", mobile=message.mobile, reference=message.call_ref, success=True)
        )
    age(sms_db, [message.id], 3600)
    queries = aliyun.queries
    assert reconciliation.poll(sms_db)["applied"] == 1
    assert aliyun.queries == queries and rows(sms_db, ids)[0].status == "success" and _held(sms_db) == 0
