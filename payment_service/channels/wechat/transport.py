"""The WeChat Pay v3 protocol for one merchant: each request signed over the exact bytes sent, each 2xx answer
verified with the WeChat Pay public key before it is read, each error mapped to a ChannelError.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from payment_service.channels.base import ChannelError, HttpChannel
from payment_service.channels.keys import load_private_key, load_public_key
from payment_service.channels.wechat.credentials import WechatCredentials, WechatMode
from payment_service.channels.wechat.signing import SignatureInvalid, authorization, verify_signed_message

__all__ = ["API_BASE_URL", "RETRYABLE_CODES", "USER_AGENT", "WechatTransport"]

API_BASE_URL = "https://api.mch.weixin.qq.com"
USER_AGENT = "laundry-payment-service/1.0 (WeChatPay-APIv3; python-requests)"
# Codes WeChat documents as "try again later with the same parameters", whatever HTTP status carries them:
# FREQUENCY_LIMITED is also its answer to a second refund of one order too soon after the first.
RETRYABLE_CODES = frozenset(
    {"FREQUENCY_LIMITED", "RATELIMIT_EXCEEDED", "SYSTEM_ERROR", "SERVICE_UNAVAILABLE"}
)


class WechatTransport(HttpChannel):
    """Credentials, keys and the signed request/verified answer round trip every WeChat Pay call makes."""

    def __init__(
        self,
        credentials: WechatCredentials,
        mode: WechatMode,
        base_url: str = API_BASE_URL,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(timeout=timeout, session=session)
        if mode not in ("wechat_split", "wechat_direct"):
            raise ValueError(f"not a WeChat Pay mode: {mode!r}")
        if mode == "wechat_split" and not credentials.sub_mch_id:
            raise ValueError("wechat_split mode needs sub_mch_id")
        self.credentials = credentials
        self.mode = mode
        self.partner = mode == "wechat_split"
        self.base_url = base_url.rstrip("/")
        self._private_key = load_private_key(credentials.merchant_private_key)
        self._wechatpay_key = load_public_key(credentials.wechatpay_public_key)

    def _sub_merchant(self) -> dict[str, Any]:
        """`{"sub_mchid": …}` in partner mode, empty in direct mode: the scope of refund and sharing calls."""
        return {"sub_mchid": self.credentials.sub_mch_id} if self.partner else {}

    def _request(
        self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None
    ) -> dict[str, Any]:
        url = self.base_url + path + (f"?{urlencode(query)}" if query else "")
        # Serialized once: these exact bytes are both signed and sent.
        data = None if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            # Asks WeChat to sign its answer with the public key rather than a platform certificate.
            "Wechatpay-Serial": self.credentials.wechatpay_public_key_id,
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        prepared = requests.Request(method, url, data=data, headers=headers).prepare()
        prepared.headers["Authorization"] = authorization(
            self._private_key,
            self.credentials.mch_id,
            self.credentials.merchant_serial_no,
            method,
            prepared.path_url,
            data or b"",
        )

        response = self._send(prepared, f"wechat {method} {path}")
        if not 200 <= response.status_code < 300:
            raise self._error_from(response)
        try:
            verify_signed_message(
                self._wechatpay_key,
                self.credentials.wechatpay_public_key_id,
                response.headers,
                response.content,
                None,
            )
        except SignatureInvalid as exc:
            raise ChannelError(
                "BAD_SIGNATURE", f"response signature check failed: {exc}", response.status_code
            ) from None
        if not response.content:
            return {}
        try:
            result = json.loads(response.content)
        except ValueError:
            result = None
        if not isinstance(result, dict):
            raise ChannelError("BAD_RESPONSE", "WeChat Pay answered with something other than a JSON object")
        return result

    @staticmethod
    def _error_from(response: requests.Response) -> ChannelError:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and payload.get("code"):
            code = str(payload["code"])
            return ChannelError(
                code,
                str(payload.get("message", "")),
                response.status_code,
                retryable=True if code in RETRYABLE_CODES else None,
            )
        reason = response.reason or "error"
        return ChannelError(
            f"HTTP_{response.status_code}", f"WeChat Pay answered {reason}", response.status_code
        )
