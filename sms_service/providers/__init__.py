"""SMS upstreams behind one interface, and `build_providers` to make them from the service's settings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sms_service.providers import aliyun, tencent
from sms_service.providers.aliyun import AliyunSmsProvider
from sms_service.providers.base import (
    DEFAULT_READ_TIMEOUT_SECONDS,
    DeliveryReport,
    OutcomeUnknownError,
    OutgoingSms,
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
    SendOutcome,
    SmsProvider,
)
from sms_service.providers.sandbox import SandboxSmsProvider
from sms_service.providers.tencent import TencentSmsProvider

__all__ = [
    "AliyunSmsProvider",
    "DeliveryReport",
    "OutcomeUnknownError",
    "OutgoingSms",
    "PermanentProviderError",
    "ProviderError",
    "RetryableProviderError",
    "SandboxSmsProvider",
    "SendOutcome",
    "SmsProvider",
    "TencentSmsProvider",
    "build_providers",
]


def build_providers(names: list[str], settings: Mapping[str, Any]) -> list[SmsProvider]:
    """The providers named, in failover order, configured from `SMS_*` settings.

    Raises ValueError naming the first missing or malformed setting, or an unknown provider name.
    """
    builders: dict[str, Callable[[Mapping[str, Any], float], SmsProvider]] = {
        "aliyun": _aliyun,
        "tencent": _tencent,
        "sandbox": _sandbox,
    }
    read_timeout = _number(settings, "SMS_PROVIDER_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS)
    if read_timeout <= 0:
        raise ValueError("SMS_PROVIDER_TIMEOUT_SECONDS must be greater than zero")
    providers = []
    for name in names:
        builder = builders.get(name.strip().lower())
        if builder is None:
            raise ValueError(f"unknown SMS provider {name!r}: expected one of {', '.join(builders)}")
        providers.append(builder(settings, read_timeout))
    return providers


def _aliyun(settings: Mapping[str, Any], read_timeout: float) -> SmsProvider:
    return AliyunSmsProvider(
        access_key_id=_required(settings, "SMS_ALIYUN_ACCESS_KEY_ID"),
        access_key_secret=_required(settings, "SMS_ALIYUN_ACCESS_KEY_SECRET"),
        endpoint=settings.get("SMS_ALIYUN_ENDPOINT") or aliyun.DEFAULT_ENDPOINT,
        read_timeout=read_timeout,
    )


def _tencent(settings: Mapping[str, Any], read_timeout: float) -> SmsProvider:
    return TencentSmsProvider(
        secret_id=_required(settings, "SMS_TENCENT_SECRET_ID"),
        secret_key=_required(settings, "SMS_TENCENT_SECRET_KEY"),
        sdk_app_id=_required(settings, "SMS_TENCENT_SDK_APP_ID"),
        region=settings.get("SMS_TENCENT_REGION") or tencent.DEFAULT_REGION,
        endpoint=settings.get("SMS_TENCENT_ENDPOINT") or tencent.DEFAULT_ENDPOINT,
        read_timeout=read_timeout,
    )


def _sandbox(settings: Mapping[str, Any], read_timeout: float) -> SmsProvider:
    return SandboxSmsProvider(
        delay_ms=int(_number(settings, "SMS_SANDBOX_DELAY_MS", 0)), read_timeout=read_timeout
    )


def _required(settings: Mapping[str, Any], key: str) -> str:
    value = settings.get(key)
    if value is None or not str(value).strip():
        raise ValueError(f"{key} must be set to use this SMS provider")
    return str(value).strip()


def _number(settings: Mapping[str, Any], key: str, default: float) -> float:
    value = settings.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{key} must be a number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{key} must not be negative, got {value!r}")
    return number
