"""WeChat Pay client: profit-sharing requests and split_amounts."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses
from wechatpayv3 import utils as wxutils

from payment_service.channels.wechat import (
    SharingReceiver,
    SharingTransfer,
    split_amounts,
)
from tests.payment.channels.conftest import (
    PUBLIC_KEY_ID,
    SP_APPID,
    SUB_MCHID,
    WECHAT_BASE,
)
from tests.payment.channels.wechat_helpers import (
    add_signed,
    receivers,
)

# -- profit sharing requests ----------------------------------------------------------------------------


@responses.activate
def test_add_receiver_encrypts_the_name_for_wechat(partner_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/profitsharing/receivers/add"
    add_signed(responses.mock, platform_keys, "POST", url, {"type": "MERCHANT_ID", "account": "1001"})

    partner_client.add_receiver(
        SharingReceiver(account="1001", name="华北洗衣连锁有限公司", relation_type="SERVICE_PROVIDER")
    )

    sent = responses.calls[0].request
    body = json.loads(sent.body)
    assert sent.headers["Wechatpay-Serial"] == PUBLIC_KEY_ID
    assert wxutils.rsa_decrypt(body.pop("name"), platform_keys.private_key) == "华北洗衣连锁有限公司"
    assert body == {
        "sub_mchid": SUB_MCHID,
        "appid": SP_APPID,
        "type": "MERCHANT_ID",
        "account": "1001",
        "relation_type": "SERVICE_PROVIDER",
    }


@responses.activate
def test_create_and_query_profit_sharing(partner_client, platform_keys):
    answer = {
        "sub_mchid": SUB_MCHID,
        "transaction_id": "4208450740201411110007820472",
        "out_order_no": "PS_TXN_1",
        "order_id": "3008450740201411110007820472",
        "state": "PROCESSING",
        "receivers": [
            {
                "type": "MERCHANT_ID",
                "account": "1001",
                "amount": 300,
                "description": "平台佣金",
                "result": "PENDING",
                "detail_id": "36011111111111111111111",
            }
        ],
    }
    add_signed(responses.mock, platform_keys, "POST", f"{WECHAT_BASE}/v3/profitsharing/orders", answer)
    add_signed(
        responses.mock,
        platform_keys,
        "GET",
        f"{WECHAT_BASE}/v3/profitsharing/orders/PS_TXN_1",
        {**answer, "state": "FINISHED"},
    )

    created = partner_client.create_profit_sharing(
        "4208450740201411110007820472", "PS_TXN_1", [SharingTransfer("1001", 300, "平台佣金")]
    )
    queried = partner_client.query_profit_sharing("PS_TXN_1", "4208450740201411110007820472")

    assert json.loads(responses.calls[0].request.body) == {
        "sub_mchid": SUB_MCHID,
        "appid": SP_APPID,
        "transaction_id": "4208450740201411110007820472",
        "out_order_no": "PS_TXN_1",
        "receivers": [{"type": "MERCHANT_ID", "account": "1001", "amount": 300, "description": "平台佣金"}],
        "unfreeze_unsplit": True,
    }
    assert created.state == "PROCESSING" and created.receivers[0].result == "PENDING"
    assert created.receivers[0].amount_fen == 300
    assert queried.state == "FINISHED"
    assert responses.calls[1].request.path_url == (
        f"/v3/profitsharing/orders/PS_TXN_1?sub_mchid={SUB_MCHID}&transaction_id=4208450740201411110007820472"
    )


# -- split_amounts --------------------------------------------------------------------------------------


def test_split_ratios_that_sum_to_exactly_one_are_accepted():
    # 0.34 + 0.56 + 0.1 is 0.9999999999999999 in binary floats and exactly 1 as decimals.
    config = receivers(("1001", 0.34), ("2001", 0.56), ("3001", 0.1))

    split = split_amounts(10000, config, SUB_MCHID)

    assert [fen for _, fen in split] == [3400, 5600, 1000]
    assert [r["merchant_id"] for r, _ in split] == ["1001", "2001", "3001"]


def test_split_floors_each_receiver_and_leaves_the_rest_to_the_sub_merchant():
    split = split_amounts(1001, receivers(("1001", "0.15"), ("2001", "0.85")), SUB_MCHID)

    assert [fen for _, fen in split] == [150, 850]  # 150.15 → 150, 850.85 → 850; 1 fen stays


def test_split_never_transfers_the_sub_merchants_own_share():
    split = split_amounts(2000, receivers(("1001", 0.15), (SUB_MCHID, 0.85)), SUB_MCHID)

    assert [(r["merchant_id"], fen) for r, fen in split] == [("1001", 300)]


def test_split_skips_receivers_that_come_to_zero_fen():
    split = split_amounts(5, receivers(("1001", Decimal("0.15")), ("2001", Decimal("0.5"))), SUB_MCHID)

    assert [(r["merchant_id"], fen) for r, fen in split] == [("2001", 2)]  # 0.75 → 0 is skipped


def test_split_of_one_fen_and_of_nothing():
    assert split_amounts(1, receivers(("1001", 0.99)), SUB_MCHID) == []
    assert split_amounts(0, receivers(("1001", 1)), SUB_MCHID) == []
    assert split_amounts(99, receivers(("1001", 1)), SUB_MCHID)[0][1] == 99


@pytest.mark.parametrize(
    "config",
    [
        receivers(("1001", 0.6), ("2001", 0.41)),
        receivers(("1001", 0)),
        receivers(("1001", -0.1)),
        receivers(("1001", 1.5)),
        receivers(("1001", "abc")),
        receivers(("1001", "NaN")),
    ],
)
def test_split_refuses_impossible_ratios(config):
    with pytest.raises(ValueError):
        split_amounts(100, config, SUB_MCHID)
