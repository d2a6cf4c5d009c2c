"""Tencent SMS provider: sending, error classification, status queries and receipts."""

import json
import logging
from datetime import UTC, datetime

import pytest
import requests
import responses

from sms_service.providers import (
    OutcomeUnknownError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
    TencentSmsProvider,
)
from sms_service.providers.signing import (
    tc3_authorization,
)

ENDPOINT = "https://sms.example.test/"
NOW = datetime(2026, 5, 10, 1, 2, 3, tzinfo=UTC)


def make_provider(**overrides):
    options = {
        "secret_id": "secret-id",
        "secret_key": "secret-key",
        "sdk_app_id": "1400000001",
        "endpoint": ENDPOINT,
        "clock": lambda: NOW,
        **overrides,
    }
    return TencentSmsProvider(**options)


def sms(n=0, mobile=None, params=None, template="1110"):
    return OutgoingSms(
        message_id=f"MSG_20260510_{n:04d}",
        mobile=mobile or f"1380013{n:04d}",
        sign_name="洗衣店",
        template_code=template,
        params=params if params is not None else {"code": "1234", "minutes": "5"},
    )


def status(mobile, code="Ok", serial=None, context=""):
    return {
        "SerialNo": serial or f"2640:{mobile}",
        "PhoneNumber": f"+86{mobile}",
        "Fee": 1,
        "SessionContext": context,
        "Code": code,
        "Message": "send success" if code == "Ok" else "refused",
        "IsoCode": "CN",
    }


def send_response(*statuses):
    return {"Response": {"SendStatusSet": list(statuses), "RequestId": "REQ-T"}}


def error_response(code, message="refused"):
    return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "REQ-E"}}


@responses.activate
def test_send_is_a_signed_json_call_with_e164_numbers_and_positional_params():
    responses.post(ENDPOINT, json=send_response(status("13800130001")))
    [outcome] = make_provider().send([sms(1, params={"code": "9876", "minutes": "10"})])

    assert outcome.accepted and outcome.biz_id == "2640:13800130001" and outcome.req_id == "REQ-T"
    request = responses.calls[0].request
    body = json.loads(request.body)
    assert body == {
        "PhoneNumberSet": ["+8613800130001"],
        "SmsSdkAppId": "1400000001",
        "SignName": "洗衣店",
        "TemplateId": "1110",
        "TemplateParamSet": ["9876", "10"],
        "SessionContext": "MSG_20260510_0001",
    }
    timestamp = int(NOW.timestamp())
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    assert request.headers["X-TC-Timestamp"] == str(timestamp)
    assert request.headers["Authorization"] == tc3_authorization(
        secret_id="secret-id",
        secret_key="secret-key",
        service="sms",
        timestamp=timestamp,
        headers={"Content-Type": "application/json; charset=utf-8", "Host": "sms.example.test"},
        payload=request.body,
    )


@responses.activate
def test_messages_with_identical_content_share_a_call_and_others_get_their_own():
    responses.post(ENDPOINT, json=send_response(status("13800130001"), status("13800130003")))
    responses.post(ENDPOINT, json=send_response(status("13800130002")))
    messages = [sms(1), sms(2, params={"code": "0000", "minutes": "5"}), sms(3)]

    outcomes = make_provider().send(messages)

    assert [o.message_id for o in outcomes] == [m.message_id for m in messages]
    assert [o.biz_id for o in outcomes] == ["2640:13800130001", "2640:13800130002", "2640:13800130003"]
    first, second = (json.loads(call.request.body) for call in responses.calls)
    assert first["PhoneNumberSet"] == ["+8613800130001", "+8613800130003"]
    assert first["SessionContext"].startswith("multi.")
    assert second["TemplateParamSet"] == ["0000", "5"]


