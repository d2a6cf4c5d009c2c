"""The local sandbox commands: set a site up against the fakes, place an order, pay it by hand; or mint a
merchant's keys for a config made by hand through the API."""

from __future__ import annotations

import json

import pytest

from tests.payment.conftest import CONFIGS_URL, bind, headers_of
from tests.payment.orders.helpers import order_of, placed


def test_sandbox_setup_then_pay_completes_an_order(
    payment_app, payment_client, payment_tenant, fakes, published
):
    tenant, api_key = payment_tenant
    runner = payment_app.test_cli_runner()
    setup = runner.invoke(args=["sandbox", "setup", "--tenant", tenant.id, "--site", "SITE_SANDBOX"])
    assert setup.exit_code == 0, setup.output
    assert set(json.loads(setup.output)) == {"site_id", "wechat_config_id", "alipay_config_id"}

    for channel in ("wechat", "alipay"):
        transaction_id = placed(payment_client, api_key, site_id="SITE_SANDBOX", channel=channel)[
            "transaction_id"
        ]
        paid = runner.invoke(args=["sandbox", "pay", transaction_id])
        assert paid.exit_code == 0, paid.output
        assert json.loads(paid.output)["status"] in (200, 204)
        assert order_of(payment_client, api_key, transaction_id)["status"] == "paid"


def config_from_sandbox_keys(runner, client, api_key: str, mode: str, site_id: str) -> dict:
    """``sandbox keys --mode`` → POST /configs with its output as the body → bind the config to the site."""
    keys = runner.invoke(args=["sandbox", "keys", "--mode", mode])
    assert keys.exit_code == 0, keys.output
    body = json.loads(keys.stdout)
    assert body["mode"] == mode
    created = client.post(CONFIGS_URL, json=body, headers=headers_of(api_key))
    assert created.status_code == 200, created.get_json()
    config_id = created.get_json()["data"]["config_id"]
    assert bind(client, api_key, site_id, config_id).status_code == 200
    return body["params"]


def pay_by_hand(runner, client, api_key: str, site_id: str, channel: str) -> str:
    transaction_id = placed(client, api_key, site_id=site_id, channel=channel)["transaction_id"]
    paid = runner.invoke(args=["sandbox", "pay", transaction_id])
    assert paid.exit_code == 0, paid.output
    return transaction_id


@pytest.mark.parametrize(
    ("mode", "channel"),
    [("wechat_split", "wechat"), ("wechat_direct", "wechat"), ("alipay_direct", "alipay")],
)
def test_a_config_made_from_sandbox_keys_takes_orders_the_sandbox_pays(
    mode, channel, payment_app, payment_client, payment_tenant, fakes, published
):
    wechat, alipay = fakes
    api_key = payment_tenant[1]
    runner = payment_app.test_cli_runner()
    params = config_from_sandbox_keys(runner, payment_client, api_key, mode, "SITE_BY_HAND")

    transaction_id = pay_by_hand(runner, payment_client, api_key, "SITE_BY_HAND", channel)

    assert order_of(payment_client, api_key, transaction_id)["status"] == "paid"
    # The order was placed by the merchant of the printed params (in direct mode under its own mchid).
    if mode == "alipay_direct":
        assert alipay.find_trade(transaction_id).app_id == params["app_id"]
    elif mode == "wechat_split":
        order = wechat.find_order(transaction_id)
        assert (order.mchid, order.sub_mchid) == (params["service_mch_id"], params["sub_mch_id"])
    else:
        order = wechat.find_order(transaction_id)
        assert (order.mchid, order.sub_mchid) == (params["mch_id"], None)


def test_new_sandbox_keys_leave_an_earlier_config_working(
    payment_app, payment_client, payment_tenant, fakes, published
):
    api_key = payment_tenant[1]
    runner = payment_app.test_cli_runner()
    first = config_from_sandbox_keys(runner, payment_client, api_key, "wechat_direct", "SITE_FIRST")
    second = config_from_sandbox_keys(runner, payment_client, api_key, "wechat_direct", "SITE_SECOND")

    transaction_id = pay_by_hand(runner, payment_client, api_key, "SITE_FIRST", "wechat")

    assert first["mch_id"] != second["mch_id"]
    assert order_of(payment_client, api_key, transaction_id)["status"] == "paid"


@pytest.mark.parametrize("command", [["setup", "--tenant", "{tenant}"], ["keys", "--mode", "wechat_direct"]])
def test_sandbox_refuses_the_real_upstreams(payment_app, payment_tenant, command):
    args = ["sandbox", *(part.format(tenant=payment_tenant[0].id) for part in command)]
    result = payment_app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0 and "real upstream" in result.output
