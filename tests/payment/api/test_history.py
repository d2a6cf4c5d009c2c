"""``GET /api/v1/payment/configs/{config_id}/history``: every change, by whom, newest first, masked."""

from __future__ import annotations

import re

import pytest

from tests.payment.conftest import (
    CONFIGS_URL,
    OTHER_API_V3_KEY,
    assert_no_secret,
    bind,
    create_config,
    headers_of,
    params_for,
    principal_of,
)


def history_of(client, api_key, config_id, **query):
    response = client.get(
        f"{CONFIGS_URL}/{config_id}/history", query_string=query, headers=headers_of(api_key)
    )
    assert response.status_code == 200, response.get_json()
    assert_no_secret(response.get_data(as_text=True))
    return response.get_json()["data"]


def test_every_action_is_recorded_newest_first_with_the_key_that_made_it(payment_client, admin):
    headers = headers_of(admin)
    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    other = create_config(payment_client, admin, "wechat_split")["config_id"]
    payment_client.put(f"{CONFIGS_URL}/{config_id}", json={"name": "改名"}, headers=headers)
    payment_client.put(f"{CONFIGS_URL}/{config_id}/status", json={"status": "disabled"}, headers=headers)
    payment_client.put(f"{CONFIGS_URL}/{config_id}/status", json={"status": "enabled"}, headers=headers)
    binding = bind(payment_client, admin, "S1", config_id).get_json()["data"]
    bind(payment_client, admin, "S1", other)  # replaces: an unbind on this config
    again = bind(payment_client, admin, "S2", config_id).get_json()["data"]
    payment_client.delete(f"/api/v1/sites/S2/payment-binding/{again['binding_id']}", headers=headers)

    data = history_of(payment_client, admin, config_id)
    actions = [entry["action"] for entry in data["list"]]
    assert actions == ["unbind", "bind", "unbind", "bind", "status", "status", "update", "create"]
    assert (data["total"], data["page"], data["size"]) == (8, 1, 20)
    key_id = principal_of(admin).key_id
    for entry in data["list"]:
        assert set(entry) == {"action", "at", "key_id", "changes"}
        assert entry["key_id"] == key_id
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", entry["at"])
    by_action = data["list"]
    assert by_action[6]["changes"] == {"name": {"old": "华北区-wechat_direct", "new": "改名"}}
    assert by_action[5]["changes"] == {"status": {"old": "enabled", "new": "disabled"}}
    assert by_action[3]["changes"]["binding_id"] == {"old": None, "new": binding["binding_id"]}
    assert by_action[2]["changes"]["binding_id"] == {"old": binding["binding_id"], "new": None}
    assert by_action[2]["changes"]["replaced_by_config_id"] == {"old": None, "new": other}
    assert by_action[0]["changes"]["site_id"] == {"old": "S2", "new": None}


def test_create_lists_every_field_with_secrets_masked(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_split")["config_id"]
    (created,) = history_of(payment_client, admin, config_id)["list"]
    changes = created["changes"]
    assert changes["params.api_key"] == {"old": None, "new": "***"}
    assert changes["params.merchant_private_key"] == {"old": None, "new": "***"}
    assert changes["params.sub_mch_id"] == {"old": None, "new": "1900000110"}
    assert changes["mode"] == {"old": None, "new": "wechat_split"}
    assert changes["params.profit_sharing.receivers"]["new"][0]["ratio"] == 0.15


def test_an_update_diff_shows_what_changed_and_a_changed_secret_only_as_mask(payment_client, admin):
    config_id = create_config(payment_client, admin, "wechat_direct")["config_id"]
    params = params_for("wechat_direct", api_key=OTHER_API_V3_KEY, app_id="wx0000000000000009")
    del params["merchant_private_key"]  # kept: not a change
    payment_client.put(f"{CONFIGS_URL}/{config_id}", json={"params": params}, headers=headers_of(admin))
    update = history_of(payment_client, admin, config_id)["list"][0]
    assert update["action"] == "update"
    assert update["changes"] == {
        "params.api_key": {"old": "***", "new": "***"},
        "params.app_id": {"old": "wx7777777777777777", "new": "wx0000000000000009"},
    }


def test_a_change_that_changes_nothing_records_nothing(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    body = {"name": "华北区-alipay_direct", "params": params_for("alipay_direct", app_private_key="***")}
    assert (
        payment_client.put(f"{CONFIGS_URL}/{config_id}", json=body, headers=headers_of(admin)).status_code
        == 200
    )
    status = {"status": "enabled"}
    payment_client.put(f"{CONFIGS_URL}/{config_id}/status", json=status, headers=headers_of(admin))
    assert [e["action"] for e in history_of(payment_client, admin, config_id)["list"]] == ["create"]


def test_history_survives_the_deletion_and_records_it(payment_client, admin, other_admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    assert payment_client.delete(f"{CONFIGS_URL}/{config_id}", headers=headers_of(admin)).status_code == 200
    data = history_of(payment_client, admin, config_id)
    assert [e["action"] for e in data["list"]] == ["delete", "create"]
    deleted = data["list"][0]["changes"]
    assert deleted["params.app_private_key"] == {"old": "***", "new": None}
    assert deleted["name"] == {"old": "华北区-alipay_direct", "new": None}
    response = payment_client.get(f"{CONFIGS_URL}/{config_id}/history", headers=headers_of(other_admin))
    assert response.status_code == 404


def test_history_pages(payment_client, admin):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    for n in range(4):
        payment_client.put(f"{CONFIGS_URL}/{config_id}", json={"name": f"名字{n}"}, headers=headers_of(admin))
    page = history_of(payment_client, admin, config_id, page=2, size=2)
    assert (page["total"], page["page"], page["size"]) == (5, 2, 2)
    assert [e["changes"]["name"]["new"] for e in page["list"]] == ["名字1", "名字0"]
    assert history_of(payment_client, admin, config_id, page=3, size=2)["list"][0]["action"] == "create"
    assert history_of(payment_client, admin, config_id, page=4, size=2)["list"] == []


@pytest.mark.parametrize("query", [{"page": 0}, {"size": 0}, {"size": 101}])
def test_history_refuses_bad_paging(payment_client, admin, query):
    config_id = create_config(payment_client, admin, "alipay_direct")["config_id"]
    response = payment_client.get(
        f"{CONFIGS_URL}/{config_id}/history", query_string=query, headers=headers_of(admin)
    )
    assert response.status_code == 400
