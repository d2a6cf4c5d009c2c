"""A WeChat Pay API v3 fake speaking the protocol over real HTTP, for tests, the local sandbox and benchmarks.

It checks what WeChat checks (the caller's WECHATPAY2-SHA256-RSA2048 signature over the exact bytes, the
JSAPI body rules), signs every answer and notification with its own platform key, and encrypts the
notification resource with the merchant's APIv3 key. All keys are throwaway (tests.fakes.keys).

In-process tests drive it through its methods; as a process (`python -m tests.fakes.wechatpay --port 8601`)
through the control API:

- `GET  /__fake__/platform`            {"public_key_id", "public_key"}: configure the service with these
- `POST /__fake__/merchants`           {"mchid", "serial_no", "public_key", "api_v3_key", "appids"?,
                                       "sub_mchids"?, "kind"? (service_provider | direct; absent: either)}
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

JSAPI orders live in `tests.fakes.wechatpay_orders`, the control API in `tests.fakes.wechatpay_control`,
profit sharing and its return orders in `tests.fakes.wechatpay_sharing`, refunds in
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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from payment_service.channels.keys import load_public_key
from tests.fakes.keys import TestKeyPair, key_pair
from tests.fakes.wechatpay_control import ControlDesk, control_rules
from tests.fakes.wechatpay_orders import MERCHANT_KINDS, FakeMerchant, FakeOrder, OrderDesk, order_rules
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

_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')
# Benchmarks import these two from here.
_random, _now_rfc3339 = random_string, now_rfc3339


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


class FakeWechatPay(OrderDesk, ControlDesk, SharingDesk, RefundDesk):
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
                *order_rules(),
                *control_rules(),
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
        kind: str | None = None,
    ) -> FakeMerchant:
        """Make a merchant known: its API certificate serial and public key verify its requests.

        ``kind`` ``service_provider`` may place only partner orders, ``direct`` only its own; None: either."""
        if kind is not None and kind not in MERCHANT_KINDS:
            raise ValueError(f"kind is one of {', '.join(MERCHANT_KINDS)}")
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        merchant = FakeMerchant(
            mchid, serial_no, key, api_v3_key, frozenset(appids), frozenset(sub_mchids), kind
        )
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
