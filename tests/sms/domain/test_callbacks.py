"""Signed result callbacks: payload, signature, retry schedule, what is not retried, each attempt recorded."""

from __future__ import annotations

from sqlalchemy import select

from shared.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from sms_service.accepting import sending
from sms_service.delivery import callbacks, dispatch, receipts
from sms_service.models import Message
from sms_service.providers import DeliveryReport

VARIABLES = {"code": "123456", "minutes": "5"}


def delivered(session, tenant, template, callback_url, success=True):
    """A message that reached a final status through the sandbox and a receipt."""
    [message_id] = sending.send(
        session, tenant.id, template.id, ["13800138000"], VARIABLES, callback_url=callback_url
    )["message_ids"]
    dispatch.deliver(session, [message_id])
    report = DeliveryReport(
        provider="sandbox",
        biz_id="SANDBOX-" + message_id,
        mobile="13800138000",
        success=success,
        error_code=None if success else "MK:0001",
        error_message=None if success else "用户关机",
        reported_at=None,
        out_id=message_id,
    )
    receipts.apply_reports(session, [report])
    return message_id


def message(session, message_id) -> Message:
    session.expire_all()
    return session.scalar(select(Message).where(Message.id == message_id))


def test_final_status_publishes_a_callback_with_the_exact_signed_body(
    sms_db, sms_tenant, template, receiver, published
):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    assert ("sms.callback", [message_id, 1]) in [(name, args) for name, args, _ in published]
    result = callbacks.deliver_callback(sms_db, message_id, 1)
    assert result.outcome == callbacks.DELIVERED
    [(headers, body)] = receiver.requests
    assert verify_signature(
        tenant.callback_secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    )
    stored = message(sms_db, message_id)
    assert receiver.bodies() == [
        {
            "event": "sms.result",
            "data": {
                "message_id": message_id,
                "status": "success",
                "sent_at": stored.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "error_code": None,
                "error_message": None,
            },
        }
    ]
    assert stored.callback_status == "delivered" and stored.callback_attempts == 1


def test_failed_message_callback_carries_the_error(sms_db, sms_tenant, template, receiver):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url, success=False)
    callbacks.deliver_callback(sms_db, message_id, 1)
    data = receiver.bodies()[0]["data"]
    assert (data["status"], data["error_code"], data["error_message"]) == ("failed", "MK:0001", "用户关机")


def test_5xx_429_and_network_errors_are_retried_on_the_schedule(
    sms_db, sms_tenant, template, receiver, configure
):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    receiver.statuses = [500, 429]
    first = callbacks.deliver_callback(sms_db, message_id, 1)
    second = callbacks.deliver_callback(sms_db, message_id, 2)
    third = callbacks.deliver_callback(sms_db, message_id, 3)
    assert (first.outcome, second.outcome, third.outcome) == ("retry", "retry", "delivered")
    assert 9 <= first.next_delay <= 11 and 27 <= second.next_delay <= 33
    attempts = callbacks.attempts_of(sms_db, message_id)
    assert [(a.attempt, a.status_code, a.outcome) for a in attempts] == [
        (1, 500, "retry"),
        (2, 429, "retry"),
        (3, 200, "delivered"),
    ]


def test_the_same_attempt_is_made_once(sms_db, sms_tenant, template, receiver):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    assert callbacks.deliver_callback(sms_db, message_id, 1) is not None
    assert callbacks.deliver_callback(sms_db, message_id, 1) is None
    assert len(receiver.requests) == 1


def test_other_4xx_is_not_retried(sms_db, sms_tenant, template, receiver):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    receiver.statuses = [404]
    assert callbacks.deliver_callback(sms_db, message_id, 1).outcome == callbacks.REJECTED
    assert message(sms_db, message_id).callback_status == "failed"


def test_gives_up_after_the_last_scheduled_retry(sms_db, sms_tenant, template, receiver, configure):
    tenant, _ = sms_tenant
    configure(CALLBACK_RETRY_SCHEDULE=[0.1, 0.1])
    message_id = delivered(sms_db, tenant, template, receiver.url)
    receiver.statuses = [503, 503, 503]
    outcomes = [callbacks.deliver_callback(sms_db, message_id, n).outcome for n in (1, 2, 3)]
    assert outcomes == ["retry", "retry", "gave_up"]
    assert message(sms_db, message_id).callback_status == "failed"


def test_network_error_is_retried(sms_db, sms_tenant, template, configure):
    tenant, _ = sms_tenant
    configure(CALLBACK_ALLOW_PRIVATE=True, CALLBACK_TIMEOUT_SECONDS=0.5)
    message_id = delivered(sms_db, tenant, template, "http://127.0.0.1:9/closed-port")
    result = callbacks.deliver_callback(sms_db, message_id, 1)
    assert result.outcome == callbacks.RETRY
    [attempt] = callbacks.attempts_of(sms_db, message_id)
    assert attempt.status_code is None and "ConnectionError" in attempt.error


def test_delivery_refuses_an_address_that_became_private(sms_db, sms_tenant, template, receiver, configure):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    configure(CALLBACK_ALLOW_PRIVATE=False)
    assert callbacks.deliver_callback(sms_db, message_id, 1).outcome == callbacks.REJECTED
    assert receiver.requests == []


def test_record_shows_the_callback_attempts(sms_client, sms_db, sms_tenant, template, receiver):
    tenant, key = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    receiver.statuses = [502]
    callbacks.deliver_callback(sms_db, message_id, 1)
    callbacks.deliver_callback(sms_db, message_id, 2)
    data = sms_client.get(f"/api/v1/sms/records/{message_id}", headers={"X-Api-Key": key}).get_json()["data"]
    assert data["callback"]["status"] == "delivered" and data["callback"]["attempts_made"] == 2
    assert [(a["status_code"], a["outcome"]) for a in data["callback"]["attempts"]] == [
        (502, "retry"),
        (200, "delivered"),
    ]
