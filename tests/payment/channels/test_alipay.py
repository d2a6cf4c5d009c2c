"""Alipay client: request signing against python-alipay-sdk, response verification and transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
import responses
from alipay import AliPay

from payment_service.channels import alipay as alipay_module
from payment_service.channels.alipay import (
    extract_signed_content,
)
from payment_service.channels.base import ChannelError
from tests.fakes.keys import new_key_pair
from tests.payment.channels.alipay_helpers import (
    BUYER_ID,
    gateway_answer,
    loopback_client,  # noqa: F401  (re-exported for test_alipay_refunds.py)
    make_order,
    sent_form,
)
from tests.payment.channels.conftest import ALIPAY_APP_ID, ALIPAY_GATEWAY, ALIPAY_SELLER_ID

FROZEN_NOW = datetime(2026, 5, 10, 18, 0, 0, tzinfo=alipay_module.BEIJING)


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alipay_module, "_beijing_now", lambda: FROZEN_NOW)


# -- request signature against python-alipay-sdk --------------------------------------------------------


@responses.activate
def test_request_is_signed_like_python_alipay_sdk(frozen, alipay_client, app_side_sdk, alipay_side_sdk):
    responses.add(
        "POST",
        ALIPAY_GATEWAY,
        body=gateway_answer(
            alipay_side_sdk,
            "alipay_trade_create_response",
            {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
                "trade_no": "2026051022001",
            },
        ),
    )

    alipay_client.create_trade(make_order())

    form = sent_form()
    unsigned = {key: value for key, value in form.items() if key != "sign"}
    # The SDK's own rule for the string to sign: sorted k=v joined by &, raw values (sign_data()).
    expected = app_side_sdk._sign("&".join(f"{k}={v}" for k, v in sorted(unsigned.items())))
    assert form["sign"] == expected
    assert {key: value for key, value in form.items() if key not in ("sign", "biz_content")} == {
        "app_id": ALIPAY_APP_ID,
        "method": "alipay.trade.create",
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2026-05-10 18:00:00",
        "version": "1.0",
        "notify_url": "https://pay.example.com/api/v1/payment/notify/alipay",
    }
    assert responses.calls[0].request.headers["Content-Type"].startswith("application/x-www-form-urlencoded")


@responses.activate
def test_trade_create_with_user_id(alipay_client, alipay_side_sdk):
    answer = {"code": "10000", "msg": "Success", "out_trade_no": "TXN_1", "trade_no": "2026051022001430011"}
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, "alipay_trade_create_response", answer)
    )
    expire_at = datetime(2026, 5, 10, 2, 30, tzinfo=UTC)

    created = alipay_client.create_trade(make_order(amount_fen=2005, expire_at=expire_at))

    assert json.loads(sent_form()["biz_content"]) == {
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "total_amount": "20.05",
        "subject": "自助洗衣-标准洗-30分钟",
        "buyer_id": BUYER_ID,
        "seller_id": ALIPAY_SELLER_ID,
        "time_expire": "2026-05-10 10:30:00",
    }
    assert created.pay_params == {"tradeNO": "2026051022001430011"}
    assert created.channel_order_ref == "2026051022001430011"


@responses.activate
def test_trade_create_with_open_id_uses_the_jsapi_form(alipay_client, alipay_side_sdk):
    answer = {"code": "10000", "msg": "Success", "trade_no": "2026051022001430012"}
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, "alipay_trade_create_response", answer)
    )

    alipay_client.create_order(make_order(payer_id="074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"))

    biz = json.loads(sent_form()["biz_content"])
    assert biz["buyer_open_id"] == "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
    assert (biz["product_code"], biz["op_app_id"]) == ("JSAPI_PAY", ALIPAY_APP_ID)
    assert "buyer_id" not in biz


# -- response verification ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        '{{"alipay_trade_query_response":{inner},"sign":"{sign}"}}',
        '{{"sign":"{sign}","alipay_trade_query_response":{inner}}}',
        '{{ "alipay_trade_query_response" : {inner} , "alipay_cert_sn":"x", "sign" : "{sign}" }}',
    ],
)
@responses.activate
def test_response_is_verified_over_the_verbatim_text(alipay_client, alipay_side_sdk, layout):
    # Braces and quotes inside strings, escapes, spacing and raw UTF-8: a re-dump or a quote-blind
    # brace counter would verify the wrong text.
    inner = (
        '{"code":"10000","msg":"Success","trade_no":"2026051022001","out_trade_no":"TXN_1",'
        '"trade_status":"WAIT_BUYER_PAY","total_amount":"20.00","buyer_logon_id":"a}\\"{b",'
        '"store_name": "洗衣店 {旗舰}\\\\"}'
    )
    body = layout.format(inner=inner, sign=alipay_side_sdk._sign(inner))
    responses.add("POST", ALIPAY_GATEWAY, body=body.encode("utf-8"))

    queried = alipay_client.query_trade("TXN_1")

    assert queried.state == "pending" and queried.amount_fen == 2000
    assert queried.raw["store_name"] == "洗衣店 {旗舰}\\"
    assert extract_signed_content(body, "alipay_trade_query_response") == inner


def test_extractor_is_anchored_on_the_top_level_member():
    body = '{"sign":"alipay_trade_query_response","alipay_trade_query_response":{"a":"}"}}'

    assert extract_signed_content(body, "alipay_trade_query_response") == '{"a":"}"}'
    assert extract_signed_content(body, "alipay_trade_close_response") is None


@responses.activate
def test_unsigned_success_is_refused(alipay_client, alipay_side_sdk):
    answer = {"code": "10000", "msg": "Success", "trade_no": "2026"}
    body = gateway_answer(alipay_side_sdk, "alipay_trade_create_response", answer, signed=False)
    responses.add("POST", ALIPAY_GATEWAY, body=body)

    with pytest.raises(ChannelError) as caught:
        alipay_client.create_trade(make_order())

    assert caught.value.code == "BAD_SIGNATURE"


@responses.activate
def test_success_signed_by_another_key_is_refused(alipay_client, app_keys):
    impostor = AliPay(
        appid=ALIPAY_APP_ID,
        app_private_key_string=new_key_pair().private_pem,
        alipay_public_key_string=app_keys.public_pem,
    )
    answer = {"code": "10000", "msg": "Success", "trade_no": "2026"}
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(impostor, "alipay_trade_create_response", answer)
    )

    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        alipay_client.create_trade(make_order())


@responses.activate
def test_business_failure_carries_sub_code(alipay_client, alipay_side_sdk):
    answer = {
        "code": "40004",
        "msg": "Business Failed",
        "sub_code": "ACQ.TRADE_NOT_EXIST",
        "sub_msg": "交易不存在",
    }
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, "alipay_trade_close_response", answer)
    )

    with pytest.raises(ChannelError) as caught:
        alipay_client.close_trade("TXN_1")

    assert (caught.value.code, caught.value.message, caught.value.http_status) == (
        "ACQ.TRADE_NOT_EXIST",
        "交易不存在",
        200,
    )
    assert not caught.value.retryable


@responses.activate
def test_system_error_is_retryable(alipay_client, alipay_side_sdk):
    answer = {"code": "20000", "msg": "Service Currently Unavailable", "sub_code": "aop.ACQ.SYSTEM_ERROR"}
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, "alipay_trade_query_response", answer)
    )

    with pytest.raises(ChannelError) as caught:
        alipay_client.query_trade("TXN_1")

    assert caught.value.retryable


@responses.activate
def test_gateway_level_error_response(alipay_client):
    body = (
        '{"error_response":{"code":"40002","msg":"Invalid Arguments",'
        '"sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}}'
    )
    responses.add("POST", ALIPAY_GATEWAY, body=body)

    with pytest.raises(ChannelError) as caught:
        alipay_client.query_trade("TXN_1")

    assert caught.value.code == "isv.invalid-app-id"


@responses.activate
def test_http_500_becomes_channel_error(alipay_client):
    responses.add("POST", ALIPAY_GATEWAY, body="Internal Server Error", status=500)

    with pytest.raises(ChannelError) as caught:
        alipay_client.create_trade(make_order())

    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == ("HTTP_500", 500, True)


@responses.activate
def test_non_json_answer_is_a_bad_response(alipay_client):
    responses.add("POST", ALIPAY_GATEWAY, body="<html>maintenance</html>")

    with pytest.raises(ChannelError, match="BAD_RESPONSE"):
        alipay_client.create_trade(make_order())


@responses.activate
def test_timeout_and_network_errors(alipay_client):
    responses.add("POST", ALIPAY_GATEWAY, body=requests.exceptions.ConnectTimeout("slow"))
    responses.add("POST", ALIPAY_GATEWAY, body=requests.exceptions.ConnectionError("refused"))

    with pytest.raises(ChannelError, match="TIMEOUT"):
        alipay_client.create_trade(make_order())
    with pytest.raises(ChannelError, match="NETWORK_ERROR"):
        alipay_client.create_trade(make_order())


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("WAIT_BUYER_PAY", "pending"),
        ("TRADE_SUCCESS", "paid"),
        ("TRADE_FINISHED", "paid"),
        ("TRADE_CLOSED", "closed"),
    ],
)
@responses.activate
def test_query_maps_trade_statuses(alipay_client, alipay_side_sdk, status, state):
    answer = {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026051022001430011",
        "out_trade_no": "TXN_1",
        "trade_status": status,
        "total_amount": "88.88",
        "send_pay_date": "2026-05-10 18:00:05",
    }
    responses.add(
        "POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, "alipay_trade_query_response", answer)
    )

    queried = alipay_client.query_order("TXN_1")

    assert (queried.state, queried.trade_state, queried.amount_fen) == (state, status, 8888)
    assert queried.paid_at == datetime(2026, 5, 10, 10, 0, 5, tzinfo=UTC)
    assert json.loads(sent_form()["biz_content"]) == {"out_trade_no": "TXN_1"}
