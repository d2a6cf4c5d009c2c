"""A WeChat Pay API v3 fake speaking the protocol over real HTTP, for tests, the local sandbox and benchmarks.

It checks what WeChat checks (the caller's WECHATPAY2-SHA256-RSA2048 signature over the exact bytes, the
JSAPI body rules), signs every answer and notification with its own platform key, and encrypts the
notification resource with the merchant's APIv3 key. All keys are throwaway (tests.fakes.keys).

In-process tests drive it through its methods; as a process (`python -m tests.fakes.wechatpay --port 8601`)
through the control API:

- `GET  /__fake__/platform`            {"public_key_id", "public_key"}: configure the service with these
- `POST /__fake__/merchants`           {"mchid", "serial_no", "public_key", "api_v3_key", "appids"?,
                                       "sub_mchids"?}
- `POST /__fake__/pay/{out_trade_no}`  {"mchid"?}: mark paid and POST the notification; answers the delivery
- `GET  /__fake__/orders`              orders; `GET /__fake__/profitsharing` sharing orders and receivers
- `GET  /__fake__/refunds`             refunds and profit-sharing return orders
- `POST /__fake__/refunds/{out_refund_no}/settle`  {"status": SUCCESS|ABNORMAL|CLOSED, "mchid"?}: finish the
                                       refund and POST its REFUND.* notification; answers the delivery
- `POST /__fake__/return-orders/{out_return_no}/settle`  {"result": SUCCESS|FAILED, "fail_reason"?}
- `GET  /__fake__/deliveries`          notifications posted and the answers they got
- `GET  /__fake__/calls`               API calls received, per endpoint (e.g. {"refund": 1})
- `POST /__fake__/config`              {"require_https_notify_url", "latency_ms", "sharing_auto_finish",
                                       "max_sharing_ratio", "refund_interval_ms", "refund_delay_ms",
                                       "return_result"}
- `POST /__fake__/fail_next`           {"count", "kind": error|delay|unsigned|bad_signature, "status", "code",
                                       "message", "delay_ms", "endpoint"?}
- `POST /__fake__/reset`               forget orders, sharing, refunds, deliveries, calls and faults
                                       (merchants are kept)

Profit sharing and its return orders live in `tests.fakes.wechatpay_sharing`, refunds in
`tests.fakes.wechatpay_refunds`, the pieces every endpoint shares in `tests.fakes.wechatpay_protocol`.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from payment_service.channels.keys import load_public_key
from tests.fakes.keys import TestKeyPair, key_pair
from tests.fakes.wechatpay_protocol import (
    ALNUM,
    BEIJING,
    SIGNATURE_SCHEME,
    Reply,
    WechatError,
    dumps,
    notification_body,
    now_rfc3339,
    random_string,
    require_str,
)
from tests.fakes.wechatpay_refunds import RefundDesk, refund_rules
from tests.fakes.wechatpay_sharing import FakeSharingOrder, SharingDesk, sharing_rules

__all__ = [
    "BEIJING",
    "Delivery",
    "FakeConfig",
    "FakeMerchant",
    "FakeOrder",
    "FakeSharingOrder",
    "FakeWechatPay",
    "WechatError",
]

OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
# Benchmarks import these two from here.
_random, _now_rfc3339 = random_string, now_rfc3339


@dataclass
class FakeMerchant:
    mchid: str
    serial_no: str
    public_key: rsa.RSAPublicKey
    api_v3_key: str
    appids: frozenset[str] = frozenset()  # empty: any appid is accepted
    sub_mchids: frozenset[str] = frozenset()  # empty: any sub-merchant is accepted


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


@dataclass
class Fault:
    kind: str = "error"  # error | delay | unsigned | bad_signature
    status: int = 500
    code: str = "SYSTEM_ERROR"
    message: str = "系统错误"
    delay_ms: int = 0
    endpoint: str | None = None  # only calls of this endpoint (e.g. "create_partner"); None: any call


@dataclass
class Delivery:
    """One notification POSTed to a notify_url and what came back (status 0: no answer)."""

    url: str
    status: int
    body: str
    out_trade_no: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status in (200, 204)


@dataclass
class FakeConfig:
    require_https_notify_url: bool = True  # tests on loopback turn this off
    latency_ms: int = 0
    sharing_auto_finish: bool = True  # sharing orders are FINISHED on the first query after creation
    max_sharing_ratio: Decimal = Decimal(
        1
    )  # real sub-merchants grant 30% by default; the fake does not limit
    # Two different refunds of one order closer than this answer FREQUENCY_LIMITED (WeChat asks for about a
    # minute between partial refunds); 0 is no limit.
    refund_interval_ms: int = 0
    # None: refunds stay PROCESSING until settle_refund(); a number: SUCCESS (and its notification) that
    # many milliseconds after the refund is accepted.
    refund_delay_ms: int | None = None
    return_result: str = "SUCCESS"  # what a new return order answers: SUCCESS, or PROCESSING until settled


class FakeWechatPay(SharingDesk, RefundDesk):
    """The fake's state and protocol; an instance is a WSGI app."""

    def __init__(
        self,
        *,
        require_https_notify_url: bool = True,
        platform_keys: TestKeyPair | None = None,
        public_key_id: str | None = None,
    ) -> None:
        self.platform_keys = platform_keys or key_pair("wechatpay-platform")
        self.public_key_id = public_key_id or "PUB_KEY_ID_" + random_string(string.digits, 28)
        self.config = FakeConfig(require_https_notify_url=require_https_notify_url)
        self.merchants: dict[str, FakeMerchant] = {}
        self.orders: dict[tuple[str, str, str], FakeOrder] = {}
        self.deliveries: list[Delivery] = []
        self.requests_seen = 0
        self.calls: Counter[str] = Counter()  # API calls received per endpoint, faulted and refused included
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._init_sharing()
        self._init_refunds()
        self._url_map = Map(
            [
                Rule("/v3/pay/partner/transactions/jsapi", methods=["POST"], endpoint="create_partner"),
                Rule("/v3/pay/transactions/jsapi", methods=["POST"], endpoint="create_direct"),
                Rule(
                    "/v3/pay/partner/transactions/out-trade-no/<no>",
                    methods=["GET"],
                    endpoint="query_partner",
                ),
                Rule("/v3/pay/transactions/out-trade-no/<no>", methods=["GET"], endpoint="query_direct"),
                Rule(
                    "/v3/pay/partner/transactions/out-trade-no/<no>/close", methods=["POST"], endpoint="close"
                ),
                Rule("/v3/pay/transactions/out-trade-no/<no>/close", methods=["POST"], endpoint="close"),
                Rule("/__fake__/platform", methods=["GET"], endpoint="ctl_platform"),
                Rule("/__fake__/merchants", methods=["POST"], endpoint="ctl_merchants"),
                Rule("/__fake__/pay/<no>", methods=["POST"], endpoint="ctl_pay"),
                Rule("/__fake__/orders", methods=["GET"], endpoint="ctl_orders"),
                Rule("/__fake__/deliveries", methods=["GET"], endpoint="ctl_deliveries"),
                Rule("/__fake__/calls", methods=["GET"], endpoint="ctl_calls"),
                Rule("/__fake__/config", methods=["POST"], endpoint="ctl_config"),
                Rule("/__fake__/fail_next", methods=["POST"], endpoint="ctl_fail_next"),
                Rule("/__fake__/reset", methods=["POST"], endpoint="ctl_reset"),
                *sharing_rules(),
                *refund_rules(),
            ]
        )

    # -- operations for tests ---------------------------------------------------------------------------

    @property
    def public_key_pem(self) -> str:
        return self.platform_keys.public_pem

    def register_merchant(
        self,
        mchid: str,
        serial_no: str,
        public_key: str | rsa.RSAPublicKey,
        api_v3_key: str,
        appids: tuple[str, ...] = (),
        sub_mchids: tuple[str, ...] = (),
    ) -> FakeMerchant:
        """Make a merchant known: its API certificate serial and public key verify its requests."""
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        merchant = FakeMerchant(mchid, serial_no, key, api_v3_key, frozenset(appids), frozenset(sub_mchids))
        with self._lock:
            self.merchants[mchid] = merchant
        return merchant

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        """The next `count` API calls misbehave: an error answer, a delay, no signature or a wrong one."""
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(count))

    def reset(self) -> None:
        with self._lock:
            self.orders.clear()
            self._init_sharing()
            self.deliveries.clear()
            self._faults.clear()
            self.requests_seen = 0
            self.calls.clear()
            self._reset_refunds()

    def find_order(self, out_trade_no: str, mchid: str | None = None) -> FakeOrder:
        with self._lock:
            found = [
                order
                for order in self.orders.values()
                if order.out_trade_no == out_trade_no and (mchid is None or order.mchid == mchid)
            ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} orders match out_trade_no {out_trade_no!r}")
        return found[0]

    def pay(self, out_trade_no: str, mchid: str | None = None) -> Delivery:
        """The payer pays: the order becomes SUCCESS and its notification is POSTed to its notify_url.

        Paying an order already paid sends the notification again, as WeChat's redeliveries do.
        """
        order = self.find_order(out_trade_no, mchid)
        with self._lock:
            if order.trade_state == "CLOSED":
                raise ValueError(f"order {out_trade_no} is closed")
            if order.trade_state == "NOTPAY":
                order.trade_state = "SUCCESS"
                order.transaction_id = "42000" + random_string(string.digits, 23)
                order.success_time = now_rfc3339()
        headers, body = self.build_notification(order)
        return self.deliver(order.request["notify_url"], headers, body, out_trade_no)

    def build_notification(self, order: FakeOrder, **overrides: Any) -> tuple[dict[str, str], bytes]:
        """Headers and body of the TRANSACTION.SUCCESS notification for a paid order, exactly as posted."""
        resource = {**self._transaction(order), **overrides}
        body = notification_body(
            self.merchants[order.mchid].api_v3_key,
            resource,
            event_type="TRANSACTION.SUCCESS",
            summary="支付成功",
            original_type="transaction",
        )
        headers = {"Content-Type": "application/json", **self.signature_headers(body)}
        return headers, body

    def signature_headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Wechatpay-* headers signing `body` with the platform key."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = random_string(ALNUM, 32)
        message = f"{stamp}\n{nonce}\n".encode() + body + b"\n"
        signature = self.platform_keys.private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return {
            "Wechatpay-Timestamp": stamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Serial": self.public_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_SCHEME,
        }

    def deliver(self, url: str, headers: dict[str, str], body: bytes, out_trade_no: str = "") -> Delivery:
        try:
            answer = requests.post(url, data=body, headers=headers, timeout=5)
            delivery = Delivery(url, answer.status_code, answer.text, out_trade_no)
        except requests.RequestException as exc:
            delivery = Delivery(url, 0, type(exc).__name__, out_trade_no)
        with self._lock:
            self.deliveries.append(delivery)
        return delivery

    # -- WSGI -------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            response = Response(
                dumps({"code": "RESOURCE_NOT_EXISTS", "message": exc.name}),
                exc.code or 404,
                content_type="application/json",
            )
            return response(environ, start_response)
        if endpoint.startswith("ctl_"):
            response = self._control(endpoint, request, args)
        else:
            response = self._api(endpoint, request, args)
        return response(environ, start_response)

    def _api(self, endpoint: str, request: Request, args: dict[str, str]) -> Response:
        with self._lock:
            self.requests_seen += 1
            self.calls[endpoint] += 1
            fault = next((f for f in self._faults if f.endpoint in (None, endpoint)), None)
            if fault is not None:
                self._faults.remove(fault)
        if self.config.latency_ms:
            time.sleep(self.config.latency_ms / 1000)
        if fault and fault.kind == "delay":
            time.sleep(fault.delay_ms / 1000)
        if fault and fault.kind == "error":
            return self._respond(Reply(fault.status, {"code": fault.code, "message": fault.message}))
        try:
            mchid = self._authenticate(request)
            body = self._json_body(request)
            reply = getattr(self, f"_{endpoint}")(mchid, body, request, **args)
        except WechatError as exc:
            reply = Reply(exc.status, {"code": exc.code, "message": exc.message})
        return self._respond(reply, fault.kind if fault else None)

    def _respond(self, reply: Reply, fault_kind: str | None = None) -> Response:
        body = b"" if reply.payload is None else dumps(reply.payload)
        headers = {"Request-ID": uuid.uuid4().hex, **reply.headers}
        if fault_kind != "unsigned":
            signed = self.signature_headers(body)
            if fault_kind == "bad_signature":
                signed["Wechatpay-Signature"] = base64.b64encode(secrets.token_bytes(256)).decode()
            headers.update(signed)
        content_type = "application/json" if body else None
        return Response(body, reply.status, headers=headers, content_type=content_type)

    def _authenticate(self, request: Request) -> str:
        """Check the Authorization header as WeChat does; the signed URL is the raw request target."""
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        if scheme != SIGNATURE_SCHEME:
            raise WechatError(401, "SIGN_ERROR", "Authorization 认证类型错误")
        params = dict(_AUTH_PARAM.findall(rest))
        missing = {"mchid", "nonce_str", "signature", "timestamp", "serial_no"} - params.keys()
        if missing:
            raise WechatError(401, "SIGN_ERROR", f"Authorization 缺少 {', '.join(sorted(missing))}")
        merchant = self.merchants.get(params["mchid"])
        if merchant is None:
            raise WechatError(401, "SIGN_ERROR", "商户号不存在")
        if params["serial_no"] != merchant.serial_no:
            raise WechatError(401, "SIGN_ERROR", "商户证书序列号有误")
        if not params["timestamp"].isdigit() or abs(time.time() - int(params["timestamp"])) > 300:
            raise WechatError(401, "SIGN_ERROR", "签名时间戳已过期")
        target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        message = (
            f"{request.method}\n{target}\n{params['timestamp']}\n{params['nonce_str']}\n".encode()
            + request.get_data()
            + b"\n"
        )
        try:
            signature = base64.b64decode(params["signature"], validate=True)
            merchant.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise WechatError(401, "SIGN_ERROR", "签名错误") from None
        return merchant.mchid

    @staticmethod
    def _json_body(request: Request) -> dict[str, Any]:
        if request.method == "GET":
            return {}
        if request.mimetype != "application/json":
            raise WechatError(400, "PARAM_ERROR", "Content-Type 须为 application/json")
        try:
            body = json.loads(request.get_data())
        except ValueError:
            raise WechatError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
        if not isinstance(body, dict):
            raise WechatError(400, "PARAM_ERROR", "请求体须为 JSON 对象")
        return body

    # -- payments ---------------------------------------------------------------------------------------

    def _create_partner(self, mchid: str, body: dict[str, Any], request: Request) -> Reply:
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

    def _create_direct(self, mchid: str, body: dict[str, Any], request: Request) -> Reply:
        for name in ("appid", "mchid"):
            require_str(body, name)
        if body["mchid"] != mchid:
            raise WechatError(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
        self._check_merchant_scope(mchid, body["appid"], None)
        payer = body.get("payer")
        if not isinstance(payer, dict) or not payer.get("openid"):
            raise WechatError(400, "PARAM_ERROR", "payer.openid 必填")
        return self._create(mchid, None, body)

    def _check_merchant_scope(self, mchid: str, appid: str, sub_mchid: str | None) -> None:
        merchant = self.merchants[mchid]
        if merchant.appids and appid not in merchant.appids:
            raise WechatError(400, "APPID_MCHID_NOT_MATCH", "appid 和 mch_id 不匹配")
        if sub_mchid is not None and merchant.sub_mchids and sub_mchid not in merchant.sub_mchids:
            raise WechatError(403, "NO_AUTH", "特约商户未授权")

    def _create(self, mchid: str, sub_mchid: str | None, body: dict[str, Any]) -> Reply:
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

    def _check_notify_url(self, url: str) -> None:
        parts = urlsplit(url)
        allowed = ("https",) if self.config.require_https_notify_url else ("https", "http")
        if parts.scheme not in allowed or not parts.netloc:
            raise WechatError(400, "PARAM_ERROR", "notify_url 须为 https 地址")
        if parts.query:
            raise WechatError(400, "PARAM_ERROR", "notify_url 不能携带参数")

    def _order_for(self, mchid: str, sub_mchid: str | None, out_trade_no: str) -> FakeOrder:
        order = self.orders.get((mchid, sub_mchid or "", out_trade_no))
        if order is None:
            raise WechatError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def _query_partner(self, mchid: str, body: dict[str, Any], request: Request, no: str) -> Reply:
        if request.args.get("sp_mchid") != mchid:
            raise WechatError(400, "PARAM_ERROR", "sp_mchid 与请求头中的商户号不一致")
        sub_mchid = request.args.get("sub_mchid")
        if not sub_mchid:
            raise WechatError(400, "PARAM_ERROR", "sub_mchid 必填")
        return Reply(200, self._transaction(self._order_for(mchid, sub_mchid, no)))

    def _query_direct(self, mchid: str, body: dict[str, Any], request: Request, no: str) -> Reply:
        if request.args.get("mchid") != mchid:
            raise WechatError(400, "PARAM_ERROR", "mchid 与请求头中的商户号不一致")
        return Reply(200, self._transaction(self._order_for(mchid, None, no)))

    def _close(self, mchid: str, body: dict[str, Any], request: Request, no: str) -> Reply:
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

    def _transaction(self, order: FakeOrder) -> dict[str, Any]:
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

    # -- control API ------------------------------------------------------------------------------------

    def _control(self, endpoint: str, request: Request, args: dict[str, str]) -> Response:
        try:
            body = request.get_json(silent=True) or {}
            payload = getattr(self, f"_{endpoint}")(body, **args)
            status = 200
        except (LookupError, ValueError, TypeError) as exc:
            payload, status = {"error": str(exc)}, 400
        return Response(dumps(payload), status, content_type="application/json")

    def _ctl_platform(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"public_key_id": self.public_key_id, "public_key": self.public_key_pem}

    def _ctl_merchants(self, body: dict[str, Any]) -> dict[str, Any]:
        merchant = self.register_merchant(
            str(body["mchid"]),
            str(body["serial_no"]),
            str(body["public_key"]),
            str(body["api_v3_key"]),
            tuple(body.get("appids") or ()),
            tuple(body.get("sub_mchids") or ()),
        )
        return {"mchid": merchant.mchid}

    def _ctl_pay(self, body: dict[str, Any], no: str) -> dict[str, Any]:
        return asdict(self.pay(no, body.get("mchid")))

    def _ctl_orders(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"orders": [asdict(order) for order in self.orders.values()]}

    def _ctl_deliveries(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"deliveries": [asdict(delivery) for delivery in self.deliveries]}

    def _ctl_config(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            for name in ("require_https_notify_url", "sharing_auto_finish"):
                if name in body:
                    setattr(self.config, name, bool(body[name]))
            for name in ("latency_ms", "refund_interval_ms"):
                if name in body:
                    setattr(self.config, name, int(body[name]))
            if "refund_delay_ms" in body:
                delay = body["refund_delay_ms"]
                self.config.refund_delay_ms = None if delay is None else int(delay)
            if "return_result" in body:
                if body["return_result"] not in ("SUCCESS", "PROCESSING"):
                    raise ValueError("return_result is SUCCESS or PROCESSING")
                self.config.return_result = str(body["return_result"])
            if "max_sharing_ratio" in body:
                self.config.max_sharing_ratio = Decimal(str(body["max_sharing_ratio"]))
            return {
                key: str(value) if isinstance(value, Decimal) else value
                for key, value in asdict(self.config).items()
            }

    def _ctl_calls(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls)}

    def _ctl_fail_next(self, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("kind", "status", "code", "message", "delay_ms", "endpoint")
        fault = {key: body[key] for key in fields if key in body}
        self.fail_next(int(body.get("count", 1)), **fault)
        return {"queued": len(self._faults)}

    def _ctl_reset(self, body: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {"reset": True}


def main(argv: list[str] | None = None) -> None:
    from tests.fakes.server import make_server

    parser = argparse.ArgumentParser(description="WeChat Pay API v3 fake (throwaway keys, loopback use only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    parser.add_argument("--allow-http-notify", action="store_true", help="accept http:// notify_url")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every API call")
    parser.add_argument(
        "--refund-delay-ms",
        type=int,
        default=None,
        help="settle refunds SUCCESS (and notify) after this delay",
    )
    args = parser.parse_args(argv)
    fake = FakeWechatPay(require_https_notify_url=not args.allow_http_notify)
    fake.config.latency_ms = args.latency_ms
    fake.config.refund_delay_ms = args.refund_delay_ms
    server = make_server(fake, args.host, args.port)
    print(f"http://{args.host}:{server.port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
