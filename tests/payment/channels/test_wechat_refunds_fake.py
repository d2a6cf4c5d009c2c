"""WeChat Pay refunds, refund notifications and return orders against the fake, over real sockets."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from payment_service.channels import (
    ChannelError,
    RefundRequest,
    SharingReceiver,
    SharingReturn,
    SharingTransfer,
    WechatPayClient,
)
from tests.fakes.keys import new_key_pair
from tests.fakes.payment_server import Answer, NotifyReceiver, ReceivedNotification, running
from tests.payment.channels.conftest import SP_MCHID, SUB_MCHID
from tests.payment.channels.test_wechat import loopback_client, make_order

NOTICE_WAIT_SECONDS = 5


@pytest.fixture
def receiver() -> Iterator[tuple[NotifyReceiver, str]]:
    """Our notify endpoint stand-in; yields (receiver, notify_url)."""
    endpoint = NotifyReceiver()
    with running(endpoint) as base_url:
        yield endpoint, f"{base_url}/api/v1/payment/notify/wechat"


def paid_order(fake, client: WechatPayClient, notify_url: str, transaction_id: str, **overrides) -> None:
    client.create_jsapi_order(make_order(transaction_id=transaction_id, notify_url=notify_url, **overrides))
    fake.pay(transaction_id)


def refund_of(
    transaction_id: str, refund_id: str, amount_fen: int, notify_url: str | None = None
) -> RefundRequest:
    return RefundRequest(transaction_id, refund_id, amount_fen, 2000, "洗衣机故障", notify_url)


def wait_for(predicate) -> None:
    deadline = time.monotonic() + NOTICE_WAIT_SECONDS
    while not predicate():
        assert time.monotonic() < deadline, "nothing arrived in time"
        time.sleep(0.02)


def test_partner_refund_is_notified_after_the_configured_delay(fake_wechat, merchant_keys, platform_keys):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    notices = []

    def our_endpoint(received: ReceivedNotification) -> Answer:
        if received.path.endswith("/refund"):
            notices.append(client.parse_refund_notification(received.headers, received.body))
        reply = client.notification_reply(True)
        return Answer(reply.status, reply.body, reply.content_type)

    endpoint = NotifyReceiver(our_endpoint)
    fake.config.refund_delay_ms = 50
    with running(endpoint) as notify_base:
        paid_order(fake, client, f"{notify_base}/notify", "TXN_refund_0001")
        accepted = client.refund(refund_of("TXN_refund_0001", "RFD_0001", 500, f"{notify_base}/refund"))
        wait_for(lambda: notices)

    assert (accepted.state, accepted.amount_fen) == ("processing", 500) and not endpoint.errors
    [notice] = notices
    assert (notice.refund_id, notice.out_trade_no, notice.state) == ("RFD_0001", "TXN_refund_0001", "success")
    assert (notice.amount_fen, notice.total_fen) == (500, 2000)
    assert notice.merchant_ids == {"sp_mchid": SP_MCHID, "sub_mchid": SUB_MCHID}
    assert notice.channel_refund_id == accepted.channel_refund_id
    queried = client.query_refund("TXN_refund_0001", "RFD_0001")
    assert queried is not None and queried.state == "success" and queried.refunded_at is not None
    assert fake.refundable("TXN_refund_0001") == 1500 and fake.calls["refund"] == 1
    assert client.query_order("TXN_refund_0001").trade_state == "REFUND"


def test_the_same_refund_id_is_the_same_refund(fake_wechat, merchant_keys, platform_keys, receiver):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    paid_order(fake, client, receiver[1], "TXN_refund_0002")
    fake.fail_next(endpoint="refund", status=500, code="SYSTEM_ERROR", message="系统错误")

    with pytest.raises(ChannelError) as caught:
        client.refund(refund_of("TXN_refund_0002", "RFD_0002", 700))
    first = client.refund(refund_of("TXN_refund_0002", "RFD_0002", 700))
    again = client.refund(refund_of("TXN_refund_0002", "RFD_0002", 700))

    assert caught.value.retryable
    assert first.channel_refund_id == again.channel_refund_id and len(fake.refunds) == 1
    assert fake.refundable("TXN_refund_0002") == 1300 and fake.calls["refund"] == 3
    with pytest.raises(ChannelError) as changed:
        client.refund(refund_of("TXN_refund_0002", "RFD_0002", 800))
    assert (changed.value.code, changed.value.retryable) == ("INVALID_REQUEST", False)


def test_refunds_never_exceed_what_was_paid(fake_wechat, merchant_keys, platform_keys, receiver):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    paid_order(fake, client, receiver[1], "TXN_refund_0003")

    client.refund(refund_of("TXN_refund_0003", "RFD_0003_a", 1500))
    with pytest.raises(ChannelError) as caught:
        client.refund(refund_of("TXN_refund_0003", "RFD_0003_b", 501))
    last = client.refund(refund_of("TXN_refund_0003", "RFD_0003_c", 500))

    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "INVALID_REQUEST",
        400,
        False,
    )
    assert last.state == "processing" and fake.refundable("TXN_refund_0003") == 0


def test_a_second_refund_too_soon_is_frequency_limited_and_retryable(
    fake_wechat, merchant_keys, platform_keys, receiver
):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    paid_order(fake, client, receiver[1], "TXN_refund_0004")
    fake.config.refund_interval_ms = 60_000

    client.refund(refund_of("TXN_refund_0004", "RFD_0004_a", 300))
    with pytest.raises(ChannelError) as caught:
        client.refund(refund_of("TXN_refund_0004", "RFD_0004_b", 300))
    repeat = client.refund(refund_of("TXN_refund_0004", "RFD_0004_a", 300))  # the same refund is no new one

    assert (caught.value.code, caught.value.http_status, caught.value.retryable) == (
        "FREQUENCY_LIMITED",
        429,
        True,
    )
    assert repeat.state == "processing" and fake.refundable("TXN_refund_0004") == 1700
    fake.config.refund_interval_ms = 0
    assert client.refund(refund_of("TXN_refund_0004", "RFD_0004_b", 300)).state == "processing"


def test_direct_refund_closed_by_wechat_gives_the_amount_back(
    fake_wechat, merchant_keys, platform_keys, receiver
):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url, sub_mch_id=None)
    endpoint, notify_url = receiver
    paid_order(fake, client, notify_url, "TXN_refund_0005")

    client.refund(refund_of("TXN_refund_0005", "RFD_0005", 2000, notify_url))
    delivery = fake.settle_refund("RFD_0005", "CLOSED")

    assert delivery is not None and delivery.acknowledged
    notice = client.parse_refund_notification(endpoint.received[-1].headers, endpoint.received[-1].body)
    assert (notice.state, notice.upstream_status, notice.merchant_ids) == (
        "failed",
        "CLOSED",
        {"mchid": SP_MCHID},
    )
    assert client.query_refund("TXN_refund_0005", "RFD_0005").state == "failed"
    assert fake.refundable("TXN_refund_0005") == 2000


def test_refunds_the_fake_refuses(fake_wechat, merchant_keys, platform_keys, receiver):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    client.create_jsapi_order(make_order(transaction_id="TXN_refund_0006", notify_url=receiver[1]))

    with pytest.raises(ChannelError, match="INVALID_REQUEST"):
        client.refund(refund_of("TXN_refund_0006", "RFD_0006", 100))  # not paid
    with pytest.raises(ChannelError) as unknown:
        client.refund(refund_of("TXN_never_placed", "RFD_0006", 100))
    with pytest.raises(ChannelError) as unsigned:
        loopback_client(new_key_pair(), platform_keys, base_url).refund(refund_of("TXN_refund_0006", "R1", 1))

    assert (unknown.value.code, unknown.value.http_status) == ("RESOURCE_NOT_EXISTS", 404)
    assert (unsigned.value.code, unsigned.value.http_status) == ("SIGN_ERROR", 401)
    assert client.query_refund("TXN_refund_0006", "RFD_never_made") is None
    assert fake.refunds == {}


def test_return_orders_take_back_at_most_what_the_receiver_got(
    fake_wechat, merchant_keys, platform_keys, receiver
):
    fake, base_url = fake_wechat
    client = loopback_client(merchant_keys, platform_keys, base_url)
    paid_order(fake, client, receiver[1], "TXN_refund_0007", profit_sharing=True)
    transaction_id = fake.find_order("TXN_refund_0007").transaction_id
    client.add_receiver(SharingReceiver(account="1001", name="平台运营有限公司"))
    client.create_profit_sharing(transaction_id, "PS_0007", [SharingTransfer("1001", 300, "平台佣金")])
    client.query_profit_sharing("PS_0007", transaction_id)  # the fake finishes the split on a query

    first = client.create_profit_sharing_return(
        SharingReturn("PS_0007", "RT_0007_a", "1001", 200, "退款回退")
    )
    again = client.create_profit_sharing_return(
        SharingReturn("PS_0007", "RT_0007_a", "1001", 200, "退款回退")
    )
    with pytest.raises(ChannelError) as too_much:
        client.create_profit_sharing_return(SharingReturn("PS_0007", "RT_0007_b", "1001", 101, "退款回退"))
    fake.config.return_result = "PROCESSING"
    pending = client.create_profit_sharing_return(
        SharingReturn("PS_0007", "RT_0007_c", "1001", 100, "退款回退")
    )
    fake.settle_return("RT_0007_c", "FAILED", "ACCOUNT_ABNORMAL")
    failed = client.query_profit_sharing_return("PS_0007", "RT_0007_c")

    assert (first.state, first.amount_fen, first.return_mchid) == ("success", 200, "1001")
    assert again.return_id == first.return_id and fake.calls["create_return"] == 4
    assert (too_much.value.code, too_much.value.retryable) == ("INVALID_REQUEST", False)
    assert pending.state == "processing"
    assert (failed.state, failed.fail_reason) == ("failed", "ACCOUNT_ABNORMAL")
    assert client.query_profit_sharing_return("PS_0007", "RT_0007_a").state == "success"
    # A failed return gave nothing back, so its 100 fen can still be returned.
    assert client.create_profit_sharing_return(
        SharingReturn("PS_0007", "RT_0007_d", "1001", 100, "回退")
    ).result