@responses.activate
def test_each_number_gets_its_own_outcome():
    responses.post(
        ENDPOINT,
        json=send_response(
            status("13800130001"),
            status("13800130002", code="LimitExceeded.PhoneNumberDailyLimit", serial=""),
            status("13800130003", code="InternalError.Timeout", serial=""),
        ),
    )
    ok, limited, transient = make_provider().send([sms(1), sms(2), sms(3)])
    assert ok.accepted
    assert not limited.accepted and limited.error_code == "LimitExceeded.PhoneNumberDailyLimit"
    assert not limited.retryable
    assert not transient.accepted and transient.retryable


@responses.activate
def test_whole_call_refused_for_one_number_is_resent_number_by_number():
    responses.post(ENDPOINT, json=error_response("InvalidParameterValue.IncorrectPhoneNumber"))
    responses.post(ENDPOINT, json=send_response(status("13800130001")))
    responses.post(ENDPOINT, json=error_response("InvalidParameterValue.IncorrectPhoneNumber"))

    first, second = make_provider().send([sms(1), sms(2)])

    assert first.accepted
    assert not second.accepted and second.error_code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert len(responses.calls) == 3


@pytest.mark.parametrize("code", ["InternalError.Timeout", "RequestLimitExceeded"])
@responses.activate
def test_internal_errors_and_api_throttling_are_retryable(code):
    responses.post(ENDPOINT, json=error_response(code))
    with pytest.raises(RetryableProviderError) as caught:
        make_provider().send([sms(1)])
    assert caught.value.code == code and caught.value.req_id == "REQ-E"


@pytest.mark.parametrize(
    "code",
    [
        "AuthFailure.SignatureFailure",
        "AuthFailure.SignatureExpire",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.InsufficientBalanceInSmsPackage",
        "LimitExceeded.AppDailyLimit",
    ],
)
@responses.activate
def test_refusals_of_the_whole_call_are_permanent(code):
    responses.post(ENDPOINT, json=error_response(code))
    with pytest.raises(PermanentProviderError):
        make_provider().send([sms(1)])


@responses.activate
def test_an_interface_that_does_not_exist_is_permanent_for_the_call_and_for_a_number():
    """Tencent documents InternalError.RestApiInterfaceNotExist as a missing interface: no retry helps."""
    code = "InternalError.RestApiInterfaceNotExist"
    responses.post(ENDPOINT, json=error_response(code))
    responses.post(ENDPOINT, json=send_response(status("13800130001", code=code, serial="")))
    provider = make_provider()
    with pytest.raises(PermanentProviderError) as caught:
        provider.send([sms(1)])
    assert not isinstance(caught.value, RetryableProviderError) and caught.value.code == code
    (outcome,) = provider.send([sms(1)])
    assert not outcome.accepted and outcome.error_code == code and not outcome.retryable


@responses.activate
def test_5xx_is_retryable_and_read_timeout_is_unknown():
    responses.post(ENDPOINT, status=502, body="bad gateway")
    responses.post(ENDPOINT, body=requests.ReadTimeout("read timed out"))
    provider = make_provider()
    with pytest.raises(RetryableProviderError):
        provider.send([sms(1)])
    with pytest.raises(OutcomeUnknownError):
        provider.send([sms(1)])


@responses.activate
def test_logs_mask_numbers(caplog):
    responses.post(ENDPOINT, json=send_response(status("13800130001")))
    with caplog.at_level(logging.INFO, logger="sms_service.providers"):
        make_provider().send([sms(1)])
    assert "138****0001" in caplog.text
    assert "13800130001" not in caplog.text
    assert "secret-key" not in caplog.text


def pull_status(serial, report="SUCCESS", description="DELIVRD", context=""):
    return {
        "UserReceiveTime": 1778374925,
        "CountryCode": "86",
        "SubscriberNumber": "13800130001",
        "PhoneNumber": "+8613800130001",
        "SerialNo": serial,
        "ReportStatus": report,
        "Description": description,
        "SessionContext": context,
    }


