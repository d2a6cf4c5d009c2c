"""The WeChat Pay fake's profit sharing: receivers, sharing orders and the return orders taking shares back.

A sharing order needs a paid order placed with the profit-sharing flag and receivers added first; a return
order needs a receiver the split paid (SUCCESS) and never takes back more than that receiver got.
"""

from __future__ import annotations

import base64
import string
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from tests.fakes.wechatpay_protocol import (
    Reply,
    WechatError,
    now_rfc3339,
    random_string,
    require_fen,
    require_merchant_no,
    require_str,
)

if TYPE_CHECKING:
    from tests.fakes.wechatpay import FakeWechatPay


@dataclass
class FakeSharingOrder:
    mchid: str
    sub_mchid: str | None
    transaction_id: str
    out_order_no: str
    order_id: str
    receivers: list[dict[str, Any]]
    state: str = "PROCESSING"


@dataclass
class FakeReturnOrder:
    mchid: str
    sub_mchid: str | None
    order_id: str
    out_order_no: str
    out_return_no: str
    return_id: str
    return_mchid: str
    amount: int
    description: str
    result: str = "SUCCESS"
    fail_reason: str | None = None
    create_time: str = ""
    finish_time: str | None = None


def sharing_rules() -> list[Rule]:
    """The routes of this desk; fresh Rule objects for each fake's Map."""
    return [
        Rule("/v3/profitsharing/receivers/add", methods=["POST"], endpoint="add_receiver"),
        Rule("/v3/profitsharing/orders", methods=["POST"], endpoint="create_sharing"),
        Rule("/v3/profitsharing/orders/<no>", methods=["GET"], endpoint="query_sharing"),
        Rule("/v3/profitsharing/return-orders", methods=["POST"], endpoint="create_return"),
        Rule("/v3/profitsharing/return-orders/<no>", methods=["GET"], endpoint="query_return"),
        Rule("/__fake__/profitsharing", methods=["GET"], endpoint="ctl_profitsharing"),
        Rule("/__fake__/return-orders/<no>/settle", methods=["POST"], endpoint="ctl_settle_return"),
    ]


