"""The local sandbox commands: set a site up against the fakes, place an order, pay it by hand."""

from __future__ import annotations

import json

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


def test_sandbox_refuses_the_real_upstreams(payment_app, payment_tenant):
    result = payment_app.test_cli_runner().invoke(args=["sandbox", "setup", "--tenant", payment_tenant[0].id])
    assert result.exit_code != 0 and "real upstream" in result.output
