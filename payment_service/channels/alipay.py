"""Alipay open platform (RSA2) for mini-program payments: trade create / query / close and notifications.

Written on requests + cryptography from the gateway protocol. Synchronous answers are verified over the
verbatim JSON text Alipay signed; notifications over every posted parameter but sign and sign_type.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payment_service.channels.base import (
    BEIJING,
    ChannelError,
    CreatedOrder,
    HttpChannel,
    NotificationRejected,
    NotifyReply,
    OrderRequest,
    OrderState,
    PaidNotice,
    PaymentChannel,
    QueriedOrder,
)
from payment_service.channels.keys import load_private_key, load_public_key

__all__ = [
    "AlipayClient",
    "AlipayCredentials",
    "GATEWAY_URL",
    "extract_signed_content",
    "fen_to_yuan",
    "notification_sign_content",
    "request_sign_content",
    "yuan_to_fen",
]

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
SUCCESS_CODE = "10000"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
PAID_STATUSES = frozenset({"TRADE_SUCCESS", "TRADE_FINISHED"})
_TRADE_STATUSES: dict[str, OrderState] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "paid",
    "TRADE_FINISHED": "paid",
    "TRADE_CLOSED": "closed",
}
# Gateway-side trouble Alipay documents as "try again" rather than as a refusal.
_RETRYABLE_CODES = frozenset({"20000", "ACQ.SYSTEM_ERROR", "aop.ACQ.SYSTEM_ERROR"})
# An Alipay user id (buyer_id) is 2088 followed by 12 digits; anything else is an app-scoped open id.
_ALIPAY_USER_ID = re.compile(r"^2088\d{12}$")
_YUAN = re.compile(r"^\d+(\.\d{1,2})?$")
_JSON_WS = re.compile(r"[ \t\n\r]*")
_JSON = json.JSONDecoder()


def _beijing_now() -> datetime:
    return datetime.now(BEIJING)


def fen_to_yuan(amount_fen: int) -> str:
    """Alipay amounts are yuan strings with exactly two decimals: 2000 → "20.00"."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def yuan_to_fen(value: str) -> int:
    """Read an Alipay amount ("20.00", "20.5", "20") as integer fen; anything else is a ValueError."""
    if not isinstance(value, str) or not _YUAN.match(value):
        raise ValueError(f"not an Alipay amount: {value!r}")
    try:
        return int(Decimal(value) * 100)
    except InvalidOperation:
        raise ValueError(f"not an Alipay amount: {value!r}") from None


def request_sign_content(params: Mapping[str, Any]) -> str:
    """What a request signature covers: every parameter but `sign`, empty values dropped, keys sorted,
    `k=v` joined by `&` with raw (not URL-encoded) values. `sign_type` is signed, as the official SDK does."""
    items = sorted((k, str(v)) for k, v in params.items() if k != "sign" and v is not None and str(v) != "")
    return "&".join(f"{k}={v}" for k, v in items)


def notification_sign_content(params: Mapping[str, str]) -> str:
    """What a notification signature covers: every parameter but `sign` and `sign_type`, empty values KEPT
    (the official getSignCheckContentV1), keys sorted, raw values."""
    items = sorted(
        (k, "" if v is None else str(v)) for k, v in params.items() if k not in ("sign", "sign_type")
    )
    return "&".join(f"{k}={v}" for k, v in items)


def _top_level_members(body: str) -> Iterator[tuple[str, int, int]]:
    """Yield (key, start, end) of each member of the top-level JSON object, as spans of the raw text.

    Values are delimited by the standard JSON scanner, which honours strings and escapes: a `}` or `"`
    inside a string value can never end a span early, which a brace counter that ignores quotes gets wrong.
    """
    index = _JSON_WS.match(body).end()
    if body[index : index + 1] != "{":
        raise ValueError("not a JSON object")
    index = _JSON_WS.match(body, index + 1).end()
    if body[index : index + 1] == "}":
        return
    while True:
        key, index = _JSON.raw_decode(body, index)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        index = _JSON_WS.match(body, index).end()
        if body[index : index + 1] != ":":
            raise ValueError("expected ':' after an object key")
        start = _JSON_WS.match(body, index + 1).end()
        _, end = _JSON.raw_decode(body, start)
        yield key, start, end
        index = _JSON_WS.match(body, end).end()
        separator = body[index : index + 1]
        if separator == "}":
            return
        if separator != ",":
            raise ValueError("expected ',' or '}' in an object")
        index = _JSON_WS.match(body, index + 1).end()


def extract_signed_content(body: str, root: str) -> str | None:
    """The verbatim text of `root`'s value in a gateway answer: the bytes Alipay signed.

    Equivalent to the official SDK's extractSignContent, but anchored on the top-level member named `root`
    rather than on the first occurrence of the name anywhere in the text. Never re-dump parsed JSON:
    key order, spacing and escapes would differ from what was signed.
    """
    for key, start, end in _top_level_members(body):
        if key == root:
            return body[start:end]
    return None


