"""Aliyun SMS (dysmsapi 2017-05-25): SendSms, SendBatchSms, QuerySendDetails and the SmsReport push.

Calls are form-encoded POSTs signed with the RPC signature v1 (HMAC-SHA1). SendSms is not idempotent, and
Alibaba asks callers to check receipts after a timeout rather than resend: hence `OutcomeUnknownError`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import requests

from sms_service.providers.base import (
    CHINA_STANDARD_TIME,
    MULTI_MESSAGE_REFERENCE_PREFIX,
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
from sms_service.providers.signing import aliyun_rpc_signature

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"

# Codes that refuse one number or one message's variables, not the call: a single send reports them as that
# message's outcome, and a batch refused with one of them is resent message by message so the others go out.
# BUSINESS_LIMIT_CONTROL is the per-number minute/hour/day frequency limit: final for that number, not
# something to retry minutes later on our side (the service's own per-mobile limits should catch it first).
PER_MESSAGE_CODES = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.BUSINESS_LIMIT_CONTROL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.INVALID_JSON_PARAM",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.DENY_IP_RANGE",
    }
)

# Failures of Aliyun's platform or throttling of the whole account/API: the next attempt may well succeed.
# SignatureNonceUsed is retryable because every attempt signs with a fresh nonce.
RETRYABLE_CODES = frozenset(
    {
        "isp.SYSTEM_ERROR",
        "isp.GATEWAY_ERROR",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "Throttling.User",
        "Throttling.Api",
        "SignatureNonceUsed",
    }
)
# Anything else that is not "OK" (SignatureDoesNotMatch, InvalidAccessKeyId.*, isv.SMS_SIGNATURE_ILLEGAL,
# isv.SMS_TEMPLATE_ILLEGAL, isv.AMOUNT_NOT_ENOUGH, isv.OUT_OF_SERVICE, isv.DAY_LIMIT_CONTROL, ...) refuses the
# whole call for a reason that retrying will not fix, and unknown codes are treated the same way: failing
# over is safe, repeating an unexplained refusal is not useful.

SEND_STATUS_WAITING = 1
SEND_STATUS_FAILED = 2
SEND_STATUS_DELIVERED = 3


class AliyunSmsProvider(SmsProvider):
    name = "aliyun"
    max_batch = 100  # SendBatchSms limit

    def __init__(
        self,
        *,
        access_key_id: str,
        access_key_secret: str,
        endpoint: str = DEFAULT_ENDPOINT,
        region_id: str = "cn-hangzhou",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self.endpoint = endpoint
        self.region_id = region_id
        self._clock = clock

    def send(self, messages: list[OutgoingSms]) -> list[SendOutcome]:
        return self._send_in_calls(messages, self._calls(messages), self._send_call)

    def call_references(self, messages: list[OutgoingSms]) -> dict[str, str]:
        return references_of(self._calls(messages))

    def _calls(self, messages: list[OutgoingSms]) -> list[list[OutgoingSms]]:
        """The upstream calls `send` makes: one template per call, at most `max_batch` distinct numbers."""
        by_template: dict[str, list[OutgoingSms]] = {}
        for message in messages:
            by_template.setdefault(message.template_code, []).append(message)
        return [
            call for group in by_template.values() for call in chunk_distinct_mobiles(group, self.max_batch)
        ]

    def _send_call(self, call: list[OutgoingSms]) -> list[SendOutcome] | Split:
        if len(call) == 1:
            return [self._send_sms(call[0])]
        return self._send_batch_sms(call)

    def _send_sms(self, message: OutgoingSms) -> SendOutcome:
        body = self._call(
            "SendSms",
            {
                "PhoneNumbers": message.mobile,
                "SignName": message.sign_name,
                "TemplateCode": message.template_code,
                "TemplateParam": _json(message.params),
                "OutId": message.message_id,
            },
            mobiles=[message.mobile],
        )
        code, req_id = body.get("Code"), body.get("RequestId")
        if code == "OK":
            return accepted(message, req_id=req_id, biz_id=body.get("BizId"))
        if code in PER_MESSAGE_CODES:
            return refused(message, code, body.get("Message", ""), req_id=req_id)
        raise self._refusal(body)

    def _send_batch_sms(self, call: list[OutgoingSms]) -> list[SendOutcome] | Split:
        body = self._call(
            "SendBatchSms",
            {
                "PhoneNumberJson": _json([m.mobile for m in call]),
                "SignNameJson": _json([m.sign_name for m in call]),
                "TemplateCode": call[0].template_code,
                "TemplateParamJson": _json([m.params for m in call]),
                "OutId": call_reference(call),
            },
            mobiles=[m.mobile for m in call],
        )
        code, req_id = body.get("Code"), body.get("RequestId")
        if code == "OK":
            return [accepted(m, req_id=req_id, biz_id=body.get("BizId")) for m in call]
        if code in PER_MESSAGE_CODES:
            return Split([[message] for message in call])
        raise self._refusal(body)

    def query(
        self,
        *,
        message_id: str,
        mobile: str,
        biz_id: str | None,
        sent_at: datetime,
        reference: str | None = None,
    ) -> DeliveryReport | None:
        """QuerySendDetails for one number on the (Beijing) day it was sent, narrowed by BizId when known.

        A batch's BizId and OutId are shared by its numbers, so the row is picked by number too. Without a
        BizId the row's OutId must be the message id or the call's `reference`.
        """
        out_ids = {message_id, reference} - {None}
        params = {
            "PhoneNumber": mobile,
            "SendDate": as_utc(sent_at).astimezone(CHINA_STANDARD_TIME).strftime("%Y%m%d"),
            "PageSize": "50",
            "CurrentPage": "1",
        }
        if biz_id:
            params["BizId"] = biz_id
        body = self._call("QuerySendDetails", params, mobiles=[mobile])
        if body.get("Code") != "OK":
            raise self._refusal(body)
        details = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
        for detail in details:
            if national_mobile(str(detail.get("PhoneNum", ""))) != mobile:
                continue
            if biz_id is None and detail.get("OutId") not in out_ids:
                continue
            status = int(detail.get("SendStatus", SEND_STATUS_WAITING))
            if status == SEND_STATUS_WAITING:
                return None
            success = status == SEND_STATUS_DELIVERED
            return DeliveryReport(
                provider=self.name,
                biz_id=biz_id,
                mobile=mobile,
                success=success,
                error_code=None if success else detail.get("ErrCode"),
                error_message=None if success else detail.get("ErrCode"),
                reported_at=parse_china_time(detail.get("ReceiveDate")),
                # Without a BizId the row was matched by reference and number: it is this message's.
                out_id=message_id if biz_id is None else _message_reference(detail.get("OutId")),
            )
        return None

    def parse_receipts(self, payload: Any) -> list[DeliveryReport]:
        """SmsReport push: a JSON array of {phone_number, success, err_code, err_msg, biz_id, out_id, ...}."""
        items = decode_json_array(payload)
        reports = []
        for item in items:
            if not isinstance(item, dict) or "phone_number" not in item or "success" not in item:
                raise ValueError("not an Aliyun SmsReport item")
            success = item["success"] in (True, "true")
            reports.append(
                DeliveryReport(
                    provider=self.name,
                    biz_id=item.get("biz_id"),
                    mobile=national_mobile(str(item["phone_number"])),
                    success=success,
                    error_code=None if success else item.get("err_code"),
                    error_message=None if success else item.get("err_msg"),
                    reported_at=parse_china_time(item.get("report_time")),
                    out_id=_message_reference(item.get("out_id")),
                    reference=str(item.get("out_id") or "") or None,
                )
            )
        return reports

    def signed_params(self, action: str, params: dict[str, str]) -> dict[str, str]:
        """The request form: the action's parameters, the common ones and the signature over all of them."""
        form = {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            **params,
        }
        form["Signature"] = aliyun_rpc_signature("POST", form, self._access_key_secret)
        return form

    def _call(self, action: str, params: dict[str, str], *, mobiles: list[str]) -> dict[str, Any]:
        response = self._post(action, self.endpoint, data=self.signed_params(action, params), mobiles=mobiles)
        try:
            body = response.json()
        except requests.JSONDecodeError as exc:
            raise RetryableProviderError(
                f"HTTP{response.status_code}", "response is not JSON", provider=self.name
            ) from exc
        if not isinstance(body, dict) or "Code" not in body:
            raise RetryableProviderError(
                f"HTTP{response.status_code}", "response has no Code", provider=self.name
            )
        return body

    def _refusal(self, body: dict[str, Any]) -> PermanentProviderError | RetryableProviderError:
        code = str(body.get("Code"))
        # SignatureDoesNotMatch quotes the server's string to sign, which holds the phone numbers: drop it.
        message = str(body.get("Message", "")).split(" server string to sign is:")[0]
        return self._call_error(code, message, body.get("RequestId"), retryable=code in RETRYABLE_CODES)


def _json(value: Any) -> str:
    """Compact JSON that keeps Chinese as UTF-8, as Aliyun's own SDKs send template parameters."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _message_reference(out_id: Any) -> str | None:
    """The OutId as our message id, unless it is the reference of a multi-message call."""
    if not out_id or str(out_id).startswith(MULTI_MESSAGE_REFERENCE_PREFIX):
        return None
    return str(out_id)
