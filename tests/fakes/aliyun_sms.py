"""A protocol-faithful fake of Aliyun dysmsapi 2017-05-25: SendSms, SendBatchSms, QuerySendDetails, SmsReport.

It checks the RPC signature the way Aliyun does (recomputed from the decoded parameters, HMAC-SHA1 with the
secret + "&"), refuses a reused SignatureNonce or a stale Timestamp, and validates parameters with Aliyun's
codes. Run it alone with `python -m tests.fakes.aliyun_sms --port 9101 --latency-ms 100`.
"""

from __future__ import annotations

import argparse
import hmac
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from sms_service.providers.signing import aliyun_rpc_signature, aliyun_string_to_sign
from tests.fakes.server import run_cli
from tests.fakes.upstream import AcceptedSms, FakeSmsUpstream, json_response, national_number

ACCESS_KEY_ID = "fake-aliyun-access-key-id"
ACCESS_KEY_SECRET = "fake-aliyun-access-key-secret"


def service_settings(url: str) -> dict[str, str]:
    """The SMS service's settings (without the ``SMS_`` prefix) that send to this fake at ``url``."""
    return {
        "ALIYUN_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "ALIYUN_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "ALIYUN_ENDPOINT": url,
    }


API_VERSION = "2017-05-25"
TIMESTAMP_TOLERANCE = timedelta(minutes=15)
MAX_NUMBERS_SEND_SMS = 1000
MAX_NUMBERS_BATCH = 100
BEIJING = timezone(timedelta(hours=8))
COMMON_PARAMETERS = (
    "AccessKeyId",
    "Action",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Timestamp",
    "Version",
)


