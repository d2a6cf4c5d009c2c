"""A protocol-faithful fake of Tencent Cloud SMS 2021-01-11: SendSms, status pulls and status callbacks.

It checks TC3-HMAC-SHA256 the way Tencent does: the canonical request is rebuilt from the headers the client
says it signed and the raw body, the credential scope must match the timestamp's UTC date and the service,
and the timestamp must be within five minutes. Errors are HTTP 200 with {"Response": {"Error": ...}}, numbers
get their own SendStatus. Run it alone with `python -m tests.fakes.tencent_sms --port 9102 --latency-ms 100`.
"""

from __future__ import annotations

import argparse
import hmac
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from sms_service.providers.signing import (
    TC3_ALGORITHM,
    tc3_canonical_request,
    tc3_date,
    tc3_signature,
    tc3_string_to_sign,
)
from tests.fakes.server import run_cli
from tests.fakes.upstream import AcceptedSms, FakeSmsUpstream, json_response, national_number

SECRET_ID = "fake-tencent-secret-id"
SECRET_KEY = "fake-tencent-secret-key"
SDK_APP_ID = "1400000000"


def service_settings(url: str) -> dict[str, str]:
    """The SMS service's settings (without the ``SMS_`` prefix) that send to this fake at ``url``."""
    return {
        "TENCENT_SECRET_ID": SECRET_ID,
        "TENCENT_SECRET_KEY": SECRET_KEY,
        "TENCENT_SDK_APP_ID": SDK_APP_ID,
        "TENCENT_ENDPOINT": url,
    }


