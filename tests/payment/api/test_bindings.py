"""``/api/v1/sites/{site_id}/payment-binding``: at most one WeChat and one Alipay config per site."""

from __future__ import annotations

import re

import pytest

from tests.payment.conftest import CONFIGS_URL, assert_no_secret, bind, create_config, headers_of


def site_url(site_id: str, binding_id: str | None = None) -> str:
    base = f"/api/v1/sites/{site_id}/payment-binding"
    return f"{base}/{binding_id}" if binding_id else base


def bindings_of(client, api_key, site_id):
    response = client.get(site_url(site_id), headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]["bindings"]


@pytest.mark.parametrize(
    ("mode", "channel"),
    [("wechat_split", "wechat"), ("wechat_direct", "wechat"), ("alipay_direct", "alipay")],
)
def test_bind_derives_the_channel_from_the_mode(payment_client, admin, mode, channel):
    config = create_config(payment_client, admin, mode, name="华北区配置")
    response = bind(payment_client, admin, "SITE_001", config["config_id"])
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    data = response.get_json()["data"]
    assert re.match(r"^BIND_\d{8}_\w{18}$", data["binding_id"])
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", data["bound_at"])
    assert {k: v for k, v in data.items() if k not in ("binding_id", "bound_at")} == {
        "channel": channel,
        "config_id": config["config_id"],
        "config_name": "华北区配置",
        "mode": mode,
        "replaced_binding_id": None,
    }


def test_a_site_holds_one_wechat_and_one_alipay_binding(payment_client, admin):
    wechat = create_config(payment_client, admin, "wechat_split")["config_id"]
    alipay = create_config(payment_client, admin, "alipay_direct")["config_id"]
    first = bind(payment_client, admin, "SITE_001", wechat).get_json()["data"]
    second = bind(payment_client, admin, "SITE_001", alipay).get_json()["data"]
    listed = bindings_of(payment_client, admin, "SITE_001")
    assert [(b["binding_id"], b["channel"], b["config_id"]) for b in listed] == [
        (first["binding_id"], "wechat", wechat),
        (second["binding_id"], "alipay", alipay),
    ]
    assert set(listed[0]) == {"binding_id", "channel", "config_id", "config_name", "mode", "bound_at"}


def test_binding_a_bound_channel_replaces_the_old_binding(payment_client, admin):
    split = create_config(payment_client, admin, "wechat_split")["config_id"]
    direct = create_config(payment_client, admin, "wechat_direct")["config_id"]
    alipay = create_config(payment_client, admin, "alipay_direct")["config_id"]
    old = bind(payment_client, admin, "SITE_001", split).get_json()["data"]
    kept = bind(payment_client, admin, "SITE_001", alipay).get_json()["data"]
    new = bind(payment_client, admin, "SITE_001", direct).get_json()["data"]
    assert new["replaced_binding_id"] == old["binding_id"] and new["binding_id"] != old["binding_id"]
    listed = bindings_of(payment_client, admin, "SITE_001")
    assert [(b["binding_id"], b["config_id"]) for b in listed] == [
        (new["binding_id"], direct),
        (kept["binding_id"], alipay),
    ]
    counts = payment_client.get(CONFIGS_URL, headers=headers_of(admin)).get_json()["data"]["list"]
    assert {i["config_id"]: i["bound_sites"] for i in counts} == {split: 0, direct: 1, alipay: 1}


