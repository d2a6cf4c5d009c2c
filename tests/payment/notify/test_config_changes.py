"""A config changed after this process built its client: notifications and orders follow the config as it is
now, not the client (and opened secrets) kept from an earlier version of it."""

from __future__ import annotations

from payment_service.configs.center import get_config
from payment_service.configs.merchant_channels import channel_for, credentials_for
from tests.payment.conftest import (
    API_V3_KEY,
    CONFIGS_URL,
    OTHER_API_V3_KEY,
    headers_of,
    merchant_keys,
    params_for,
    principal_of,
)
from tests.payment.orders.helpers import DIRECT_MCHID, DIRECT_SITE, PUBLIC_KEY_ID, order_of, placed

DIRECT_SERIAL = "6157F09EFDC096DE15EBE81A47057A7232F1B8E2"


def _change_api_v3_key(client, api_key: str, config_id: str, new_key: str) -> None:
    params = params_for("wechat_direct", wechatpay_public_key_id=PUBLIC_KEY_ID, api_key=new_key)
    response = client.put(f"{CONFIGS_URL}/{config_id}", json={"params": params}, headers=headers_of(api_key))
    assert response.status_code == 200, response.get_json()


def test_a_notification_under_the_replaced_apiv3_key_is_refused_once_the_key_changed(
    payment_client, admin, fakes, sites, published
):
    wechat, _ = fakes
    first = placed(payment_client, admin, site_id=DIRECT_SITE)
    second = placed(payment_client, admin, site_id=DIRECT_SITE)
    third = placed(payment_client, admin, site_id=DIRECT_SITE)
    assert wechat.pay(first["transaction_id"]).status == 204  # this process now holds the config's client

    _change_api_v3_key(payment_client, admin, sites["wechat_direct"], OTHER_API_V3_KEY)
    # The fake still encrypts with the old key: the kept client could read it, the config as it is cannot.
    assert wechat.pay(second["transaction_id"]).status == 400
    assert order_of(payment_client, admin, second["transaction_id"])["status"] == "pending"

    wechat.register_merchant(DIRECT_MCHID, DIRECT_SERIAL, merchant_keys().public_pem, OTHER_API_V3_KEY)
    assert wechat.pay(third["transaction_id"]).status == 204
    assert order_of(payment_client, admin, third["transaction_id"])["status"] == "paid"


def test_clients_and_opened_secrets_are_kept_per_version_of_the_config(
    payment_client, payment_db, admin, sites
):
    tenant_id = principal_of(admin).tenant_id
    config = get_config(payment_db, tenant_id, sites["wechat_direct"])
    client = channel_for(config)
    assert channel_for(get_config(payment_db, tenant_id, config.id)) is client
    assert credentials_for(config)["api_key"] == API_V3_KEY

    _change_api_v3_key(payment_client, admin, config.id, OTHER_API_V3_KEY)
    payment_db.expire_all()
    changed = get_config(payment_db, tenant_id, config.id)
    assert credentials_for(changed)["api_key"] == OTHER_API_V3_KEY
    assert channel_for(changed) is not client
    assert channel_for(changed).credentials.api_key == OTHER_API_V3_KEY


def test_orders_follow_a_config_changed_after_its_client_was_built(
    payment_client, admin, fakes, sites, published
):
    wechat, _ = fakes
    placed(payment_client, admin, site_id=DIRECT_SITE)
    params = params_for("wechat_direct", wechatpay_public_key_id=PUBLIC_KEY_ID, app_id="wx1111111111111111")
    response = payment_client.put(
        f"{CONFIGS_URL}/{sites['wechat_direct']}", json={"params": params}, headers=headers_of(admin)
    )
    assert response.status_code == 200, response.get_json()
    order = placed(payment_client, admin, site_id=DIRECT_SITE)
    assert order["pay_params"]["appId"] == "wx1111111111111111"
    assert wechat.find_order(order["transaction_id"]).request["appid"] == "wx1111111111111111"
