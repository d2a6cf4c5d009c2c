"""The local sandbox tries refunds: ask through the API, settle with ``sandbox settle-refund``."""

from __future__ import annotations

import json

from tests.payment.orders.helpers import order_of, placed
from tests.payment.refunds.helpers import refund_of, refunded


def test_a_sandbox_refund_is_settled_by_hand(payment_app, payment_client, payment_tenant, fakes, published):
    tenant, api_key = payment_tenant
    runner = payment_app.test_cli_runner()
    assert runner.invoke(args=["sandbox", "setup", "--tenant", tenant.id, "--site", "SITE_SB"]).exit_code == 0
    outcomes = {}
    for channel, status in (("wechat", "SUCCESS"), ("wechat", "ABNORMAL"), ("alipay", "SUCCESS")):
        transaction_id = placed(payment_client, api_key, site_id="SITE_SB", channel=channel)["transaction_id"]
        assert runner.invoke(args=["sandbox", "pay", transaction_id]).exit_code == 0
        refund_id = refunded(payment_client, api_key, transaction_id, amount=20)["refund_id"]
        settled = runner.invoke(args=["sandbox", "settle-refund", refund_id, "--status", status])
        assert settled.exit_code == 0, settled.output
        json.loads(settled.output)
        outcomes[(channel, status)] = (
            refund_of(payment_client, api_key, refund_id)["status"],
            order_of(payment_client, api_key, transaction_id)["status"],
        )
    assert outcomes == {
        ("wechat", "SUCCESS"): ("success", "refunded"),
        ("wechat", "ABNORMAL"): ("failed", "paid"),
        ("alipay", "SUCCESS"): ("success", "refunded"),  # fund_change Y already; settling again is harmless
    }
    unknown = runner.invoke(args=["sandbox", "settle-refund", "RFD_20260510_nope"])
    assert unknown.exit_code != 0 and "no refund" in unknown.output
