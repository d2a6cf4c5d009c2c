"""The provider clients against the fakes over real loopback HTTP, and the fakes' own upstream behaviour."""

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from werkzeug.wrappers import Request, Response

from sms_service.providers import (
    AliyunSmsProvider,
    OutcomeUnknownError,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
    TencentSmsProvider,
)
from tests.fakes import aliyun_sms, tencent_sms
from tests.fakes.server import serve_in_thread


def sms(n, mobile=None, params=None):
    return OutgoingSms(
        message_id=f"MSG_20260510_{n:04d}",
        mobile=mobile or f"1380013{n:04d}",
        sign_name="洗衣店",
        template_code="SMS_100",
        params=params if params is not None else {"code": "1234"},
    )


class ReceiptReceiver:
    """A tiny receipt endpoint answering the way each upstream expects."""

    def __init__(self, acknowledgement):
        self.acknowledgement = acknowledgement
        self.bodies = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        with self._lock:
            self.bodies.append(request.get_data())
        return Response(json.dumps(self.acknowledgement), mimetype="application/json")(
            environ, start_response
        )


@pytest.fixture
def aliyun_fake():
    fake = aliyun_sms.FakeAliyunSms()
    url, stop = serve_in_thread(fake)
    fake.url = url
    yield fake
    stop()


@pytest.fixture
def tencent_fake():
    fake = tencent_sms.FakeTencentSms()
    url, stop = serve_in_thread(fake)
    fake.url = url
    yield fake
    stop()


def make_aliyun(fake, **overrides):
    options = {
        "access_key_id": aliyun_sms.ACCESS_KEY_ID,
        "access_key_secret": aliyun_sms.ACCESS_KEY_SECRET,
        "endpoint": fake.url,
        **overrides,
    }
    return AliyunSmsProvider(**options)


def make_tencent(fake, **overrides):
    options = {
        "secret_id": tencent_sms.SECRET_ID,
        "secret_key": tencent_sms.SECRET_KEY,
        "sdk_app_id": tencent_sms.SDK_APP_ID,
        "endpoint": fake.url,
        **overrides,
    }
    return TencentSmsProvider(**options)


# -- Aliyun ----------------------------------------------------------------------------------------------


def test_aliyun_single_and_batch_sends_are_accepted_and_recorded(aliyun_fake):
    provider = make_aliyun(aliyun_fake)
    [single] = provider.send([sms(1, params={"name": "张三"})])
    batch = provider.send([sms(2), sms(3), sms(4)])

    assert single.accepted and all(o.accepted for o in batch)
    recorded = aliyun_fake.accepted()
    assert [m.mobile for m in recorded] == ["13800130001", "13800130002", "13800130003", "13800130004"]
    assert recorded[0].reference == "MSG_20260510_0001" and recorded[0].params == {"name": "张三"}
    assert recorded[0].biz_id == single.biz_id
    assert {m.biz_id for m in recorded[1:]} == {batch[0].biz_id}
    assert aliyun_fake.duplicates() == []


def test_aliyun_wrong_secret_is_rejected_by_the_fake(aliyun_fake):
    provider = make_aliyun(aliyun_fake, access_key_secret="not-the-secret")
    with pytest.raises(PermanentProviderError) as caught:
        provider.send([sms(1)])
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "13800130001" not in str(caught.value)
    assert aliyun_fake.accepted() == []


def test_aliyun_fake_refuses_a_replayed_nonce(aliyun_fake):
    form = make_aliyun(aliyun_fake).signed_params(
        "SendSms", {"PhoneNumbers": "13800130001", "SignName": "洗衣店", "TemplateCode": "SMS_100"}
    )
    first = requests.post(aliyun_fake.url, data=form, timeout=5)
    replay = requests.post(aliyun_fake.url, data=form, timeout=5)
    assert first.json()["Code"] == "OK"
    assert (replay.status_code, replay.json()["Code"]) == (400, "SignatureNonceUsed")
    assert len(aliyun_fake.accepted()) == 1


def test_aliyun_fake_refuses_a_stale_timestamp(aliyun_fake):
    provider = make_aliyun(aliyun_fake, clock=lambda: datetime.now(UTC) - timedelta(minutes=20))
    with pytest.raises(PermanentProviderError) as caught:
        provider.send([sms(1)])
    assert caught.value.code == "InvalidTimeStamp.Expired"


def test_aliyun_batch_with_one_illegal_number_still_sends_the_others(aliyun_fake):
    outcomes = make_aliyun(aliyun_fake).send([sms(1), sms(2, mobile="12345678901"), sms(3)])

    assert [o.accepted for o in outcomes] == [True, False, True]
    assert outcomes[1].error_code == "isv.MOBILE_NUMBER_ILLEGAL"
    assert sorted(m.mobile for m in aliyun_fake.accepted()) == ["13800130001", "13800130003"]
    assert aliyun_fake.duplicates() == []


