"""WeChat Pay client against the fake over real sockets; platform certificates; build_channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from payment_service.channels import CHANNEL_BY_MODE, AlipayClient, build_channel
from payment_service.channels.base import ChannelError
from payment_service.channels.wechat import (
    SharingReceiver,
    SharingTransfer,
    WechatPayClient,
    split_amounts,
)
from tests.fakes.keys import new_key_pair
from tests.fakes.payment_server import Answer, NotifyReceiver, ReceivedNotification, running
from tests.payment.channels.conftest import (
    API_V3_KEY,
    MERCHANT_SERIAL,
    PUBLIC_KEY_ID,
    SP_APPID,
    SP_MCHID,
    SUB_MCHID,
    WECHAT_BASE,
    make_wechat_credentials,
)
from tests.payment.channels.wechat_helpers import (
    loopback_client,
    make_order,
    notification,
    receivers,
    transaction_resource,
)

# -- against the fake, over real sockets ----------------------------------------------------------------


def test_order_paid_and_notified_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    notices = []

    def our_endpoint(received: ReceivedNotification) -> Answer:
        notice = client.parse_notification(received.headers, received.body)
        notices.append(notice)
        reply = client.notification_reply(True)
        return Answer(reply.status, reply.body, reply.content_type)

    receiver = NotifyReceiver(our_endpoint)
    with running(receiver) as notify_base:
        order = make_order(notify_url=f"{notify_base}/api/v1/payment/notify/wechat", profit_sharing=True)
        created = client.create_jsapi_order(order)
        assert client.query_order(order.transaction_id).state == "pending"

        delivery = fake.pay(order.transaction_id)

    assert delivery.status == 204 and delivery.acknowledged and not receiver.errors
    assert created.channel_order_ref == fake.find_order(order.transaction_id).prepay_id
    [notice] = notices
    assert (notice.out_trade_no, notice.amount_fen, notice.paid) == (order.transaction_id, 2000, True)
    queried = client.query_order(order.transaction_id)
    assert queried.state == "paid" and queried.channel_transaction_id == notice.channel_transaction_id


def test_direct_merchant_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url, sub_mch_id=None)

    client.create_order(make_order(transaction_id="TXN_direct_001"))
    client.close_order("TXN_direct_001")

    assert client.query_order("TXN_direct_001").state == "closed"


def test_fake_rejects_a_request_signed_with_the_wrong_key(fake_wechat, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(new_key_pair(), platform_keys, base_url)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order())

    assert (caught.value.code, caught.value.http_status) == ("SIGN_ERROR", 401)


def test_fake_validates_the_order_body(fake_wechat, merchant_keys, platform_keys):
    _, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order(transaction_id="TXN#1"))

    assert (caught.value.code, caught.value.http_status) == ("PARAM_ERROR", 400)


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"kind": "error", "status": 500}, "SYSTEM_ERROR"),
        ({"kind": "unsigned"}, "BAD_SIGNATURE"),
        ({"kind": "bad_signature"}, "BAD_SIGNATURE"),
        ({"kind": "delay", "delay_ms": 1500}, "TIMEOUT"),
    ],
)
def test_fake_faults_become_channel_errors(fake_wechat, merchant_keys, platform_keys, fault, code):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url, timeout=0.5)
    fake.fail_next(**fault)

    with pytest.raises(ChannelError) as caught:
        client.create_jsapi_order(make_order())

    assert caught.value.code == code


def test_profit_sharing_through_the_fake(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    config = receivers(("1001", 0.15), (SUB_MCHID, 0.85))
    with running(NotifyReceiver()) as notify_base:
        order = make_order(notify_url=f"{notify_base}/notify", profit_sharing=True)
        client.create_jsapi_order(order)
        fake.pay(order.transaction_id)
    transaction_id = fake.find_order(order.transaction_id).transaction_id

    client.add_receiver(
        SharingReceiver(account="1001", name="平台运营有限公司", relation_type="SERVICE_PROVIDER")
    )
    transfers = [
        SharingTransfer(r["merchant_id"], fen, "平台佣金")
        for r, fen in split_amounts(2000, config, SUB_MCHID)
    ]
    created = client.create_profit_sharing(transaction_id, f"PS_{order.transaction_id}", transfers)
    again = client.create_profit_sharing(transaction_id, f"PS_{order.transaction_id}", transfers)
    finished = client.query_profit_sharing(f"PS_{order.transaction_id}", transaction_id)

    assert created.state == "PROCESSING" and again.order_id == created.order_id
    assert finished.state == "FINISHED"
    assert [(r.account, r.amount_fen, r.result) for r in finished.receivers] == [("1001", 300, "SUCCESS")]
    assert fake.receivers[(SP_MCHID, SUB_MCHID, "MERCHANT_ID", "1001")]["name"] == "平台运营有限公司"


def test_profit_sharing_needs_the_flag_on_the_order(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    with running(NotifyReceiver()) as notify_base:
        order = make_order(notify_url=f"{notify_base}/notify", profit_sharing=False)
        client.create_jsapi_order(order)
        fake.pay(order.transaction_id)
    client.add_receiver(SharingReceiver(account="1001", name="平台运营有限公司"))

    with pytest.raises(ChannelError, match="非分账订单不支持分账"):
        client.create_profit_sharing(
            fake.find_order(order.transaction_id).transaction_id,
            "PS_1",
            [SharingTransfer("1001", 300, "佣金")],
        )


def test_a_platform_certificate_can_stand_in_for_the_public_key(merchant_keys, platform_keys):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(platform_keys.public_key)
        .serial_number(0x3775B6A45ACD588826D15E583A95F5DD)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(platform_keys.private_key, hashes.SHA256())
    )
    serial = format(certificate.serial_number, "X")
    credentials = make_wechat_credentials(
        merchant_keys,
        platform_keys,
        wechatpay_public_key_id=serial,
        wechatpay_public_key=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
    client = WechatPayClient(credentials, "wechat_split", WECHAT_BASE)
    headers, body = notification(platform_keys, transaction_resource())

    assert client.parse_notification({**headers, "Wechatpay-Serial": serial}, body).paid


def test_build_channel_picks_the_client_by_mode(merchant_keys, platform_keys, app_keys, alipay_keys):
    wechat_params = {
        "service_mch_id": SP_MCHID,
        "sub_mch_id": SUB_MCHID,
        "app_id": SP_APPID,
        "api_key": API_V3_KEY,
        "merchant_serial_no": MERCHANT_SERIAL,
        "merchant_private_key": merchant_keys.private_pem,
        "wechatpay_public_key_id": PUBLIC_KEY_ID,
        "wechatpay_public_key": platform_keys.public_pem,
    }
    alipay_params = {
        "app_id": "2021000117650001",
        "app_private_key": app_keys.private_base64,
        "alipay_public_key": alipay_keys.public_base64,
    }

    split = build_channel("wechat_split", wechat_params, wechat_base_url="http://127.0.0.1:8601", timeout=3)
    direct = build_channel("wechat_direct", {**wechat_params, "mch_id": SP_MCHID})
    ali = build_channel("alipay_direct", alipay_params, alipay_gateway_url="http://127.0.0.1:8602/gateway.do")

    assert isinstance(split, WechatPayClient) and split.partner and split.base_url == "http://127.0.0.1:8601"
    assert isinstance(direct, WechatPayClient) and not direct.partner
    assert isinstance(ali, AlipayClient) and ali.gateway_url == "http://127.0.0.1:8602/gateway.do"
    assert {CHANNEL_BY_MODE[mode] for mode in ("wechat_split", "wechat_direct", "alipay_direct")} == {
        "wechat",
        "alipay",
    }
    with pytest.raises(ValueError):
        build_channel("paypal_direct", {})
    with pytest.raises(ValueError, match="sub_mch_id"):
        build_channel("wechat_split", {**wechat_params, "sub_mch_id": ""})
