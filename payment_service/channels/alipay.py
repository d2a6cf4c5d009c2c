"""Alipay open platform (RSA2) for mini-program payments: trade create / query / close, refunds and their
query, and notifications.

Written on requests + cryptography from the gateway protocol (`alipay_gateway`). Synchronous answers are
verified over the verbatim JSON text Alipay signed; notifications over every posted parameter but sign and
sign_type.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from payment_service.channels.alipay_gateway import (
    TIME_FORMAT,
    extract_signed_content,
    fen_to_yuan,
    notification_sign_content,
    parse_beijing_time,
    request_sign_content,
    top_level_members,
    yuan_to_fen,
)
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
from payment_service.channels.refunds import RefundRequest, RefundResult

__all__ = [
    "AlipayClient",
    "AlipayCredentials",
    "GATEWAY_URL",
    "TIME_FORMAT",
    "extract_signed_content",
    "fen_to_yuan",
    "notification_sign_content",
    "request_sign_content",
    "yuan_to_fen",
]

GATEWAY_URL = "https://openapi.alipay.com/gateway.do"
SUCCESS_CODE = "10000"
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


def _beijing_now() -> datetime:
    return datetime.now(BEIJING)


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
            paid_at=parse_beijing_time(result.get("send_pay_date")),
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

    # -- refunds ----------------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> RefundResult:
        """alipay.trade.refund: fund_change Y means the money moved; N means it has not (yet), so query.

        N is also the answer to a repeat of a refund already made: the same out_request_no refunds once.
        """
        biz: dict[str, Any] = {
            "out_trade_no": request.transaction_id,
            "refund_amount": fen_to_yuan(request.amount_fen),
            "out_request_no": request.refund_id,
        }
        if request.reason:
            biz["refund_reason"] = request.reason
        result = self._call("alipay.trade.refund", biz)
        fund_change = result.get("fund_change")
        if fund_change not in ("Y", "N") or result.get("out_trade_no") not in (None, request.transaction_id):
            raise ChannelError("BAD_RESPONSE", "Alipay answered a refund without fund_change Y or N", 200)
        return RefundResult(
            refund_id=request.refund_id,
            state="success" if fund_change == "Y" else "processing",
            upstream_status=f"fund_change={fund_change}",
            channel_refund_id=None,
            amount_fen=None,
            refunded_at=parse_beijing_time(result.get("gmt_refund_pay")),
            raw=result,
        )

    def query_refund(self, transaction_id: str, refund_id: str) -> RefundResult | None:
        """alipay.trade.fastpay.refund.query: REFUND_SUCCESS is refunded; no refund_status at all means Alipay
        has no such refund (never received, or not done): send the same refund again, it refunds once."""
        biz = {
            "out_trade_no": transaction_id,
            "out_request_no": refund_id,
            "query_options": ["gmt_refund_pay"],
        }
        result = self._call("alipay.trade.fastpay.refund.query", biz)
        status = result.get("refund_status")
        if not status:
            return None
        if result.get("out_request_no") not in (None, refund_id):
            raise ChannelError("BAD_RESPONSE", "Alipay answered about another refund", 200)
        try:
            amount_fen = yuan_to_fen(result["refund_amount"]) if "refund_amount" in result else None
        except ValueError:
            raise ChannelError("BAD_RESPONSE", "Alipay answered a malformed refund_amount", 200) from None
        return RefundResult(
            refund_id=refund_id,
            # Alipay names only success; anything else it may add is not final, so keep asking.
            state="success" if status == "REFUND_SUCCESS" else "processing",
            upstream_status=str(status),
            channel_refund_id=None,
            amount_fen=amount_fen,
            refunded_at=parse_beijing_time(result.get("gmt_refund_pay")),
            raw=result,
        )

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
            paid_at=parse_beijing_time(form.get("gmt_payment")),
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
            members = {key: body[start:end] for key, start, end in top_level_members(body)}
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
