"""``/api/v1/payment/configs``: create, list, show, update, enable/disable and delete payment configs."""

from __future__ import annotations

import re

import pytest

from tests.factories import create_payment_tenant
from tests.fakes.keys import key_pair
from tests.payment.conftest import (
    CONFIGS_URL,
    OTHER_API_V3_KEY,
    assert_no_secret,
    bind,
    create_config,
    headers_of,
    params_for,
)

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
MODES = ["wechat_split", "wechat_direct", "alipay_direct"]


def url(config_id: str, suffix: str = "") -> str:
    return f"{CONFIGS_URL}/{config_id}{suffix}"


def get_detail(client, api_key, config_id):
    response = client.get(url(config_id), headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    return response.get_json()["data"]


def list_configs(client, api_key, **query):
    response = client.get(CONFIGS_URL, query_string=query, headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    return response.get_json()["data"]


def put(client, api_key, config_id, body):
    return client.put(url(config_id), json=body, headers=headers_of(api_key))


# --- create ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_create_answers_the_contract_shape(payment_client, admin, mode):
    body = {"name": "华北区-微信分账-标准佣金", "mode": mode, "params": params_for(mode)}
    response = payment_client.post(CONFIGS_URL, json=body, headers=headers_of(admin))
    payload = response.get_json()
    assert response.status_code == 200 and payload["code"] == 0 and payload["message"] == "success"
    data = payload["data"]
    assert set(data) == {"config_id", "name", "mode", "status", "created_at"}
    assert re.match(r"^CFG_\d{8}_\w{18}$", data["config_id"])
    assert (data["name"], data["mode"], data["status"]) == ("华北区-微信分账-标准佣金", mode, "enabled")
    assert ISO_Z.match(data["created_at"])


@pytest.mark.parametrize("mode", MODES)
def test_detail_shows_params_with_secrets_masked(payment_client, admin, mode):
    created = create_config(payment_client, admin, mode)
    data = get_detail(payment_client, admin, created["config_id"])
    assert data["bound_sites"] == 0 and ISO_Z.match(data["updated_at"])
    secrets = {"api_key", "merchant_private_key"} if mode.startswith("wechat") else {"app_private_key"}
    for name in secrets:
        assert data["params"][name] == "***"
    assert data["params"]["app_id"] == params_for(mode)["app_id"]


def test_detail_shows_ratios_as_the_numbers_sent(payment_client, admin):
    sharing = {
        "enabled": True,
        "type": "ratio",
        "receivers": [
            {"receiver_type": "platform", "merchant_id": "1001", "ratio": 0.34, "name": "甲公司"},
            {"receiver_type": "agent", "merchant_id": "1002", "ratio": "0.56", "name": "乙公司"},
            {"receiver_type": "franchisee", "merchant_id": "1900000110", "ratio": 0.1},
        ],
    }
    created = create_config(payment_client, admin, profit_sharing=sharing)
    receivers = get_detail(payment_client, admin, created["config_id"])["params"]["profit_sharing"][
        "receivers"
    ]
    assert [item["ratio"] for item in receivers] == [0.34, 0.56, 0.1]
    assert [item["relation_type"] for item in receivers] == ["PARTNER"] * 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "wechat_direct", "params": {}}, "name"),
        ({"name": "x", "params": {}}, "mode"),
        ({"name": "x", "mode": "unionpay", "params": {}}, "mode"),
        ({"name": "x", "mode": "wechat_direct"}, "params"),
        ({"name": "x", "mode": "wechat_direct", "params": ["a"]}, "params"),
        ({"name": "x", "mode": "wechat_direct", "params": "text"}, "params"),
        ({"name": "   ", "mode": "wechat_direct", "params": {}}, "name"),
        ({"name": "x" * 101, "mode": "wechat_direct", "params": {}}, "name"),
    ],
)
def test_create_refuses_a_bad_body_naming_the_field(payment_client, admin, body, field):
    response = payment_client.post(CONFIGS_URL, json=body, headers=headers_of(admin))
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["code"] == 400 and field in payload["data"]["errors"]