@responses.activate
def test_query_pulls_the_numbers_statuses_and_picks_the_serial():
    responses.post(
        ENDPOINT,
        json={
            "Response": {
                "PullSmsSendStatusSet": [
                    pull_status("2640:other"),
                    pull_status("2640:mine", report="FAIL", description="MK:0001"),
                ],
                "RequestId": "R",
            }
        },
    )
    sent_at = datetime(2026, 5, 10, 1, 0, tzinfo=UTC)
    report = make_provider().query(
        message_id="MSG_1", mobile="13800130001", biz_id="2640:mine", sent_at=sent_at
    )

    request = responses.calls[0].request
    assert request.headers["X-TC-Action"] == "PullSmsSendStatusByPhoneNumber"
    body = json.loads(request.body)
    assert body["PhoneNumber"] == "+8613800130001"
    assert body["BeginTime"] == int(sent_at.timestamp()) - 300
    assert body["EndTime"] == int(NOW.timestamp())
    assert not report.success and report.error_code == "MK:0001"
    assert report.reported_at == datetime.fromtimestamp(1778374925, UTC)


def test_call_references_follow_the_calls_send_makes():
    batch = [sms(1), sms(2), sms(3, params={"code": "9999", "minutes": "5"}), sms(4, mobile="13800130001")]
    assert make_provider().call_references(batch) == {
        "MSG_20260510_0001": "multi.MSG_20260510_0001",
        "MSG_20260510_0002": "multi.MSG_20260510_0001",
        "MSG_20260510_0003": "MSG_20260510_0003",  # other variables: a call of its own
        "MSG_20260510_0004": "MSG_20260510_0004",  # same number as MSG_1
    }


@responses.activate
def test_query_without_serial_matches_the_multi_reference():
    responses.post(
        ENDPOINT,
        json={
            "Response": {
                "PullSmsSendStatusSet": [
                    pull_status("2640:other", report="FAIL", context="multi.MSG_9"),
                    pull_status("2640:mine", context="multi.MSG_1"),
                ],
                "RequestId": "R",
            }
        },
    )
    report = make_provider().query(
        message_id="MSG_2", mobile="13800130001", biz_id=None, sent_at=NOW, reference="multi.MSG_1"
    )
    assert report.success and report.biz_id == "2640:mine"
    assert report.out_id == "MSG_2"  # matched by the call's reference on this number: this message


@responses.activate
def test_query_without_serial_still_matches_the_message_id():
    responses.post(
        ENDPOINT,
        json={
            "Response": {"PullSmsSendStatusSet": [pull_status("2640:s", context="MSG_2")], "RequestId": "R"}
        },
    )
    report = make_provider().query(
        message_id="MSG_2", mobile="13800130001", biz_id=None, sent_at=NOW, reference="multi.MSG_1"
    )
    assert report.success and report.out_id == "MSG_2"


@responses.activate
def test_query_returns_none_until_a_status_exists():
    responses.post(ENDPOINT, json={"Response": {"PullSmsSendStatusSet": [], "RequestId": "R"}})
    assert make_provider().query(message_id="M", mobile="13800130001", biz_id="2640:x", sent_at=NOW) is None


def test_parse_receipts_reads_the_status_callback():
    payload = [
        {
            "user_receive_time": "2015-10-17 08:03:04",
            "nationcode": "86",
            "mobile": "13800130001",
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": "2640:1",
        },
        {
            "user_receive_time": "2015-10-17 08:03:05",
            "nationcode": "86",
            "mobile": "13800130002",
            "report_status": "FAIL",
            "errmsg": "MK:0001",
            "description": "用户短信接收失败",
            "sid": "2640:2",
        },
    ]
    delivered, failed = make_provider().parse_receipts(json.dumps(payload))
    assert delivered.success and delivered.biz_id == "2640:1" and delivered.error_code is None
    assert delivered.reported_at == datetime(2015, 10, 17, 0, 3, 4, tzinfo=UTC)
    assert not failed.success and failed.error_code == "MK:0001" and failed.mobile == "13800130002"
    assert failed.out_id is None


def test_parse_receipts_rejects_other_formats():
    with pytest.raises(ValueError):
        make_provider().parse_receipts({"Response": {}})
