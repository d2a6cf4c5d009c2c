"""Replies from mobiles: the Aliyun and Tencent uplink pushes, attribution, opt-out keywords, the list."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator

from sms_service.accepting import sending
from sms_service.delivery import dispatch
from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template

TOKEN = "receipt-token-for-tests"
ALIYUN = f"/api/v1/sms/uplinks/aliyun?token={TOKEN}"
TENCENT = f"/api/v1/sms/uplinks/tencent?token={TOKEN}"
MARKETING = "本周洗衣八折, 回T退订"


@pytest.fixture
def token(configure):
    configure(RECEIPT_TOKEN=TOKEN, OPT_OUT_WORDS=frozenset({"t", "td", "r", "n", "退订"}))
    return TOKEN


def aliyun_item(text="你好", mobile="13800138000", **extra):
    return {
        "phone_number": mobile,
        "send_time": "2026-12-02 10:00:00",
        "content": text,
        "dest_code": "1234",
        "sequence_id": "9001",
        **extra,
    }


def tencent_item(text="你好", mobile="13800138000", **extra):
    return {
        "extend": "",
        "mobile": mobile,
        "nationcode": "86",
        "sign": "",
        "text": text,
        "time": 1764640800,
        **extra,
    }


def replies(client, key):
    return client.get("/api/v1/sms/uplinks", headers=auth(key)).get_json()["data"]


def test_both_aliyun_shapes_are_answered_as_aliyun_expects(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    create_template(sms_db, tenant.id)  # sign 洗衣云
    old = aliyun_item("旧格式", sign_name="洗衣云", sequence_id=1234567890)
    new = aliyun_item("新格式", sequence_id="1234567891")
    for body in ([old], [new]):
        response = sms_client.post(ALIYUN, json=body)
        assert response.status_code == 200 and response.get_json() == {"code": 0, "msg": "成功"}
    listed = replies(sms_client, key)
    assert listed["total"] == 1  # the new shape carries no sign and no marketing went to the mobile
    [row] = listed["list"]
    assert row["mobile"] == "138****8000" and row["text"] == "旧格式" and row["sign_name"] == "洗衣云"
    assert row["provider"] == "aliyun" and row["received_at"].endswith("Z")


def test_tencent_one_object_or_an_array(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    create_template(sms_db, tenant.id)
    one = sms_client.post(TENCENT, json=tencent_item("一", sign="洗衣云"))
    assert one.status_code == 200 and one.get_json() == {"result": 0, "errmsg": "OK"}
    many = sms_client.post(
        TENCENT, json=[tencent_item("二", sign="洗衣云"), tencent_item("三", sign="洗衣云")]
    )
    assert many.get_json() == {"result": 0, "errmsg": "OK"}
    assert [row["text"] for row in replies(sms_client, key)["list"]] == ["三", "二", "一"]


def test_the_document_describes_both_tencent_forms(sms_client):
    document = sms_client.get("/openapi.json").get_json()
    body = document["paths"]["/api/v1/sms/uplinks/tencent"]["post"]["requestBody"]["content"]
    # The body's schema with the document's components, so that its #/components/… references resolve.
    validator = Draft202012Validator(
        {**body["application/json"]["schema"], "components": document["components"]}
    )
    item = tencent_item("好的", sign="洗衣云")
    assert validator.is_valid(item) and validator.is_valid([item, item])
    assert not validator.is_valid([{"text": "no mobile"}]) and not validator.is_valid("text")


@pytest.mark.parametrize("url", ["/api/v1/sms/uplinks/aliyun", "/api/v1/sms/uplinks/tencent"])
def test_a_wrong_token_is_401_and_no_token_configured_is_404(sms_client, configure, url):
    configure(RECEIPT_TOKEN=TOKEN)
    assert sms_client.post(url + "?token=wrong", json=[]).status_code == 401
    assert sms_client.post(url, json=[]).status_code == 401
    configure(RECEIPT_TOKEN="")
    assert sms_client.post(url + f"?token={TOKEN}", json=[]).status_code == 404


def test_a_bad_item_is_400_naming_the_field(sms_client, token):
    response = sms_client.post(ALIYUN, json=[aliyun_item(mobile="12345")])
    assert response.status_code == 400 and "phone_number" in str(response.get_json()["data"]["errors"])


def test_the_same_push_twice_stores_one_reply(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    create_template(sms_db, tenant.id)
    for _ in range(2):
        assert sms_client.post(ALIYUN, json=[aliyun_item(sign_name="洗衣云")]).status_code == 200
        assert sms_client.post(TENCENT, json=tencent_item(sign="洗衣云")).status_code == 200
    assert replies(sms_client, key)["total"] == 2  # one per upstream


def test_attributed_by_sign_to_every_tenant_using_it(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    other, other_key = create_sms_tenant(sms_db, name="别的租户")
    third, third_key = create_sms_tenant(sms_db, name="第三个")
    create_template(sms_db, tenant.id, sign_name="洗衣云")
    create_template(sms_db, other.id, sign_name="洗衣云")
    create_template(sms_db, third.id, sign_name="别的签名")
    sms_client.post(TENCENT, json=tencent_item(sign="【洗衣云】"))
    assert replies(sms_client, key)["total"] == 1 and replies(sms_client, other_key)["total"] == 1
    assert replies(sms_client, third_key)["total"] == 0


def test_without_a_sign_attributed_to_recent_marketing_senders(sms_client, sms_db, sms_tenant, token, aliyun):
    tenant, key = sms_tenant
    marketing = create_template(sms_db, tenant.id, content=MARKETING, category="marketing")
    notifier, notifier_key = create_sms_tenant(sms_db, name="只发通知")
    notice = create_template(sms_db, notifier.id)
    ids = sending.send(sms_db, tenant.id, marketing.id, ["13800138000"], {})["message_ids"]
    ids += sending.send(sms_db, notifier.id, notice.id, ["13800138000"], {"code": "1", "minutes": "5"})[
        "message_ids"
    ]
    dispatch.deliver(sms_db, ids)
    sms_client.post(ALIYUN, json=[aliyun_item("收到")])
    assert replies(sms_client, key)["total"] == 1
    assert (
        replies(sms_client, notifier_key)["total"] == 0
    )  # notifications do not attract replies' attribution


def test_a_reply_nobody_is_attributed_is_stored_and_listed_to_no_tenant(
    sms_client, sms_db, sms_tenant, token
):
    from sqlalchemy import func, select

    from sms_service.models import Reply

    _tenant, key = sms_tenant
    sms_client.post(ALIYUN, json=[aliyun_item("谁?", mobile="13700137000")])
    assert sms_db.scalar(select(func.count()).select_from(Reply).where(Reply.mobile == "13700137000")) == 1
    assert replies(sms_client, key)["total"] == 0


@pytest.mark.parametrize("keyword", [" td ", "退订", "T"])
def test_a_keyword_reply_opts_out_and_the_next_marketing_send_fails(
    sms_client, sms_db, sms_tenant, token, keyword
):
    tenant, key = sms_tenant
    template = create_template(sms_db, tenant.id, content=MARKETING, category="marketing")
    sms_client.post(TENCENT, json=tencent_item(keyword, sign="洗衣云"))
    opt_outs = sms_client.get("/api/v1/sms/opt-outs", headers=auth(key)).get_json()["data"]["list"]
    assert [(row["mobile"], row["source"]) for row in opt_outs] == [("138****8000", "tencent")]
    [message_id] = sending.send(sms_db, tenant.id, template.id, ["13800138000"], {})["message_ids"]
    record = sms_client.get(f"/api/v1/sms/records/{message_id}", headers=auth(key)).get_json()["data"]
    assert record["status"] == "failed" and record["error_code"] == "OPTED_OUT"


def test_other_text_opts_nobody_out(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    create_template(sms_db, tenant.id)
    sms_client.post(ALIYUN, json=[aliyun_item("T 恤洗好了吗", sign_name="洗衣云")])
    assert sms_client.get("/api/v1/sms/opt-outs", headers=auth(key)).get_json()["data"]["total"] == 0


def test_the_list_pages_and_needs_the_admin_scope(sms_client, sms_db, sms_tenant, token):
    tenant, key = sms_tenant
    create_template(sms_db, tenant.id)
    body = [aliyun_item(f"第{n}条", sign_name="洗衣云", sequence_id=str(n)) for n in range(3)]
    sms_client.post(ALIYUN, json=body)
    page = sms_client.get("/api/v1/sms/uplinks?page=2&size=2", headers=auth(key)).get_json()["data"]
    assert page["total"] == 3 and page["page"] == 2 and [r["text"] for r in page["list"]] == ["第0条"]
    _send_only, send_key = create_sms_tenant(sms_db, name="只发送", scopes=["sms:send"])
    assert sms_client.get("/api/v1/sms/uplinks", headers=auth(send_key)).status_code == 403
