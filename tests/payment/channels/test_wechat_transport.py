"""WeChat Pay client: transport errors, response verification, queries and close, with `responses`."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import responses

from payment_service.channels.base import ChannelError
from tests.fakes.keys import new_key_pair
from tests.payment.channels.conftest import (
    SP_MCHID,
    SUB_MCHID,
    WECHAT_BASE,
)
from tests.payment.channels.wechat_helpers import (
    PARTNER_JSAPI,
    add_signed,
    make_order,
    signed_headers,
)

# -- transport and response verification ----------------------------------------------------------------


@responses.activate
def test_upstream_error_becomes_channel_error_with_wechat_code(partner_client, platform_keys):
    add_signed(
        responses.mock,
        platform_keys,
        "POST",
        PARTNER_JSAPI,
        {"code": "SYSTEM_ERROR", "message": "系统错误"},
        500,
    )

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert (caught.value.code, caught.value.message, caught.value.http_status) == (
        "SYSTEM_ERROR",
        "系统错误",
        500,
    )
    assert caught.value.retryable
    assert caught.value.as_details() == {
        "upstream_code": "SYSTEM_ERROR",
        "upstream_message": "系统错误",
        "http_status": 500,
    }


@responses.activate
def test_business_refusal_is_not_retryable(partner_client):
    responses.add(
        "POST", PARTNER_JSAPI, json={"code": "OUT_TRADE_NO_USED", "message": "商户订单号重复"}, status=403
    )

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "OUT_TRADE_NO_USED" and caught.value.http_status == 403
    assert not caught.value.retryable


@responses.activate
def test_error_without_json_body(partner_client):
    responses.add("POST", PARTNER_JSAPI, body="<html>bad gateway</html>", status=502)

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "HTTP_502" and caught.value.http_status == 502


@responses.activate
def test_unsigned_success_is_refused(partner_client):
    responses.add("POST", PARTNER_JSAPI, json={"prepay_id": "wx_forged"}, status=200)

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "BAD_SIGNATURE"


@responses.activate
def test_success_signed_by_another_key_is_refused(partner_client):
    body = json.dumps({"prepay_id": "wx_forged"}).encode()
    responses.add("POST", PARTNER_JSAPI, body=body, headers=signed_headers(new_key_pair(), body))

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_success_whose_body_was_altered_is_refused(partner_client, platform_keys):
    signed = b'{"prepay_id":"wx_real"}'  # what was signed; a re-spaced body is not it
    responses.add(
        "POST", PARTNER_JSAPI, body=b'{"prepay_id": "wx_real"}', headers=signed_headers(platform_keys, signed)
    )

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_stale_response_signature_is_refused(partner_client, platform_keys):
    body = json.dumps({"prepay_id": "wx_old"}).encode()
    stale = int(datetime.now(UTC).timestamp()) - 600
    responses.add("POST", PARTNER_JSAPI, body=body, headers=signed_headers(platform_keys, body, stale))

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.create_jsapi_order(make_order())


@responses.activate
def test_timeout_becomes_channel_error(partner_client):
    responses.add("POST", PARTNER_JSAPI, body=requests.exceptions.ReadTimeout("slow"))

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "TIMEOUT" and caught.value.retryable


@responses.activate
def test_connection_failure_becomes_channel_error(partner_client):
    responses.add("POST", PARTNER_JSAPI, body=requests.exceptions.ConnectionError("refused"))

    with pytest.raises(ChannelError) as caught:
        partner_client.create_jsapi_order(make_order())

    assert caught.value.code == "NETWORK_ERROR"


@responses.activate
def test_missing_prepay_id_is_a_bad_response(partner_client, platform_keys):
    add_signed(responses.mock, platform_keys, "POST", PARTNER_JSAPI, {"unexpected": True})

    with pytest.raises(ChannelError, match="BAD_RESPONSE"):
        partner_client.create_jsapi_order(make_order())


@pytest.mark.parametrize(
    ("trade_state", "state"),
    [
        ("SUCCESS", "paid"),
        ("NOTPAY", "pending"),
        ("USERPAYING", "pending"),
        ("CLOSED", "closed"),
        ("REVOKED", "closed"),
        ("PAYERROR", "failed"),
        ("REFUND", "paid"),
    ],
)
@responses.activate
def test_query_maps_trade_states(partner_client, platform_keys, trade_state, state):
    url = f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc"
    payload = {
        "trade_state": trade_state,
        "transaction_id": "4200000985202405103345316402",
        "amount": {"total": 2000, "payer_total": 2000},
        "success_time": "2024-05-10T16:00:05+08:00",
    }
    add_signed(responses.mock, platform_keys, "GET", url, payload)

    queried = partner_client.query_order("TXN_1_abc")

    assert queried.state == state and queried.trade_state == trade_state
    assert queried.amount_fen == 2000
    assert queried.channel_transaction_id == "4200000985202405103345316402"
    assert queried.paid_at == datetime(2024, 5, 10, 8, 0, 5, tzinfo=UTC)


@responses.activate
def test_direct_query_uses_mchid(direct_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/pay/transactions/out-trade-no/TXN_1_abc"
    add_signed(responses.mock, platform_keys, "GET", url, {"trade_state": "NOTPAY", "amount": {"total": 5}})

    assert direct_client.query_order("TXN_1_abc").state == "pending"
    assert responses.calls[0].request.path_url.endswith(f"?mchid={SP_MCHID}")


@responses.activate
def test_close_accepts_a_signed_204(partner_client, platform_keys):
    url = f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc/close"
    add_signed(responses.mock, platform_keys, "POST", url, None, status=204)

    partner_client.close_order("TXN_1_abc")

    assert json.loads(responses.calls[0].request.body) == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}


@responses.activate
def test_close_refuses_an_unsigned_204(partner_client):
    responses.add(
        "POST", f"{WECHAT_BASE}/v3/pay/partner/transactions/out-trade-no/TXN_1_abc/close", status=204
    )

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        partner_client.close_order("TXN_1_abc")
