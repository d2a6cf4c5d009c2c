"""The Alipay fake's apps and trades, and the trade create, query and close methods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.alipay_protocol import (
    BEIJING,
    beijing_now,
    business_error,
    digits,
    yuan_amount,
)

if TYPE_CHECKING:
    from tests.fakes.alipay import FakeAlipay


@dataclass
class FakeApp:
    app_id: str
    public_key: rsa.RSAPublicKey
    seller_id: str


@dataclass
class FakeTrade:
    app_id: str
    out_trade_no: str
    trade_no: str
    biz: dict[str, Any]
    notify_url: str | None
    trade_status: str = "WAIT_BUYER_PAY"
    gmt_create: str = ""
    gmt_payment: str | None = None


class TradeDesk:
    """Mixed into FakeAlipay: the alipay.trade.create/query/close methods."""

    def _alipay_trade_create(self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        app = self.apps[params["app_id"]]
        out_trade_no = biz.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not 1 <= len(out_trade_no) <= 64:
            raise business_error("ACQ.INVALID_PARAMETER", "out_trade_no 必填且不超过 64 位")
        amount = biz.get("total_amount")
        yuan_amount(amount, "total_amount")
        subject = biz.get("subject")
        if not isinstance(subject, str) or not 1 <= len(subject) <= 256:
            raise business_error("ACQ.INVALID_PARAMETER", "subject 必填且不超过 256 字符")
        if not (biz.get("buyer_id") or biz.get("buyer_open_id")):
            raise business_error("ACQ.INVALID_PARAMETER", "buyer_id 与 buyer_open_id 不能同时为空")
        if biz.get("seller_id") and biz["seller_id"] != app.seller_id:
            raise business_error("ACQ.INVALID_PARAMETER", "seller_id 与应用不匹配")
        biz = {**biz, "total_amount": str(amount)}
        key = (app.app_id, out_trade_no)
        with self._lock:
            trade = self.trades.get(key)
            if trade is not None:
                if trade.trade_status == "TRADE_CLOSED":
                    raise business_error("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
                if trade.trade_status != "WAIT_BUYER_PAY":
                    raise business_error("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
                if trade.biz != biz:
                    raise business_error("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
            else:
                trade_no = datetime.now(BEIJING).strftime("%Y%m%d") + "22001" + digits(15)
                trade = FakeTrade(app.app_id, out_trade_no, trade_no, biz, params.get("notify_url"))
                trade.gmt_create = beijing_now()
                self.trades[key] = trade
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def _trade_for(self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]) -> FakeTrade:
        app_id = params["app_id"]
        for trade in self.trades.values():
            if trade.app_id == app_id and (
                trade.out_trade_no == biz.get("out_trade_no") or trade.trade_no == biz.get("trade_no")
            ):
                return trade
        raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")

    def _alipay_trade_query(self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            trade = self._trade_for(params, biz)
            result = {
                "trade_no": trade.trade_no,
                "out_trade_no": trade.out_trade_no,
                "buyer_logon_id": "159****5620",
                "trade_status": trade.trade_status,
                "total_amount": trade.biz["total_amount"],
            }
            if trade.gmt_payment:
                result.update(send_pay_date=trade.gmt_payment, receipt_amount=trade.biz["total_amount"])
        return result

    def _alipay_trade_close(self: FakeAlipay, params: dict[str, str], biz: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            trade = self._trade_for(params, biz)
            if trade.trade_status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.trade_status = "TRADE_CLOSED"
        return {"trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
