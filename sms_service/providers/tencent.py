"""Tencent Cloud SMS (API 2021-01-11): SendSms, PullSmsSendStatusByPhoneNumber and the status callback.

Calls are JSON POSTs signed with TC3-HMAC-SHA256. One SendSms call carries up to 200 numbers but a single
TemplateParamSet, so only messages with identical sign name, template and variables share a call. Each number
gets its own SendStatus and SerialNo, which is what receipts quote back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from sms_service.providers.base import (
    DeliveryReport,
    OutgoingSms,
    PermanentProviderError,
    RetryableProviderError,
    SendOutcome,
    SmsProvider,
    Split,
    accepted,
    as_utc,
    call_reference,
    chunk_distinct_mobiles,
    decode_json_array,
    national_mobile,
    parse_china_time,
    references_of,
    refused,
)
from sms_service.providers.signing import tc3_authorization

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com/"
DEFAULT_REGION = "ap-guangzhou"
API_VERSION = "2021-01-11"
SERVICE = "sms"
CONTENT_TYPE = "application/json; charset=utf-8"

# Whole-call errors worth retrying: Tencent's internal failures and throttling of the API or the account's
# request rate. Clock problems (InternalError.RequestTimeException, AuthFailure.SignatureExpire) are not here:
# the next request would carry the same clock; nor is InternalError.RestApiInterfaceNotExist, an interface
# that does not exist (a wrong endpoint or action), which no retry mends.
RETRYABLE_CODES = frozenset(
    {
        "InternalError",
        "InternalError.Timeout",
        "InternalError.OtherError",
        "InternalError.SendAndRecvFail",
        "RequestLimitExceeded",
        "RequestLimitExceeded.GlobalRegionUinLimitExceeded",
        "RequestLimitExceeded.UinLimitExceeded",
        "ResourceUnavailable",
    }
)

# Whole-call errors that blame one number or the call's variables. Tencent normally reports numbers in
# SendStatusSet; if a multi-number call is refused outright with one of these, it is resent number by number.
PER_MESSAGE_CODES = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberParseFail",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "FailedOperation.ContainSensitiveWord",
        "LimitExceeded.DeliveryFrequencyLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.PhoneNumberThirtySecondLimit",
    }
)
# Everything else (AuthFailure.*, FailedOperation.SignatureIncorrectOrUnapproved,
# FailedOperation.TemplateIncorrectOrUnapproved, FailedOperation.InsufficientBalanceInSmsPackage,
# LimitExceeded.AppDailyLimit, LimitExceeded.PhoneNumberCountLimit, unknown codes) refuses the call for good.

MAX_NUMBERS_PER_CALL = 200
QUERY_WINDOW = timedelta(days=7)  # PullSmsSendStatusByPhoneNumber looks back at most 7 days
QUERY_SLACK = timedelta(minutes=5)  # our sent_at and Tencent's clock differ a little


class TencentSmsProvider(SmsProvider):
    name = "tencent"
    max_batch = MAX_NUMBERS_PER_CALL

    def __init__(
        self,
        *,
        secret_id: str,
        secret_key: str,
        sdk_app_id: str,
        region: str = DEFAULT_REGION,
        endpoint: str = DEFAULT_ENDPOINT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.region = region
        self.endpoint = endpoint
        self.host = urlsplit(endpoint).netloc
        self._clock = clock

    def send(self, messages: list[OutgoingSms]) -> list[SendOutcome]:
        return self._send_in_calls(messages, self._calls(messages), self._send_call)

    def call_references(self, messages: list[OutgoingSms]) -> dict[str, str]:
        return references_of(self._calls(messages))

    def _calls(self, messages: list[OutgoingSms]) -> list[list[OutgoingSms]]:
        """The upstream calls `send` makes: identical sign, template and variables, distinct numbers."""
        same_content: dict[tuple[str, str, tuple[str, ...]], list[OutgoingSms]] = {}
        for message in messages:
            key = (message.sign_name, message.template_code, tuple(message.params.values()))
            same_content.setdefault(key, []).append(message)
        return [
            call
            for group in same_content.values()
            for call in chunk_distinct_mobiles(group, MAX_NUMBERS_PER_CALL)
        ]

    def _send_call(self, call: list[OutgoingSms]) -> list[SendOutcome] | Split:
        first = call[0]
        reference = call_reference(call)
        response = self._call(
            "SendSms",
            {
                "PhoneNumberSet": [f"+86{m.mobile}" for m in call],
                "SmsSdkAppId": self.sdk_app_id,
                "SignName": first.sign_name,
                "TemplateId": first.template_code,
                "TemplateParamSet": [str(value) for value in first.params.values()],
                "SessionContext": reference,
            },
            mobiles=[m.mobile for m in call],
        )
        req_id = response.get("RequestId")
        error = response.get("Error")
        if error:
            code = str(error.get("Code"))
            if code in PER_MESSAGE_CODES:
                if len(call) > 1:
                    return Split([[message] for message in call])
                return [refused(first, code, str(error.get("Message", "")), req_id=req_id)]
            raise self._refusal(error, req_id)

        statuses = {
            national_mobile(str(status.get("PhoneNumber", ""))): status
            for status in response.get("SendStatusSet") or []
        }
        outcomes = []
        for message in call:
            status = statuses.get(message.mobile)
            if status is None:
                # Tencent answered without this number: treat it as not sent rather than guess.
                outcomes.append(
                    refused(
                        message,
                        "MissingSendStatus",
                        "no status for this number",
                        req_id=req_id,
                        retryable=True,
                    )
                )
            elif status.get("Code") == "Ok":
                outcomes.append(accepted(message, req_id=req_id, biz_id=status.get("SerialNo")))
            else:
                code = str(status.get("Code"))
                outcomes.append(
                    refused(
                        message,
                        code,
                        str(status.get("Message", "")),
                        req_id=req_id,
                        retryable=code in RETRYABLE_CODES,
                    )
                )
        return outcomes

    def query(
        self,
        *,
        message_id: str,
        mobile: str,
        biz_id: str | None,
        sent_at: datetime,
        reference: str | None = None,
    ) -> DeliveryReport | None:
        """The receipt for `biz_id` (the SerialNo) among the number's statuses since the send.

        PullSmsSendStatusByPhoneNumber is used rather than PullSmsSendStatus because the latter hands each
        status out once to whoever pulls first, which would steal receipts from the callback and from other
        workers; the per-number pull can be repeated safely. Without a SerialNo the message is matched by its
        SessionContext: our message id for single-message calls, the call's `reference` for multi-number ones
        (shared by the call's numbers, but the pull is for this number only).
        """
        contexts = {message_id, reference} - {None}
        begin = as_utc(sent_at) - QUERY_SLACK
        end = min(begin + QUERY_WINDOW, self._clock())
        response = self._call(
            "PullSmsSendStatusByPhoneNumber",
            {
                "BeginTime": int(begin.timestamp()),
                "EndTime": int(end.timestamp()),
                "Offset": 0,
                "Limit": 100,
                "PhoneNumber": f"+86{mobile}",
                "SmsSdkAppId": self.sdk_app_id,
            },
            mobiles=[mobile],
        )
        error = response.get("Error")
        if error:
            raise self._refusal(error, response.get("RequestId"))
        for status in response.get("PullSmsSendStatusSet") or []:
            matches = status.get("SerialNo") == biz_id if biz_id else status.get("SessionContext") in contexts
            if not matches:
                continue
            success = status.get("ReportStatus") == "SUCCESS"
            received = status.get("UserReceiveTime")
            return DeliveryReport(
                provider=self.name,
                biz_id=status.get("SerialNo"),
                mobile=mobile,
                success=success,
                error_code=None if success else status.get("Description"),
                error_message=None if success else status.get("Description"),
                reported_at=datetime.fromtimestamp(int(received), UTC) if received else None,
                # Without a SerialNo the status was matched by reference on this number: it is this message's.
                out_id=message_id if not biz_id or status.get("SessionContext") == message_id else None,
            )
        return None

    def parse_receipts(self, payload: Any) -> list[DeliveryReport]:
        """Status callback: a JSON array of {mobile, report_status, errmsg, description, sid, ...}.

        The callback does not echo SessionContext, so receipts are matched by `sid` (the SerialNo, stored as
        the message's biz_id); `out_id` is always None here.
        """
        reports = []
        for item in decode_json_array(payload):
            if not isinstance(item, dict) or "report_status" not in item or "mobile" not in item:
                raise ValueError("not a Tencent SMS status callback item")
            success = item["report_status"] == "SUCCESS"
            reports.append(
                DeliveryReport(
                    provider=self.name,
                    biz_id=item.get("sid"),
                    mobile=national_mobile(str(item["mobile"])),
                    success=success,
                    error_code=None if success else item.get("errmsg"),
                    error_message=None if success else item.get("description"),
                    reported_at=parse_china_time(item.get("user_receive_time")),
                )
            )
        return reports

    def signed_headers(self, action: str, body: bytes) -> dict[str, str]:
        """The request headers, Authorization signing content-type and host over the exact body bytes."""
        timestamp = int(self._clock().timestamp())
        signed = {"Content-Type": CONTENT_TYPE, "Host": self.host}
        authorization = tc3_authorization(
            secret_id=self.secret_id,
            secret_key=self._secret_key,
            service=SERVICE,
            timestamp=timestamp,
            headers=signed,
            payload=body,
        )
        return {
            **signed,
            "Authorization": authorization,
            "X-TC-Action": action,
            "X-TC-Version": API_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.region,
        }

    def _call(self, action: str, params: dict[str, Any], *, mobiles: list[str]) -> dict[str, Any]:
        body = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        response = self._post(
            action, self.endpoint, data=body, headers=self.signed_headers(action, body), mobiles=mobiles
        )
        try:
            document = response.json()
        except requests.JSONDecodeError as exc:
            raise RetryableProviderError(
                f"HTTP{response.status_code}", "response is not JSON", provider=self.name
            ) from exc
        inner = document.get("Response") if isinstance(document, dict) else None
        if not isinstance(inner, dict):
            raise RetryableProviderError(
                f"HTTP{response.status_code}", "response has no Response object", provider=self.name
            )
        return inner

    def _refusal(
        self, error: dict[str, Any], req_id: str | None
    ) -> PermanentProviderError | RetryableProviderError:
        code = str(error.get("Code"))
        return self._call_error(
            code, str(error.get("Message", "")), req_id, retryable=code in RETRYABLE_CODES
        )
