"""The WeChat Pay fake's JSAPI orders: their state, and the create, query and close endpoints."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from tests.fakes.wechatpay_protocol import (
    Reply,
    WechatError,
    random_string,
    require_str,
)

if TYPE_CHECKING:
    from tests.fakes.wechatpay import FakeWechatPay

OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
# A service provider takes payments only for its sub-merchants (partner endpoints); an ordinary (direct)
# merchant only its own. A merchant registered without a kind may do both, as the in-process tests share one.
MERCHANT_KINDS = ("service_provider", "direct")


@dataclass
class FakeMerchant:
    mchid: str
    serial_no: str
    public_key: rsa.RSAPublicKey
    api_v3_key: str
    appids: frozenset[str] = frozenset()  # empty: any appid is accepted
    sub_mchids: frozenset[str] = frozenset()  # empty: any sub-merchant is accepted
    kind: str | None = None  # one of MERCHANT_KINDS; None: either


@dataclass
class FakeOrder:
    mchid: str
    sub_mchid: str | None
    out_trade_no: str
    request: dict[str, Any]
    prepay_id: str
    trade_state: str = "NOTPAY"
    transaction_id: str | None = None
    success_time: str | None = None
    sharing_closed: bool = False  # unfreeze_unsplit released the rest: no further splits

    @property
    def partner(self) -> bool:
        return self.sub_mchid is not None

    @property
    def total(self) -> int:
        return self.request["amount"]["total"]

    @property
    def paid(self) -> bool:
        """Paid, refunded in part or whole (REFUND) included."""
        return self.trade_state in ("SUCCESS", "REFUND")

    @property
    def profit_sharing(self) -> bool:
        return bool((self.request.get("settle_info") or {}).get("profit_sharing"))


def order_rules() -> list[Rule]:
    return [
        Rule("/v3/pay/partner/transactions/jsapi", methods=["POST"], endpoint="create_partner"),
        Rule("/v3/pay/transactions/jsapi", methods=["POST"], endpoint="create_direct"),
        Rule(
            "/v3/pay/partner/transactions/out-trade-no/<no>",
            methods=["GET"],
            endpoint="query_partner",
        ),
        Rule("/v3/pay/transactions/out-trade-no/<no>", methods=["GET"], endpoint="query_direct"),
        Rule("/v3/pay/partner/transactions/out-trade-no/<no>/close", methods=["POST"], endpoint="close"),
        Rule("/v3/pay/transactions/out-trade-no/<no>/close", methods=["POST"], endpoint="close"),
    ]


class OrderDesk:
    """Mixed into FakeWechatPay: the JSAPI order endpoints and the transaction object they answer."""

    # -- payments ---------------------------------------------------------------------------------------

    def _create_partner(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        for name in ("sp_appid", "sp_mchid", "sub_mchid"):
            require_str(body, name)
        if body["sp_mchid"] != mchid:
            raise WechatError(400, "PARAM_ERROR", "sp_mchid 与请求头中的商户号不一致")
        self._check_merchant_scope(mchid, body["sp_appid"], body["sub_mchid"])
        payer = body.get("payer")
        if not isinstance(payer, dict) or not (payer.get("sp_openid") or payer.get("sub_openid")):
            raise WechatError(400, "PARAM_ERROR", "payer 须包含 sp_openid 或 sub_openid")
        if payer.get("sub_openid") and not body.get("sub_appid"):
            raise WechatError(400, "PARAM_ERROR", "传 sub_openid 时 sub_appid 必填")
        return self._create(mchid, body["sub_mchid"], body)

    def _create_direct(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        for name in ("appid", "mchid"):
            require_str(body, name)
        if body["mchid"] != mchid:
            raise WechatError(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
        self._check_merchant_scope(mchid, body["appid"], None)
        payer = body.get("payer")
        if not isinstance(payer, dict) or not payer.get("openid"):
            raise WechatError(400, "PARAM_ERROR", "payer.openid 必填")
        return self._create(mchid, None, body)

    def _check_merchant_scope(self: FakeWechatPay, mchid: str, appid: str, sub_mchid: str | None) -> None:
        merchant = self.merchants[mchid]
        if merchant.kind == "direct" and sub_mchid is not None:
            raise WechatError(403, "NO_AUTH", "普通商户不能使用服务商接口")
        if merchant.kind == "service_provider" and sub_mchid is None:
            raise WechatError(403, "NO_AUTH", "服务商不能直接收款,请使用服务商接口")
        if merchant.appids and appid not in merchant.appids:
            raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
        if sub_mchid is not None and merchant.sub_mchids and sub_mchid not in merchant.sub_mchids:
            raise WechatError(403, "NO_AUTH", "特约商户未授权")

    def _create(self: FakeWechatPay, mchid: str, sub_mchid: str | None, body: dict[str, Any]) -> Reply:
        description = require_str(body, "description")
        if len(description) > 127:
            raise WechatError(400, "PARAM_ERROR", "description 长度超过 127")
        out_trade_no = require_str(body, "out_trade_no")
        if not OUT_TRADE_NO.match(out_trade_no):
            raise WechatError(400, "PARAM_ERROR", "out_trade_no 须为 6-32 位数字、大小写字母或_-|*")
        self._check_notify_url(require_str(body, "notify_url"))
        amount = body.get("amount")
        total = amount.get("total") if isinstance(amount, dict) else None
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise WechatError(400, "PARAM_ERROR", "amount.total 须为正整数（分）")
        if amount.get("currency", "CNY") != "CNY":
            raise WechatError(400, "PARAM_ERROR", "amount.currency 仅支持 CNY")
        if "time_expire" in body:
            try:
                expire = datetime.fromisoformat(str(body["time_expire"]))
            except ValueError:
                raise WechatError(400, "PARAM_ERROR", "time_expire 须为 RFC3339 格式") from None
            if expire.tzinfo is None or expire <= datetime.now(UTC):
                raise WechatError(400, "PARAM_ERROR", "time_expire 须为带时区的未来时间")

        key = (mchid, sub_mchid or "", out_trade_no)
        with self._lock:
            existing = self.orders.get(key)
            if existing is not None:
                if existing.trade_state != "NOTPAY":
                    raise WechatError(400, "INVALID_REQUEST", "该订单已支付或已关闭")
                if existing.request != body:
                    raise WechatError(403, "OUT_TRADE_NO_USED", "商户订单号重复")
                return Reply(200, {"prepay_id": existing.prepay_id})
            order = FakeOrder(mchid, sub_mchid, out_trade_no, body, "wx" + random_string(string.digits, 30))
            self.orders[key] = order
        return Reply(200, {"prepay_id": order.prepay_id})

    def _check_notify_url(self: FakeWechatPay, url: str) -> None:
        parts = urlsplit(url)
        allowed = ("https",) if self.config.require_https_notify_url else ("https", "http")
        if parts.scheme not in allowed or not parts.netloc:
            raise WechatError(400, "PARAM_ERROR", "notify_url 须为 https 地址")
        if parts.query:
            raise WechatError(400, "PARAM_ERROR", "notify_url 不能携带参数")

    def _order_for(self: FakeWechatPay, mchid: str, sub_mchid: str | None, out_trade_no: str) -> FakeOrder:
        order = self.orders.get((mchid, sub_mchid or "", out_trade_no))
        if order is None:
            raise WechatError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def _query_partner(
        self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str
    ) -> Reply:
        if request.args.get("sp_mchid") != mchid:
            raise WechatError(400, "PARAM_ERROR", "sp_mchid 与请求头中的商户号不一致")
        sub_mchid = request.args.get("sub_mchid")
        if not sub_mchid:
            raise WechatError(400, "PARAM_ERROR", "sub_mchid 必填")
        return Reply(200, self._transaction(self._order_for(mchid, sub_mchid, no)))

    def _query_direct(
        self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str
    ) -> Reply:
        if request.args.get("mchid") != mchid:
            raise WechatError(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
        return Reply(200, self._transaction(self._order_for(mchid, None, no)))

    def _close(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str) -> Reply:
        partner = request.path.startswith("/v3/pay/partner/")
        if body.get("sp_mchid" if partner else "mchid") != mchid:
            raise WechatError(400, "PARAM_ERROR", "商户号与请求头中的商户号不一致")
        sub_mchid = require_str(body, "sub_mchid") if partner else None
        with self._lock:
            order = self._order_for(mchid, sub_mchid, no)
            if order.paid:
                raise WechatError(400, "INVALID_REQUEST", "订单已支付")
            order.trade_state = "CLOSED"
        return Reply(204)

    def _transaction(self: FakeWechatPay, order: FakeOrder) -> dict[str, Any]:
        """The transaction object that queries answer and notifications carry."""
        req = order.request
        if order.partner:
            ids = {key: req[key] for key in ("sp_appid", "sp_mchid", "sub_appid", "sub_mchid") if key in req}
        else:
            ids = {"appid": req["appid"], "mchid": req["mchid"]}
        result: dict[str, Any] = {
            **ids,
            "out_trade_no": order.out_trade_no,
            "trade_type": "JSAPI",
            "trade_state": order.trade_state,
            "trade_state_desc": {
                "SUCCESS": "支付成功",
                "REFUND": "转入退款",
                "NOTPAY": "订单未支付",
                "CLOSED": "订单已关闭",
            }[order.trade_state],
            "attach": req.get("attach", ""),
            "payer": req["payer"],
            "amount": {"total": order.total, "currency": "CNY"},
        }
        if order.paid:
            result.update(
                transaction_id=order.transaction_id, bank_type="OTHERS", success_time=order.success_time
            )
            result["amount"].update(payer_total=order.total, payer_currency="CNY")
        return result
