"""An Alipay open-platform gateway fake over real HTTP, for tests, the local sandbox and benchmarks.

It verifies each call's RSA2 signature with the app's public key as the gateway does, answers
`{"<method>_response": {...}, "sign": "..."}` signed with its own throwaway "Alipay" key, and posts signed
form notifications that must be answered with the body `success`. The signing rules are implemented
here independently of the service's code, so the two cannot agree on a mistake.

In-process tests drive it through its methods; as a process (`python -m tests.fakes.alipay --port 8602`)
through the control API:

- `GET  /__fake__/platform`            {"alipay_public_key"}: configure the service with it
- `POST /__fake__/apps`                {"app_id", "public_key", "seller_id"?}
- `POST /__fake__/pay/{out_trade_no}`  {"app_id"?}: mark paid and POST the notification; answers the delivery
- `GET  /__fake__/orders`              trades; `GET /__fake__/deliveries` notifications posted and answers
- `GET  /__fake__/refunds`             refunds; `POST /__fake__/refunds/settle` {"out_trade_no",
                                       "out_request_no"} finishes a pending one
- `GET  /__fake__/calls`               gateway calls received, per method (e.g. {"alipay.trade.refund": 1})
- `POST /__fake__/config`              {"latency_ms", "refund_fund_change", "refund_settle_on_query"}
- `POST /__fake__/fail_next`           {"count", "kind": error|delay|unsigned|bad_signature, "status" (200 =
                                       a signed business error), "code", "sub_code", "message", "delay_ms",
                                       "method"? (only calls of that method)}
- `POST /__fake__/reset`               forget trades, refunds, deliveries, calls and faults (apps are kept)

Trades live in `tests.fakes.alipay_trades`, the control API in `tests.fakes.alipay_control`, refunds in
`tests.fakes.alipay_refunds`, what every method shares in `tests.fakes.alipay_protocol`.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from payment_service.channels.keys import load_public_key
from tests.fakes.alipay_control import ControlDesk, control_rules
from tests.fakes.alipay_protocol import (
    BEIJING,
    TIME_FORMAT,
    AlipayError,
    beijing_now,
    digits,
    invalid,
)
from tests.fakes.alipay_refunds import RefundDesk, refund_rules
from tests.fakes.alipay_trades import FakeApp, FakeTrade, TradeDesk
from tests.fakes.keys import TestKeyPair, key_pair

__all__ = ["BEIJING", "AlipayError", "Delivery", "FakeAlipay", "FakeApp", "FakeTrade"]

METHODS = (
    "alipay.trade.create",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
)


@dataclass
class Fault:
    kind: str = "error"  # error | delay | unsigned | bad_signature
    status: int = 500
    code: str = "20000"
    sub_code: str = "isp.unknow-error"
    message: str = "系统繁忙"
    delay_ms: int = 0
    method: str | None = None  # only calls of this method (e.g. "alipay.trade.refund"); None: any call


@dataclass
class Delivery:
    """One notification POSTed to a notify_url and what came back (status 0: no answer)."""

    url: str
    status: int
    body: str
    out_trade_no: str = ""

    @property
    def acknowledged(self) -> bool:
        return self.status == 200 and self.body.strip() == "success"


def _sign_content(params: dict[str, str], *, drop: tuple[str, ...], keep_empty: bool) -> str:
    items = sorted((k, v) for k, v in params.items() if k not in drop and (keep_empty or v != ""))
    return "&".join(f"{k}={v}" for k, v in items)


class FakeAlipay(TradeDesk, ControlDesk, RefundDesk):
    """The fake's state and protocol; an instance is a WSGI app."""

    def __init__(self, *, alipay_keys: TestKeyPair | None = None) -> None:
        self.alipay_keys = alipay_keys or key_pair("alipay-platform")
        self.apps: dict[str, FakeApp] = {}
        self.trades: dict[tuple[str, str], FakeTrade] = {}
        self.deliveries: list[Delivery] = []
        self.latency_ms = 0
        self.refund_fund_change = True  # False: new refunds answer fund_change N and wait to be settled
        self.refund_settle_on_query = True  # a pending refund settles on its first query
        self.requests_seen = 0
        self.calls: Counter[str] = Counter()  # gateway calls received per method, refused ones included
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._init_refunds()
        self._url_map = Map(
            [
                Rule("/gateway.do", methods=["GET", "POST"], endpoint="gateway"),
                *control_rules(),
                *refund_rules(),
            ]
        )

    # -- operations for tests ---------------------------------------------------------------------------

    @property
    def public_key_pem(self) -> str:
        return self.alipay_keys.public_pem

    def register_app(
        self, app_id: str, public_key: str | rsa.RSAPublicKey, seller_id: str | None = None
    ) -> FakeApp:
        """Make an app known: its public key (uploaded to Alipay's console) verifies its calls."""
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        app = FakeApp(app_id, key, seller_id or "2088" + digits(12))
        with self._lock:
            self.apps[app_id] = app
        return app

    def fail_next(self, count: int = 1, **fault: Any) -> None:
        with self._lock:
            self._faults.extend(Fault(**fault) for _ in range(count))

    def reset(self) -> None:
        with self._lock:
            self.trades.clear()
            self.deliveries.clear()
            self.calls.clear()
            self._init_refunds()
            self._faults.clear()
            self.requests_seen = 0

    def find_trade(self, out_trade_no: str, app_id: str | None = None) -> FakeTrade:
        with self._lock:
            found = [
                trade
                for trade in self.trades.values()
                if trade.out_trade_no == out_trade_no and (app_id is None or trade.app_id == app_id)
            ]
        if len(found) != 1:
            raise LookupError(f"{len(found)} trades match out_trade_no {out_trade_no!r}")
        return found[0]

    def pay(self, out_trade_no: str, app_id: str | None = None) -> Delivery:
        """The buyer pays: TRADE_SUCCESS, and the signed notification is POSTed to the trade's notify_url.

        Paying a trade already paid sends the notification again, as Alipay's redeliveries do.
        """
        trade = self.find_trade(out_trade_no, app_id)
        with self._lock:
            if trade.trade_status == "TRADE_CLOSED":
                raise ValueError(f"trade {out_trade_no} is closed")
            if trade.trade_status == "WAIT_BUYER_PAY":
                trade.trade_status = "TRADE_SUCCESS"
                trade.gmt_payment = beijing_now()
        if not trade.notify_url:
            raise ValueError(f"trade {out_trade_no} has no notify_url")
        return self.deliver(trade.notify_url, self.build_notification(trade), out_trade_no)

    def build_notification(self, trade: FakeTrade, **overrides: str) -> dict[str, str]:
        """The notification's form fields, signed over all but sign and sign_type (empty values included)."""
        app = self.apps[trade.app_id]
        amount = trade.biz["total_amount"]
        buyer = {"buyer_id": trade.biz["buyer_id"]} if "buyer_id" in trade.biz else {}
        if "buyer_open_id" in trade.biz:
            buyer = {"buyer_open_id": trade.biz["buyer_open_id"]}
        form = {
            "notify_time": beijing_now(),
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "app_id": trade.app_id,
            "auth_app_id": trade.app_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            **buyer,
            "buyer_logon_id": "159****5620",
            "seller_id": app.seller_id,
            "trade_status": trade.trade_status,
            "total_amount": amount,
            "receipt_amount": amount,
            "invoice_amount": amount,
            "buyer_pay_amount": amount,
            "point_amount": "0.00",
            "subject": trade.biz["subject"],
            "gmt_create": trade.gmt_create,
            "gmt_payment": trade.gmt_payment or "",
            "fund_bill_list": json.dumps(
                [{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
            ),
            **overrides,
        }
        form["sign"] = self._sign(_sign_content(form, drop=("sign", "sign_type"), keep_empty=True))
        return form

    def deliver(self, url: str, form: dict[str, str], out_trade_no: str = "") -> Delivery:
        try:
            answer = requests.post(url, data=form, timeout=5)
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
            return Response(exc.name, exc.code or 404)(environ, start_response)
        if endpoint == "gateway":
            response = self._gateway(request)
        else:
            response = self._control(endpoint, request, args)
        return response(environ, start_response)

    def _gateway(self, request: Request) -> Response:
        params = {**request.args.to_dict(), **request.form.to_dict()}
        method = params.get("method", "")
        with self._lock:
            self.requests_seen += 1
            self.calls[method] += 1
            fault = next((f for f in self._faults if f.method in (None, method)), None)
            if fault is not None:
                self._faults.remove(fault)
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        if fault and fault.kind == "delay":
            time.sleep(fault.delay_ms / 1000)
        root = method.replace(".", "_") + "_response" if method in METHODS else "error_response"
        if fault and fault.kind == "error":
            if fault.status != 200:
                return Response("Internal Server Error", fault.status, content_type="text/plain")
            error = AlipayError(fault.code, "Service Currently Unavailable", fault.sub_code, fault.message)
            return self._answer(root, error.body)
        try:
            self._check_call(params, method)
            result = getattr(self, "_" + method.replace(".", "_"))(params, self._biz(params))
            result = {"code": "10000", "msg": "Success", **result}
        except AlipayError as exc:
            result = exc.body
        return self._answer(root, result, fault.kind if fault else None)

    def _answer(self, root: str, result: dict[str, Any], fault_kind: str | None = None) -> Response:
        # Assembled as text: the signed bytes are exactly the bytes of the value, as at the real gateway.
        content = json.dumps(result, ensure_ascii=False, separators=(",", ":"))
        body = f'{{"{root}":{content}'
        if fault_kind != "unsigned":
            sign = self._sign(content)
            if fault_kind == "bad_signature":
                sign = base64.b64encode(secrets.token_bytes(256)).decode()
            body += f',"sign":"{sign}"'
        body += "}"
        return Response(body.encode(), 200, content_type="text/html;charset=utf-8")

    def _check_call(self, params: dict[str, str], method: str) -> None:
        if not method:
            raise AlipayError("40001", "Missing Required Arguments", "isv.missing-method", "缺少方法名参数")
        if method not in METHODS:
            raise invalid("isv.invalid-method", "不存在的方法名")
        app = self.apps.get(params.get("app_id", ""))
        if app is None:
            raise invalid("isv.invalid-app-id", "无效的AppID参数")
        if params.get("sign_type") != "RSA2":
            raise invalid("isv.invalid-signature-type", "无效的签名类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise invalid("isv.invalid-charset", "字符集错误")
        if params.get("version") != "1.0":
            raise invalid("isv.invalid-version", "版本号错误")
        try:
            datetime.strptime(params.get("timestamp", ""), TIME_FORMAT)
        except ValueError:
            raise invalid("isv.invalid-timestamp", "非法的时间戳参数") from None
        content = _sign_content(params, drop=("sign",), keep_empty=False)
        try:
            signature = base64.b64decode(params.get("sign", ""), validate=True)
            app.public_key.verify(signature, content.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            raise invalid("isv.invalid-signature", "验签出错") from None

    @staticmethod
    def _biz(params: dict[str, str]) -> dict[str, Any]:
        try:
            biz = json.loads(params.get("biz_content") or "{}")
        except ValueError:
            raise invalid("isv.invalid-parameter", "biz_content 不是合法的 JSON") from None
        if not isinstance(biz, dict):
            raise invalid("isv.invalid-parameter", "biz_content 须为 JSON 对象")
        return biz

    def _sign(self, content: str) -> str:
        signature = self.alipay_keys.private_key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(signature).decode()


def main(argv: list[str] | None = None) -> None:
    from tests.fakes.server import make_server

    parser = argparse.ArgumentParser(description="Alipay gateway fake (throwaway keys, loopback use only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed at start)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay added to every gateway call")
    args = parser.parse_args(argv)
    fake = FakeAlipay()
    fake.latency_ms = args.latency_ms
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
