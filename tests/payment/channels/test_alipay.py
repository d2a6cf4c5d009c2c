"""Alipay client: signatures checked against python-alipay-sdk, transport with `responses`, then the fake."""

from __future__ import annotations

import base64
import json
import textwrap
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import pytest
import requests
import responses
from alipay import AliPay
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from payment_service.channels import alipay as alipay_module
from payment_service.channels.alipay import (
    AlipayClient,
    AlipayCredentials,
    extract_signed_content,
    fen_to_yuan,
    yuan_to_fen,
)
from payment_service.channels.base import ChannelError, NotificationRejected, OrderRequest
from payment_service.channels.keys import KeyFormatError, load_private_key
from tests.fakes.keys import TestKeyPair, new_key_pair
from tests.fakes.payment_server import Answer, NotifyReceiver, ReceivedNotification, running
from tests.payment.channels.conftest import ALIPAY_APP_ID, ALIPAY_GATEWAY, ALIPAY_SELLER_ID

FROZEN_NOW = datetime(2026, 5, 10, 18, 0, 0, tzinfo=alipay_module.BEIJING)
BUYER_ID = "2088102177846880"


def make_order(**overrides: object) -> OrderRequest:
    values: dict[str, object] = {
        "transaction_id": "TXN_20260510_7Hq2mK9xPz",
        "amount_fen": 2000,
        "description": "自助洗衣-标准洗-30分钟",
        "payer_id": BUYER_ID,
        "notify_url": "https://pay.example.com/api/v1/payment/notify/alipay",
    }
    values.update(overrides)
    return OrderRequest(**values)  # type: ignore[arg-type]


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alipay_module, "_beijing_now", lambda: FROZEN_NOW)


def gateway_answer(sdk: AliPay, root: str, result: dict[str, object], *, signed: bool = True) -> str:
    inner = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
    sign = f',"sign":"{sdk._sign(inner)}"' if signed else ""
    return f'{{"{root}":{inner}{sign}}}'


def sent_form() -> dict[str, str]:
    return dict(parse_qsl(responses.calls[0].request.body, keep_blank_values=True))


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


# -- notifications --------------------------------------------------------------------------------------


def alipay_notification(sdk: AliPay, **overrides: str) -> dict[str, str]:
    """A notification signed by python-alipay-sdk with Alipay's key (sign_type excluded, empties kept)."""
    form = {
        "notify_time": "2026-05-10 18:00:06",
        "notify_type": "trade_status_sync",
        "notify_id": "2026051000222180006000521452394900",
        "charset": "utf-8",
        "version": "1.0",
        "app_id": ALIPAY_APP_ID,
        "trade_no": "2026051022001430011",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "buyer_id": BUYER_ID,
        "seller_id": ALIPAY_SELLER_ID,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "20.00",
        "receipt_amount": "20.00",
        "gmt_payment": "2026-05-10 18:00:05",
        "subject": "自助洗衣-标准洗-30分钟",
        "passback_params": "",
        "fund_bill_list": '[{"amount":"20.00","fundChannel":"ALIPAYACCOUNT"}]',
    }
    form.update(overrides)
    unsigned = "&".join(f"{k}={v}" for k, v in sorted(form.items()))
    return {**form, "sign_type": "RSA2", "sign": sdk._sign(unsigned)}


def test_notification_is_verified_with_empty_values_kept(alipay_client, alipay_side_sdk, app_side_sdk):
    form = alipay_notification(alipay_side_sdk)

    notice = alipay_client.parse_notification(form)

    assert (notice.out_trade_no, notice.channel_transaction_id) == (
        "TXN_20260510_7Hq2mK9xPz",
        "2026051022001430011",
    )
    assert notice.amount_fen == 2000 and notice.paid and notice.trade_state == "TRADE_SUCCESS"
    assert notice.merchant_ids == {"app_id": ALIPAY_APP_ID, "seller_id": ALIPAY_SELLER_ID}
    assert notice.paid_at == datetime(2026, 5, 10, 10, 0, 5, tzinfo=UTC)
    # python-alipay-sdk's own verify accepts the same fields.
    data = dict(form)
    assert app_side_sdk.verify(data, data.pop("sign"))


