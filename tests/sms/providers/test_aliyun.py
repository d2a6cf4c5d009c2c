"""Aliyun SMS provider: sending, batching, error classification, status queries and receipts."""

import json
import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
import requests
import responses

from sms_service.providers import (
    AliyunSmsProvider,
    OutcomeUnknownError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
)
from sms_service.providers.signing import aliyun_rpc_signature

ENDPOINT = "https://dysmsapi.example.test/"
NOW = datetime(2026, 5, 10, 1, 2, 3, tzinfo=UTC)


def make_provider(**overrides):
    options = {
        "access_key_id": "key-id",
        "access_key_secret": "key-secret",
        "endpoint": ENDPOINT,
        "clock": lambda: NOW,
        **overrides,
    }
    return AliyunSmsProvider(**options)


def sms(n=0, mobile=None, template="SMS_100", params=None):
    return OutgoingSms(
        message_id=f"MSG_20260510_{n:04d}",
        mobile=mobile or f"1380013{n:04d}",
        sign_name="洗衣店",
        template_code=template,
        params=params if params is not None else {"code": f"{n:04d}"},
    )


def form_of(call) -> dict[str, str]:
    return dict(parse_qsl(call.request.body))


def ok(biz_id="900619746936498440^0", request_id="REQ-1"):
    return {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}


@responses.activate
def test_single_message_is_a_signed_send_sms():
    responses.post(ENDPOINT, json=ok())
    [outcome] = make_provider().send([sms(1, params={"name": "张三", "code": "1234"})])

    assert outcome.accepted
    assert (outcome.req_id, outcome.biz_id) == ("REQ-1", "900619746936498440^0")
    form = form_of(responses.calls[0])
    assert form["Action"] == "SendSms"
    assert form["PhoneNumbers"] == "13800130001"
    assert form["SignName"] == "洗衣店"
    assert form["TemplateCode"] == "SMS_100"
    assert form["TemplateParam"] == '{"name":"张三","code":"1234"}'
    assert form["OutId"] == "MSG_20260510_0001"
    assert form["Timestamp"] == "2026-05-10T01:02:03Z"
    assert (form["Format"], form["Version"], form["SignatureVersion"]) == ("JSON", "2017-05-25", "1.0")
    assert form["Signature"] == aliyun_rpc_signature("POST", form, "key-secret")


@responses.activate
def test_every_call_uses_a_fresh_nonce():
    responses.post(ENDPOINT, json=ok())
    provider = make_provider()
    provider.send([sms(1)])
    provider.send([sms(2)])
    nonces = {form_of(call)["SignatureNonce"] for call in responses.calls}
    assert len(nonces) == 2


@responses.activate
def test_several_messages_of_one_template_go_in_one_batch():
    responses.post(ENDPOINT, json=ok(biz_id="BATCH^0"))
    messages = [sms(1), sms(2), sms(3)]
    outcomes = make_provider().send(messages)

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert all(o.accepted and o.biz_id == "BATCH^0" for o in outcomes)
    [call] = responses.calls
    form = form_of(call)
    assert form["Action"] == "SendBatchSms"
    assert json.loads(form["PhoneNumberJson"]) == ["13800130001", "13800130002", "13800130003"]
    assert json.loads(form["SignNameJson"]) == ["洗衣店"] * 3
    assert json.loads(form["TemplateParamJson"]) == [{"code": "0001"}, {"code": "0002"}, {"code": "0003"}]
    assert form["OutId"].startswith("multi.")


@responses.activate
def test_batches_hold_at_most_100_numbers_and_never_one_number_twice():
    responses.post(ENDPOINT, json=ok())
    messages = [sms(n) for n in range(150)] + [sms(999, mobile="13800130000")]
    outcomes = make_provider().send(messages)

    assert all(o.accepted for o in outcomes)
    sizes = [len(json.loads(form_of(call)["PhoneNumberJson"])) for call in responses.calls]
    assert sizes == [100, 51]
    for call in responses.calls:
        numbers = json.loads(form_of(call)["PhoneNumberJson"])
        assert len(numbers) == len(set(numbers))


@responses.activate
def test_messages_of_different_templates_are_sent_separately_in_order():
    responses.post(ENDPOINT, json=ok())
    messages = [sms(1, template="SMS_A"), sms(2, template="SMS_B"), sms(3, template="SMS_A")]
    outcomes = make_provider().send(messages)

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    actions = [(form_of(c)["Action"], form_of(c)["TemplateCode"]) for c in responses.calls]
    assert actions == [("SendBatchSms", "SMS_A"), ("SendSms", "SMS_B")]


