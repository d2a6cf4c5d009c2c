"""``/api/v1/sms/templates``: create, list, get, update, delete; scopes and tenant isolation."""

from __future__ import annotations

import pytest

from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template

URL = "/api/v1/sms/templates"
BODY = {
    "name": "取衣通知",
    "content": "您的衣物已洗好, 请到${site}取件, 取件码${code}",
    "sign_name": "洗衣云",
    "provider_codes": {"aliyun": "SMS_2001", "tencent": "123456"},
}


def test_create_template_derives_variables_and_defaults_to_enabled(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json=BODY, headers=auth(key))
    body = response.get_json()
    assert response.status_code == 200 and body["code"] == 0, body
    data = body["data"]
    assert data["template_id"].startswith("TMPL_")
    assert data["variables"] == ["site", "code"]
    assert data["status"] == "enabled"
    assert data["provider_codes"] == {"aliyun": "SMS_2001", "tencent": "123456"}
    assert data["created_at"].endswith("Z")


def test_create_template_can_start_disabled(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json={**BODY, "status": "disabled"}, headers=auth(key))
    assert response.get_json()["data"]["status"] == "disabled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"content": None}, "content"),
        ({"sign_name": "   "}, "sign_name"),
        ({"status": "paused"}, "status"),
        ({"provider_codes": {"twilio": "x"}}, "provider_codes"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_create_template_rejects_bad_fields(sms_client, sms_tenant, change, field):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json={**BODY, **change}, headers=auth(key))
    body = response.get_json()
    assert response.status_code == 400 and body["code"] == 400
    assert field in body["data"]["errors"]


def test_create_template_rejects_malformed_placeholders(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    response = sms_client.post(URL, json={**BODY, "content": "验证码 ${1code}"}, headers=auth(key))
    assert response.status_code == 400
    assert "content" in response.get_json()["data"]["errors"]


def test_templates_need_the_admin_scope(sms_client, sms_db):
    _tenant, send_only = create_sms_tenant(sms_db, scopes=["sms:send"])
    response = sms_client.post(URL, json=BODY, headers=auth(send_only))
    assert response.status_code == 403 and response.get_json()["code"] == 403
    assert sms_client.get(URL).status_code == 401


def test_list_templates_paginates_newest_first(sms_client, sms_db, sms_tenant):
    tenant, key = sms_tenant
    ids = [create_template(sms_db, tenant.id, name=f"模板{n}").id for n in range(3)]
    first = sms_client.get(URL + "?page=1&size=2", headers=auth(key)).get_json()["data"]
    second = sms_client.get(URL + "?page=2&size=2", headers=auth(key)).get_json()["data"]
    assert first["total"] == 3 and first["page"] == 1 and first["size"] == 2
    listed = [t["template_id"] for t in first["list"] + second["list"]]
    assert sorted(listed) == sorted(ids) and len(first["list"]) == 2
    bad = sms_client.get(URL + "?size=1000", headers=auth(key))
    assert bad.status_code == 400 and "size" in bad.get_json()["data"]["errors"]


def test_get_update_and_delete_a_template(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    url = f"{URL}/{template.id}"
    assert sms_client.get(url, headers=auth(key)).get_json()["data"]["name"] == "验证码"

    updated = sms_client.put(url, json={"content": "码${code}", "status": "disabled"}, headers=auth(key))
    data = updated.get_json()["data"]
    assert updated.status_code == 200
    assert data["variables"] == ["code"] and data["status"] == "disabled"

    assert sms_client.put(url, json={}, headers=auth(key)).status_code == 400

    deleted = sms_client.delete(url, headers=auth(key))
    assert deleted.get_json()["data"] == {"template_id": template.id, "deleted": True}
    assert sms_client.get(url, headers=auth(key)).status_code == 404
    assert sms_client.delete(url, headers=auth(key)).status_code == 404


def test_another_tenants_template_is_404(sms_client, sms_db, template):
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    url = f"{URL}/{template.id}"
    for method in ("get", "delete"):
        response = getattr(sms_client, method)(url, headers=auth(other_key))
        assert response.status_code == 404 and response.get_json()["code"] == 404
    assert sms_client.put(url, json={"name": "x"}, headers=auth(other_key)).status_code == 404
    assert sms_client.get(URL, headers=auth(other_key)).get_json()["data"]["total"] == 0
