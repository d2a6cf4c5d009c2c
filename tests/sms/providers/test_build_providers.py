from datetime import timedelta

import pytest

from sms_service.providers import AliyunSmsProvider, TencentSmsProvider, build_providers

FULL_SETTINGS = {
    "SMS_ALIYUN_ACCESS_KEY_ID": "ak",
    "SMS_ALIYUN_ACCESS_KEY_SECRET": "sk",
    "SMS_TENCENT_SECRET_ID": "sid",
    "SMS_TENCENT_SECRET_KEY": "skey",
    "SMS_TENCENT_SDK_APP_ID": "1400000001",
    "SMS_SANDBOX_DELAY_MS": "250",
    "SMS_PROVIDER_TIMEOUT_SECONDS": "4",
}


def test_build_providers_in_the_order_given_with_defaults():
    aliyun, tencent, sandbox = build_providers(["aliyun", "tencent", "sandbox"], FULL_SETTINGS)
    assert isinstance(aliyun, AliyunSmsProvider) and aliyun.endpoint == "https://dysmsapi.aliyuncs.com/"
    assert isinstance(tencent, TencentSmsProvider)
    assert (tencent.endpoint, tencent.region) == ("https://sms.tencentcloudapi.com/", "ap-guangzhou")
    assert sandbox.delay == timedelta(milliseconds=250)
    assert aliyun.timeout == (3.0, 4.0)


def test_build_providers_uses_configured_endpoints():
    settings = {**FULL_SETTINGS, "SMS_ALIYUN_ENDPOINT": "http://127.0.0.1:9101/"}
    [aliyun] = build_providers(["aliyun"], settings)
    assert aliyun.endpoint == "http://127.0.0.1:9101/"


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("aliyun", "SMS_ALIYUN_ACCESS_KEY_SECRET"),
        ("tencent", "SMS_TENCENT_SDK_APP_ID"),
    ],
)
def test_build_providers_names_the_missing_setting(name, missing):
    settings = {key: value for key, value in FULL_SETTINGS.items() if key != missing}
    with pytest.raises(ValueError, match=missing):
        build_providers([name], settings)


def test_build_providers_rejects_unknown_names_and_bad_numbers():
    with pytest.raises(ValueError, match="unknown SMS provider 'twilio'"):
        build_providers(["twilio"], FULL_SETTINGS)
    with pytest.raises(ValueError, match="SMS_PROVIDER_TIMEOUT_SECONDS"):
        build_providers(["sandbox"], {"SMS_PROVIDER_TIMEOUT_SECONDS": "soon"})


def test_sandbox_needs_no_settings():
    [sandbox] = build_providers(["sandbox"], {})
    assert sandbox.delay == timedelta(0)