@responses.activate
def test_batch_refused_for_one_number_falls_back_to_single_sends():
    illegal = {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号", "RequestId": "REQ-B"}
    responses.post(ENDPOINT, json=illegal)  # the batch
    responses.post(ENDPOINT, json=ok(biz_id="A^0", request_id="REQ-1"))
    responses.post(ENDPOINT, json=illegal)
    responses.post(ENDPOINT, json=ok(biz_id="C^0", request_id="REQ-3"))

    outcomes = make_provider().send([sms(1), sms(2), sms(3)])

    assert [form_of(c)["Action"] for c in responses.calls] == [
        "SendBatchSms",
        "SendSms",
        "SendSms",
        "SendSms",
    ]
    assert [o.accepted for o in outcomes] == [True, False, True]
    assert outcomes[0].biz_id == "A^0" and outcomes[2].biz_id == "C^0"
    assert outcomes[1].error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert not outcomes[1].retryable


@responses.activate
def test_per_number_frequency_limit_is_a_refusal_not_an_error():
    responses.post(
        ENDPOINT,
        json={"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1", "RequestId": "R"},
    )
    [outcome] = make_provider().send([sms(1)])
    assert not outcome.accepted
    assert outcome.error_code == "isv.BUSINESS_LIMIT_CONTROL"
    assert not outcome.retryable


@responses.activate
def test_http_5xx_is_retryable():
    responses.post(ENDPOINT, status=503, body="upstream unavailable")
    with pytest.raises(RetryableProviderError) as caught:
        make_provider().send([sms(1)])
    assert caught.value.code == "HTTP503"
    assert not isinstance(caught.value, OutcomeUnknownError)


@pytest.mark.parametrize("code", ["isp.SYSTEM_ERROR", "Throttling.User", "SignatureNonceUsed"])
@responses.activate
def test_platform_errors_and_account_throttling_are_retryable(code):
    responses.post(ENDPOINT, json={"Code": code, "Message": "x", "RequestId": "R"})
    with pytest.raises(RetryableProviderError) as caught:
        make_provider().send([sms(1)])
    assert caught.value.code == code
    assert caught.value.req_id == "R"


@responses.activate
def test_read_timeout_means_the_outcome_is_unknown():
    responses.post(ENDPOINT, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(OutcomeUnknownError):
        make_provider().send([sms(1)])


@responses.activate
def test_connect_timeout_is_retryable_because_nothing_was_sent():
    responses.post(ENDPOINT, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(RetryableProviderError) as caught:
        make_provider().send([sms(1)])
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_connection_refused_is_retryable():
    provider = make_provider(endpoint="http://127.0.0.1:9/")  # discard port: nothing listens
    with pytest.raises(RetryableProviderError) as caught:
        provider.send([sms(1)])
    assert not isinstance(caught.value, OutcomeUnknownError)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "SignatureDoesNotMatch"),
        (404, "InvalidAccessKeyId.NotFound"),
        (200, "isv.SMS_TEMPLATE_ILLEGAL"),
        (200, "isv.AMOUNT_NOT_ENOUGH"),
        (200, "isv.SOMETHING_NEW"),
    ],
)
@responses.activate
def test_refusals_of_the_whole_call_are_permanent(status, code):
    responses.post(ENDPOINT, status=status, json={"Code": code, "Message": "refused", "RequestId": "R"})
    with pytest.raises(PermanentProviderError) as caught:
        make_provider().send([sms(1)])
    assert caught.value.code == code


@responses.activate
def test_a_failure_after_an_acceptance_is_reported_per_message_not_raised():
    responses.post(ENDPOINT, json=ok(biz_id="A^0"))
    responses.post(ENDPOINT, body=requests.ReadTimeout("read timed out"))
    messages = [sms(1, template="SMS_A"), sms(2, template="SMS_B"), sms(3, template="SMS_C")]

    first, second, third = make_provider().send(messages)

    assert first.accepted
    assert not second.accepted and second.outcome_unknown
    assert not third.accepted and third.retryable and third.error_code == "NotAttempted"
    assert len(responses.calls) == 2


@responses.activate
def test_logs_mask_mobile_numbers_and_never_show_the_secret(caplog):
    responses.post(ENDPOINT, json=ok())
    with caplog.at_level(logging.INFO, logger="sms_service.providers"):
        make_provider().send([sms(1)])
    assert "138****0001" in caplog.text
    assert "13800130001" not in caplog.text
    assert "key-secret" not in caplog.text


def query_response(*details):
    return {
        "Code": "OK",
        "Message": "OK",
        "RequestId": "R",
        "TotalCount": len(details),
        "SmsSendDetailDTOs": {"SmsSendDetailDTO": list(details)},
    }


def detail(status, mobile="13800130001", err="DELIVERED", out_id="MSG_20260510_0001"):
    return {
        "PhoneNum": mobile,
        "SendStatus": status,
        "ErrCode": err,
        "SendDate": "2026-05-10 09:02:03",
        "ReceiveDate": "2026-05-10 09:02:05",
        "OutId": out_id,
    }


@responses.activate
def test_query_asks_for_the_beijing_send_date_and_reports_delivery():
    responses.post(ENDPOINT, json=query_response(detail(3)))
    sent_at = datetime(2026, 5, 9, 17, 30, tzinfo=UTC)  # 01:30 on the 10th in Beijing
    report = make_provider().query(
        message_id="MSG_20260510_0001", mobile="13800130001", biz_id="A^0", sent_at=sent_at
    )
    form = form_of(responses.calls[0])
    assert (form["Action"], form["SendDate"], form["BizId"]) == ("QuerySendDetails", "20260510", "A^0")
    assert report.success and report.error_code is None
    assert report.reported_at == datetime(2026, 5, 10, 1, 2, 5, tzinfo=UTC)
    assert report.out_id == "MSG_20260510_0001"