def test_notification_from_the_raw_form_body(alipay_client, alipay_side_sdk):
    body = urlencode(alipay_notification(alipay_side_sdk)).encode()

    assert alipay_client.read_notification({"Content-Type": "application/x-www-form-urlencoded"}, body).paid


@pytest.mark.parametrize(
    ("status", "paid"), [("TRADE_FINISHED", True), ("WAIT_BUYER_PAY", False), ("TRADE_CLOSED", False)]
)
def test_notification_paid_only_for_success_statuses(alipay_client, alipay_side_sdk, status, paid):
    notice = alipay_client.parse_notification(alipay_notification(alipay_side_sdk, trade_status=status))

    assert notice.paid is paid and notice.trade_state == status


def test_tampered_amount_is_rejected(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    form["total_amount"] = "0.01"

    with pytest.raises(NotificationRejected, match="signature"):
        alipay_client.parse_notification(form)


def test_dropping_an_empty_value_breaks_the_signature(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    del form["passback_params"]

    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification(form)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"app_id": "2021000000000000"}, "another app"), ({"seller_id": "2088000000000000"}, "another seller")],
)
def test_notification_for_someone_else_is_rejected(alipay_client, alipay_side_sdk, overrides, reason):
    with pytest.raises(NotificationRejected, match=reason):
        alipay_client.parse_notification(alipay_notification(alipay_side_sdk, **overrides))


def test_unsigned_or_wrong_type_notifications_are_rejected(alipay_client, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification({k: v for k, v in form.items() if k != "sign"})
    with pytest.raises(NotificationRejected):
        alipay_client.parse_notification({**form, "sign_type": "RSA"})
    with pytest.raises(NotificationRejected):
        alipay_client.read_notification({}, b"\xff\xfe")


def test_notification_reply_is_plain_success(alipay_client):
    assert alipay_client.notification_reply(True).body == b"success"
    assert alipay_client.notification_reply(False).body != b"success"


# -- amounts and credentials ----------------------------------------------------------------------------


@pytest.mark.parametrize(("fen", "yuan"), [(1, "0.01"), (10, "0.10"), (2000, "20.00"), (123456, "1234.56")])
def test_amounts_round_trip(fen, yuan):
    assert fen_to_yuan(fen) == yuan and yuan_to_fen(yuan) == fen


@pytest.mark.parametrize("value", ["20.001", "-1.00", "1e3", "", "20.", " 20.00"])
def test_malformed_amounts_are_refused(value):
    with pytest.raises(ValueError):
        yuan_to_fen(value)


@pytest.mark.parametrize(
    "shape", ["private_pem", "private_pkcs1_pem", "private_base64", "private_pkcs1_base64"]
)
def test_every_private_key_shape_signs_the_same(app_keys, alipay_keys, shape):
    credentials = AlipayCredentials(ALIPAY_APP_ID, getattr(app_keys, shape), alipay_keys.public_base64)
    client = AlipayClient(credentials, ALIPAY_GATEWAY)
    reference = AlipayClient(AlipayCredentials(ALIPAY_APP_ID, app_keys.private_pem, alipay_keys.public_pem))

    assert client._sign("a=1&b=2") == reference._sign("a=1&b=2")


def test_credentials_from_params_and_bad_keys(app_keys, alipay_keys):
    params = {
        "app_id": ALIPAY_APP_ID,
        "app_private_key": app_keys.private_base64,
        "alipay_public_key": alipay_keys.public_base64,
    }
    assert AlipayCredentials.from_params(params).seller_id is None
    assert "PRIVATE" not in repr(AlipayCredentials.from_params(params))
    with pytest.raises(KeyFormatError):
        AlipayCredentials.from_params({**params, "app_private_key": alipay_keys.public_base64})
    with pytest.raises(KeyFormatError):
        AlipayCredentials.from_params({**params, "alipay_public_key": "bm90IGEga2V5"})


# -- against the fake, over real sockets ----------------------------------------------------------------


def loopback_client(
    app_keys: TestKeyPair, alipay_keys: TestKeyPair, gateway: str, timeout: float = 5.0
) -> AlipayClient:
    credentials = AlipayCredentials(
        ALIPAY_APP_ID, app_keys.private_base64, alipay_keys.public_base64, ALIPAY_SELLER_ID
    )
    return AlipayClient(credentials, gateway, timeout=timeout)


def test_trade_paid_and_notified_through_the_fake(fake_alipay, app_keys, alipay_keys):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    notices = []

    def our_endpoint(received: ReceivedNotification) -> Answer:
        notices.append(client.read_notification(received.headers, received.body))
        reply = client.notification_reply(True)
        return Answer(reply.status, reply.body, reply.content_type)

    receiver = NotifyReceiver(our_endpoint)
    with running(receiver) as notify_base:
        order = make_order(notify_url=f"{notify_base}/api/v1/payment/notify/alipay")
        created = client.create_trade(order)
        again = client.create_trade(order)
        assert client.query_trade(order.transaction_id).state == "pending"

        delivery = fake.pay(order.transaction_id)

    assert delivery.acknowledged and not receiver.errors
    assert again.channel_order_ref == created.channel_order_ref
    [notice] = notices
    assert (notice.out_trade_no, notice.amount_fen, notice.paid) == (order.transaction_id, 2000, True)
    assert notice.channel_transaction_id == created.channel_order_ref
    assert client.query_trade(order.transaction_id).state == "paid"
    with pytest.raises(ChannelError, match="ACQ.TRADE_STATUS_ERROR"):
        client.close_trade(order.transaction_id)


def test_close_through_the_fake(fake_alipay, app_keys, alipay_keys):
    _, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    client.create_trade(make_order(transaction_id="TXN_close"))

    client.close_order("TXN_close")

    assert client.query_order("TXN_close").state == "closed"
    with pytest.raises(ChannelError, match="ACQ.TRADE_NOT_EXIST"):
        client.query_order("TXN_never")


def test_fake_rejects_a_call_signed_with_the_wrong_key(fake_alipay, alipay_keys):
    _, gateway = fake_alipay
    client = loopback_client(new_key_pair(), alipay_keys, gateway)

    with pytest.raises(ChannelError, match="isv.invalid-signature"):
        client.create_trade(make_order())


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "error", "status": 500}, "HTTP_500"),
        ({"kind": "error", "status": 200, "sub_code": "aop.ACQ.SYSTEM_ERROR"}, "aop.ACQ.SYSTEM_ERROR"),
        ({"kind": "unsigned"}, "BAD_SIGNATURE"),
        ({"kind": "bad_signature"}, "BAD_SIGNATURE"),
        ({"kind": "delay", "delay_ms": 1500}, "TIMEOUT"),
    ],
)
def test_fake_faults_become_channel_errors(fake_alipay, app_keys, alipay_keys, fault, code):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway, timeout=0.5)
    fake.fail_next(**fault)

    with pytest.raises(ChannelError) as caught:
        client.create_trade(make_order())

    assert caught.value.code == code