class SharingDesk:
    """Mixed into FakeWechatPay: profit-sharing endpoints and their state."""

    sharing_orders: dict[tuple[str, str, str], FakeSharingOrder]
    receivers: dict[tuple[str, str, str, str], dict[str, Any]]
    return_orders: dict[tuple[str, str, str], FakeReturnOrder]

    def _init_sharing(self: FakeWechatPay) -> None:
        self.sharing_orders = {}
        self.receivers = {}
        self.return_orders = {}

    def settle_return(
        self: FakeWechatPay, out_return_no: str, result: str = "SUCCESS", fail_reason: str | None = None
    ) -> FakeReturnOrder:
        """WeChat finishes a PROCESSING return order: SUCCESS, or FAILED (e.g. ACCOUNT_ABNORMAL)."""
        if result not in ("SUCCESS", "FAILED"):
            raise ValueError(f"a return order settles as SUCCESS or FAILED, not {result!r}")
        with self._lock:
            found = [r for r in self.return_orders.values() if r.out_return_no == out_return_no]
            if len(found) != 1:
                raise LookupError(f"{len(found)} return orders match out_return_no {out_return_no!r}")
            order = found[0]
            if order.result == "PROCESSING":
                order.result, order.finish_time = result, now_rfc3339()
                order.fail_reason = (fail_reason or "ACCOUNT_ABNORMAL") if result == "FAILED" else None
        return order

    def _sharing_scope(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> str | None:
        if request.headers.get("Wechatpay-Serial") != self.public_key_id:
            raise WechatError(400, "PARAM_ERROR", "Wechatpay-Serial 须为微信支付公钥 ID")
        require_str(body, "appid")
        sub_mchid = body.get("sub_mchid")
        if sub_mchid is not None:
            self._check_merchant_scope(mchid, body["appid"], str(sub_mchid))
        return sub_mchid

    def _decrypt_field(self: FakeWechatPay, ciphertext: str, name: str) -> str:
        try:
            return self.platform_keys.private_key.decrypt(
                base64.b64decode(ciphertext, validate=True),
                padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
            ).decode("utf-8")
        except ValueError:
            raise WechatError(400, "PARAM_ERROR", f"{name} 解密失败") from None

    def _add_receiver(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        sub_mchid = self._sharing_scope(mchid, body, request)
        kind = require_str(body, "type")
        if kind not in ("MERCHANT_ID", "PERSONAL_OPENID", "PERSONAL_SUB_OPENID"):
            raise WechatError(400, "PARAM_ERROR", "type 取值错误")
        account = require_str(body, "account")
        name = self._decrypt_field(body["name"], "name") if body.get("name") else None
        if kind == "MERCHANT_ID" and not name:
            raise WechatError(400, "PARAM_ERROR", "商户号类型的分账接收方须传 name")
        relation_type = require_str(body, "relation_type")
        if relation_type == "CUSTOM" and not body.get("custom_relation"):
            raise WechatError(400, "PARAM_ERROR", "relation_type 为 CUSTOM 时 custom_relation 必填")
        with self._lock:
            self.receivers[(mchid, sub_mchid or "", kind, account)] = {
                "sub_mchid": sub_mchid,
                "type": kind,
                "account": account,
                "name": name,
                "relation_type": relation_type,
            }
        answer = {key: body[key] for key in ("sub_mchid", "type", "account", "relation_type") if key in body}
        return Reply(200, answer)

    def _create_sharing(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        sub_mchid = self._sharing_scope(mchid, body, request)
        transaction_id = require_str(body, "transaction_id")
        out_order_no = require_str(body, "out_order_no")
        key = (mchid, sub_mchid or "", out_order_no)
        with self._lock:
            existing = self.sharing_orders.get(key)
            if existing is not None:
                return Reply(200, self._sharing_view(existing))
            order = next(
                (
                    o
                    for o in self.orders.values()
                    if o.transaction_id == transaction_id and o.mchid == mchid and o.sub_mchid == sub_mchid
                ),
                None,
            )
            if order is None or not order.paid:
                raise WechatError(400, "INVALID_REQUEST", "微信订单号不存在或订单未支付")
            if not order.profit_sharing:
                raise WechatError(400, "INVALID_REQUEST", "非分账订单不支持分账")
            if order.sharing_closed:
                raise WechatError(400, "INVALID_REQUEST", "订单已完成分账，剩余资金已解冻")
            lines = body.get("receivers")
            if not isinstance(lines, list) or not 1 <= len(lines) <= 50:
                raise WechatError(400, "PARAM_ERROR", "receivers 须为 1-50 个分账接收方")
            receivers = []
            for line in lines:
                amount = line.get("amount") if isinstance(line, dict) else None
                if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
                    raise WechatError(400, "PARAM_ERROR", "分账金额须为正整数（分）")
                kind, account = line.get("type"), line.get("account")
                if (mchid, sub_mchid or "", kind, account) not in self.receivers:
                    raise WechatError(400, "INVALID_REQUEST", f"分账接收方 {account} 未添加")
                if line.get("name"):
                    self._decrypt_field(line["name"], "receivers.name")
                receivers.append(
                    {
                        "type": kind,
                        "account": account,
                        "amount": amount,
                        "description": str(line.get("description", "")),
                        "result": "PENDING",
                        "detail_id": "3600" + random_string(string.digits, 24),
                        "create_time": now_rfc3339(),
                    }
                )
            limit = int(Decimal(order.total) * self.config.max_sharing_ratio)
            if sum(r["amount"] for r in receivers) > limit:
                raise WechatError(403, "RULE_LIMIT", "分账金额超出最大分账比例")
            sharing = FakeSharingOrder(
                mchid,
                sub_mchid,
                transaction_id,
                out_order_no,
                "3008" + random_string(string.digits, 24),
                receivers,
            )
            self.sharing_orders[key] = sharing
            if body.get("unfreeze_unsplit"):
                order.sharing_closed = True
        return Reply(200, self._sharing_view(sharing))

    def _query_sharing(
        self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str
    ) -> Reply:
        sub_mchid = request.args.get("sub_mchid")
        with self._lock:
            sharing = self.sharing_orders.get((mchid, sub_mchid or "", no))
            if sharing is None or sharing.transaction_id != request.args.get("transaction_id"):
                raise WechatError(404, "RESOURCE_NOT_EXISTS", "记录不存在")
            if self.config.sharing_auto_finish:
                self.finish_sharing(sharing)
        return Reply(200, self._sharing_view(sharing))

    def finish_sharing(self: FakeWechatPay, sharing: FakeSharingOrder) -> None:
        """WeChat settles the split: every line succeeds and the order is FINISHED."""
        with self._lock:
            sharing.state = "FINISHED"
            for receiver in sharing.receivers:
                if receiver["result"] == "PENDING":
                    receiver.update(result="SUCCESS", finish_time=now_rfc3339())

    @staticmethod
    def _sharing_view(sharing: FakeSharingOrder) -> dict[str, Any]:
        view: dict[str, Any] = {"sub_mchid": sharing.sub_mchid} if sharing.sub_mchid else {}
        view.update(
            transaction_id=sharing.transaction_id,
            out_order_no=sharing.out_order_no,
            order_id=sharing.order_id,
            state=sharing.state,
            receivers=[dict(r) for r in sharing.receivers],
        )
        return view

    # -- return orders ----------------------------------------------------------------------------------

    def _create_return(self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        sub_mchid = body.get("sub_mchid")
        out_return_no = require_merchant_no(body, "out_return_no")
        return_mchid = require_str(body, "return_mchid")
        amount = require_fen(body.get("amount"), "amount")
        description = require_str(body, "description", max_length=80)
        with self._lock:
            sharing = next(
                (
                    s
                    for s in self.sharing_orders.values()
                    if (s.mchid, s.sub_mchid) == (mchid, sub_mchid)
                    and (s.out_order_no == body.get("out_order_no") or s.order_id == body.get("order_id"))
                ),
                None,
            )
            if sharing is None:
                raise WechatError(404, "RESOURCE_NOT_EXISTS", "分账单不存在")
            key = (mchid, sub_mchid or "", out_return_no)
            existing = self.return_orders.get(key)
            asked = (sharing.out_order_no, return_mchid, amount)
            if existing is not None:
                if (existing.out_order_no, existing.return_mchid, existing.amount) != asked:
                    raise WechatError(400, "INVALID_REQUEST", "回退单号已使用，请求参数与原回退不一致")
                return Reply(200, self._return_view(existing))
            line = next(
                (
                    r
                    for r in sharing.receivers
                    if r["type"] == "MERCHANT_ID"
                    and r["account"] == return_mchid
                    and r["result"] == "SUCCESS"
                ),
                None,
            )
            if line is None:
                raise WechatError(400, "INVALID_REQUEST", "回退商户号不是该分账单已成功的分账接收方")
            returned = sum(
                r.amount
                for r in self.return_orders.values()
                if (r.mchid, r.sub_mchid, r.out_order_no, r.return_mchid)
                == (mchid, sub_mchid, sharing.out_order_no, return_mchid)
                and r.result != "FAILED"
            )
            if returned + amount > line["amount"]:
                raise WechatError(400, "INVALID_REQUEST", "回退金额超过该接收方可回退的金额")
            order = FakeReturnOrder(
                mchid,
                sub_mchid,
                sharing.order_id,
                sharing.out_order_no,
                out_return_no,
                return_id="3008" + random_string(string.digits, 24),
                return_mchid=return_mchid,
                amount=amount,
                description=description,
                result=self.config.return_result,
                create_time=now_rfc3339(),
            )
            if order.result == "SUCCESS":
                order.finish_time = order.create_time
            self.return_orders[key] = order
        return Reply(200, self._return_view(order))

    def _query_return(
        self: FakeWechatPay, mchid: str, body: dict[str, Any], request: Request, no: str
    ) -> Reply:
        with self._lock:
            order = self.return_orders.get((mchid, request.args.get("sub_mchid") or "", no))
            if order is None or order.out_order_no != request.args.get("out_order_no"):
                raise WechatError(404, "RESOURCE_NOT_EXISTS", "回退单不存在")
            return Reply(200, self._return_view(order))

    @staticmethod
    def _return_view(order: FakeReturnOrder) -> dict[str, Any]:
        view: dict[str, Any] = {"sub_mchid": order.sub_mchid} if order.sub_mchid else {}
        view.update(
            order_id=order.order_id,
            out_order_no=order.out_order_no,
            out_return_no=order.out_return_no,
            return_id=order.return_id,
            return_mchid=order.return_mchid,
            amount=order.amount,
            description=order.description,
            result=order.result,
            create_time=order.create_time,
        )
        if order.fail_reason:
            view["fail_reason"] = order.fail_reason
        if order.finish_time:
            view["finish_time"] = order.finish_time
        return view

    # -- control API ------------------------------------------------------------------------------------

    def _ctl_profitsharing(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {
                "orders": [asdict(sharing) for sharing in self.sharing_orders.values()],
                "receivers": list(self.receivers.values()),
                "return_orders": [asdict(order) for order in self.return_orders.values()],
            }

    def _ctl_settle_return(self: FakeWechatPay, body: dict[str, Any], no: str) -> dict[str, Any]:
        order = self.settle_return(no, str(body.get("result", "SUCCESS")), body.get("fail_reason"))
        return asdict(order)
