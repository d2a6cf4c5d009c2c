from datetime import UTC, datetime, timedelta

import pytest

from sms_service.providers import OutgoingSms, SandboxSmsProvider

SENT_AT = datetime(2026, 5, 10, 1, 0, tzinfo=UTC)


def sms(n):
    return OutgoingSms(f"MSG_20260510_{n:04d}", f"1380013{n:04d}", "洗衣店", "SANDBOX_TPL", {"code": "1"})


def test_sandbox_accepts_everything_with_a_derived_biz_id():
    outcomes = SandboxSmsProvider().send([sms(1), sms(2)])
    assert [o.accepted for o in outcomes] == [True, True]
    assert [o.biz_id for o in outcomes] == ["SANDBOX-MSG_20260510_0001", "SANDBOX-MSG_20260510_0002"]


def test_sandbox_reports_delivery_once_the_delay_has_passed():
    clock = [SENT_AT + timedelta(milliseconds=499)]
    provider = SandboxSmsProvider(delay_ms=500, clock=lambda: clock[0])
    query = {"message_id": "MSG_1", "mobile": "13800130001", "biz_id": "SANDBOX-MSG_1", "sent_at": SENT_AT}

    assert provider.query(**query) is None
    clock[0] = SENT_AT + timedelta(milliseconds=500)
    report = provider.query(**query)
    assert report.success and report.out_id == "MSG_1" and report.biz_id == "SANDBOX-MSG_1"
    assert report.reported_at == SENT_AT + timedelta(milliseconds=500)


def test_sandbox_query_needs_no_state_from_the_send():
    """Another worker process, which never saw the send, answers the same."""
    provider = SandboxSmsProvider(delay_ms=0)
    report = provider.query(message_id="MSG_9", mobile="13800130009", biz_id=None, sent_at=SENT_AT)
    assert report.success and report.biz_id == "SANDBOX-MSG_9"


def test_sandbox_treats_naive_sent_at_as_utc():
    provider = SandboxSmsProvider(delay_ms=1000, clock=lambda: SENT_AT + timedelta(seconds=2))
    assert provider.query(message_id="M", mobile="1", biz_id=None, sent_at=SENT_AT.replace(tzinfo=None))


def test_sandbox_parses_its_own_receipt_format():
    [failed] = SandboxSmsProvider().parse_receipts(
        [{"biz_id": "SANDBOX-MSG_1", "mobile": "+8613800130001", "success": False, "error_code": "X"}]
    )
    assert (failed.out_id, failed.mobile, failed.success, failed.error_code) == (
        "MSG_1",
        "13800130001",
        False,
        "X",
    )
    with pytest.raises(ValueError):
        SandboxSmsProvider().parse_receipts([{"biz_id": "12345^0"}])