@responses.activate
def test_query_picks_the_number_out_of_a_batch_and_reports_failure():
    responses.post(
        ENDPOINT,
        json=query_response(detail(3, mobile="13900000000"), detail(2, err="MK:0001", out_id="multi.MSG_1")),
    )
    report = make_provider().query(message_id="MSG_2", mobile="13800130001", biz_id="B^0", sent_at=NOW)
    assert not report.success
    assert report.error_code == "MK:0001"
    assert report.out_id is None


def test_call_references_follow_the_calls_send_makes():
    batch = [sms(1), sms(2), sms(3, mobile="13800130001"), sms(4, template="SMS_200")]
    assert make_provider().call_references(batch) == {
        "MSG_20260510_0001": "multi.MSG_20260510_0001",
        "MSG_20260510_0002": "multi.MSG_20260510_0001",
        "MSG_20260510_0003": "MSG_20260510_0003",  # same number as MSG_1: a call of its own
        "MSG_20260510_0004": "MSG_20260510_0004",  # another template
    }


@responses.activate
def test_call_references_are_the_out_ids_send_uses():
    responses.post(ENDPOINT, json=ok())
    responses.post(ENDPOINT, json=ok())
    batch = [sms(1), sms(2), sms(3, mobile="13800130001")]
    references = make_provider().call_references(batch)
    make_provider().send(batch)
    out_ids = [form_of(call)["OutId"] for call in responses.calls]
    assert out_ids == [references["MSG_20260510_0001"], references["MSG_20260510_0003"]]


@responses.activate
def test_query_without_biz_id_matches_the_multi_reference_and_the_number():
    responses.post(
        ENDPOINT,
        json=query_response(
            detail(2, err="MK:0001", out_id="multi.MSG_9"),  # this number, another call
            detail(3, mobile="13900000000", out_id="multi.MSG_1"),  # the call, another number
            detail(3, out_id="multi.MSG_1"),
        ),
    )
    report = make_provider().query(
        message_id="MSG_2", mobile="13800130001", biz_id=None, sent_at=NOW, reference="multi.MSG_1"
    )
    assert "BizId" not in form_of(responses.calls[0])
    assert report.success and report.mobile == "13800130001"
    assert report.out_id == "MSG_2"  # matched by the call's reference on this number: this message


@responses.activate
def test_query_without_biz_id_still_matches_the_message_id_after_a_split():
    responses.post(ENDPOINT, json=query_response(detail(3, out_id="MSG_2")))
    report = make_provider().query(
        message_id="MSG_2", mobile="13800130001", biz_id=None, sent_at=NOW, reference="multi.MSG_1"
    )
    assert report.success and report.out_id == "MSG_2"


@responses.activate
def test_query_without_biz_id_or_reference_ignores_multi_rows():
    responses.post(ENDPOINT, json=query_response(detail(3, out_id="multi.MSG_1")))
    assert make_provider().query(message_id="MSG_2", mobile="13800130001", biz_id=None, sent_at=NOW) is None


@responses.activate
def test_query_returns_none_while_waiting_or_unknown():
    responses.post(ENDPOINT, json=query_response(detail(1)))
    responses.post(ENDPOINT, json=query_response())
    provider = make_provider()
    assert provider.query(message_id="M", mobile="13800130001", biz_id="A^0", sent_at=NOW) is None
    assert provider.query(message_id="M", mobile="13800130001", biz_id="A^0", sent_at=NOW) is None


def test_parse_receipts_reads_the_sms_report_push():
    body = json.dumps(
        [
            {
                "phone_number": "13800130001",
                "send_time": "2017-01-01 00:00:00",
                "report_time": "2017-01-01 00:00:02",
                "success": True,
                "err_code": "DELIVERED",
                "err_msg": "用户接收成功",
                "sms_size": "1",
                "biz_id": "12345^0",
                "out_id": "MSG_20260510_0001",
            },
            {
                "phone_number": "8613800130002",
                "report_time": "2017-01-01 00:00:03",
                "success": False,
                "err_code": "MK:0001",
                "err_msg": "用户接收失败",
                "biz_id": "12346^0",
                "out_id": "multi.MSG_20260510_0002",
            },
        ],
        ensure_ascii=False,
    ).encode()
    delivered, failed = make_provider().parse_receipts(body)

    assert delivered.success and delivered.error_code is None
    assert delivered.biz_id == "12345^0" and delivered.out_id == "MSG_20260510_0001"
    assert delivered.reported_at == datetime(2016, 12, 31, 16, 0, 2, tzinfo=UTC)
    assert not failed.success and failed.error_code == "MK:0001" and failed.error_message == "用户接收失败"
    assert failed.mobile == "13800130002" and failed.out_id is None


@pytest.mark.parametrize("payload", [b"not json", b'{"a": 1}', [{"unexpected": True}]])
def test_parse_receipts_rejects_other_formats(payload):
    with pytest.raises(ValueError):
        make_provider().parse_receipts(payload)
