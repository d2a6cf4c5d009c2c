"""The Alipay fake's control API (`/__fake__/...`) for driving it as a separate process."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from tests.fakes.alipay import FakeAlipay


def control_rules() -> list[Rule]:
    return [
        Rule("/__fake__/platform", methods=["GET"], endpoint="ctl_platform"),
        Rule("/__fake__/apps", methods=["POST"], endpoint="ctl_apps"),
        Rule("/__fake__/pay/<no>", methods=["POST"], endpoint="ctl_pay"),
        Rule("/__fake__/orders", methods=["GET"], endpoint="ctl_orders"),
        Rule("/__fake__/deliveries", methods=["GET"], endpoint="ctl_deliveries"),
        Rule("/__fake__/calls", methods=["GET"], endpoint="ctl_calls"),
        Rule("/__fake__/config", methods=["POST"], endpoint="ctl_config"),
        Rule("/__fake__/fail_next", methods=["POST"], endpoint="ctl_fail_next"),
        Rule("/__fake__/reset", methods=["POST"], endpoint="ctl_reset"),
    ]


class ControlDesk:
    """Mixed into FakeAlipay: the control API's handlers."""

    def _control(self: FakeAlipay, endpoint: str, request: Request, args: dict[str, str]) -> Response:
        try:
            body = request.get_json(silent=True) or {}
            payload = getattr(self, f"_{endpoint}")(body, **args)
            status = 200
        except (LookupError, ValueError, TypeError) as exc:
            payload, status = {"error": str(exc)}, 400
        return Response(json.dumps(payload, ensure_ascii=False), status, content_type="application/json")

    def _ctl_platform(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        return {"alipay_public_key": self.public_key_pem}

    def _ctl_apps(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        app = self.register_app(str(body["app_id"]), str(body["public_key"]), body.get("seller_id"))
        return {"app_id": app.app_id, "seller_id": app.seller_id}

    def _ctl_pay(self: FakeAlipay, body: dict[str, Any], no: str) -> dict[str, Any]:
        return asdict(self.pay(no, body.get("app_id")))

    def _ctl_orders(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"orders": [asdict(trade) for trade in self.trades.values()]}

    def _ctl_deliveries(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"deliveries": [asdict(delivery) for delivery in self.deliveries]}

    def _ctl_config(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if "latency_ms" in body:
                self.latency_ms = int(body["latency_ms"])
            for name in ("refund_fund_change", "refund_settle_on_query"):
                if name in body:
                    setattr(self, name, bool(body[name]))
            names = ("latency_ms", "refund_fund_change", "refund_settle_on_query")
            return {name: getattr(self, name) for name in names}

    def _ctl_calls(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls)}

    def _ctl_fail_next(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("kind", "status", "code", "sub_code", "message", "delay_ms", "method")
        self.fail_next(int(body.get("count", 1)), **{key: body[key] for key in fields if key in body})
        return {"queued": len(self._faults)}

    def _ctl_reset(self: FakeAlipay, body: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {"reset": True}