@dataclass(frozen=True)
class AlipayCredentials:
    """An Alipay app's keys. Both keys may be PEM or the bare base64 body Alipay's key tool shows,
    PKCS#1 or PKCS#8; `seller_id` (the 2088 merchant id), when given, is checked on notifications."""

    app_id: str
    app_private_key: str = field(repr=False)
    alipay_public_key: str = field(repr=False)
    seller_id: str | None = None

    def __post_init__(self) -> None:
        if not self.app_id:
            raise ValueError("app_id is required")
        load_private_key(self.app_private_key)
        load_public_key(self.alipay_public_key)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AlipayCredentials:
        """Build credentials from an alipay_direct config's `params`."""
        return cls(
            app_id=str(params.get("app_id") or ""),
            app_private_key=str(params.get("app_private_key") or ""),
            alipay_public_key=str(params.get("alipay_public_key") or ""),
            seller_id=str(params["seller_id"]) if params.get("seller_id") else None,
        )


def _parse_beijing_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)
    except ValueError:
        return None


class AlipayClient(HttpChannel, PaymentChannel):
    """The Alipay gateway for one app (mini-program) configuration."""

    name = "alipay"

    def __init__(
        self,
        credentials: AlipayCredentials,
        gateway_url: str = GATEWAY_URL,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(timeout=timeout, session=session)
        self.credentials = credentials
        self.gateway_url = gateway_url
        self._private_key = load_private_key(credentials.app_private_key)
        self._alipay_key = load_public_key(credentials.alipay_public_key)

    # -- trades -----------------------------------------------------------------------------------------

    def create_trade(self, order: OrderRequest) -> CreatedOrder:
        """alipay.trade.create; the mini-program opens the cashier with my.tradePay({tradeNO})."""
        c = self.credentials
        biz: dict[str, Any] = {
            "out_trade_no": order.transaction_id,
            "total_amount": fen_to_yuan(order.amount_fen),
            "subject": order.description,
        }
        if _ALIPAY_USER_ID.match(order.payer_id):
            biz["buyer_id"] = order.payer_id
        else:
            # Apps created since open ids replaced user ids use the JSAPI form of the same call.
            biz.update(buyer_open_id=order.payer_id, product_code="JSAPI_PAY", op_app_id=c.app_id)
        if c.seller_id:
            biz["seller_id"] = c.seller_id
        if order.expire_at is not None:
            expire_at = order.expire_at if order.expire_at.tzinfo else order.expire_at.replace(tzinfo=UTC)
            biz["time_expire"] = expire_at.astimezone(BEIJING).strftime(TIME_FORMAT)
        result = self._call("alipay.trade.create", biz, notify_url=order.notify_url)
        trade_no = result.get("trade_no")
        if not isinstance(trade_no, str) or not trade_no:
            raise ChannelError("BAD_RESPONSE", "Alipay answered without a trade_no", 200)
        return CreatedOrder(pay_params={"tradeNO": trade_no}, channel_order_ref=trade_no, raw=result)

    def query_trade(self, out_trade_no: str) -> QueriedOrder:
        result = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        status = str(result.get("trade_status", ""))
        if status not in _TRADE_STATUSES:
            raise ChannelError("BAD_RESPONSE", f"unknown trade_status {status!r}", 200)
        try:
            amount_fen = yuan_to_fen(result["total_amount"]) if "total_amount" in result else None
        except ValueError:
            raise ChannelError("BAD_RESPONSE", "Alipay answered a malformed total_amount", 200) from None
        return QueriedOrder(
            state=_TRADE_STATUSES[status],
            channel_transaction_id=result.get("trade_no"),
            amount_fen=amount_fen,
            paid_at=_parse_beijing_time(result.get("send_pay_date")),
            trade_state=status,
            raw=result,
        )

    def close_trade(self, out_trade_no: str) -> None:
        """Close an unpaid trade. A trade the buyer never opened may answer ACQ.TRADE_NOT_EXIST."""
        self._call("alipay.trade.close", {"out_trade_no": out_trade_no})

    def create_order(self, order: OrderRequest) -> CreatedOrder:
        return self.create_trade(order)

    def query_order(self, out_trade_no: str) -> QueriedOrder:
        return self.query_trade(out_trade_no)

    def close_order(self, out_trade_no: str) -> None:
        self.close_trade(out_trade_no)

    # -- notifications ----------------------------------------------------------------------------------

    def parse_notification(self, form: Mapping[str, str]) -> PaidNotice:
        """Verify and read an asynchronous notification (the URL-decoded form fields, all of them).

        Raises NotificationRejected for a missing or bad signature, another app's notification, another
        seller's, or fields that do not make a trade. `paid` is true only for TRADE_SUCCESS/TRADE_FINISHED.
        """
        signature = form.get("sign")
        if not signature:
            raise NotificationRejected("notification is unsigned")
        if form.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected(f"unsupported sign_type {form.get('sign_type')!r}")
        if not self._verify(notification_sign_content(form), signature):
            raise NotificationRejected("signature does not match")
        if form.get("app_id") != self.credentials.app_id:
            raise NotificationRejected("notification is for another app")
        seller_id = self.credentials.seller_id
        if seller_id and form.get("seller_id") != seller_id:
            raise NotificationRejected("notification is for another seller")
        if not form.get("out_trade_no"):
            raise NotificationRejected("notification lacks out_trade_no")
        try:
            amount_fen = yuan_to_fen(form.get("total_amount", ""))
        except ValueError:
            raise NotificationRejected("notification has a malformed total_amount") from None
        status = str(form.get("trade_status", ""))
        return PaidNotice(
            out_trade_no=form["out_trade_no"],
            channel_transaction_id=form.get("trade_no"),
            amount_fen=amount_fen,
            merchant_ids={key: form[key] for key in ("app_id", "seller_id") if form.get(key)},
            paid_at=_parse_beijing_time(form.get("gmt_payment")),
            trade_state=status,
            paid=status in PAID_STATUSES,
            raw=dict(form),
        )

    def read_notification(self, headers: Mapping[str, str], body: bytes) -> PaidNotice:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise NotificationRejected("notification body is not UTF-8") from None
        return self.parse_notification(dict(parse_qsl(text, keep_blank_values=True)))

    def notification_reply(self, accepted: bool) -> NotifyReply:
        """Alipay stops redelivering only when the body is exactly `success`."""
        return (
            NotifyReply(200, b"success", "text/plain")
            if accepted
            else NotifyReply(400, b"fail", "text/plain")
        )

    # -- the gateway protocol ---------------------------------------------------------------------------

    def signed_params(self, method: str, biz_content: Mapping[str, Any], **extra: str) -> dict[str, str]:
        """Common parameters plus biz_content (one JSON string), signed."""
        params = {
            "app_id": self.credentials.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": _beijing_now().strftime(TIME_FORMAT),
            "version": "1.0",
            **{key: value for key, value in extra.items() if value},
            "biz_content": json.dumps(biz_content, ensure_ascii=False, separators=(",", ":")),
        }
        params["sign"] = self._sign(request_sign_content(params))
        return params

    def _call(self, method: str, biz_content: Mapping[str, Any], **extra: str) -> dict[str, Any]:
        params = self.signed_params(method, biz_content, **extra)
        prepared = requests.Request(
            "POST",
            self.gateway_url,
            data=params,
            headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
        ).prepare()
        response = self._send(prepared, f"alipay {method}")
        if response.status_code != 200:
            raise ChannelError(
                f"HTTP_{response.status_code}",
                f"Alipay gateway answered {response.reason or 'error'}",
                response.status_code,
            )
        return self._read_answer(method, response.content)

    def _read_answer(self, method: str, content: bytes) -> dict[str, Any]:
        root = method.replace(".", "_") + "_response"
        try:
            body = content.decode("utf-8")
            members = {key: body[start:end] for key, start, end in _top_level_members(body)}
            signed = members.get(root) or members.get("error_response")
            result = json.loads(signed) if signed is not None else None
        except ValueError:
            raise ChannelError("BAD_RESPONSE", "Alipay answered something other than JSON", 200) from None
        if not isinstance(result, dict):
            raise ChannelError("BAD_RESPONSE", f"Alipay answer lacks {root}", 200)

        code = str(result.get("code", ""))
        if code != SUCCESS_CODE or root not in members:
            sub_code = result.get("sub_code")
            raise ChannelError(
                str(sub_code or code or "UNKNOWN"),
                str(result.get("sub_msg") or result.get("msg") or "Alipay refused the request"),
                200,
                retryable=code in _RETRYABLE_CODES or sub_code in _RETRYABLE_CODES,
            )
        try:
            signature = json.loads(members["sign"]) if "sign" in members else None
        except ValueError:
            signature = None
        if not isinstance(signature, str) or not self._verify(members[root], signature):
            raise ChannelError("BAD_SIGNATURE", f"{root} is unsigned or its signature does not match", 200)
        return result

    def _sign(self, content: str) -> str:
        signature = self._private_key.sign(content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode("ascii")

    def _verify(self, content: str, signature: str) -> bool:
        try:
            raw = base64.b64decode(signature, validate=True)
            self._alipay_key.verify(raw, content.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True
