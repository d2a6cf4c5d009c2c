"""``POST /api/v1/sms/send`` and ``/batch-send``: validation, idempotency, limits, and what gets published."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from sms_service.models import Message
from tests.factories import create_sms_tenant
from tests.sms.conftest import auth, create_template

SEND = "/api/v1/sms/send"
BATCH = "/api/v1/sms/batch-send"
VARIABLES = {"code": "123456", "minutes": "5"}


def send(client, key, template_id, mobiles, variables=VARIABLES, **extra):
    headers = auth(key, **extra.pop("headers", {}))
    body = {"template_id": template_id, "mobiles": mobiles, "variables": variables, **extra}
    return client.post(SEND, json=body, headers=headers)


def count_messages(session) -> int:
    return session.scalar(select(func.count()).select_from(Message))


def test_send_queues_one_message_per_mobile_in_request_order(
    sms_client, sms_db, sms_tenant, template, published
):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000", "+8613900139000", "008615000150000"])
    body = response.get_json()
    assert response.status_code == 200 and body["code"] == 0 and body["message"] == "success", body
    data = body["data"]
    assert data["status"] == "queued"
    assert len(data["message_ids"]) == 3 and data["message_id"] == data["message_ids"][0]
    assert all(mid.startswith("MSG_") for mid in data["message_ids"])
    rows = {m.id: m for m in sms_db.scalars(select(Message)).all()}
    assert [rows[mid].mobile for mid in data["message_ids"]] == ["13800138000", "13900139000", "15000150000"]
    assert {m.status for m in rows.values()} == {"queued"}
    assert published.names() == ["sms.deliver"] and published.delivered_ids() == data["message_ids"]


def test_send_needs_the_send_scope(sms_client, sms_db, template):
    _tenant, admin_only = create_sms_tenant(sms_db, scopes=["sms:admin"])
    assert send(sms_client, admin_only, template.id, ["13800138000"]).status_code == 403
    assert sms_client.post(SEND, json={}).status_code == 401


@pytest.mark.parametrize("count", [0, 101])
def test_send_accepts_1_to_100_mobiles(sms_client, sms_db, sms_tenant, template, count):
    _tenant, key = sms_tenant
    mobiles = [f"138{n:08d}" for n in range(count)]
    response = send(sms_client, key, template.id, mobiles)
    assert response.status_code == 400 and "mobiles" in response.get_json()["data"]["errors"]
    assert count_messages(sms_db) == 0


def test_send_of_100_mobiles_is_accepted(sms_client, sms_tenant, template, published):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, [f"138{n:08d}" for n in range(100)])
    assert response.status_code == 200 and len(response.get_json()["data"]["message_ids"]) == 100
    assert len(published.delivered_ids()) == 100


def test_invalid_mobile_is_400_naming_its_position(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000", "12345678901", "+1 555 0100"])
    body = response.get_json()
    assert response.status_code == 400
    assert set(body["data"]["errors"]["mobiles"]) == {"1", "2"}


def test_duplicate_mobiles_are_400_naming_them(sms_client, sms_db, sms_tenant, template):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000", "+8613800138000"])
    body = response.get_json()
    assert response.status_code == 400
    assert "138****8000" in body["message"] and body["data"]["duplicates"] == ["138****8000"]
    assert "1" in body["data"]["errors"]["mobiles"]
    assert count_messages(sms_db) == 0


def test_missing_variables_are_named_in_message_and_errors(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000"], variables={"code": "1"})
    body = response.get_json()
    assert response.status_code == 400
    assert "minutes" in body["message"]
    assert "minutes" in body["data"]["errors"]["variables"] and body["data"]["missing"] == ["minutes"]


def test_variable_longer_than_the_maximum_is_400(sms_client, sms_tenant, template, configure):
    _tenant, key = sms_tenant
    too_long = send(
        sms_client, key, template.id, ["13800138000"], variables={"code": "x" * 36, "minutes": "5"}
    )
    assert too_long.status_code == 400 and "code" in too_long.get_json()["data"]["errors"]["variables"]
    configure(MAX_VARIABLE_LENGTH=4)
    assert (
        send(
            sms_client, key, template.id, ["13800138000"], variables={"code": "12345", "minutes": "5"}
        ).status_code
        == 400
    )
    assert (
        send(
            sms_client, key, template.id, ["13800138000"], variables={"code": "1234", "minutes": 5}
        ).status_code
        == 200
    )


def test_unknown_other_tenants_and_disabled_templates(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    assert send(sms_client, key, "TMPL_20260101_nope", ["13800138000"]).status_code == 404
    _other, other_key = create_sms_tenant(sms_db, name="别的租户")
    assert send(sms_client, other_key, template.id, ["13800138000"]).status_code == 404
    disabled = create_template(sms_db, tenant.id, status="disabled")
    response = send(sms_client, key, disabled.id, ["13800138000"])
    assert response.status_code == 400 and "停用" in response.get_json()["message"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://biz.example.com/cb",
        "javascript:alert(1)",
        "http://127.0.0.1:8080/cb",
        "http://localhost/cb",
        "http://10.1.2.3/cb",
        "http://192.168.1.10/cb",
        "http://169.254.169.254/latest/meta-data",
        "http://100.100.100.200/latest/meta-data",
        "http://[::1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://user:pass@biz.example.com/cb",
    ],
)
def test_callback_url_must_be_public_http(sms_client, sms_tenant, template, url):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000"], callback_url=url)
    assert response.status_code == 400, url
    assert "callback_url" in response.get_json()["data"]["errors"]


def test_private_callback_url_allowed_when_configured(sms_client, sms_tenant, template, configure):
    _tenant, key = sms_tenant
    configure(CALLBACK_ALLOW_PRIVATE=True)
    response = send(sms_client, key, template.id, ["13800138000"], callback_url="http://127.0.0.1:9/cb")
    assert response.status_code == 200


def test_public_callback_url_is_accepted(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    response = send(sms_client, key, template.id, ["13800138000"], callback_url="https://203.0.113.9/sms/cb")
    # 203.0.113.0/24 is documentation space, not global: refused. A real public address passes.
    assert response.status_code == 400
    response = send(sms_client, key, template.id, ["13800138000"], callback_url="https://8.8.8.8/sms/cb")
    assert response.status_code == 200


def test_idempotency_key_returns_the_first_answer_and_sends_nothing_again(
    sms_client, sms_db, sms_tenant, template, published
):
    _tenant, key = sms_tenant
    headers = {"Idempotency-Key": "order-42-pickup"}
    first = send(sms_client, key, template.id, ["13800138000"], headers=headers)
    again = send(sms_client, key, template.id, ["13800138000"], headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    assert count_messages(sms_db) == 1 and len(published) == 1
    other = send(sms_client, key, template.id, ["13900139000"], headers={"Idempotency-Key": "another"})
    assert other.get_json()["data"]["message_id"] != first.get_json()["data"]["message_id"]


def test_same_idempotency_key_of_another_tenant_is_independent(sms_client, sms_db, sms_tenant, template):
    tenant, key = sms_tenant
    other, other_key = create_sms_tenant(sms_db, name="别的租户")
    other_template = create_template(sms_db, other.id)
    headers = {"Idempotency-Key": "same"}
    first = send(sms_client, key, template.id, ["13800138000"], headers=headers)
    second = send(sms_client, other_key, other_template.id, ["13800138000"], headers=headers)
    assert first.get_json()["data"]["message_id"] != second.get_json()["data"]["message_id"]


def test_daily_quota_is_429_and_a_request_over_it_sends_nothing(sms_client, sms_db, published):
    tenant, key = create_sms_tenant(sms_db, daily_quota=2)
    template = create_template(sms_db, tenant.id)
    over = send(sms_client, key, template.id, ["13800138000", "13900139000", "15000150000"])
    body = over.get_json()
    assert over.status_code == 429 and body["code"] == 429
    assert "今日发送配额已用尽" in body["message"] and body["data"]["limit"] == "daily_quota"
    assert int(over.headers["Retry-After"]) >= 1
    assert count_messages(sms_db) == 0 and published == []
    assert send(sms_client, key, template.id, ["13800138000", "13900139000"]).status_code == 200
    assert send(sms_client, key, template.id, ["15000150000"]).get_json()["data"]["limit"] == "daily_quota"


def test_same_mobile_twice_in_a_minute_is_429(sms_client, sms_db, sms_tenant, template):
    _tenant, key = sms_tenant
    assert send(sms_client, key, template.id, ["13800138000"]).status_code == 200
    again = send(sms_client, key, template.id, ["13800138000", "13900139000"])
    body = again.get_json()
    assert again.status_code == 429
    assert "该手机号发送过于频繁" in body["message"]
    assert body["data"]["limit"] == "mobile_per_minute" and body["data"]["mobile"] == "138****8000"
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    assert count_messages(sms_db) == 1  # the other mobile of the refused request was not sent either


@pytest.mark.parametrize(
    ("limits", "sends", "limit"),
    [
        ({"mobile_per_minute": 100, "mobile_per_hour": 2}, 2, "mobile_per_hour"),
        ({"mobile_per_minute": 100, "mobile_per_hour": 100, "mobile_per_day": 3}, 3, "mobile_per_day"),
    ],
)
def test_per_mobile_limits_are_configurable_per_tenant(sms_client, sms_db, limits, sends, limit):
    tenant, key = create_sms_tenant(sms_db, **limits)
    template = create_template(sms_db, tenant.id)
    for _ in range(sends):
        assert send(sms_client, key, template.id, ["13800138000"]).status_code == 200
    refused = send(sms_client, key, template.id, ["13800138000"])
    assert refused.status_code == 429 and refused.get_json()["data"]["limit"] == limit


def test_malformed_bodies_are_400_envelopes(sms_client, sms_tenant):
    _tenant, key = sms_tenant
    for data in ("{not json", "[1, 2]", '"text"'):
        response = sms_client.post(SEND, data=data, headers=auth(key, **{"Content-Type": "application/json"}))
        assert response.status_code == 400 and response.get_json()["code"] == 400
    missing = sms_client.post(SEND, json={"mobiles": ["13800138000"]}, headers=auth(key))
    assert "template_id" in missing.get_json()["data"]["errors"]
    wrong_type = sms_client.post(SEND, json={"template_id": "x", "mobiles": "13800138000"}, headers=auth(key))
    assert "mobiles" in wrong_type.get_json()["data"]["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mobiles": ["13800138000"]}, "template_id"),
        ({"template_id": "", "mobiles": ["13800138000"]}, "template_id"),
        ({"template_id": "T" * 41, "mobiles": ["13800138000"]}, "template_id"),
        ({"template_id": 7, "mobiles": ["13800138000"]}, "template_id"),
        ({"template_id": None, "mobiles": ["13800138000"]}, "template_id"),
        ({"template_id": "T"}, "mobiles"),
        ({"template_id": "T", "mobiles": None}, "mobiles"),
        ({"template_id": "T", "mobiles": [13800138000]}, "mobiles"),
        ({"template_id": "T", "mobiles": ["13800138000", None]}, "mobiles"),
        ({"template_id": "T", "mobiles": ["13800138000"], "variables": None}, "variables"),
        ({"template_id": "T", "mobiles": ["13800138000"], "variables": ["code"]}, "variables"),
        ({"template_id": "T", "mobiles": ["13800138000"], "callback_url": ""}, "callback_url"),
        ({"template_id": "T", "mobiles": ["13800138000"], "callback_url": "h" * 1001}, "callback_url"),
        ({"template_id": "T", "mobiles": ["13800138000"], "callback_url": 5}, "callback_url"),
        ({"template_id": "T", "mobiles": ["13800138000"], "extra": True}, "extra"),
    ],
)
def test_a_send_whose_arguments_do_not_load_is_400_naming_the_field(
    sms_client, sms_db, sms_tenant, body, field
):
    _tenant, key = sms_tenant
    response = sms_client.post(SEND, json=body, headers=auth(key))
    answer = response.get_json()
    assert response.status_code == 400 and answer["code"] == 400
    assert list(answer["data"]["errors"]) == [field] and answer["message"] == f"请求参数错误: {field}"
    assert count_messages(sms_db) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"template_id": "T", "mobiles": ["1380013800\\u0000"]}', "请求包含无法存储的字符"),
        ('{"template_id": "T\\ud800", "mobiles": ["13800138000"]}', "请求包含无法存储的字符"),
        ("[" * 3000 + "]" * 3000, "请求体 JSON 嵌套层级过深"),
    ],
    ids=["NUL", "lone surrogate", "nested too deeply"],
)
def test_a_send_body_the_database_cannot_store_or_too_deep_is_400(sms_client, sms_tenant, data, message):
    _tenant, key = sms_tenant
    response = sms_client.post(SEND, data=data, headers=auth(key, **{"Content-Type": "application/json"}))
    answer = response.get_json()
    assert response.status_code == 400 and answer["message"].startswith(message)


def test_the_idempotency_header_is_read_whatever_its_case(sms_client, sms_tenant, template, published):
    _tenant, key = sms_tenant
    first = send(sms_client, key, template.id, ["13800138000"], headers={"Idempotency-Key": "k-1"})
    again = send(sms_client, key, template.id, ["13800138000"], headers={"idempotency-key": "k-1"})
    assert first.status_code == 200 and again.get_json() == first.get_json()


# --- batch-send --------------------------------------------------------------------------------------


def batch(client, key, template_id, items, **extra):
    headers = auth(key, **extra.pop("headers", {}))
    return client.post(BATCH, json={"template_id": template_id, "items": items, **extra}, headers=headers)


def test_batch_send_queues_each_item_with_its_own_variables(
    sms_client, sms_db, sms_tenant, template, published
):
    _tenant, key = sms_tenant
    items = [
        {"mobile": "13800138000", "variables": {"code": "111111", "minutes": "5"}},
        {"mobile": "13900139000", "variables": {"code": "222222", "minutes": "10"}},
    ]
    response = batch(sms_client, key, template.id, items)
    data = response.get_json()["data"]
    assert response.status_code == 200
    assert data["batch_id"].startswith("BATCH_") and data["total"] == 2 and data["status"] == "queued"
    rows = sms_db.scalars(select(Message).where(Message.batch_id == data["batch_id"])).all()
    assert {m.mobile: m.variables["code"] for m in rows} == {"13800138000": "111111", "13900139000": "222222"}
    assert sorted(published.delivered_ids()) == sorted(m.id for m in rows)


def test_batch_send_limits_its_size(sms_client, sms_tenant, template, configure):
    _tenant, key = sms_tenant
    assert batch(sms_client, key, template.id, []).status_code == 400
    configure(MAX_BATCH_ITEMS=2)
    items = [{"mobile": f"1380013800{n}", "variables": VARIABLES} for n in range(3)]
    response = batch(sms_client, key, template.id, items)
    assert response.status_code == 400 and "items" in response.get_json()["data"]["errors"]


def test_batch_send_of_1000_items_is_one_batch_of_10_deliveries(sms_client, sms_db, published):
    tenant, key = create_sms_tenant(sms_db, daily_quota=5000)
    template = create_template(sms_db, tenant.id)
    items = [{"mobile": f"138{n:08d}", "variables": VARIABLES} for n in range(1000)]
    response = batch(sms_client, key, template.id, items)
    assert response.status_code == 200 and response.get_json()["data"]["total"] == 1000
    assert len(published) == 10 and len(set(published.delivered_ids())) == 1000


def test_batch_item_errors_name_the_item(sms_client, sms_tenant, template):
    _tenant, key = sms_tenant
    items = [
        {"mobile": "13800138000", "variables": VARIABLES},
        {"mobile": "13900139000", "variables": {"code": "1"}},
    ]
    response = batch(sms_client, key, template.id, items)
    body = response.get_json()
    assert response.status_code == 400 and "minutes" in body["message"]
    assert "minutes" in body["data"]["errors"]["items"]["1"]["variables"]
    bad_mobile = batch(sms_client, key, template.id, [{"mobile": "42", "variables": VARIABLES}])
    assert bad_mobile.get_json()["data"]["errors"]["items"]["0"]["mobile"]
    no_mobile = batch(sms_client, key, template.id, [{"variables": VARIABLES}])
    assert no_mobile.status_code == 400


def test_batch_send_idempotency_and_quota(sms_client, sms_db, published):
    tenant, key = create_sms_tenant(sms_db, daily_quota=2)
    template = create_template(sms_db, tenant.id)
    items = [
        {"mobile": "13800138000", "variables": VARIABLES},
        {"mobile": "13900139000", "variables": VARIABLES},
    ]
    first = batch(sms_client, key, template.id, items, headers={"Idempotency-Key": "b1"})
    again = batch(sms_client, key, template.id, items, headers={"Idempotency-Key": "b1"})
    assert again.get_json() == first.get_json() and count_messages(sms_db) == 2
    over = batch(sms_client, key, template.id, items[:1])
    assert over.status_code == 429 and over.get_json()["data"]["limit"] == "daily_quota"


def test_limit_counters_out_of_reach_answer_503_and_store_nothing(
    sms_app, sms_client, sms_db, sms_tenant, template, monkeypatch
):
    from sms_service.accepting import limits

    unreachable = limits.RedisCounters("redis://127.0.0.1:1/0")  # nothing listens on port 1
    monkeypatch.setitem(sms_app.extensions, "sms_limits", unreachable)
    _tenant, key = sms_tenant
    before = count_messages(sms_db)
    response = send(sms_client, key, template.id, ["13800138000"])
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json() == {
        "code": 503,
        "data": None,
        "message": "服务暂不可用: 限额计数无法连接, 请稍后重试",
    }
    assert count_messages(sms_db) == before
    # Giving counters back with Redis gone leaves the request's own error to answer.
    counters = limits.plan_counters(limits.Tenant(daily_quota=1), ["13800138000"], limits.utcnow())
    unreachable.release("TNT_x", counters)
