"""The sandbox upstream: accepts everything, sends nothing, and reports delivery after a fixed delay.

It is the default provider in development and tests. There is no push: the service's polling task turns
sandbox submissions into receipts by calling `query()` for messages left "submitted", exactly as it does for
real upstreams whose push went missing. `query()` derives the answer from its arguments alone (the message's
`sent_at` and the clock), so every worker process gives the same answer without shared state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sms_service.providers.base import (
    DeliveryReport,
    OutgoingSms,
    SendOutcome,
    SmsProvider,
    accepted,
    as_utc,
    decode_json_array,
    national_mobile,
)

BIZ_ID_PREFIX = "SANDBOX-"


class SandboxSmsProvider(SmsProvider):
    name = "sandbox"
    max_batch = 1000

    def __init__(
        self, *, delay_ms: int = 0, clock: Callable[[], datetime] = lambda: datetime.now(UTC), **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.delay = timedelta(milliseconds=delay_ms)
        self._clock = clock

    def send(self, messages: list[OutgoingSms]) -> list[SendOutcome]:
        req_id = f"sandbox-{uuid.uuid4().hex}"
        return [accepted(m, req_id=req_id, biz_id=BIZ_ID_PREFIX + m.message_id) for m in messages]

    def query(
        self,
        *,
        message_id: str,
        mobile: str,
        biz_id: str | None,
        sent_at: datetime,
        reference: str | None = None,
    ) -> DeliveryReport | None:
        """Delivered once the configured delay has passed since `sent_at`; None before that."""
        delivered_at = as_utc(sent_at) + self.delay
        if self._clock() < delivered_at:
            return None
        return DeliveryReport(
            provider=self.name,
            biz_id=biz_id or BIZ_ID_PREFIX + message_id,
            mobile=mobile,
            success=True,
            error_code=None,
            error_message=None,
            reported_at=delivered_at,
            out_id=message_id,
        )

    def parse_receipts(self, payload: Any) -> list[DeliveryReport]:
        """The sandbox's own push format, for tests that exercise the receipt endpoint without an upstream.

        A JSON array of {"biz_id": "SANDBOX-<message_id>", "mobile": "138…", "success": bool,
        "error_code": str?, "error_message": str?}.
        """
        reports = []
        for item in decode_json_array(payload):
            if not isinstance(item, dict) or not str(item.get("biz_id", "")).startswith(BIZ_ID_PREFIX):
                raise ValueError("not a sandbox receipt item")
            biz_id = str(item["biz_id"])
            success = bool(item.get("success", True))
            reports.append(
                DeliveryReport(
                    provider=self.name,
                    biz_id=biz_id,
                    mobile=national_mobile(str(item.get("mobile", ""))),
                    success=success,
                    error_code=None if success else item.get("error_code", "SANDBOX_FAILED"),
                    error_message=None if success else item.get("error_message"),
                    reported_at=self._clock(),
                    out_id=biz_id.removeprefix(BIZ_ID_PREFIX),
                )
            )
        return reports
