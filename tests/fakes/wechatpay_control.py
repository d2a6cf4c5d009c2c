"""The WeChat Pay fake's control API (`/__fake__/...`) for driving it as a separate process."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from tests.fakes.wechatpay_protocol import (
    dumps,
)

if TYPE_CHECKING:
    from tests.fakes.wechatpay import FakeWechatPay


def control_rules() -> list[Rule]:
    return [
        Rule("/__fake__/platform", methods=["GET"], endpoint="ctl_platform"),
        Rule("/__fake__/merchants", methods=["POST"], endpoint="ctl_merchants"),
        Rule("/__fake__/pay/<no>", methods=["POST"], endpoint="ctl_pay"),
        Rule("/__fake__/orders", methods=["GET"], endpoint="ctl_orders"),
        Rule("/__fake__/deliveries", methods=["GET"], endpoint="ctl_deliveries"),
        Rule("/__fake__/calls", methods=["GET"], endpoint="ctl_calls"),
        Rule("/__fake__/config", methods=["POST"], endpoint="ctl_config"),
        Rule("/__fake__/fail_next", methods=["POST"], endpoint="ctl_fail_next"),
        Rule("/__fake__/reset", methods=["POST"], endpoint="ctl_reset"),
    ]


class ControlDesk:
    """Mixed into FakeWechatPay: the control API's handlers."""

    def _control(self: FakeWechatPay, endpoint: str, request: Request, args: dict[str, str]) -> Response:
        try:
            body = request.get_json(silent=True) or {}
            payload = getattr(self, f"_{endpoint}")(body, **args)
            status = 200
        except (LookupError, ValueError, TypeError) as exc:
            payload, status = {"error": str(exc)}, 400
        return Response(dumps(payload), status, content_type="application/json")

    def _ctl_platform(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        return {"public_key_id": self.public_key_id, "public_key": self.public_key_pem}

    def _ctl_merchants(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        merchant = self.register_merchant(
            str(body["mchid"]),
            str(body["serial_no"]),
            str(body["public_key"]),
            str(body["api_v3_key"]),
            tuple(body.get("appids") or ()),
            tuple(body.get("sub_mchids") or ()),
            body.get("kind"),
        )
        return {"mchid": merchant.mchid}

    def _ctl_pay(self: FakeWechatPay, body: dict[str, Any], no: str) -> dict[str, Any]:
        return asdict(self.pay(no, body.get("mchid")))

    def _ctl_orders(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"orders": [asdict(order) for order in self.orders.values()]}

    def _ctl_deliveries(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"deliveries": [asdict(delivery) for delivery in self.deliveries]}

    def _ctl_config(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
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

    def _ctl_calls(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls)}

    def _ctl_fail_next(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        fields = ("kind", "status", "code", "message", "delay_ms", "endpoint")
        fault = {key: body[key] for key in fields if key in body}
        self.fail_next(int(body.get("count", 1)), **fault)
        return {"queued": len(self._faults)}

    def _ctl_reset(self: FakeWechatPay, body: dict[str, Any]) -> dict[str, Any]:
        self.reset()
        return {"reset": True}
