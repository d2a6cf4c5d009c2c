"""Alipay refunds and their queries: signed like python-alipay-sdk, answers with `responses`, the fake."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import responses

from payment_service.channels import ChannelError, RefundRequest
from tests.fakes.keys import new_key_pair
from tests.payment.channels.conftest import ALIPAY_GATEWAY
from tests.payment.channels.test_alipay import gateway_answer, loopback_client, make_order, sent_form

REFUND_ROOT = "alipay_trade_refund_response"
QUERY_ROOT = "alipay_trade_fastpay_refund_query_response"


def make_refund(**overrides: object) -> RefundRequest:
    values: dict[str, object] = {
        "transaction_id": "TXN_20260510_7Hq2mK9xPz",
        "refund_id": "RFD_20260510_b3Kq9Zx1",
        "amount_fen": 500,
        "total_fen": 2000,
        "reason": "洗衣机故障",
    }
    values.update(overrides)
    return RefundRequest(**values)  # type: ignore[arg-type]


def refund_answer(**overrides: object) -> dict[str, object]:
    answer: dict[str, object] = {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026051022001430011",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "buyer_logon_id": "159****5620",
        "fund_change": "Y",
        "refund_fee": "5.00",
        "gmt_refund_pay": "2026-05-10 18:10:05",
        "send_back_fee": "0.00",
    }
    answer.update(overrides)
    return answer


# -- requests and answers ---------------------------------------------------------------------------------


@responses.activate
def test_refund_is_signed_like_python_alipay_sdk(alipay_client, app_side_sdk, alipay_side_sdk):
    responses.add("POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, REFUND_ROOT, refund_answer()))

    result = alipay_client.refund(make_refund(amount_fen=505))

    form = sent_form()
    unsigned = {key: value for key, value in form.items() if key != "sign"}
    assert form["sign"] == app_side_sdk._sign("&".join(f"{k}={v}" for k, v in sorted(unsigned.items())))
    assert form["method"] == "alipay.trade.refund" and "notify_url" not in form
    assert json.loads(form["biz_content"]) == {
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "refund_amount": "5.05",
        "out_request_no": "RFD_20260510_b3Kq9Zx1",
        "refund_reason": "洗衣机故障",
    }
    assert (result.state, result.upstream_status, result.amount_fen) == ("success", "fund_change=Y", None)
    assert result.refunded_at == datetime(2026, 5, 10, 10, 10, 5, tzinfo=UTC)
    assert result.raw["refund_fee"] == "5.00"


@pytest.mark.parametrize(("fen", "yuan"), [(1, "0.01"), (10, "0.10"), (2000, "20.00"), (123456, "1234.56")])
@responses.activate
def test_refund_amounts_are_two_decimal_yuan_from_fen(alipay_client, alipay_side_sdk, fen, yuan):
    responses.add("POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, REFUND_ROOT, refund_answer()))

    alipay_client.refund(make_refund(amount_fen=fen, total_fen=200000, reason=None))

    assert json.loads(sent_form()["biz_content"]) == {
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "refund_amount": yuan,
        "out_request_no": "RFD_20260510_b3Kq9Zx1",
    }


@responses.activate
def test_fund_change_n_is_still_processing(alipay_client, alipay_side_sdk):
    answer = refund_answer(fund_change="N", refund_fee="0.00")
    answer.pop("gmt_refund_pay")
    responses.add("POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, REFUND_ROOT, answer))

    result = alipay_client.refund(make_refund())

    assert (result.state, result.upstream_status, result.refunded_at) == ("processing", "fund_change=N", None)


@pytest.mark.parametrize(
    ("answer", "signed", "code"),
    [
        (refund_answer(fund_change=None), True, "BAD_RESPONSE"),
        (refund_answer(out_trade_no="TXN_other"), True, "BAD_RESPONSE"),
        (refund_answer(), False, "BAD_SIGNATURE"),
    ],
)
@responses.activate
def test_refund_answers_we_cannot_trust(alipay_client, alipay_side_sdk, answer, signed, code):
    body = gateway_answer(alipay_side_sdk, REFUND_ROOT, answer, signed=signed)
    responses.add("POST", ALIPAY_GATEWAY, body=body)

    with pytest.raises(ChannelError) as caught:
        alipay_client.refund(make_refund())

    assert caught.value.code == code


@pytest.mark.parametrize(
    ("code", "sub_code", "retryable"),
    [
        ("40004", "ACQ.REASON_TRADE_REFUND_FEE_ERR", False),
        ("40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH", False),
        ("40004", "ACQ.SYSTEM_ERROR", True),
        ("20000", "isp.unknow-error", True),
    ],
)
@responses.activate
def test_refund_refusals_are_classified(alipay_client, alipay_side_sdk, code, sub_code, retryable):
    refusal = {"code": code, "msg": "Business Failed", "sub_code": sub_code, "sub_msg": "…"}
    responses.add("POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, REFUND_ROOT, refusal))

    with pytest.raises(ChannelError) as caught:
        alipay_client.refund(make_refund())

    assert (caught.value.code, caught.value.retryable) == (sub_code, retryable)


@responses.activate
def test_refund_query_success_and_nothing_found(alipay_client, alipay_side_sdk):
    found = {
        "code": "10000",
        "msg": "Success",
        "trade_no": "2026051022001430011",
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "out_request_no": "RFD_20260510_b3Kq9Zx1",
        "total_amount": "20.00",
        "refund_amount": "5.00",
        "refund_status": "REFUND_SUCCESS",
        "gmt_refund_pay": "2026-05-10 18:10:05",
    }
    nothing = {"code": "10000", "msg": "Success", "out_trade_no": "TXN_20260510_7Hq2mK9xPz"}
    for answer in (found, nothing):
        responses.add("POST", ALIPAY_GATEWAY, body=gateway_answer(alipay_side_sdk, QUERY_ROOT, answer))

    result = alipay_client.query_refund("TXN_20260510_7Hq2mK9xPz", "RFD_20260510_b3Kq9Zx1")
    missing = alipay_client.query_refund("TXN_20260510_7Hq2mK9xPz", "RFD_20260510_b3Kq9Zx1")

    assert json.loads(sent_form()["biz_content"]) == {
        "out_trade_no": "TXN_20260510_7Hq2mK9xPz",
        "out_request_no": "RFD_20260510_b3Kq9Zx1",
        "query_options": ["gmt_refund_pay"],
    }
    assert result is not None and (result.state, result.upstream_status) == ("success", "REFUND_SUCCESS")
    assert (result.amount_fen, result.refunded_at) == (500, datetime(2026, 5, 10, 10, 10, 5, tzinfo=UTC))
    assert missing is None


# -- against the fake, over real sockets ----------------------------------------------------------------


def paid_trade(fake, client, transaction_id: str, amount_fen: int = 2000) -> None:
    client.create_trade(make_order(transaction_id=transaction_id, amount_fen=amount_fen))
    fake.find_trade(transaction_id).trade_status = "TRADE_SUCCESS"  # paid, without a notification


def test_partial_refunds_through_the_fake(fake_alipay, app_keys, alipay_keys):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    paid_trade(fake, client, "TXN_ali_refund_01")

    first = client.refund(make_refund(transaction_id="TXN_ali_refund_01", refund_id="RFD_a", amount_fen=500))
    repeat = client.refund(make_refund(transaction_id="TXN_ali_refund_01", refund_id="RFD_a", amount_fen=500))
    with pytest.raises(ChannelError) as too_much:
        client.refund(make_refund(transaction_id="TXN_ali_refund_01", refund_id="RFD_b", amount_fen=1501))
    rest = client.refund(make_refund(transaction_id="TXN_ali_refund_01", refund_id="RFD_c", amount_fen=1500))

    assert (first.state, repeat.state, rest.state) == ("success", "processing", "success")
    assert repeat.upstream_status == "fund_change=N" and len(fake.refunds) == 2  # a repeat moves no money
    assert (too_much.value.code, too_much.value.retryable) == ("ACQ.REASON_TRADE_REFUND_FEE_ERR", False)
    assert client.query_refund("TXN_ali_refund_01", "RFD_a").amount_fen == 500
    assert fake.refundable("TXN_ali_refund_01") == "0.00"
    assert client.query_order("TXN_ali_refund_01").state == "closed"  # Alipay closes a fully refunded trade
    assert fake.calls["alipay.trade.refund"] == 4


def test_fund_change_n_then_the_query_settles_it(fake_alipay, app_keys, alipay_keys):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    paid_trade(fake, client, "TXN_ali_refund_02")
    fake.refund_fund_change = False

    accepted = client.refund(make_refund(transaction_id="TXN_ali_refund_02", refund_id="RFD_n"))
    settled = client.query_refund("TXN_ali_refund_02", "RFD_n")

    assert (accepted.state, accepted.upstream_status) == ("processing", "fund_change=N")
    assert settled is not None and (settled.state, settled.amount_fen) == ("success", 500)
    assert settled.refunded_at is not None and fake.calls["alipay.trade.refund"] == 1


def test_a_refund_alipay_does_not_have_can_be_sent_again(fake_alipay, app_keys, alipay_keys):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    paid_trade(fake, client, "TXN_ali_refund_03")
    fake.refund_fund_change, fake.refund_settle_on_query = False, False

    assert client.query_refund("TXN_ali_refund_03", "RFD_never_sent") is None
    client.refund(make_refund(transaction_id="TXN_ali_refund_03", refund_id="RFD_p"))
    assert client.query_refund("TXN_ali_refund_03", "RFD_p") is None  # pending: not there yet
    fake.settle_refund("TXN_ali_refund_03", "RFD_p")
    assert client.query_refund("TXN_ali_refund_03", "RFD_p").state == "success"
    assert (
        client.refund(make_refund(transaction_id="TXN_ali_refund_03", refund_id="RFD_p")).state
        == "processing"
    )
    assert len(fake.refunds) == 1


def test_refunds_the_fake_refuses(fake_alipay, app_keys, alipay_keys):
    fake, gateway = fake_alipay
    client = loopback_client(app_keys, alipay_keys, gateway)
    client.create_trade(make_order(transaction_id="TXN_ali_refund_04"))

    with pytest.raises(ChannelError, match="ACQ.TRADE_STATUS_ERROR"):
        client.refund(make_refund(transaction_id="TXN_ali_refund_04"))  # not paid
    with pytest.raises(ChannelError, match="ACQ.TRADE_NOT_EXIST"):
        client.refund(make_refund(transaction_id="TXN_ali_never"))
    with pytest.raises(ChannelError, match="isv.invalid-signature"):
        loopback_client(new_key_pair(), alipay_keys, gateway).refund(
            make_refund(transaction_id="TXN_ali_refund_04")
        )
    client.close_trade("TXN_ali_refund_04")  # the existing close call, reused for refunds' order close
    with pytest.raises(ChannelError, match="ACQ.TRADE_HAS_CLOSE"):
        client.refund(make_refund(transaction_id="TXN_ali_refund_04"))
    assert fake.refunds == {}
