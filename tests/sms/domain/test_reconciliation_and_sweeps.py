"""Polling fallback for late receipts and unknown outcomes, and the beat sweep that republishes stuck rows."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from shared.db import utcnow
from sms_service.accepting import sending
from sms_service.delivery import dispatch, reconciliation, sweeps
from sms_service.models import Message

VARIABLES = {"code": "123456", "minutes": "5"}


def accept(session, tenant, template, mobiles, **extra):
    return sending.send(session, tenant.id, template.id, mobiles, VARIABLES, **extra)["message_ids"]


def age(session, ids, seconds, **values):
    """Pretend the messages were last touched ``seconds`` ago."""
    session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(updated_at=utcnow() - timedelta(seconds=seconds), **values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def rows(session, ids):
    session.expire_all()
    found = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids))).all()}
    return [found[mid] for mid in ids]


def test_sandbox_messages_succeed_by_polling_after_the_delay(sms_db, sms_tenant, template, configure):
    tenant, _ = sms_tenant
    configure(PROVIDERS="sandbox", SANDBOX_DELAY_MS=0)
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    counts = reconciliation.poll(sms_db)
    assert counts["applied"] == 1 and rows(sms_db, ids)[0].status == "success"


def test_submitted_message_without_receipt_is_queried_at_aliyun(sms_db, sms_tenant, template, aliyun):
    tenant, _ = sms_tenant
    aliyun.fail_delivery_for("13900139000", "MK:0005")
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    dispatch.deliver(sms_db, ids)
    assert reconciliation.poll(sms_db)["applied"] == 0  # not due yet
    age(sms_db, ids, 3600)
    assert reconciliation.poll(sms_db)["applied"] == 2
    first, second = rows(sms_db, ids)
    assert (first.status, second.status, second.error_code) == ("success", "failed", "MK:0005")


def test_unknown_outcome_is_reconciled_not_resent(sms_db, sms_tenant, template, aliyun, configure):
    tenant, _ = sms_tenant
    configure(PROVIDER_TIMEOUT_SECONDS=0.3)
    aliyun.timeout_next(1, seconds=1.0)
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    assert rows(sms_db, ids)[0].outcome_unknown
    age(sms_db, ids, 3600)
    reconciliation.poll(sms_db)
    [message] = rows(sms_db, ids)
    assert message.status == "success" and not message.outcome_unknown
    assert len(aliyun.accepted()) == 1 and aliyun.duplicates() == []


def test_messages_of_a_batch_call_a_dead_worker_left_sending_are_reconciled_by_call_reference(
    sms_db, sms_tenant, template, aliyun, configure
):
    tenant, _ = sms_tenant
    configure(PROVIDER_TIMEOUT_SECONDS=0.3)
    aliyun.timeout_next(1, seconds=1.0)  # the SendBatchSms goes through, its answer never arrives
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    dispatch.deliver(sms_db, ids)
    assert [m.call_ref for m in rows(sms_db, ids)] == [f"multi.{ids[0]}"] * 2
    assert {m.reference for m in aliyun.accepted()} == {f"multi.{ids[0]}"}
    # As if the worker had died inside the call: left sending, no BizId, found by the sweep.
    age(sms_db, ids, 3600, outcome_unknown=False)
    sweeps.sweep(sms_db)
    assert all(m.status == "sending" and m.outcome_unknown and m.biz_id is None for m in rows(sms_db, ids))
    age(sms_db, ids, 3600)
    assert reconciliation.poll(sms_db)["applied"] == 2
    assert [(m.status, m.error_code) for m in rows(sms_db, ids)] == [("success", None)] * 2
    assert len(aliyun.accepted()) == 2 and aliyun.duplicates() == []


def test_messages_nobody_reports_on_are_failed_after_the_deadline(
    sms_db, sms_tenant, template, aliyun, configure
):
    tenant, _ = sms_tenant
    aliyun.delivery_delay_ms = 10_000_000  # the upstream never reaches a final state
    ids = accept(sms_db, tenant, template, ["13800138000"])
    dispatch.deliver(sms_db, ids)
    age(sms_db, ids, 3600, sent_at=utcnow() - timedelta(days=4))
    assert reconciliation.poll(sms_db)["given_up"] == 1
    [message] = rows(sms_db, ids)
    assert message.status == "failed" and message.error_code == reconciliation.RECEIPT_TIMEOUT


def test_sweep_republishes_messages_left_queued(sms_db, sms_tenant, template, published):
    tenant, _ = sms_tenant
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    published.clear()
    assert sweeps.sweep(sms_db)["republished"] == 0  # too fresh: their own task may still be on its way
    age(sms_db, ids, 3600)
    assert sweeps.sweep(sms_db)["republished"] == 2
    assert sorted(published.delivered_ids()) == sorted(ids)
    published.clear()
    assert sweeps.sweep(sms_db)["republished"] == 0  # not again on every sweep


def test_sweep_requeues_messages_a_dead_worker_left_before_calling_out(
    sms_db, sms_tenant, template, published
):
    tenant, _ = sms_tenant
    ids = accept(sms_db, tenant, template, ["13800138000", "13900139000"])
    dispatch.claim(sms_db, ids, 100)  # the worker died right after claiming
    age(sms_db, ids[:1], 3600)
    age(sms_db, ids[1:], 3600, provider="aliyun")  # …or during the upstream call
    published.clear()
    sweeps.sweep(sms_db)
    never_called, maybe_called = rows(sms_db, ids)
    assert never_called.status == "queued" and published.delivered_ids() == [never_called.id]
    assert maybe_called.status == "sending" and maybe_called.outcome_unknown


def test_sweep_republishes_overdue_callbacks(sms_db, sms_tenant, template, configure, published):
    tenant, _ = sms_tenant
    configure(CALLBACK_ALLOW_PRIVATE=True)
    [message_id] = accept(sms_db, tenant, template, ["13800138000"], callback_url="http://127.0.0.1:9/cb")
    sms_db.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="success",
            callback_status="pending",
            callback_attempts=2,
            callback_next_at=utcnow() - timedelta(minutes=5),
        )
    )
    sms_db.commit()
    published.clear()
    assert sweeps.sweep(sms_db)["callbacks"] == 1
    assert [(name, args) for name, args, _ in published] == [("sms.callback", [message_id, 3])]