def test_aliyun_fake_enforces_the_batch_limit(aliyun_fake):
    numbers = [f"1380013{n:04d}" for n in range(101)]
    form = make_aliyun(aliyun_fake).signed_params(
        "SendBatchSms",
        {
            "PhoneNumberJson": json.dumps(numbers),
            "SignNameJson": json.dumps(["洗衣店"] * 101),
            "TemplateCode": "SMS_100",
        },
    )
    answer = requests.post(aliyun_fake.url, data=form, timeout=5).json()
    assert answer["Code"] == "isv.MOBILE_COUNT_OVER_LIMIT"


def test_aliyun_per_number_error_injection(aliyun_fake):
    aliyun_fake.error_for_number("13800130002", "isv.BUSINESS_LIMIT_CONTROL")
    outcomes = make_aliyun(aliyun_fake).send([sms(1), sms(2)])
    assert [(o.accepted, o.error_code) for o in outcomes] == [
        (True, None),
        (False, "isv.BUSINESS_LIMIT_CONTROL"),
    ]


def test_aliyun_5xx_injection_is_retryable_and_then_recovers(aliyun_fake):
    aliyun_fake.fail_next(1, status=503)
    provider = make_aliyun(aliyun_fake)
    with pytest.raises(RetryableProviderError) as caught:
        provider.send([sms(1)])
    assert caught.value.code == "HTTP503"
    assert provider.send([sms(1)])[0].accepted
    assert len(aliyun_fake.accepted()) == 1


def test_aliyun_timeout_after_acceptance_is_reconciled_by_query(aliyun_fake):
    aliyun_fake.timeout_next(1, seconds=1.0)
    provider = make_aliyun(aliyun_fake, read_timeout=0.3)
    sent_at = datetime.now(UTC)
    with pytest.raises(OutcomeUnknownError):
        provider.send([sms(1)])

    report = provider.query(
        message_id="MSG_20260510_0001", mobile="13800130001", biz_id=None, sent_at=sent_at
    )
    assert report is not None and report.success and report.out_id == "MSG_20260510_0001"


def test_aliyun_query_reports_waiting_then_failure(aliyun_fake):
    aliyun_fake.delivery_delay_ms = 300
    aliyun_fake.fail_delivery_for("13800130001", "MK:0001")
    provider = make_aliyun(aliyun_fake)
    [outcome] = provider.send([sms(1)])
    query = {"message_id": outcome.message_id, "mobile": "13800130001", "biz_id": outcome.biz_id}

    assert provider.query(**query, sent_at=datetime.now(UTC)) is None
    time.sleep(0.35)
    report = provider.query(**query, sent_at=datetime.now(UTC))
    assert not report.success and report.error_code == "MK:0001"


def test_aliyun_receipts_pushed_to_a_receiver_parse_back_to_the_messages(aliyun_fake):
    receiver = ReceiptReceiver({"code": 0, "msg": "接收成功"})
    url, stop = serve_in_thread(receiver)
    try:
        aliyun_fake.fail_delivery_for("13800130003", "MK:0001")
        provider = make_aliyun(aliyun_fake)
        single = provider.send([sms(1)])
        batch = provider.send([sms(2), sms(3)])

        assert aliyun_fake.push_receipts(url) == 3
        assert aliyun_fake.push_receipts(url) == 0  # acknowledged receipts are not pushed again
    finally:
        stop()
    reports = [r for body in receiver.bodies for r in provider.parse_receipts(body)]
    by_mobile = {r.mobile: r for r in reports}
    assert by_mobile["13800130001"].out_id == "MSG_20260510_0001"
    assert by_mobile["13800130001"].biz_id == single[0].biz_id
    assert by_mobile["13800130002"].success and by_mobile["13800130002"].biz_id == batch[0].biz_id
    assert by_mobile["13800130002"].out_id is None
    assert not by_mobile["13800130003"].success and by_mobile["13800130003"].error_code == "MK:0001"


def test_unacknowledged_receipts_are_pushed_again(aliyun_fake):
    refusing = ReceiptReceiver({"code": 1, "msg": "busy"})
    url, stop = serve_in_thread(refusing)
    try:
        make_aliyun(aliyun_fake).send([sms(1)])
        assert aliyun_fake.push_receipts(url) == 0
        refusing.acknowledgement = {"code": 0, "msg": "接收成功"}
        assert aliyun_fake.push_receipts(url) == 1
    finally:
        stop()
    assert len(refusing.bodies) == 2


# -- Tencent ---------------------------------------------------------------------------------------------


def test_tencent_send_and_query(tencent_fake):
    provider = make_tencent(tencent_fake)
    sent_at = datetime.now(UTC)
    outcomes = provider.send([sms(1), sms(2), sms(3, params={"code": "9999"})])

    assert all(o.accepted for o in outcomes)
    recorded = {m.mobile: m for m in tencent_fake.accepted()}
    assert recorded["13800130003"].reference == "MSG_20260510_0003"
    assert recorded["13800130003"].params == ["9999"]
    assert recorded["13800130001"].reference.startswith("multi.")
    report = provider.query(
        message_id="MSG_20260510_0002", mobile="13800130002", biz_id=outcomes[1].biz_id, sent_at=sent_at
    )
    assert report.success and report.biz_id == outcomes[1].biz_id


