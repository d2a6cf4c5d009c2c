"""Test keys (``sk_test_…``): validated as live sends, simulated to the end without an upstream, outside the
limits, and seen only by test keys (live keys see only live messages)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks import Webhook

from shared.db import utcnow
from shared.logging import redact
from sms_service.delivery import callbacks, dispatch, reconciliation
from sms_service.extensions import keys
from sms_service.models import Message
from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template, message_ids_of

VARIABLES = {"code": "123456", "minutes": "5"}
MARKETING = "本周洗衣八折, 回T退订"


@pytest.fixture
def test_key(sms_db, sms_tenant) -> str:
    tenant, _ = sms_tenant
    _, plaintext = keys.issue(tenant.id, test=True)
    sms_db.commit()
    return plaintext


def send(client, key, template_id, mobiles, **body):
    response = client.post(
        "/api/v1/sms/send",
        json={"template_id": template_id, "mobiles": mobiles, "variables": VARIABLES, **body},
        headers=auth(key),
    )
    assert response.status_code == 200, response.get_json()
    return message_ids_of(response)


def record(client, key, message_id):
    return client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key))


def test_cli_creates_a_test_key_and_tenant_create_a_live_one(sms_app, sms_client, sms_db, sms_tenant):
    tenant, _ = sms_tenant
    runner = sms_app.test_cli_runner()
    result = runner.invoke(args=["key", "create", "--tenant", tenant.id, "--test", "--scope", "sms:send"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["api_key"].startswith("sk_test_") and created["test"] is True
    assert created["scopes"] == ["sms:send"]
    assert sms_client.get("/api/v1/sms/me", headers=auth(created["api_key"])).status_code == 200
    live = json.loads(runner.invoke(args=["key", "create", "--tenant", tenant.id]).output)
    assert live["api_key"].startswith("sk_live_") and live["test"] is False
    made = json.loads(runner.invoke(args=["tenant", "create", "--name", "新租户"]).output)
    assert made["api_key"].startswith("sk_live_")


def test_logs_redact_test_keys_as_live_ones():
    cleaned = redact("key sk_test_abcDEF123-_x and sk_live_abcDEF123")
    assert "abcDEF123" not in cleaned and "sk_test_***" in cleaned and "sk_live_***" in cleaned


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"mobiles": ["12345"]}, 400),
        ({"mobiles": ["13800138000", "+8613800138000"]}, 400),
        ({"variables": {"code": "1"}}, 400),
        ({"template_id": "TMPL_unknown"}, 404),
        ({"callback_url": "http://127.0.0.1/cb"}, 400),
    ],
)
def test_a_test_send_is_validated_exactly_as_a_live_one(
    sms_client, sms_tenant, template, test_key, body, status
):
    _, live_key = sms_tenant
    request = {"template_id": template.id, "mobiles": ["13800138000"], "variables": VARIABLES, **body}
    answers = [
        sms_client.post("/api/v1/sms/send", json=request, headers=auth(k)) for k in (live_key, test_key)
    ]
    assert [a.status_code for a in answers] == [status, status]
    assert answers[0].get_json() == answers[1].get_json()


def test_a_test_batch_is_validated_exactly_as_a_live_one(sms_client, sms_tenant, template, test_key):
    _, live_key = sms_tenant
    request = {"template_id": template.id, "items": [{"mobile": "13800138000", "variables": {}}]}
    answers = [
        sms_client.post("/api/v1/sms/batch-send", json=request, headers=auth(k)) for k in (live_key, test_key)
    ]
    assert [a.status_code for a in answers] == [400, 400]
    assert answers[0].get_json() == answers[1].get_json()


def test_test_messages_go_through_the_lifecycle_without_an_upstream(
    sms_client, sms_db, sms_tenant, template, test_key, aliyun, published
):
    ok_id, failing_id, silent_id = send(
        sms_client, test_key, template.id, ["13900139000", "13800000001", "13800000002"]
    )
    queued = record(sms_client, test_key, ok_id).get_json()["data"]
    assert queued["status"] == "queued" and queued["test"] is True
    assert set(published.delivered_ids()) == {ok_id, failing_id, silent_id}
    dispatch.deliver(sms_db, [ok_id])  # its siblings are claimed with it
    ok, failing, silent = (
        record(sms_client, test_key, mid).get_json()["data"] for mid in (ok_id, failing_id, silent_id)
    )
    assert ok["status"] == "success" and ok["provider"] == "test" and ok["test"] is True
    assert ok["channel_response"]["req_id"].startswith("TEST")
    assert ok["channel_response"]["biz_id"].startswith("TEST")
    assert ok["sent_at"] and ok["completed_at"] and ok["error_code"] is None
    assert failing["status"] == "failed" and failing["error_code"] == "SIMULATED_FAILURE"
    assert failing["provider"] == "test" and failing["completed_at"]
    assert silent["status"] == "submitted" and silent["completed_at"] is None
    assert aliyun.accepted() == [] and aliyun.queries == 0


def test_the_silent_mobile_is_never_polled_upstream_and_times_out_as_live(
    sms_client, sms_db, template, test_key, aliyun, configure
):
    [silent_id] = send(sms_client, test_key, template.id, ["13800000002"])
    dispatch.deliver(sms_db, [silent_id])
    configure(RECEIPT_POLL_AFTER_SECONDS=0)
    sms_db.execute(
        update(Message).where(Message.id == silent_id).values(updated_at=utcnow() - timedelta(seconds=5))
    )
    sms_db.commit()
    assert reconciliation.poll(sms_db) == {"applied": 0, "waiting": 1, "given_up": 0}
    assert record(sms_client, test_key, silent_id).get_json()["data"]["status"] == "submitted"
    past_give_up = utcnow() - timedelta(days=4)
    sms_db.execute(
        update(Message).where(Message.id == silent_id).values(sent_at=past_give_up, updated_at=past_give_up)
    )
    sms_db.commit()
    assert reconciliation.poll(sms_db)["given_up"] == 1
    timed_out = record(sms_client, test_key, silent_id).get_json()["data"]
    assert timed_out["status"] == "failed" and timed_out["error_code"] == "RECEIPT_TIMEOUT"
    assert aliyun.accepted() == [] and aliyun.queries == 0


def test_a_test_message_left_submitted_by_a_dead_worker_is_settled_by_polling(
    sms_client, sms_db, template, test_key, aliyun, configure
):
    [message_id] = send(sms_client, test_key, template.id, ["13900139000"])
    earlier = utcnow() - timedelta(seconds=5)
    sms_db.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(status="submitted", provider="test", sent_at=earlier, updated_at=earlier)
    )
    sms_db.commit()
    configure(RECEIPT_POLL_AFTER_SECONDS=0)
    assert reconciliation.poll(sms_db)["applied"] == 1
    assert record(sms_client, test_key, message_id).get_json()["data"]["status"] == "success"
    assert aliyun.queries == 0


def test_a_test_callback_is_signed_as_a_live_one(
    sms_client, sms_db, sms_tenant, template, test_key, receiver
):
    tenant, _ = sms_tenant
    [message_id] = send(sms_client, test_key, template.id, ["13800000001"], callback_url=receiver.url)
    dispatch.deliver(sms_db, [message_id])
    assert callbacks.deliver_callback(sms_db, message_id, 1).outcome == callbacks.DELIVERED
    [(headers, body)] = receiver.requests
    Webhook(tenant.callback_secret).verify(body, headers)  # raises when the signature is wrong
    data = json.loads(body)["data"]
    assert data["message_id"] == message_id and data["status"] == "failed"
    assert data["error_code"] == "SIMULATED_FAILURE"


def test_test_sends_count_against_no_limit(sms_client, sms_db, test_key):
    tenant, live_key = create_sms_tenant(sms_db, name="小额租户", daily_quota=2, mobile_per_minute=1)
    _, tenant_test_key = keys.issue(tenant.id, test=True)
    sms_db.commit()
    template = create_template(sms_db, tenant.id)
    for _ in range(5):  # far past the quota and the per-minute limit, were they counted
        send(sms_client, tenant_test_key, template.id, ["13800138000"])
    send(sms_client, tenant_test_key, template.id, ["13800138000", "13900139000", "15000150000"])
    send(sms_client, live_key, template.id, ["13800138000"])  # the live allowance is untouched
    send(sms_client, live_key, template.id, ["13900139000"])
    over = sms_client.post(
        "/api/v1/sms/send",
        json={"template_id": template.id, "mobiles": ["15000150000"], "variables": VARIABLES},
        headers=auth(live_key),
    )
    assert over.status_code == 429


def test_test_keys_honour_opt_outs(sms_client, sms_db, sms_tenant, test_key, published):
    tenant, live_key = sms_tenant
    template = create_template(sms_db, tenant.id, content=MARKETING, category="marketing")
    optout = sms_client.post("/api/v1/sms/opt-outs", json={"mobile": "13800138000"}, headers=auth(live_key))
    assert optout.status_code == 200
    blocked_id, sent_id = send(sms_client, test_key, template.id, ["13800138000", "13900139000"])
    blocked = record(sms_client, test_key, blocked_id).get_json()["data"]
    assert blocked["status"] == "failed" and blocked["error_code"] == "OPTED_OUT" and blocked["test"] is True
    assert published.delivered_ids() == [sent_id]


def test_each_kind_of_key_sees_only_its_own_kind(sms_client, sms_db, sms_tenant, template, test_key):
    _, live_key = sms_tenant
    [live_id] = send(sms_client, live_key, template.id, ["13800138000"])
    [test_id] = send(sms_client, test_key, template.id, ["13800138000"])
    assert record(sms_client, live_key, live_id).get_json()["data"]["test"] is False
    assert record(sms_client, test_key, test_id).get_json()["data"]["test"] is True
    assert record(sms_client, live_key, test_id).status_code == 404
    assert record(sms_client, test_key, live_id).status_code == 404
    for key, own in ((live_key, live_id), (test_key, test_id)):
        found = sms_client.get("/api/v1/sms/records?mobile=13800138000", headers=auth(key)).get_json()["data"]
        assert found["total"] == 1 and [row["message_id"] for row in found["list"]] == [own]
    batches = {}
    for key in (live_key, test_key):
        answer = sms_client.post(
            "/api/v1/sms/batch-send",
            json={"template_id": template.id, "items": [{"mobile": "13900139000", "variables": VARIABLES}]},
            headers=auth(key),
        )
        batches[key] = answer.get_json()["data"]["batch_id"]
    for key, other in ((live_key, test_key), (test_key, live_key)):
        own = sms_client.get(f"/api/v1/sms/batches/{batches[key]}", headers=auth(key))
        assert own.status_code == 200 and own.get_json()["data"]["test"] is (key == test_key)
        assert own.get_json()["data"]["counts"]["queued"] == 1
        assert sms_client.get(f"/api/v1/sms/batches/{batches[key]}", headers=auth(other)).status_code == 404


def test_idempotency_keys_of_test_and_live_sends_are_apart(
    sms_client, sms_db, sms_tenant, template, test_key
):
    _, live_key = sms_tenant
    ids = [
        send_once(sms_client, key, template.id)
        for key in (live_key, test_key, live_key, test_key)  # the same Idempotency-Key each time
    ]
    assert ids[0] == ids[2] and ids[1] == ids[3] and ids[0] != ids[1]
    kinds = dict(sms_db.execute(select(Message.id, Message.test).where(Message.id.in_(ids))).all())
    assert kinds == {ids[0]: False, ids[1]: True}


def send_once(client, key, template_id):
    response = client.post(
        "/api/v1/sms/send",
        json={"template_id": template_id, "mobiles": ["13800138000"], "variables": VARIABLES},
        headers=auth(key, **{"Idempotency-Key": "order-1"}),
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["message_id"]
