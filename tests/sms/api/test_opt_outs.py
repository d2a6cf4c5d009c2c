"""Opt-outs: the API (scope sms:admin) and marketing sends to opted-out mobiles (failed OPTED_OUT, never sent,
not counted, their callback due like any failed message's)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from sms_service.accepting import sending
from sms_service.models import Message
from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template

URL = "/api/v1/sms/opt-outs"
MARKETING = "本周洗衣八折, 回T退订"


def test_opt_out_list_and_opt_back_in(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    created = sms_client.post(URL, json={"mobile": "+8613800138000", "reason": "客户来电"}, headers=auth(key))
    assert created.status_code == 200, created.get_json()
    data = created.get_json()["data"]
    assert data["mobile"] == "138****8000" and data["source"] == "api" and data["reason"] == "客户来电"
    again = sms_client.post(URL, json={"mobile": "13800138000", "reason": "又一次"}, headers=auth(key))
    assert again.get_json()["data"]["reason"] == "客户来电"  # the first record stands
    listed = sms_client.get(URL, headers=auth(key)).get_json()["data"]
    assert listed["total"] == 1 and listed["list"][0]["mobile"] == "138****8000"
    assert "13800138000" not in sms_client.get(URL, headers=auth(key)).get_data(as_text=True)
    removed = sms_client.delete(f"{URL}/13800138000", headers=auth(key))
    assert removed.status_code == 200 and removed.get_json()["data"] == {
        "mobile": "138****8000",
        "deleted": True,
    }
    assert sms_client.get(URL, headers=auth(key)).get_json()["data"]["total"] == 0
    assert sms_client.delete(f"{URL}/13800138000", headers=auth(key)).status_code == 404


@pytest.mark.parametrize(("body", "field"), [({"mobile": "12345"}, "mobile"), ({}, "mobile")])
def test_a_bad_mobile_is_400(sms_client, sms_tenant, body, field):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json=body, headers=auth(key))
    assert response.status_code == 400 and field in response.get_json()["data"]["errors"]
    assert sms_client.delete(f"{URL}/12345", headers=auth(key)).status_code == 400


def test_opt_outs_are_per_tenant_and_need_the_admin_scope(sms_client, sms_db, sms_tenant):
    _tenant, key = sms_tenant
    sms_client.post(URL, json={"mobile": "13800138000"}, headers=auth(key))
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    assert sms_client.get(URL, headers=auth(other_key)).get_json()["data"]["total"] == 0
    assert sms_client.delete(f"{URL}/13800138000", headers=auth(other_key)).status_code == 404
    _send_only, send_key = create_sms_tenant(sms_db, name="只发送", scopes=["sms:send"])
    assert sms_client.get(URL, headers=auth(send_key)).status_code == 403


def test_a_marketing_send_fails_opted_out_mobiles_and_sends_the_others(
    sms_client, sms_db, sms_tenant, published
):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content=MARKETING, category="marketing")
    sms_client.post(URL, json={"mobile": "13800138000"}, headers=auth(key))
    answer = sending.send(
        sms_db,
        tenant.id,
        template.id,
        ["13800138000", "13900139000"],
        {},
        callback_url="https://example.com/cb",
    )
    blocked_id, live_id = answer["message_ids"]
    blocked = sms_client.get(f"/api/v1/sms/records/{blocked_id}", headers=auth(key)).get_json()["data"]
    assert blocked["status"] == "failed" and blocked["error_code"] == "OPTED_OUT"
    assert (
        blocked["provider"] is None and blocked["completed_at"] and blocked["callback"]["status"] == "pending"
    )
    live = sms_client.get(f"/api/v1/sms/records/{live_id}", headers=auth(key)).get_json()["data"]
    assert live["status"] == "queued"
    assert published.delivered_ids() == [live_id]  # only the live message goes to dispatch
    assert [args for name, args, _ in published if name == "sms.callback"] == [[blocked_id, 1]]


def test_opted_out_mobiles_do_not_count_against_the_limits(sms_db, sms_client, sms_tenant):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content=MARKETING, category="marketing")
    sms_client.post(URL, json={"mobile": "13800138000"}, headers=auth(key))
    for _ in range(10):  # far past the per-minute limit, were they counted
        [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {})["message_ids"]
    assert sms_db.scalar(select(Message.status).where(Message.id == message_id)) == "failed"
    sms_client.delete(f"{URL}/13800138000", headers=auth(key))
    [sent] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {})["message_ids"]
    assert (
        sms_db.scalar(select(Message.status).where(Message.id == sent)) == "queued"
    )  # opted back in at once


@pytest.mark.parametrize("category", ["verification", "notification"])
def test_other_categories_ignore_opt_outs(sms_db, sms_client, sms_tenant, category):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content="您的衣物已洗好", category=category)
    sms_client.post(URL, json={"mobile": "13800138000"}, headers=auth(key))
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {})["message_ids"]
    assert sms_db.scalar(select(Message.status).where(Message.id == message_id)) == "queued"