def test_binding_the_same_config_again_keeps_the_binding(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    first = bind(payment_client, admin, "SITE_001", config_id).get_json()["data"]
    again = bind(payment_client, admin, "SITE_001", config_id).get_json()["data"]
    assert again == first
    assert len(bindings_of(payment_client, admin, "SITE_001")) == 1


def test_sites_are_independent(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    bind(payment_client, admin, "SITE_001", config_id)
    assert bindings_of(payment_client, admin, "SITE_002") == []


def test_unbind_removes_only_that_binding(payment_client, admin):
    wechat = create_config(payment_client, admin, "wechat_direct")["config_id"]
    alipay = create_config(payment_client, admin, "alipay_direct")["config_id"]
    wechat_binding = bind(payment_client, admin, "SITE_001", wechat).get_json()["data"]
    alipay_binding = bind(payment_client, admin, "SITE_001", alipay).get_json()["data"]
    response = payment_client.delete(
        site_url("SITE_001", wechat_binding["binding_id"]), headers=headers_of(admin)
    )
    assert response.status_code == 200
    assert response.get_json()["data"] == {
        "binding_id": wechat_binding["binding_id"],
        "site_id": "SITE_001",
        "channel": "wechat",
        "config_id": wechat,
        "deleted": True,
    }
    assert [b["binding_id"] for b in bindings_of(payment_client, admin, "SITE_001")] == [
        alipay_binding["binding_id"]
    ]
    again = payment_client.delete(
        site_url("SITE_001", wechat_binding["binding_id"]), headers=headers_of(admin)
    )
    assert again.status_code == 404 and again.get_json()["code"] == 404


def test_unbind_through_another_site_is_404(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    binding = bind(payment_client, admin, "SITE_001", config_id).get_json()["data"]
    response = payment_client.delete(site_url("SITE_002", binding["binding_id"]), headers=headers_of(admin))
    assert response.status_code == 404
    assert len(bindings_of(payment_client, admin, "SITE_001")) == 1


def test_unknown_config_is_404_and_disabled_config_is_400(payment_client, admin):
    response = bind(payment_client, admin, "SITE_001", "CFG_20260101_unknownunknown00")
    assert response.status_code == 404 and response.get_json()["message"] == "支付配置不存在"
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    payment_client.put(
        f"{CONFIGS_URL}/{config_id}/status", json={"status": "disabled"}, headers=headers_of(admin)
    )
    response = bind(payment_client, admin, "SITE_001", config_id)
    assert response.status_code == 400 and "已停用" in response.get_json()["message"]
    assert bindings_of(payment_client, admin, "SITE_001") == []


def test_another_tenants_config_and_binding_are_404(payment_client, admin, other_admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    assert bind(payment_client, other_admin, "SITE_001", config_id).status_code == 404
    binding = bind(payment_client, admin, "SITE_001", config_id).get_json()["data"]
    response = payment_client.delete(
        site_url("SITE_001", binding["binding_id"]), headers=headers_of(other_admin)
    )
    assert response.status_code == 404
    assert bindings_of(payment_client, other_admin, "SITE_001") == []
    assert len(bindings_of(payment_client, admin, "SITE_001")) == 1


@pytest.mark.parametrize("site_id", ["x" * 65, "网点1", "a.b", "a%20b"])
def test_a_malformed_site_id_is_400(payment_client, admin, site_id):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    for response in (
        bind(payment_client, admin, site_id, config_id),
        payment_client.get(site_url(site_id), headers=headers_of(admin)),
        payment_client.delete(site_url(site_id, "BIND_x"), headers=headers_of(admin)),
    ):
        assert response.status_code == 400, response.get_json()
        assert "site_id" in response.get_json()["data"]["errors"]


@pytest.mark.parametrize("body", [{}, {"config_id": ""}, {"config_id": 5}, {"config_id": "C", "extra": 1}])
def test_bind_refuses_a_bad_body(payment_client, admin, body):
    response = payment_client.post(site_url("SITE_001"), json=body, headers=headers_of(admin))
    assert response.status_code == 400 and response.get_json()["code"] == 400


def test_bindings_need_the_admin_scope(payment_client, payment_db):
    from tests.factories import create_payment_tenant

    _tenant, order_key = create_payment_tenant(payment_db, scopes=["payment:order"])
    assert payment_client.get(site_url("SITE_001"), headers=headers_of(order_key)).status_code == 403
    assert payment_client.get(site_url("SITE_001")).status_code == 401
