"""The Alipay gateway fake's refunds: alipay.trade.refund and alipay.trade.fastpay.refund.query.

A refund reduces its trade's refundable amount and a full refund closes the trade; the same out_request_no
again is the same refund (answered with fund_change N, as Alipay answers a repeat: no money moves twice).
With `refund_fund_change` off, a new refund answers fund_change N and stays pending until `settle_refund()`
or, with `refund_settle_on_query`, the first query. A query finds only settled refunds: REFUND_SUCCESS, or
no refund_status at all for a refund Alipay does not have (yet).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule

from tests.fakes.alipay_protocol import beijing_now, business_error, yuan, yuan_amount

if TYPE_CHECKING:
    from tests.fakes.alipay import FakeAlipay, FakeTrade


@dataclass
class FakeRefund:
    app_id: str
    out_trade_no: str
    trade_no: str
    out_request_no: str
    refund_amount: str
    refund_reason: str = ""
    settled: bool = False
    gmt_refund_pay: str | None = None


def refund_rules() -> list[Rule]:
    """The control routes of this desk (the API itself is the one gateway URL); fresh Rule objects."""
    return [
        Rule("/__fake__/refunds", methods=["GET"], endpoint="ctl_refunds"),
        Rule("/__fake__/refunds/settle", methods=["POST"], endpoint="ctl_settle_refund"),
    ]


class RefundDesk:
    """Mixed into FakeAlipay: the refund methods, their state and knobs."""

    refunds: dict[tuple[str, str, str], FakeRefund]
    refund_fund_change: bool
    refund_settle_on_query: bool

    def _init_refunds(self: FakeAlipay) -> None:
        self.refunds = {}

    # -- operations for tests ---------------------------------------------------------------------------

    def find_refund(self: FakeAlipay, out_trade_no: str, out_request_no: str) -> FakeRefund:
        with self._lock:
            found = [
                r
                for r in self.refunds.values()
                if (r.out_trade_no, r.out_request_no) == (out_trade_no, out_request_no)
            ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} refunds match {out_trade_no!r} / {out_request_no!r}")
        return found[0]

    def refundable(self: FakeAlipay, out_trade_no: str) -> str:
        """What the trade can still refund, in yuan: its total less every refund, pending ones included."""
        trade = self.find_trade(out_trade_no)
        with self._lock:
            return yuan(Decimal(trade.biz["total_amount"]) - self._refunded(trade, settled_only=False))

    def settle_refund(self: FakeAlipay, out_trade_no: str, out_request_no: str) -> FakeRefund:
        """Alipay finishes a pending refund: the money moves, the query reports REFUND_SUCCESS."""
        refund = self.find_refund(out_trade_no, out_request_no)
        with self._lock:
            self._settle(refund)
        return refund

    # -- the gateway methods ----------------------------------------------------------------------------

    def _refunded(self: FakeAlipay, trade: FakeTrade, *, settled_only: bool) -> Decimal:
        return sum(
            (
                Decimal(r.refund_amount)
                for r in self.refunds.values()
                if (r.app_id, r.out_trade_no) == (trade.app_id, trade.out_trade_no)
                and (r.settled or not settled_only)
            ),
            Decimal(0),
        )

    def _settle(self: FakeAlipay, refund: FakeRefund) -> None:
        if refund.settled:
            return
        refund.settled, refund.gmt_refund_pay = True, beijing_now()
        trade = self.trades[(refund.app_id, refund.out_trade_no)]
        if self._refunded(trade, settled_only=True) == Decimal(trade.biz["total_amount"]):
            trade.trade_status = "TRADE_CLOSED"

    def _alipay_trade_refund(self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        amount = yuan_amount(biz.get("refund_amount"), "refund_amount")
        with self._lock:
            trade = self._trade_for(params, biz)
            total = Decimal(trade.biz["total_amount"])
            # Without out_request_no Alipay takes the trade's own number: a full refund only.
            out_request_no = str(biz.get("out_request_no") or trade.out_trade_no)
            key = (trade.app_id, trade.out_trade_no, out_request_no)
            refund = self.refunds.get(key)
            if refund is not None:
                if Decimal(refund.refund_amount) != amount:
                    raise business_error("ACQ.DISCORDANT_REPEAT_REQUEST", "不一致的请求")
                return self._refund_answer(trade, refund, fund_change="N")
            if trade.trade_status == "WAIT_BUYER_PAY":
                raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            if trade.trade_status == "TRADE_CLOSED":
                raise business_error("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
            if not biz.get("out_request_no") and amount != total:
                raise business_error("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与订单金额不一致")
            if amount > total - self._refunded(trade, settled_only=False):
                raise business_error("ACQ.REASON_TRADE_REFUND_FEE_ERR", "退款金额无效")
            refund = FakeRefund(
                trade.app_id,
                trade.out_trade_no,
                trade.trade_no,
                out_request_no,
                yuan(amount),
                str(biz.get("refund_reason") or ""),
            )
            self.refunds[key] = refund
            if self.refund_fund_change:
                self._settle(refund)
            return self._refund_answer(trade, refund, fund_change="Y" if refund.settled else "N")

    def _refund_answer(
        self: FakeAlipay, trade: FakeTrade, refund: FakeRefund, fund_change: str
    ) -> dict[str, Any]:
        answer = {
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": "159****5620",
            "fund_change": fund_change,
            # The trade's running total of money refunded, not this refund's amount.
            "refund_fee": yuan(self._refunded(trade, settled_only=True)),
            "send_back_fee": "0.00",
        }
        if "buyer_id" in trade.biz:
            answer["buyer_user_id"] = trade.biz["buyer_id"]
        elif "buyer_open_id" in trade.biz:
            answer["buyer_open_id"] = trade.biz["buyer_open_id"]
        if refund.gmt_refund_pay:
            answer["gmt_refund_pay"] = refund.gmt_refund_pay
        return answer

    def _alipay_trade_fastpay_refund_query(
        self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]
    ) -> dict[str, Any]:
        out_request_no = biz.get("out_request_no")
        if not isinstance(out_request_no, str) or not out_request_no:
            raise business_error("ACQ.INVALID_PARAMETER", "out_request_no 必填")
        with self._lock:
            trade = self._trade_for(params, biz)
            refund = self.refunds.get((trade.app_id, trade.out_trade_no, out_request_no))
            if refund is not None and self.refund_settle_on_query:
                self._settle(refund)
            answer: dict[str, Any] = {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
            if refund is None or not refund.settled:
                return {**answer, "out_request_no": out_request_no}
            answer.update(
                out_request_no=refund.out_request_no,
                total_amount=trade.biz["total_amount"],
                refund_amount=refund.refund_amount,
                refund_status="REFUND_SUCCESS",
            )
            if refund.refund_reason:
                answer["refund_reason"] = refund.refund_reason
            if "gmt_refund_pay" in (biz.get("query_options") or ()):
                answer["gmt_refund_pay"] = refund.gmt_refund_pay
        return answer

    # -- control API ------------------------------------------------------------------------------------

    def _ctl_refunds(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"refunds": [asdict(refund) for refund in self.refunds.values()]}

    def _ctl_settle_refund(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        return asdict(self.settle_refund(str(body["out_trade_no"]), str(body["out_request_no"])))
