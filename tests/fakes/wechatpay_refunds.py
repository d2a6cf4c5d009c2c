"""The WeChat Pay fake's refunds, with the state WeChat keeps for them.

A refund reduces its order's refundable amount (a CLOSED refund gives it back); the same out_refund_no again
is the same refund; a second refund of one order within `refund_interval_ms` of the previous one answers
FREQUENCY_LIMITED. Refunds answer PROCESSING and settle when the test says (`settle_refund`) or, with
`refund_delay_ms` set, that long after creation; settling POSTs the signed, encrypted REFUND.* notification to
the refund's notify_url.
"""

from __future__ import annotations

import string
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from tests.fakes.wechatpay_protocol import (
    Reply,
    WechatError,
    notification_body,
    now_rfc3339,
    random_string,
    require_fen,
    require_merchant_no,
    require_str,
)

if TYPE_CHECKING:
    from tests.fakes.wechatpay import Delivery, FakeWechatPay

REFUND_STATUSES = ("SUCCESS", "ABNORMAL", "CLOSED")
_SUMMARIES = {"SUCCESS": "退款成功", "ABNORMAL": "退款异常", "CLOSED": "退款关闭"}


@dataclass
class FakeRefund:
    mchid: str
    sub_mchid: str | None
    out_trade_no: str
    transaction_id: str
    out_refund_no: str
    refund_id: str
    refund: int
    total: int
    notify_url: str | None
    reason: str | None = None
    status: str = "PROCESSING"
    create_time: str = ""
    success_time: str | None = None

    def payer_amount(self) -> dict[str, int]:
        """The amount as notifications carry it; nothing was paid with coupons, so the payer paid it all."""
        return {
            "total": self.total,
            "refund": self.refund,
            "payer_total": self.total,
            "payer_refund": self.refund,
        }


def refund_rules() -> list[Rule]:
    """The routes of this desk; fresh Rule objects for each fake's Map."""
    return [
        Rule("/v3/refund/domestic/refunds", methods=["POST"], endpoint="refund"),
        Rule("/v3/refund/domestic/refunds/<no>", methods=["GET"], endpoint="query_refund"),
        Rule("/__fake__/refunds", methods=["GET"], endpoint="ctl_refunds"),
        Rule("/__fake__/refunds/<no>/settle", methods=["POST"], endpoint="ctl_settle_refund"),
    ]


