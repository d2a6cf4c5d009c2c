"""What both fake SMS upstreams share: the record of accepted messages, fault injection and the control API.

Each fake subclasses `FakeSmsUpstream` with the upstream's own protocol (`handle`), error body and receipt
format. Tests drive a fake in-process through its methods; a fake running as another process is driven
through the same operations over HTTP:

- `GET  /__fake__/messages`      accepted messages, acceptance counts and duplicates
- `POST /__fake__/config`        any of {"latency_ms", "delivery_delay_ms", "fail_next": {"count", "status"},
                                 "fail_for": {"seconds", "status"}, "timeout_next": {"count", "seconds"},
                                 "number_errors": {mobile: code}, "delivery_failures": {mobile: code}}
- `POST /__fake__/push-receipts` {"url"}: push receipts of messages not yet pushed; answers {"pushed": n}
- `POST /__fake__/reset`         forget messages and faults
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

MAINLAND_MOBILE = re.compile(r"^1[3-9]\d{9}$")
RECEIPT_BATCH_SIZE = 100


def national_number(number: str) -> str | None:
    """The 11-digit number if `number` is a mainland mobile with or without +86/0086/86, else None."""
    for prefix in ("+86", "0086", "86", ""):
        if number.startswith(prefix) and MAINLAND_MOBILE.match(number[len(prefix) :]):
            return number[len(prefix) :]
    return None


@dataclass
class AcceptedSms:
    reference: str | None  # Aliyun OutId / Tencent SessionContext, as sent
    mobile: str
    biz_id: str
    sign_name: str
    template_code: str
    params: Any
    accepted_at: float
    request_id: str
    delivery_error: str | None = None  # None: the receipt reports success
    pushed: bool = False


class FakeSmsUpstream:
    def __init__(self, *, latency_ms: int = 0, clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self._serial = 0
        self.latency_ms = latency_ms
        self.reset()

    # -- protocol, provided by each fake ------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        raise NotImplementedError

    def injected_failure(self, status: int) -> Response:
        raise NotImplementedError

    def receipt(self, message: AcceptedSms) -> dict[str, Any]:
        raise NotImplementedError

    def receipt_acknowledged(self, response: requests.Response) -> bool:
        raise NotImplementedError

    # -- control --------------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.messages: list[AcceptedSms] = []
            self.acceptances: Counter[tuple[str | None, str]] = Counter()
            self.number_errors: dict[str, str] = {}
            self.delivery_failures: dict[str, str] = {}
            self.delivery_delay_ms = 0
            self._fail_next = 0
            self._fail_next_status = 500
            self._fail_until = 0.0
            self._fail_for_status = 500
            self._slow_next = 0
            self._slow_seconds = 0.0

    def fail_next(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` upstream calls with `status` without processing them."""
        with self._lock:
            self._fail_next, self._fail_next_status = count, status

    def fail_for(self, seconds: float, status: int = 500) -> None:
        """Answer every upstream call with `status` for the next `seconds`."""
        with self._lock:
            self._fail_until, self._fail_for_status = self.clock() + seconds, status

    def error_for_number(self, mobile: str, code: str) -> None:
        """Refuse this number with the upstream error `code`, as the upstream does."""
        with self._lock:
            self.number_errors[mobile] = code

    def fail_delivery_for(self, mobile: str, code: str) -> None:
        """Accept this number, but report delivery failure with `code` in receipts and queries."""
        with self._lock:
            self.delivery_failures[mobile] = code

    def timeout_next(self, count: int = 1, seconds: float = 15.0) -> None:
        """Process the next `count` calls normally but answer only after `seconds`.

        With `seconds` above the client's read timeout this is the ambiguous case: the upstream accepted the
        messages and the client never heard so.
        """
        with self._lock:
            self._slow_next, self._slow_seconds = count, seconds

    def configure(self, config: dict[str, Any]) -> None:
        if "latency_ms" in config:
            self.latency_ms = int(config["latency_ms"])
        if "delivery_delay_ms" in config:
            self.delivery_delay_ms = int(config["delivery_delay_ms"])
        if "fail_next" in config:
            self.fail_next(
                int(config["fail_next"].get("count", 1)), int(config["fail_next"].get("status", 500))
            )
        if "fail_for" in config:
            self.fail_for(float(config["fail_for"]["seconds"]), int(config["fail_for"].get("status", 500)))
        if "timeout_next" in config:
            option = config["timeout_next"]
            self.timeout_next(int(option.get("count", 1)), float(option.get("seconds", 15.0)))
        for mobile, code in (config.get("number_errors") or {}).items():
            self.error_for_number(mobile, code)
        for mobile, code in (config.get("delivery_failures") or {}).items():
            self.fail_delivery_for(mobile, code)

    # -- introspection --------------------------------------------------------------------------------------

    def accepted(self) -> list[AcceptedSms]:
        with self._lock:
            return list(self.messages)

    def duplicates(self) -> list[tuple[str | None, str, int]]:
        """(reference, mobile, times accepted) for every message the upstream accepted more than once."""
        with self._lock:
            return [(ref, mobile, n) for (ref, mobile), n in self.acceptances.items() if n > 1]

    def push_receipts(self, url: str, *, timeout: float = 10.0) -> int:
        """POST the receipts of accepted messages not yet pushed to `url`, in the upstream's format.

        A message counts as pushed only when the receiver acknowledges it as the upstream expects, so calling
        this again re-pushes what was refused, like the upstream's own re-push.
        """
        with self._lock:
            waiting = [m for m in self.messages if not m.pushed]
        pushed = 0
        for start in range(0, len(waiting), RECEIPT_BATCH_SIZE):
            batch = waiting[start : start + RECEIPT_BATCH_SIZE]
            response = requests.post(url, json=[self.receipt(m) for m in batch], timeout=timeout)
            if not self.receipt_acknowledged(response):
                break
            with self._lock:
                for message in batch:
                    message.pushed = True
            pushed += len(batch)
        return pushed

    # -- helpers for the fakes ------------------------------------------------------------------------------

    def record(self, **fields: Any) -> AcceptedSms:
        mobile = fields["mobile"]
        with self._lock:
            message = AcceptedSms(
                accepted_at=self.clock(), delivery_error=self.delivery_failures.get(mobile), **fields
            )
            self.messages.append(message)
            self.acceptances[(message.reference, mobile)] += 1
        return message

    def number_error(self, mobile: str) -> str | None:
        with self._lock:
            return self.number_errors.get(mobile)

    def next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    def delivered(self, message: AcceptedSms) -> bool:
        """Whether the handset has "answered" yet, for status queries."""
        return self.clock() >= message.accepted_at + self.delivery_delay_ms / 1000

    # -- WSGI ---------------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.path.startswith("/__fake__/"):
            response = self._control(request)
        else:
            response = self._serve(request)
        return response(environ, start_response)

    def _serve(self, request: Request) -> Response:
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        with self._lock:
            status = None
            if self._fail_next > 0:
                self._fail_next -= 1
                status = self._fail_next_status
            elif self.clock() < self._fail_until:
                status = self._fail_for_status
            slow = 0.0
            if status is None and self._slow_next > 0:
                self._slow_next -= 1
                slow = self._slow_seconds
        if status is not None:
            return self.injected_failure(status)
        response = self.handle(request)
        if slow:
            time.sleep(slow)
        return response

    def _control(self, request: Request) -> Response:
        route = (request.method, request.path)
        if route == ("GET", "/__fake__/messages"):
            messages = [asdict(m) for m in self.accepted()]
            duplicates = [{"reference": r, "mobile": m, "count": n} for r, m, n in self.duplicates()]
            return json_response({"count": len(messages), "messages": messages, "duplicates": duplicates})
        body = request.get_json(silent=True) or {}
        if route == ("POST", "/__fake__/config"):
            self.configure(body)
            return json_response({"ok": True})
        if route == ("POST", "/__fake__/push-receipts"):
            return json_response({"pushed": self.push_receipts(body["url"])})
        if route == ("POST", "/__fake__/reset"):
            self.reset()
            return json_response({"ok": True})
        return json_response({"error": "unknown control endpoint"}, status=404)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