class FakeAliyunSms(FakeSmsUpstream):
    def __init__(self, *, credentials: Mapping[str, str] | None = None, **kwargs: Any):
        self.credentials = dict(credentials or {ACCESS_KEY_ID: ACCESS_KEY_SECRET})
        self._nonces: dict[str, float] = {}
        self.queries = 0  # QuerySendDetails calls answered
        super().__init__(**kwargs)

    def handle(self, request: Request) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        request_id = str(uuid.uuid4()).upper()
        refusal = self._authenticate(request.method, params, request_id)
        if refusal is not None:
            return refusal
        action = params["Action"]
        if action == "SendSms":
            return self._send_sms(params, request_id)
        if action == "SendBatchSms":
            return self._send_batch_sms(params, request_id)
        if action == "QuerySendDetails":
            return self._query_send_details(params, request_id)
        return _error("InvalidAction.NotFound", f"Specified api is not found: {action}", request_id, 404)

    def _authenticate(self, method: str, params: dict[str, str], request_id: str) -> Response | None:
        for name in COMMON_PARAMETERS:
            if not params.get(name):
                return _error("MissingParameter", f"{name} is mandatory for this action.", request_id, 400)
        if params["Version"] != API_VERSION:
            return _error("InvalidVersion", "Specified parameter Version is not valid.", request_id, 400)
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return _error(
                "InvalidSignatureMethod", "Specified signature method is not valid.", request_id, 400
            )
        secret = self.credentials.get(params["AccessKeyId"])
        if secret is None:
            return _error(
                "InvalidAccessKeyId.NotFound", "Specified access key is not found.", request_id, 404
            )
        expected = aliyun_rpc_signature(method, params, secret)
        if not hmac.compare_digest(expected, params["Signature"]):
            return _error(
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + aliyun_string_to_sign(method, params),
                request_id,
                400,
            )
        try:
            timestamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _error("InvalidTimeStamp.Format", "Specified time stamp is not valid.", request_id, 400)
        now = datetime.fromtimestamp(self.clock(), UTC)
        if abs(now - timestamp) > TIMESTAMP_TOLERANCE:
            return _error(
                "InvalidTimeStamp.Expired", "Specified time stamp or date has expired.", request_id, 400
            )
        if not self._claim_nonce(params["SignatureNonce"]):
            return _error(
                "SignatureNonceUsed", "Specified signature nonce was used already.", request_id, 400
            )
        return None

    def _claim_nonce(self, nonce: str) -> bool:
        """A nonce is good once within the timestamp window; older ones are forgotten as the window moves."""
        now = self.clock()
        with self._lock:
            if len(self._nonces) > 100_000:
                horizon = now - 2 * TIMESTAMP_TOLERANCE.total_seconds()
                self._nonces = {n: t for n, t in self._nonces.items() if t > horizon}
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now
            return True

    def _send_sms(self, params: dict[str, str], request_id: str) -> Response:
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return _error("MissingParameter", f"{name} is mandatory for this action.", request_id, 400)
        raw_numbers = params["PhoneNumbers"].split(",")
        if len(raw_numbers) > MAX_NUMBERS_SEND_SMS:
            return _business_error("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制", request_id)
        template_params: Any = {}
        if params.get("TemplateParam"):
            template_params = _json_or_none(params["TemplateParam"])
            if not isinstance(template_params, dict):
                return _business_error("isv.INVALID_JSON_PARAM", "JSON参数不合法", request_id)
        mobiles = []
        for raw in raw_numbers:
            mobile = national_number(raw.strip())
            if mobile is None:
                return _business_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", request_id)
            if code := self.number_error(mobile):
                return _business_error(code, "号码被拒绝", request_id)
            mobiles.append(mobile)
        biz_id = self._biz_id()
        for mobile in mobiles:
            self.record(
                reference=params.get("OutId"),
                mobile=mobile,
                biz_id=biz_id,
                sign_name=params["SignName"],
                template_code=params["TemplateCode"],
                params=template_params,
                request_id=request_id,
            )
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

    def _send_batch_sms(self, params: dict[str, str], request_id: str) -> Response:
        for name in ("PhoneNumberJson", "SignNameJson", "TemplateCode"):
            if not params.get(name):
                return _error("MissingParameter", f"{name} is mandatory for this action.", request_id, 400)
        numbers = _json_or_none(params["PhoneNumberJson"])
        sign_names = _json_or_none(params["SignNameJson"])
        template_params = _json_or_none(params.get("TemplateParamJson") or "null")
        if not isinstance(numbers, list) or not isinstance(sign_names, list):
            return _business_error("isv.INVALID_JSON_PARAM", "JSON参数不合法", request_id)
        if len(numbers) > MAX_NUMBERS_BATCH:
            return _business_error("isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制", request_id)
        if len(sign_names) != len(numbers) or (
            template_params is not None
            and (not isinstance(template_params, list) or len(template_params) != len(numbers))
        ):
            return _business_error("isv.INVALID_PARAMETERS", "参数异常", request_id)
        mobiles = []
        for raw in numbers:
            mobile = national_number(str(raw))
            if mobile is None:
                return _business_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", request_id)
            if code := self.number_error(mobile):
                return _business_error(code, "号码被拒绝", request_id)
            mobiles.append(mobile)
        biz_id = self._biz_id()
        for index, mobile in enumerate(mobiles):
            self.record(
                reference=params.get("OutId"),
                mobile=mobile,
                biz_id=biz_id,
                sign_name=str(sign_names[index]),
                template_code=params["TemplateCode"],
                params=template_params[index] if template_params else {},
                request_id=request_id,
            )
        return json_response({"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id})

    def _query_send_details(self, params: dict[str, str], request_id: str) -> Response:
        with self._lock:
            self.queries += 1
        mobile = national_number(params.get("PhoneNumber", ""))
        if mobile is None:
            return _business_error("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", request_id)
        send_date = params.get("SendDate", "")
        try:
            datetime.strptime(send_date, "%Y%m%d")
            page_size, page = int(params.get("PageSize", "")), int(params.get("CurrentPage", ""))
        except ValueError:
            return _business_error("isv.INVALID_PARAMETERS", "参数异常", request_id)
        if not 1 <= page_size <= 50 or page < 1:
            return _business_error("isv.INVALID_PARAMETERS", "参数异常", request_id)
        matching = [
            m
            for m in self.accepted()
            if m.mobile == mobile
            and _beijing(m.accepted_at).strftime("%Y%m%d") == send_date
            and (not params.get("BizId") or m.biz_id == params["BizId"])
        ]
        page_items = matching[(page - 1) * page_size : page * page_size]
        return json_response(
            {
                "Code": "OK",
                "Message": "OK",
                "RequestId": request_id,
                "TotalCount": len(matching),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": [self._detail(m) for m in page_items]},
            }
        )

    def _detail(self, message: AcceptedSms) -> dict[str, Any]:
        delivered = self.delivered(message)
        if not delivered:
            status, code, receive_date = 1, "", ""
        elif message.delivery_error:
            status, code, receive_date = 2, message.delivery_error, _beijing_text(message.accepted_at + 1)
        else:
            status, code, receive_date = 3, "DELIVERED", _beijing_text(message.accepted_at + 1)
        return {
            "PhoneNum": message.mobile,
            "SendStatus": status,
            "ErrCode": code,
            "TemplateCode": message.template_code,
            "Content": f"【{message.sign_name}】{json.dumps(message.params, ensure_ascii=False)}",
            "SendDate": _beijing_text(message.accepted_at),
            "ReceiveDate": receive_date,
            "OutId": message.reference or "",
        }

    def injected_failure(self, status: int) -> Response:
        return _error("isp.SYSTEM_ERROR", "injected failure", str(uuid.uuid4()).upper(), status)

    def receipt(self, message: AcceptedSms) -> dict[str, Any]:
        return {
            "phone_number": message.mobile,
            "send_time": _beijing_text(message.accepted_at),
            "report_time": _beijing_text(message.accepted_at + 1),
            "success": message.delivery_error is None,
            "err_code": message.delivery_error or "DELIVERED",
            "err_msg": "用户接收成功" if message.delivery_error is None else "用户接收失败",
            "sms_size": "1",
            "biz_id": message.biz_id,
            "out_id": message.reference or "",
        }

    def receipt_acknowledged(self, response: requests.Response) -> bool:
        """Aliyun wants HTTP 200 with {"code": 0}; anything else is pushed again later."""
        if response.status_code != 200:
            return False
        try:
            return response.json().get("code") == 0
        except ValueError:
            return False

    def _biz_id(self) -> str:
        return f"{900000000000000000 + self.next_serial()}^0"


def _error(code: str, message: str, request_id: str, status: int) -> Response:
    return json_response(
        {"RequestId": request_id, "HostId": "dysmsapi.aliyuncs.com", "Code": code, "Message": message},
        status=status,
    )


def _business_error(code: str, message: str, request_id: str) -> Response:
    """SMS business refusals come back as HTTP 200 with the code in the body."""
    return json_response({"Code": code, "Message": message, "RequestId": request_id})


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _beijing(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, BEIJING)


def _beijing_text(unix: float) -> str:
    return _beijing(unix).strftime("%Y-%m-%d %H:%M:%S")


def _build(args: argparse.Namespace) -> FakeAliyunSms:
    credentials = {args.credential_id: args.credential_secret} if args.credential_id else None
    return FakeAliyunSms(credentials=credentials, latency_ms=args.latency_ms)


if __name__ == "__main__":
    run_cli(_build, "Fake Aliyun SMS upstream")