def test_create_with_a_malformed_key_is_a_400_naming_the_field(payment_client, admin):
    params = params_for(
        "wechat_direct", merchant_private_key="-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
    )
    body = {"name": "坏密钥", "mode": "wechat_direct", "params": params}
    response = payment_client.post(CONFIGS_URL, json=body, headers=headers_of(admin))
    assert response.status_code == 400
    assert "params.merchant_private_key" in response.get_json()["message"]
    assert list(response.get_json()["data"]["errors"]["params"]) == ["merchant_private_key"]


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"text"', "null"])
def test_create_with_a_body_that_is_not_a_json_object_is_a_400_envelope(payment_client, admin, data):
    response = payment_client.post(
        CONFIGS_URL, data=data, content_type="application/json", headers=headers_of(admin)
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_configs_need_the_admin_scope(payment_client, payment_db):
    _tenant, order_key = create_payment_tenant(payment_db, scopes=["payment:order"])
    response = payment_client.get(CONFIGS_URL, headers=headers_of(order_key))
    assert response.status_code == 403 and response.get_json()["code"] == 403
    assert payment_client.post(CONFIGS_URL, json={}).status_code == 401


# --- list -----------------------------------------------------------------------------------------


def test_list_pages_newest_first_with_defaults(payment_client, admin):
    created = [create_config(payment_client, admin, "alipay_direct", name=f"配置{n}") for n in range(3)]
    data = list_configs(payment_client, admin)
    assert (data["total"], data["page"], data["size"]) == (3, 1, 20)
    assert [item["config_id"] for item in data["list"]] == [c["config_id"] for c in reversed(created)]
    assert set(data["list"][0]) == {"config_id", "name", "mode", "status", "bound_sites", "created_at"}


def test_list_pagination_edges(payment_client, admin):
    ids = [
        create_config(payment_client, admin, "alipay_direct", name=f"配置{n}")["config_id"] for n in range(5)
    ]
    newest_first = list(reversed(ids))
    assert [
        i["config_id"] for i in list_configs(payment_client, admin, page=1, size=2)["list"]
    ] == newest_first[:2]
    assert [
        i["config_id"] for i in list_configs(payment_client, admin, page=3, size=2)["list"]
    ] == newest_first[4:]
    beyond = list_configs(payment_client, admin, page=4, size=2)
    assert beyond["list"] == [] and beyond["total"] == 5 and beyond["page"] == 4
    assert len(list_configs(payment_client, admin, size=100)["list"]) == 5
    assert len(list_configs(payment_client, admin, size=1)["list"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"page": 0},
        {"page": -1},
        {"size": 0},
        {"size": 101},
        {"page": "x"},
        {"size": "1.5"},
        {"mode": "cash"},
        {"status": "on"},
    ],
)
def test_list_refuses_bad_query_with_400(payment_client, admin, query):
    response = payment_client.get(CONFIGS_URL, query_string=query, headers=headers_of(admin))
    assert response.status_code == 400
    assert set(response.get_json()["data"]["errors"]) == set(query)


def test_list_filters_by_mode_and_status_and_counts_bound_sites(payment_client, admin):
    split = create_config(payment_client, admin, "wechat_split")["config_id"]
    direct = create_config(payment_client, admin, "wechat_direct")["config_id"]
    alipay = create_config(payment_client, admin, "alipay_direct")["config_id"]
    for site in ("S1", "S2", "S3"):
        assert bind(payment_client, admin, site, split).status_code == 200
    assert bind(payment_client, admin, "S1", alipay).status_code == 200
    payment_client.put(url(direct, "/status"), json={"status": "disabled"}, headers=headers_of(admin))

    by_mode = list_configs(payment_client, admin, mode="wechat_split")
    assert [(i["config_id"], i["bound_sites"]) for i in by_mode["list"]] == [(split, 3)] and by_mode[
        "total"
    ] == 1
    disabled = list_configs(payment_client, admin, status="disabled")
    assert [i["config_id"] for i in disabled["list"]] == [direct]
    enabled_wechat = list_configs(payment_client, admin, mode="wechat_direct", status="enabled")
    assert enabled_wechat == {"list": [], "total": 0, "page": 1, "size": 20}
    counts = {i["config_id"]: i["bound_sites"] for i in list_configs(payment_client, admin)["list"]}
    assert counts == {split: 3, direct: 0, alipay: 1}


def test_list_shows_only_the_tenants_own_configs(payment_client, admin, other_admin):
    create_config(payment_client, admin)
    assert list_configs(payment_client, other_admin)["total"] == 0


# --- show / update ----------------------------------------------------------------------------------


