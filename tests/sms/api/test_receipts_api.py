"""``POST /api/v1/sms/receipts/{aliyun,tencent}?token=…``: upstream pushes finish submitted messages."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sms_service.accepting import sending
from sms_service.delivery import dispatch
from sms_service.models import Message

VARIABLES = {"code": "123456", "minutes": "5"}
TOKEN = "receipt-token-for-tests"


@pytest.fixture
def token(configure):
    configure(RECEIPT_TOKEN=TOKEN)
    return TOKEN


def submitted(session, tenant, template, mobiles, **extra):
    ids = sending.send(session, tenant.id, template.id, mobiles, VARIABLES, **extra)["message_ids"]
    dispatch.deliver(session, ids)
    return ids


def message(session, message_id) -> Message:
    session.expire_all()
    return session.scalar(select(Message).where(Message.id == message_id))


def test_aliyun_push_moves_messages_to_success_or_failed(
    sms_client, sms_db, sms_tenant, template, aliyun, token
):
    tenant, _ = sms_tenant
    aliyun.fail_delivery_for("13900139000", "MK:0001")
    ids = submitted(sms_db, tenant, template, ["13800138000", "13900139000"])
    receipts = [aliyun.receipt(m) for m in aliyun.accepted()]
    response = sms_client.post(f"/api/v1/sms/receipts/aliyun?token={token}", json=receipts)
    assert response.status_code == 200 and response.get_json() == {"code": 0, "msg": "接收成功"}
    delivered, refused = message(sms_db, ids[0]), message(sms_db, ids[1])
    assert delivered.status == "success" and delivered.completed_at is not None
    assert refused.status == "failed" and refused.error_code == "MK:0001"


def test_aliyun_push_through_the_fake(sms_app, sms_db, sms_tenant, template, aliyun, token):
    """The fake pushes its own SmsReport format; a duplicate push changes nothing."""
    tenant, _ = sms_tenant
    ids = submitted(sms_db, tenant, template, ["13800138000"])
    client = sms_app.test_client()
    body = [aliyun.receipt(m) for m in aliyun.accepted()]
    for _ in range(2):
        assert client.post(f"/api/v1/sms/receipts/aliyun?token={token}", json=body).status_code == 200
    assert message(sms_db, ids[0]).status == "success"


def test_tencent_push_matches_by_serial_number(
    sms_client, sms_db, sms_tenant, template, tencent, token, configure
):
    tenant, _ = sms_tenant
    configure(PROVIDERS="tencent")
    tencent.fail_delivery_for("13900139000", "DELIVRD_FAIL")
    ids = submitted(sms_db, tenant, template, ["13800138000", "13900139000"])
    body = [tencent.receipt(m) for m in tencent.accepted()]
    response = sms_client.post(f"/api/v1/sms/receipts/tencent?token={token}", json=body)
    assert response.get_json() == {"result": 0, "errmsg": "OK"}
    assert [message(sms_db, mid).status for mid in ids] == ["success", "failed"]


def test_unknown_receipts_are_acknowledged_and_change_nothing(sms_client, token):
    body = [
        {
            "phone_number": "13800138000",
            "send_time": "2026-05-10 10:00:00",
            "report_time": "2026-05-10 10:00:05",
            "success": True,
            "err_code": "DELIVERED",
            "err_msg": "用户接收成功",
            "sms_size": "1",
            "biz_id": "nobody^0",
            "out_id": "",
        }
    ]
    response = sms_client.post(f"/api/v1/sms/receipts/aliyun?token={token}", json=body)
    assert response.status_code == 200 and response.get_json()["code"] == 0


def test_a_late_receipt_never_moves_a_message_backwards(
    sms_client, sms_db, sms_tenant, template, aliyun, token
):
    tenant, _ = sms_tenant
    ids = submitted(sms_db, tenant, template, ["13800138000"])
    [accepted] = aliyun.accepted()
    ok_receipt = aliyun.receipt(accepted)
    failed_receipt = {**ok_receipt, "success": False, "err_code": "MK:0001"}
    url = f"/api/v1/sms/receipts/aliyun?token={token}"
    sms_client.post(url, json=[ok_receipt])
    sms_client.post(url, json=[failed_receipt])
    assert message(sms_db, ids[0]).status == "success"


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_wrong_or_missing_token_is_401(sms_client, token, provider):
    for query in ("", "?token=wrong"):
        response = sms_client.post(f"/api/v1/sms/receipts/{provider}{query}", json=[])
        assert response.status_code == 401 and response.get_json()["code"] == 401


def test_receipt_endpoints_are_404_without_a_configured_token(sms_client, configure):
    configure(RECEIPT_TOKEN="")
    response = sms_client.post("/api/v1/sms/receipts/aliyun?token=", json=[])
    assert response.status_code == 404 and response.get_json()["code"] == 404


@pytest.mark.parametrize("body", [b"{not json", b'{"an": "object"}', b'[{"unrelated": 1}]'])
def test_malformed_pushes_are_400(sms_client, token, body):
    response = sms_client.post(
        f"/api/v1/sms/receipts/aliyun?token={token}", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400 and response.get_json()["code"] == 400