class RefundDesk:
    """Mixed into FakeWechatPay: refund endpoints, their state and their notifications."""

    refunds: dict[tuple[str, str, str], FakeRefund]

    def _init_refunds(self: FakeWechatPay) -> None:
        self.refunds = {}
        self._last_refund_at: dict[tuple[str, str, str], float] = {}
        self._timers: list[threading.Timer] = []

    def _reset_refunds(self: FakeWechatPay) -> None:
        for timer in self._timers:
            timer.cancel()
        self._init_refunds()

    # -- operations for tests ---------------------------------------------------------------------------

    def find_refund(self: FakeWechatPay, out_refund_no: str, mchid: str | None = None) -> FakeRefund:
        with self._lock:
            found = [
                refund
                for refund in self.refunds.values()
                if refund.out_refund_no == out_refund_no and mchid in (None, refund.mchid)
            ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} refunds match out_refund_no {out_refund_no!r}")
        return found[0]

    def refundable(self: FakeWechatPay, out_trade_no: str, mchid: str | None = None) -> int:
        """What the order can still refund: its total less every refund that WeChat has not closed."""
        order = self.find_order(out_trade_no, mchid)
        with self._lock:
            return order.total - self._refunded(order.mchid, order.sub_mchid, order.out_trade_no)

    def settle_refund(
        self: FakeWechatPay, out_refund_no: str, status: str = "SUCCESS", mchid: str | None = None
    ) -> Delivery | None:
        """WeChat finishes a refund: SUCCESS, ABNORMAL or CLOSED, and POSTs REFUND.<status> to its notify_url.

        Settling a refund again sends its notification again, as WeChat's redeliveries do. Returns the
        delivery, or None when the refund asked for no notification.
        """
        if status not in REFUND_STATUSES:
            raise ValueError(f"a refund settles as one of {REFUND_STATUSES}, not {status!r}")
        refund = self.find_refund(out_refund_no, mchid)
        with self._lock:
            if refund.status in ("PROCESSING", "ABNORMAL"):
                refund.status = status
                if status == "SUCCESS":
                    refund.success_time = now_rfc3339()
        if not refund.notify_url:
            return None
        headers, body = self.build_refund_notification(refund)
        return self.deliver(refund.notify_url, headers, body, refund.out_trade_no)

    def build_refund_notification(
        self: FakeWechatPay, refund: FakeRefund, **overrides: Any
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the REFUND.<status> notification for a refund, exactly as posted."""
        partner = {"sp_mchid": refund.mchid, "sub_mchid": refund.sub_mchid}
        resource: dict[str, Any] = partner if refund.sub_mchid else {"mchid": refund.mchid}
        resource.update(
            {
                key: getattr(refund, key)
                for key in ("out_trade_no", "transaction_id", "out_refund_no", "refund_id")
            },
            refund_status=refund.status,
            user_received_account="支付用户零钱",
            amount=refund.payer_amount(),
        )
        if refund.success_time:
            resource["success_time"] = refund.success_time
        resource.update(overrides)
        body = notification_body(
            self.merchants[refund.mchid].api_v3_key,
            resource,
            event_type=f"REFUND.{refund.status}",
            summary=_SUMMARIES.get(refund.status, "退款处理中"),
            original_type="refund",
        )
        return {"Content-Type": "application/json", **self.signature_headers(body)}, body

    # -- refunds ----------------------------------------------------------------------------------------

    def _refunded(self: FakeWechatPay, mchid: str, sub_mchid: str | None, out_trade_no: str) -> int:
        return sum(
            r.refund
            for r in self.refunds.values()
            if (r.mchid, r.sub_mchid, r.out_trade_no) == (mchid, sub_mchid, out_trade_no)
            and r.status != "CLOSED"
        )

    def _refund(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        sub_mchid = body.get("sub_mchid")
        allowed = self.merchants[mchid].sub_mchids
        if sub_mchid is not None and allowed and sub_mchid not in allowed:
            raise WechatError(403, "NO_AUTH", "特约商户未授权")
        out_refund_no = require_merchant_no(body, "out_refund_no")
        if body.get("reason") is not None:
            require_str(body, "reason", max_length=80)
        if body.get("notify_url") is not None:
            self._check_notify_url(require_str(body, "notify_url"))
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise WechatError(400, "PARAM_ERROR", "amount 必填")
        refund_fen = require_fen(amount.get("refund"), "amount.refund")
        total_fen = require_fen(amount.get("total"), "amount.total")
        if amount.get("currency") != "CNY":
            raise WechatError(400, "PARAM_ERROR", "amount.currency 须为 CNY")
        with self._lock:
            order = self._refund_order(mchid, sub_mchid, body)
            key = (mchid, sub_mchid or "", out_refund_no)
            existing = self.refunds.get(key)
            asked = (order.out_trade_no, refund_fen, total_fen)
            if existing is not None:
                if (existing.out_trade_no, existing.refund, existing.total) != asked:
                    raise WechatError(400, "INVALID_REQUEST", "退款单号已使用，请求参数与原退款不一致")
                return Reply(200, self._refund_view(existing))
            if not order.paid:
                raise WechatError(400, "INVALID_REQUEST", "订单未支付，不能退款")
            if total_fen != order.total:
                raise WechatError(400, "INVALID_REQUEST", "amount.total 与原订单金额不一致")
            order_key = (mchid, sub_mchid or "", order.out_trade_no)
            last = self._last_refund_at.get(order_key)
            interval = self.config.refund_interval_ms / 1000
            if interval and last is not None and time.monotonic() - last < interval:
                raise WechatError(429, "FREQUENCY_LIMITED", "该笔退款未受理，请降低频率后重试")
            if refund_fen > order.total - self._refunded(mchid, sub_mchid, order.out_trade_no):
                raise WechatError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
            refund = FakeRefund(
                mchid,
                sub_mchid,
                order.out_trade_no,
                order.transaction_id or "",
                out_refund_no,
                refund_id="50" + random_string(string.digits, 27),
                refund=refund_fen,
                total=total_fen,
                notify_url=body.get("notify_url"),
                reason=body.get("reason"),
                create_time=now_rfc3339(),
            )
            self.refunds[key] = refund
            self._last_refund_at[order_key] = time.monotonic()
            order.trade_state = "REFUND"
            if self.config.refund_delay_ms is not None:
                self._settle_later(self.config.refund_delay_ms, out_refund_no, mchid)
        return Reply(200, self._refund_view(refund))

    def _settle_later(self: FakeWechatPay, delay_ms: int, out_refund_no: str, mchid: str) -> None:
        timer = threading.Timer(delay_ms / 1000, self.settle_refund, (out_refund_no, "SUCCESS", mchid))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _refund_order(self: FakeWechatPay, mchid: str, sub_mchid: str | None, body: dict[str, Any]) -> Any:
        out_trade_no, transaction_id = body.get("out_trade_no"), body.get("transaction_id")
        if not out_trade_no and not transaction_id:
            raise WechatError(400, "PARAM_ERROR", "out_trade_no 与 transaction_id 须二选一")
        for order in self.orders.values():
            if (order.mchid, order.sub_mchid) == (mchid, sub_mchid) and (
                order.out_trade_no == out_trade_no
                or (transaction_id and order.transaction_id == transaction_id)
            ):
                return order
        raise WechatError(404, "RESOURCE_NOT_EXISTS", "订单不存在")

    def _query_refund(
        self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str
    ) -> Reply:
        with self._lock:
            refund = self.refunds.get((mchid, request.args.get("sub_mchid") or "", no))
            if refund is None:
                raise WechatError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
            return Reply(200, self._refund_view(refund))

    @staticmethod
    def _refund_view(refund: FakeRefund) -> dict[str, Any]:
        view: dict[str, Any] = {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱",
            "create_time": refund.create_time,
            "status": refund.status,
            "funds_account": "AVAILABLE",
            "amount": {
                **refund.payer_amount(),
                **{"from": [], "settlement_refund": refund.refund, "settlement_total": refund.total},
                **{"discount_refund": 0, "currency": "CNY"},
            },
        }
        if refund.success_time:
            view["success_time"] = refund.success_time
        return view

    # -- control API ------------------------------------------------------------------------------------

    def _ctl_refunds(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"refunds": [asdict(refund) for refund in self.refunds.values()]}

    def _ctl_settle_refund(self: FakeWechatPay, body: dict[str, Any], no: str) -> dict[str, Any]:
        delivery = self.settle_refund(no, str(body.get("status", "SUCCESS")), body.get("mchid"))
        return {
            "status": self.find_refund(no, body.get("mchid")).status,
            "delivery": delivery and asdict(delivery),
        }