def test_put_renames_and_replaces_params(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    before = get_detail(payment_client, admin, config_id)
    params = params_for("wechat_direct", app_id="wx0000000000000001")
    response = put(payment_client, admin, config_id, {"name": "新名字", "params": params})
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    data = response.get_json()["data"]
    assert data["name"] == "新名字" and data["params"]["app_id"] == "wx0000000000000001"
    assert data["params"]["api_key"] == "***"
    assert data["updated_at"] >= before["updated_at"] and data["created_at"] == before["created_at"]
    assert get_detail(payment_client, admin, config_id) == data


def test_put_params_replace_the_stored_ones_rather_than_merge(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    params = params_for("alipay_direct")
    del params["seller_id"]
    assert put(payment_client, admin, config_id, {"params": params}).status_code == 200
    assert get_detail(payment_client, admin, config_id)["params"]["seller_id"] is None


def test_put_keeps_a_secret_sent_as_mask_or_left_out(payment_client, payment_db, admin):
    from payment_service.configs.center import get_config, load_credentials
    from tests.payment.conftest import API_V3_KEY, principal_of

    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    masked = params_for("wechat_direct", api_key="***")
    del masked["merchant_private_key"]
    assert put(payment_client, admin, config_id, {"params": masked}).status_code == 200
    stored = load_credentials(get_config(payment_db, principal_of(admin).tenant_id, config_id))
    assert stored["api_key"] == API_V3_KEY
    assert stored["merchant_private_key"] == params_for("wechat_direct")["merchant_private_key"]

    new_key = key_pair("config-merchant-rotated").private_pem
    changed = params_for("wechat_direct", api_key=OTHER_API_V3_KEY, merchant_private_key=new_key)
    assert put(payment_client, admin, config_id, {"params": changed}).status_code == 200
    stored = load_credentials(get_config(payment_db, principal_of(admin).tenant_id, config_id))
    assert (stored["api_key"], stored["merchant_private_key"]) == (OTHER_API_V3_KEY, new_key)


def test_put_validates_the_merged_params(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    response = put(payment_client, admin, config_id, {"params": params_for("wechat_direct", mch_id="abc")})
    assert response.status_code == 400 and "params.mch_id" in response.get_json()["message"]
    response = put(payment_client, admin, config_id, {"params": {"api_key": "***"}})
    assert response.status_code == 400 and "params.mch_id" in response.get_json()["message"]


def test_put_cannot_change_the_mode_but_may_repeat_it(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    response = put(
        payment_client, admin, config_id, {"mode": "alipay_direct", "params": params_for("alipay_direct")}
    )
    assert response.status_code == 400
    assert "支付模式不可修改" in response.get_json()["message"]
    assert get_detail(payment_client, admin, config_id)["mode"] == "wechat_direct"
    response = put(payment_client, admin, config_id, {"mode": "wechat_direct", "name": "同模式"})
    assert response.status_code == 200 and response.get_json()["data"]["name"] == "同模式"


@pytest.mark.parametrize(
    "body", [{}, {"params": ["x"]}, {"params": "x"}, {"name": ""}, {"status": "disabled"}, {"params": None}]
)
def test_put_refuses_a_body_with_nothing_valid_to_change(payment_client, admin, body):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = put(payment_client, admin, config_id, body)
    assert response.status_code == 400 and response.get_json()["code"] == 400


def test_put_with_bad_json_is_a_400_envelope(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = payment_client.put(
        url(config_id), data="{", content_type="application/json", headers=headers_of(admin)
    )
    assert response.status_code == 400 and response.get_json()["code"] == 400


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("put", "", {"name": "x"}),
        ("delete", "", None),
        ("put", "/status", {"status": "disabled"}),
        ("get", "/history", None),
    ],
)
def test_an_unknown_or_foreign_config_is_404(payment_client, admin, other_admin, method, suffix, body):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    for key, target in ((admin, "CFG_20260101_unknownunknown00"), (other_admin, config_id)):
        response = getattr(payment_client, method)(url(target, suffix), json=body, headers=headers_of(key))
        assert response.status_code == 404, (key, response.get_json())
        assert response.get_json()["code"] == 404 and response.get_json()["message"] == "支付配置不存在"
    assert get_detail(payment_client, admin, config_id)["status"] == "enabled"


# --- status ---------------------------------------------------------------------------------------


def test_status_disables_and_enables(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = payment_client.put(
        url(config_id, "/status"), json={"status": "disabled"}, headers=headers_of(admin)
    )
    assert response.status_code == 200 and response.get_json()["data"]["status"] == "disabled"
    assert_no_secret(response.get_data(as_text=True))
    assert get_detail(payment_client, admin, config_id)["status"] == "disabled"
    response = payment_client.put(
        url(config_id, "/status"), json={"status": "enabled"}, headers=headers_of(admin)
    )
    assert response.get_json()["data"]["status"] == "enabled"


@pytest.mark.parametrize("body", [{}, {"status": "paused"}, {"status": None}, {"status": 1}])
def test_status_refuses_anything_but_enabled_or_disabled(payment_client, admin, body):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = payment_client.put(url(config_id, "/status"), json=body, headers=headers_of(admin))
    assert response.status_code == 400 and "status" in response.get_json()["data"]["errors"]


def test_a_bound_config_may_be_disabled(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    assert bind(payment_client, admin, "S1", config_id).status_code == 200
    response = payment_client.put(
        url(config_id, "/status"), json={"status": "disabled"}, headers=headers_of(admin)
    )
    assert response.status_code == 200 and response.get_json()["data"]["bound_sites"] == 1


# --- delete ---------------------------------------------------------------------------------------


def test_delete_removes_an_unbound_config(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = payment_client.delete(url(config_id), headers=headers_of(admin))
    assert response.status_code == 200
    assert response.get_json()["data"] == {"config_id": config_id, "deleted": True}
    assert payment_client.get(url(config_id), headers=headers_of(admin)).status_code == 404
    assert payment_client.delete(url(config_id), headers=headers_of(admin)).status_code == 404


def test_delete_of_a_bound_config_is_409_saying_how_many_sites(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_split")["config_id"]
    for site in ("S1", "S2"):
        bind(payment_client, admin, site, config_id)
    response = payment_client.delete(url(config_id), headers=headers_of(admin))
    assert response.status_code == 409
    payload = response.get_json()
    assert (
        payload["code"] == 409 and "2 个网点" in payload["message"] and payload["data"] == {"bound_sites": 2}
    )
    assert get_detail(payment_client, admin, config_id)["bound_sites"] == 2