def test_tencent_wrong_secret_is_rejected_by_the_fake(tencent_fake):
    with pytest.raises(PermanentProviderError) as caught:
        make_tencent(tencent_fake, secret_key="not-the-key").send([sms(1)])
    assert caught.value.code == "AuthFailure.SignatureFailure"
    assert tencent_fake.accepted() == []


def test_tencent_fake_refuses_a_skewed_clock(tencent_fake):
    provider = make_tencent(tencent_fake, clock=lambda: datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(PermanentProviderError) as caught:
        provider.send([sms(1)])
    assert caught.value.code == "AuthFailure.SignatureExpire"


def test_tencent_fake_refuses_a_body_changed_after_signing(tencent_fake):
    provider = make_tencent(tencent_fake)
    body = b'{"PhoneNumberSet":["+8613800130001"],"SmsSdkAppId":"1400000000","TemplateId":"1"}'
    headers = provider.signed_headers("SendSms", body)
    answer = requests.post(tencent_fake.url, data=body.replace(b"0001", b"0002"), headers=headers, timeout=5)
    assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_tencent_bad_number_is_refused_and_the_others_accepted(tencent_fake):
    outcomes = make_tencent(tencent_fake).send([sms(1), sms(2, mobile="12345678901"), sms(3)])
    assert [o.accepted for o in outcomes] == [True, False, True]
    assert outcomes[1].error_code == "InvalidParameterValue.IncorrectPhoneNumber"
    assert len(tencent_fake.accepted()) == 2


def test_tencent_5xx_injection_is_retryable(tencent_fake):
    tencent_fake.fail_for(0.5, status=500)
    with pytest.raises(RetryableProviderError):
        make_tencent(tencent_fake).send([sms(1)])
    assert tencent_fake.accepted() == []


def test_tencent_receipts_pushed_to_a_receiver_parse_back_by_serial(tencent_fake):
    receiver = ReceiptReceiver({"result": 0, "errmsg": "OK"})
    url, stop = serve_in_thread(receiver)
    try:
        tencent_fake.fail_delivery_for("13800130002", "MK:0005")
        provider = make_tencent(tencent_fake)
        outcomes = provider.send([sms(1), sms(2)])
        assert tencent_fake.push_receipts(url) == 2
    finally:
        stop()
    reports = {r.biz_id: r for body in receiver.bodies for r in provider.parse_receipts(body)}
    assert reports[outcomes[0].biz_id].success and reports[outcomes[0].biz_id].mobile == "13800130001"
    assert not reports[outcomes[1].biz_id].success and reports[outcomes[1].biz_id].error_code == "MK:0005"


# -- Driving a fake over its control endpoints, and as a separate process --------------------------------


def test_control_endpoints_configure_and_inspect_the_fake(tencent_fake):
    control = tencent_fake.url + "__fake__/"
    requests.post(
        control + "config", json={"number_errors": {"13800130001": "LimitExceeded.PhoneNumberDailyLimit"}}
    )
    outcomes = make_tencent(tencent_fake).send([sms(1), sms(2)])
    assert outcomes[0].error_code == "LimitExceeded.PhoneNumberDailyLimit"

    listing = requests.get(control + "messages", timeout=5).json()
    assert listing["count"] == 1 and listing["messages"][0]["mobile"] == "13800130002"
    assert listing["duplicates"] == []

    requests.post(control + "config", json={"fail_next": {"count": 1, "status": 502}}, timeout=5)
    with pytest.raises(RetryableProviderError):
        make_tencent(tencent_fake).send([sms(3)])

    requests.post(control + "reset", timeout=5)
    assert requests.get(control + "messages", timeout=5).json()["count"] == 0


def test_resending_an_accepted_message_shows_up_as_a_duplicate(aliyun_fake):
    provider = make_aliyun(aliyun_fake)
    provider.send([sms(1)])
    provider.send([sms(1)])
    assert aliyun_fake.duplicates() == [("MSG_20260510_0001", "13800130001", 2)]
    listing = requests.get(aliyun_fake.url + "__fake__/messages", timeout=5).json()
    assert listing["duplicates"] == [{"reference": "MSG_20260510_0001", "mobile": "13800130001", "count": 2}]


def test_fake_runs_as_a_process_and_pushes_receipts_on_request():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.aliyun_sms", "--port", "0", "--latency-ms", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    receiver = ReceiptReceiver({"code": 0, "msg": "接收成功"})
    receiver_url, stop_receiver = serve_in_thread(receiver)
    try:
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        provider = AliyunSmsProvider(
            access_key_id=aliyun_sms.ACCESS_KEY_ID,
            access_key_secret=aliyun_sms.ACCESS_KEY_SECRET,
            endpoint=base_url,
        )
        assert provider.send([sms(1)])[0].accepted
        pushed = requests.post(base_url + "__fake__/push-receipts", json={"url": receiver_url}, timeout=5)
        assert pushed.json() == {"pushed": 1}
        [report] = provider.parse_receipts(receiver.bodies[0])
        assert report.out_id == "MSG_20260510_0001"
    finally:
        stop_receiver()
        process.terminate()
        process.wait(timeout=5)
        process.stdout.close()