API_VERSION = "2021-01-11"
SERVICE = "sms"
MAX_CLOCK_SKEW_SECONDS = 300
MAX_NUMBERS = 200
INCORRECT_NUMBER = "InvalidParameterValue.IncorrectPhoneNumber"
BEIJING = timezone(timedelta(hours=8))
AUTHORIZATION = re.compile(
    rf"^{TC3_ALGORITHM} Credential=(?P<id>[^/]+)/(?P<date>\d{{4}}-\d{{2}}-\d{{2}})/(?P<service>[^/]+)"
    r"/tc3_request, "
    r"SignedHeaders=(?P<headers>[a-z0-9;\-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


class RequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class FakeTencentSms(FakeSmsUpstream):
    def __init__(
        self,
        *,
        credentials: Mapping[str, str] | None = None,
        sdk_app_ids: Iterable[str] = (SDK_APP_ID,),
        **kwargs: Any,
    ):
        self.credentials = dict(credentials or {SECRET_ID: SECRET_KEY})
        self.sdk_app_ids = set(sdk_app_ids)
        super().__init__(**kwargs)

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            self._authenticate(request)
            action = request.headers.get("X-TC-Action", "")
            payload = json.loads(request.get_data() or b"{}")
            if not isinstance(payload, dict):
                raise RequestError("InvalidParameter", "request body must be a JSON object")
            if action == "SendSms":
                body = self._send_sms(payload, request_id)
            elif action == "PullSmsSendStatusByPhoneNumber":
                body = self._pull_status(payload)
            else:
                raise RequestError("InvalidAction", f"The action `{action}` is invalid.")
        except RequestError as exc:
            body = {"Error": {"Code": exc.code, "Message": exc.message}}
        except ValueError:
            body = {"Error": {"Code": "FailedOperation.JsonParseFail", "Message": "body is not valid JSON"}}
        return json_response({"Response": {**body, "RequestId": request_id}})

    def _authenticate(self, request: Request) -> None:
        for header in ("X-TC-Action", "X-TC-Version", "X-TC-Timestamp", "X-TC-Region", "Authorization"):
            if not request.headers.get(header):
                raise RequestError("MissingParameter", f"The request has no `{header}` header.")
        if request.headers["X-TC-Version"] != API_VERSION:
            raise RequestError("NoSuchVersion", "The requested version does not exist.")
        if not request.mimetype == "application/json":
            raise RequestError("InvalidParameter", "Content-Type must be application/json")
        match = AUTHORIZATION.match(request.headers["Authorization"])
        if match is None:
            raise RequestError("AuthFailure.InvalidAuthorization", "Authorization is malformed.")
        secret_key = self.credentials.get(match["id"])
        if secret_key is None:
            raise RequestError("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        try:
            timestamp = int(request.headers["X-TC-Timestamp"])
        except ValueError:
            raise RequestError("InvalidParameter", "X-TC-Timestamp must be an integer.") from None
        if abs(self.clock() - timestamp) > MAX_CLOCK_SKEW_SECONDS:
            raise RequestError("AuthFailure.SignatureExpire", "Signature expired.")
        signed = match["headers"].split(";")
        if "content-type" not in signed or "host" not in signed:
            raise RequestError("AuthFailure.InvalidAuthorization", "content-type and host must be signed.")
        if match["date"] != tc3_date(timestamp) or match["service"] != SERVICE:
            raise RequestError("AuthFailure.SignatureFailure", "The credential scope does not match.")
        headers = {name: request.headers.get(name, "") for name in signed}
        canonical_request, _ = tc3_canonical_request(
            method=request.method,
            canonical_query=request.query_string.decode(),
            headers=headers,
            payload=request.get_data(),
        )
        string_to_sign = tc3_string_to_sign(canonical_request, timestamp=timestamp, service=SERVICE)
        expected = tc3_signature(secret_key, string_to_sign, timestamp=timestamp, service=SERVICE)
        if not hmac.compare_digest(expected, match["signature"]):
            raise RequestError("AuthFailure.SignatureFailure", "The signature does not match.")

    def _send_sms(self, payload: dict[str, Any], request_id: str) -> dict[str, Any]:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not payload.get(name):
                raise RequestError("MissingParameter", f"The request has no `{name}` parameter.")
        if str(payload["SmsSdkAppId"]) not in self.sdk_app_ids:
            raise RequestError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
        numbers = payload["PhoneNumberSet"]
        if not isinstance(numbers, list):
            raise RequestError("InvalidParameter", "PhoneNumberSet must be an array.")
        if len(numbers) > MAX_NUMBERS:
            raise RequestError("LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers in one call")
        template_params = payload.get("TemplateParamSet") or []
        if not isinstance(template_params, list) or not all(isinstance(p, str) for p in template_params):
            raise RequestError("InvalidParameterValue.TemplateParameterFormatError", "params must be strings")
        session_context = payload.get("SessionContext")
        statuses = []
        for raw in numbers:
            mobile = national_number(str(raw))
            code = INCORRECT_NUMBER if mobile is None else self.number_error(mobile)
            if code or mobile is None:
                statuses.append(_send_status(str(raw), "", session_context, code, "refused", fee=0))
                continue
            serial = f"2640:{self.next_serial():019d}"
            self.record(
                reference=session_context,
                mobile=mobile,
                biz_id=serial,
                sign_name=str(payload.get("SignName", "")),
                template_code=str(payload["TemplateId"]),
                params=template_params,
                request_id=request_id,
            )
            statuses.append(_send_status(str(raw), serial, session_context, "Ok", "send success", fee=1))
        return {"SendStatusSet": statuses}

    def _pull_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        if str(payload.get("SmsSdkAppId")) not in self.sdk_app_ids:
            raise RequestError("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId does not exist.")
        mobile = national_number(str(payload.get("PhoneNumber", "")))
        if mobile is None:
            raise RequestError("InvalidParameterValue.IncorrectPhoneNumber", "invalid number")
        try:
            begin = int(payload["BeginTime"])
            end = int(payload.get("EndTime") or self.clock())
            offset, limit = int(payload.get("Offset", 0)), int(payload.get("Limit", 0))
        except (KeyError, TypeError, ValueError):
            raise RequestError("InvalidParameter", "BeginTime, EndTime, Offset, Limit: integers.") from None
        if not 0 < limit <= 100 or offset < 0:
            raise RequestError("InvalidParameterValue", "Limit must be 1..100.")
        statuses = [
            _pull_status(m)
            for m in self.accepted()
            if m.mobile == mobile and begin <= m.accepted_at <= end + 1 and self.delivered(m)
        ]
        return {"PullSmsSendStatusSet": statuses[offset : offset + limit]}

    def injected_failure(self, status: int) -> Response:
        body = {
            "Error": {"Code": "InternalError", "Message": "injected failure"},
            "RequestId": str(uuid.uuid4()),
        }
        return json_response({"Response": body}, status=status)

    def receipt(self, message: AcceptedSms) -> dict[str, Any]:
        success = message.delivery_error is None
        return {
            "user_receive_time": _beijing_text(message.accepted_at + 1),
            "nationcode": "86",
            "mobile": message.mobile,
            "report_status": "SUCCESS" if success else "FAIL",
            "errmsg": "DELIVRD" if success else message.delivery_error,
            "description": "用户短信送达成功" if success else "用户短信接收失败",
            "sid": message.biz_id,
        }

    def receipt_acknowledged(self, response: requests.Response) -> bool:
        """Tencent wants {"result": 0, "errmsg": "OK"}."""
        if response.status_code != 200:
            return False
        try:
            return response.json().get("result") == 0
        except ValueError:
            return False


def _send_status(
    number: str, serial: str, session_context: Any, code: str | None, message: str, *, fee: int
) -> dict[str, Any]:
    return {
        "SerialNo": serial,
        "PhoneNumber": number,
        "Fee": fee,
        "SessionContext": session_context or "",
        "Code": code,
        "Message": message,
        "IsoCode": "CN",
    }


def _pull_status(message: AcceptedSms) -> dict[str, Any]:
    success = message.delivery_error is None
    return {
        "UserReceiveTime": int(message.accepted_at) + 1,
        "CountryCode": "86",
        "SubscriberNumber": message.mobile,
        "PhoneNumber": f"+86{message.mobile}",
        "SerialNo": message.biz_id,
        "ReportStatus": "SUCCESS" if success else "FAIL",
        "Description": "DELIVRD" if success else message.delivery_error,
        "SessionContext": message.reference or "",
    }


def _beijing_text(unix: float) -> str:
    return datetime.fromtimestamp(unix, BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _build(args: argparse.Namespace) -> FakeTencentSms:
    credentials = {args.credential_id: args.credential_secret} if args.credential_id else None
    return FakeTencentSms(credentials=credentials, latency_ms=args.latency_ms)


if __name__ == "__main__":
    run_cli(_build, "Fake Tencent Cloud SMS upstream")
