"""One attempt at a webhook: check the address, sign, POST, and say what happened and whether to retry.

The POST has a timeout (5 s unless the service says otherwise), follows no redirect and reads no answer body.
Retried: timeouts, connection errors, a host that does not resolve, 5xx and 429. Not retried: any other
answer that is not 2xx (3xx, 4xx) and an address the public-address check refuses. The services own what
surrounds an attempt: claiming it, recording it, moving their rows on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from shared.db import utcnow
from shared.webhooks.addresses import HostUnresolved, UrlRefused, check_for_delivery
from shared.webhooks.attempts import DELIVERED, GAVE_UP, REJECTED, RETRY, Attempt
from shared.webhooks.schedule import next_retry_delay
from shared.webhooks.signing import webhook_headers

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
_RETRY_AFTER_STATUSES = (429, 503)


def encode_body(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed: compact JSON in UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class WebhookSender:
    """How one service sends: its User-Agent, its allow-private setting, timeout and retry schedule."""

    user_agent: str
    retry_delays: Sequence[float]
    allow_private: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def send(
        self,
        url: str,
        webhook_id: str,
        payload: dict[str, Any],
        signing_secrets: Sequence[str],
        number: int,
    ) -> Attempt:
        """Make attempt ``number`` (1-based) of the webhook ``webhook_id``; never raises for the receiver's
        faults."""
        attempted_at, started = utcnow(), time.perf_counter()
        status_code, error, retryable, retry_after = None, None, False, None
        try:
            check_for_delivery(url, self.allow_private)
            body = encode_body(payload)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
                **webhook_headers(webhook_id, body, signing_secrets),
            }
            response = requests.post(
                url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False, stream=True
            )
            with response:
                status_code = response.status_code
                retry_after = _retry_after(response) if status_code in _RETRY_AFTER_STATUSES else None
        except UrlRefused as exc:
            error = str(exc)
        except HostUnresolved as exc:
            error, retryable = f"DNS: {exc}", True
        except requests.RequestException as exc:
            error, retryable = f"{type(exc).__name__}: {exc}", True
        if status_code is not None and not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
            retryable = status_code >= 500 or status_code == 429
        duration_ms = int((time.perf_counter() - started) * 1000)
        outcome, next_delay = self._outcome(status_code, retryable, number, retry_after)
        attempt = Attempt(
            number, webhook_id, attempted_at, outcome, status_code, error, duration_ms, next_delay
        )
        logger.info("webhook %s attempt %d: %s (%s)", webhook_id, number, outcome, status_code or error)
        return attempt

    def _outcome(
        self, status_code: int | None, retryable: bool, number: int, retry_after: float | None
    ) -> tuple[str, float | None]:
        if status_code is not None and 200 <= status_code < 300:
            return DELIVERED, None
        if not retryable:
            return REJECTED, None
        delay = next_retry_delay(self.retry_delays, number, retry_after)
        return (GAVE_UP, None) if delay is None else (RETRY, delay)


def _retry_after(response: requests.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds, when it gives a number of them."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.isdigit() else None
