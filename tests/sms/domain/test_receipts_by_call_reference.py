"""A receipt settles a message by the call reference and the mobile when the call's answer never arrived."""

from __future__ import annotations

import json

from sms_service.delivery import dispatch, receipts
from tests.sms.domain.test_reconciliation_and_sweeps import accept, rows

NUMBERS = ["13800138001", "13800138002", "13800138003"]


def _unanswered_call(sms_db, sms_tenant, template, aliyun, configure) -> list[str]:
    """One SendBatchSms the fake accepts but answers only after the client's read timeout."""
    tenant, _ = sms_tenant
    configure(PROVIDER_TIMEOUT_SECONDS=0.3)
    aliyun.timeout_next(1, seconds=1.0)
    ids = accept(sms_db, tenant, template, NUMBERS)
    report = dispatch.deliver(sms_db, ids)
    assert report.unknown == 3 and len(aliyun.accepted()) == 3
    assert {m.call_ref for m in rows(sms_db, ids)} == {"multi." + ids[0]}
    assert {(m.status, m.biz_id) for m in rows(sms_db, ids)} == {("sending", None)}
    return ids


def test_receipts_of_a_multi_number_call_that_never_answered_settle_its_messages(
    sms_db, sms_tenant, template, aliyun, configure
):
    ids = _unanswered_call(sms_db, sms_tenant, template, aliyun, configure)
    aliyun.fail_delivery_for(NUMBERS[2], "MK:0005")
    aliyun.messages[2].delivery_error = "MK:0005"
    body = json.dumps([aliyun.receipt(m) for m in aliyun.accepted()]).encode()
    assert receipts.apply_reports(sms_db, receipts.parse_push("aliyun", body)) == (3, 0)
    settled = rows(sms_db, ids)
    assert [m.status for m in settled] == ["success", "success", "failed"]
    assert settled[2].error_code == "MK:0005"


def test_a_receipt_for_another_number_of_the_reference_matches_nothing(
    sms_db, sms_tenant, template, aliyun, configure
):
    ids = _unanswered_call(sms_db, sms_tenant, template, aliyun, configure)
    stranger = {**aliyun.receipt(aliyun.accepted()[0]), "phone_number": "13900139999"}
    assert receipts.apply_reports(sms_db, receipts.parse_push("aliyun", json.dumps([stranger]))) == (0, 1)
    assert {m.status for m in rows(sms_db, ids)} == {"sending"}


def test_overlapping_reconciliation_runs_never_claim_the_same_rows(
    sms_db, sms_tenant, template, aliyun, configure
):
    from sms_service.delivery import reconciliation
    from tests.sms.domain.test_reconciliation_and_sweeps import age

    ids = _unanswered_call(sms_db, sms_tenant, template, aliyun, configure)
    age(sms_db, ids, 3600)
    claimed = reconciliation.due_messages(sms_db)
    assert sorted(m.id for m in claimed) == sorted(ids)
    assert reconciliation.due_messages(sms_db) == []  # a run overlapping the first finds nothing to ask
    age(sms_db, ids, 3600)
    assert reconciliation.poll(sms_db)["applied"] == 3  # asked once each, found by the call reference
    assert {m.status for m in rows(sms_db, ids)} == {"success"}
