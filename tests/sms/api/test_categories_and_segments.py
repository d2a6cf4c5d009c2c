"""Template categories (a marketing text must end with an opt-out instruction) and the billed segments each
record shows."""

from __future__ import annotations

import pytest

from sms_service.accepting import sending
from tests.sms.conftest import auth, create_template

URL = "/api/v1/sms/templates"
BODY = {"name": "会员活动", "content": "本周洗衣八折, 详询门店", "sign_name": "洗衣云", "provider_codes": {}}


def test_templates_default_to_notification_and_show_their_category(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    created = sms_client.post(URL, json=BODY, headers=auth(key)).get_json()["data"]
    assert created["category"] == "notification"
    verification = sms_client.post(
        URL, json={**BODY, "content": "验证码${code}", "category": "verification"}, headers=auth(key)
    ).get_json()["data"]
    assert verification["category"] == "verification"
    shown = sms_client.get(f"{URL}/{verification['template_id']}", headers=auth(key)).get_json()["data"]
    assert shown["category"] == "verification"


@pytest.mark.parametrize("ending", ["回T退订", "回TD退订", "回N退订", "拒收请回复R", "回T退订 \n"])
def test_a_marketing_template_ending_with_an_opt_out_instruction_is_accepted(sms_client, sms_tenant, ending):
    _tenant, key = sms_tenant
    body = {**BODY, "content": BODY["content"] + ", " + ending, "category": "marketing"}
    response = sms_client.post(URL, json=body, headers=auth(key))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["data"]["category"] == "marketing"


@pytest.mark.parametrize("content", ["本周洗衣八折, 详询门店", "回T退订, 本周洗衣八折", "本周八折 退订回T"])
def test_a_marketing_template_without_the_instruction_at_its_end_is_400_naming_content(
    sms_client, sms_tenant, content
):
    _tenant, key = sms_tenant
    response = sms_client.post(
        URL, json={**BODY, "content": content, "category": "marketing"}, headers=auth(key)
    )
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == 400
    assert "content" in body["data"]["errors"] and "回T退订" in body["message"]


def test_turning_a_template_marketing_checks_its_content_and_changes_nothing_when_refused(
    sms_client, sms_tenant
):
    _tenant, key = sms_tenant
    template_id = sms_client.post(URL, json=BODY, headers=auth(key)).get_json()["data"]["template_id"]
    refused = sms_client.put(f"{URL}/{template_id}", json={"category": "marketing"}, headers=auth(key))
    assert refused.status_code == 400 and "content" in refused.get_json()["data"]["errors"]
    assert sms_client.get(f"{URL}/{template_id}", headers=auth(key)).get_json()["data"]["category"] == (
        "notification"
    )
    changed = sms_client.put(
        f"{URL}/{template_id}",
        json={"category": "marketing", "content": BODY["content"] + " 拒收请回复R"},
        headers=auth(key),
    )
    assert changed.status_code == 200 and changed.get_json()["data"]["category"] == "marketing"


def test_an_unknown_category_is_400(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json={**BODY, "category": "promo"}, headers=auth(key))
    assert response.status_code == 400 and "category" in response.get_json()["data"]["errors"]


@pytest.mark.parametrize(
    ("filler", "segments"),
    [
        (0, 1),
        (64, 1),  # 【洗衣云】 (5) + 64 + the variable (1) = 70 characters
        (65, 2),  # 71 → ceil(71 / 67)
        (128, 2),  # 134 = 2 × 67
        (129, 3),  # 135
    ],
)
def test_each_record_shows_its_billed_segments_counted_with_the_sign_name(
    sms_client, sms_db, sms_tenant, filler, segments
):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content="x" * filler + "${code}")
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {"code": "7"})["message_ids"]
    record = sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key)).get_json()["data"]
    assert record["segments"] == segments


def test_segments_count_characters_not_bytes(sms_client, sms_db, sms_tenant):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content="洗" * 64 + "${c}")
    # 5 + 64 + 1 = 70 characters, 210 bytes of UTF-8: one segment
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {"c": "衣"})["message_ids"]
    record = sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key)).get_json()["data"]
    assert record["segments"] == 1
