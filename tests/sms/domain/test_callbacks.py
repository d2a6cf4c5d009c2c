"""Signed result callbacks: payload, Standard Webhooks signature (checked by the reference library), the
retry schedule, DNS failures, what is not retried, each attempt recorded, secret rotation."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from shared.db import utcnow
from sms_service.accepting import sending
from sms_service.delivery import callbacks, dispatch, receipts
from sms_service.models import Message, Tenant
from sms_service.providers import DeliveryReport
from tests.fakes.dns import FakeDns

VARIABLES = {"code": "123456", "minutes": "5"}


def delivered(session, tenant, template, callback_url, success=True, mobile="13800138000"):
    """A message that reached a final status through the sandbox and a receipt."""
    [message_id] = sending.send(
        session, tenant.id, template.id, [mobile], VARIABLES, callback_url=callback_url
    )["message_ids"]
    dispatch.deliver(session, [message_id])
    report = DeliveryReport(
        provider="sandbox",
        biz_id="SANDBOX-" + message_id,
        mobile=mobile,
        success=success,
        error_code=None if success else "MK:0001",
        error_message=None if success else "用户关机",
        reported_at=None,
        out_id=message_id,
    )
    receipts.apply_reports(session, [report])
    return message_id


def verifies(secret: str, headers: dict, body: bytes) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


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
    assert verifies(tenant.callback_secret, headers, body)
    assert headers["Webhook-Id"] == f"sms_result_{message_id}"
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
    assert 4.5 <= first.next_delay <= 5.5 and 54 <= second.next_delay <= 66  # 5 s, then 1 min
    attempts = callbacks.attempts_of(sms_db, message_id)
    assert [(a.attempt, a.status_code, a.error, a.outcome) for a in attempts] == [
        (1, 500, "HTTP 500", "retry"),
        (2, 429, "HTTP 429", "retry"),
        (3, 200, None, "delivered"),
    ]


def test_every_retry_of_one_result_carries_the_same_webhook_id(sms_db, sms_tenant, template, receiver):
    tenant, _ = sms_tenant
    message_id = delivered(sms_db, tenant, template, receiver.url)
    receiver.statuses = [503, 502]
    outcomes = [callbacks.deliver_callback(sms_db, message_id, n).outcome for n in (1, 2, 3)]
    assert outcomes == ["retry", "retry", "delivered"]
    assert {headers["Webhook-Id"] for headers, _ in receiver.requests} == {f"sms_result_{message_id}"}
    assert all(verifies(tenant.callback_secret, headers, body) for headers, body in receiver.requests)


def test_a_callback_host_that_does_not_resolve_is_retried_then_delivered_once_it_does(
    sms_db, sms_tenant, template, receiver, configure, monkeypatch
):
    tenant, _ = sms_tenant
    dns = FakeDns().install(monkeypatch)
    port = receiver.url.split(":")[2].split("/")[0]
    message_id = delivered(sms_db, tenant, template, f"http://{FakeDns.NAME}:{port}/sms/callback")
    configure(CALLBACK_ALLOW_PRIVATE=False)
    first = callbacks.deliver_callback(sms_db, message_id, 1)
    assert first.outcome == callbacks.RETRY and first.next_delay <= 60
    assert message(sms_db, message_id).callback_status == "pending"
    dns.address = "127.0.0.1"  # resolves now, to the receiver (on loopback, hence allowed here)
    configure(CALLBACK_ALLOW_PRIVATE=True)
    assert callbacks.deliver_callback(sms_db, message_id, 2).outcome == callbacks.DELIVERED
    [(headers, body)] = receiver.requests
    assert verifies(tenant.callback_secret, headers, body)
    attempts = callbacks.attempts_of(sms_db, message_id)
    assert [(a.outcome, a.status_code) for a in attempts] == [("retry", None), ("delivered", 200)]
    assert attempts[0].error.startswith("DNS: ")


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
    configure(CALLBACK_RETRY_SCHEDULE=(0.1, 0.1))
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


def test_rotated_secret_both_sign_during_the_overlap_then_only_the_new_one(
    sms_app, sms_db, sms_tenant, template, receiver
):
    tenant, _ = sms_tenant
    old = tenant.callback_secret
    result = sms_app.test_cli_runner().invoke(
        args=["tenant", "rotate-secret", "--tenant", tenant.id, "--keep-previous-hours", "24"]
    )
    assert result.exit_code == 0, result.output
    rotated = json.loads(result.output)
    new = rotated["callback_secret"]
    assert new.startswith("whsec_") and new != old and rotated["previous_callback_secret_expires_at"]

    during = delivered(sms_db, tenant, template, receiver.url)
    callbacks.deliver_callback(sms_db, during, 1)
    [(headers, body)] = receiver.requests
    assert verifies(old, headers, body) and verifies(new, headers, body)

    stored = sms_db.get(Tenant, tenant.id)
    stored.previous_callback_secret_expires_at = utcnow() - timedelta(seconds=1)
    sms_db.commit()
    after = delivered(sms_db, tenant, template, receiver.url, mobile="13900139000")
    callbacks.deliver_callback(sms_db, after, 1)
    headers, body = receiver.requests[1]
    assert verifies(new, headers, body) and not verifies(old, headers, body)


def test_rotate_secret_names_an_unknown_tenant(sms_app, sms_db):
    result = sms_app.test_cli_runner().invoke(args=["tenant", "rotate-secret", "--tenant", "TNT_nope"])
    assert result.exit_code != 0 and "no tenant TNT_nope" in result.output


def test_tenant_create_prints_a_whsec_callback_secret(sms_app, sms_db):
    result = sms_app.test_cli_runner().invoke(args=["tenant", "create", "--name", "华东加盟商"])
    secret = json.loads(result.output)["callback_secret"]
    assert secret.startswith("whsec_") and Webhook(secret)
