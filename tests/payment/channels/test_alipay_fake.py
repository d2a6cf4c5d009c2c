"""Alipay client against the fake Alipay gateway over real sockets."""

from __future__ import annotations

import pytest

from payment_service.channels.base import ChannelError
from tests.fakes.keys import new_key_pair
from tests.fakes.payment_server import Answer, NotifyReceiver, ReceivedNotification, running
from tests.payment.channels.alipay_helpers import loopback_client, make_order

# -- against the fake, over real sockets ----------------------------------------------------------------


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