def _public_pkcs1(keys: TestKeyPair, encoding: serialization.Encoding) -> bytes:
    return keys.public_key.public_bytes(encoding, serialization.PublicFormat.PKCS1)


def test_every_public_key_shape_verifies(app_keys, alipay_keys, alipay_side_sdk):
    form = alipay_notification(alipay_side_sdk)
    shapes = [
        alipay_keys.public_pem,
        alipay_keys.public_base64,
        _public_pkcs1(alipay_keys, serialization.Encoding.PEM).decode(),
        base64.b64encode(_public_pkcs1(alipay_keys, serialization.Encoding.DER)).decode(),
        "\n".join(textwrap.wrap(alipay_keys.public_base64, 64)) + "\n",
    ]
    for shape in shapes:
        client = AlipayClient(
            AlipayCredentials(ALIPAY_APP_ID, app_keys.private_base64, shape), ALIPAY_GATEWAY
        )
        assert client.parse_notification(form).paid


def test_unusable_keys_are_refused_without_echoing_them(app_keys):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    small_pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    encrypted = app_keys.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )

    for text, reason in [
        (small_pem, "RSA-1024"),
        (encrypted, "password"),
        (ec_pem, "not an RSA key"),
        (app_keys.public_pem, "expected a private key"),
        ("", "empty"),
        ("%%%", "neither PEM nor base64"),
    ]:
        with pytest.raises(KeyFormatError, match=reason) as caught:
            load_private_key(text)
        assert "MII" not in str(caught.value)
