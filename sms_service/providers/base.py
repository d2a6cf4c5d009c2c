"""The interface every SMS upstream implements, and the HTTP plumbing they share.

A provider turns `OutgoingSms` into `SendOutcome`s, answers delivery queries and parses the upstream's receipt
pushes. The base class owns the `requests.Session`: it times and logs every call and turns transport failures
into the typed errors below, so the service can decide between retrying, reconciling and failing over without
knowing which upstream it talked to.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from urllib3.exceptions import NewConnectionError

from sms_service.metrics import PROVIDER_CALLS, PROVIDER_ERRORS
from sms_service.mobiles import mask_mobile

logger = logging.getLogger("sms_service.providers")

DEFAULT_CONNECT_TIMEOUT_SECONDS = 3.0
DEFAULT_READ_TIMEOUT_SECONDS = 10.0

# Both upstreams report times as naive "YYYY-MM-DD HH:MM:SS" in Beijing time (no DST in China).
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

# Used as the request reference (Aliyun OutId, Tencent SessionContext) when one upstream call carries several
# messages: the reference is then the call's, not one message's, and receipts echoing it are not message ids.
MULTI_MESSAGE_REFERENCE_PREFIX = "multi."


@dataclass(frozen=True)
class OutgoingSms:
    message_id: str
    mobile: str  # 11-digit mainland number, already normalised
    sign_name: str
    template_code: str  # the provider's own template code / id
    params: dict[str, str]  # template variables in template order (Tencent uses the values positionally)


@dataclass(frozen=True)
class SendOutcome:
    """What became of one message in a `send()` call.

    `accepted` means the upstream took the message (the service moves it to "submitted"). A message that was
    not accepted is a refusal of that message (bad number, per-number limit) unless one of the flags says
    otherwise:

    - `retryable`: nothing was sent; a later attempt, here or at another provider, may succeed.
    - `outcome_unknown`: the request left but no answer came back; reconcile with `query()`, do not resend.
    """

    message_id: str
    accepted: bool
    req_id: str | None = None
    biz_id: str | None = None  # Aliyun BizId / Tencent SerialNo
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    outcome_unknown: bool = False


@dataclass(frozen=True)
class DeliveryReport:
    """The final state of one message, from a receipt push or a status query."""

    provider: str
    biz_id: str | None
    mobile: str
    success: bool
    error_code: str | None
    error_message: str | None
    reported_at: datetime | None
    out_id: str | None = None  # our message_id, when the upstream echoes a single-message reference
    # The call reference the upstream echoes (Aliyun OutId), also a multi-message call's: with the mobile it
    # finds a message whose call never answered, so no biz_id was stored.
    reference: str | None = None


class ProviderError(Exception):
    """An upstream call failed as a whole. `code` is the upstream's code, or ours for transport failures."""

    def __init__(self, code: str, message: str, *, provider: str | None = None, req_id: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.provider = provider
        self.req_id = req_id


class RetryableProviderError(ProviderError):
    """Nothing was sent, or the upstream says it failed before sending: try again later or elsewhere.

    Connection failures, connect timeouts, HTTP 5xx, the upstream's own system errors and throttling of the
    whole account or API (as opposed to limits on one number, which are per-message refusals).
    """


class OutcomeUnknownError(RetryableProviderError):
    """The request left but the answer did not arrive (read timeout, connection dropped mid-response).

    The upstream may have accepted the messages. Resending could deliver them twice, so the caller must
    reconcile with `query()` (or wait for the receipt) instead.
    """


class PermanentProviderError(ProviderError):
    """The upstream refused the whole call for a reason retrying will not fix.

    Rejected credentials or signature, an unapproved sign name or template, an account out of money or
    suspended, a request we built wrongly. Another provider may still be able to send the messages.
    """


def national_mobile(number: str) -> str:
    """Strip the +86 / 0086 / 86 prefixes upstreams put on mainland numbers in receipts."""
    number = number.strip()
    for prefix in ("+86", "0086", "86"):
        if number.startswith(prefix) and len(number) == len(prefix) + 11:
            return number[len(prefix) :]
    return number


def parse_china_time(value: str | None) -> datetime | None:
    """A "YYYY-MM-DD HH:MM:SS" Beijing time as an aware UTC datetime (None when absent or malformed)."""
    if not value:
        return None
    try:
        local = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return local.replace(tzinfo=CHINA_STANDARD_TIME).astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """Treat naive datetimes as UTC, the convention of the service's database."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class Split:
    """Returned for a call the upstream refused because of one message: send these smaller calls instead."""

    calls: list[list[OutgoingSms]]


class SmsProvider(ABC):
    name: str
    max_batch: int

    def __init__(
        self,
        *,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
        session: requests.Session | None = None,
    ):
        self.timeout = (min(connect_timeout, read_timeout), read_timeout)
        self.session = session or requests.Session()

    @abstractmethod
    def send(self, messages: list[OutgoingSms]) -> list[SendOutcome]:
        """Send the messages; one outcome per message, in the same order.

        Raises a `ProviderError` only while nothing has been accepted, so an exception always means "none of
        these went out (or, for `OutcomeUnknownError`, maybe all of them did)". Once part of the list has been
        accepted, later failures come back as outcomes carrying `retryable` / `outcome_unknown`, so an
        acceptance is never lost to an exception. Per-number refusals are outcomes with `accepted=False`.
        """

    def call_references(self, messages: list[OutgoingSms]) -> dict[str, str]:
        """The request reference each message's upstream call will carry, by message id, known before sending.

        Stored with the messages before the call, it lets `query()` find a message whose send never answered
        (worker killed, read timeout) even when the call carried several messages under one reference.
        """
        return {message.message_id: message.message_id for message in messages}

    @abstractmethod
    def query(
        self,
        *,
        message_id: str,
        mobile: str,
        biz_id: str | None,
        sent_at: datetime,
        reference: str | None = None,
    ) -> DeliveryReport | None:
        """The delivery state of one submitted message, or None while the upstream has no final state.

        `reference` is what `call_references()` gave for the message; without a `biz_id` the upstream's row is
        matched by it or by the message id (a batch split into single sends carries the message id).
        """

    @abstractmethod
    def parse_receipts(self, payload: Any) -> list[DeliveryReport]:
        """Decode the upstream's receipt push (the raw body, or its already-decoded JSON).

        Raises ValueError when the payload is not in the upstream's format.
        """

    def close(self) -> None:
        self.session.close()

    def _post(
        self, action: str, url: str, *, mobiles: Sequence[str] = (), **kwargs: Any
    ) -> requests.Response:
        """POST with the configured timeouts; log the call; map transport failures and 5xx to typed errors.

        Responses below 500 are returned for the provider to interpret: both upstreams put their own error
        codes in 4xx and 200 bodies.
        """
        operation, action = action, f"{action} to {_describe(mobiles)}"
        started = time.perf_counter()
        try:
            response = self.session.post(url, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            self._log_failure(action, started, "connect timeout")
            raise RetryableProviderError("ConnectTimeout", str(exc), provider=self.name) from exc
        except requests.ReadTimeout as exc:
            self._log_failure(action, started, "read timeout")
            raise OutcomeUnknownError("ReadTimeout", str(exc), provider=self.name) from exc
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                self._log_failure(action, started, "connection refused")
                raise RetryableProviderError("ConnectionError", str(exc), provider=self.name) from exc
            self._log_failure(action, started, "connection dropped")
            raise OutcomeUnknownError("ConnectionDropped", str(exc), provider=self.name) from exc
        except requests.RequestException as exc:
            self._log_failure(action, started, type(exc).__name__)
            raise RetryableProviderError(type(exc).__name__, str(exc), provider=self.name) from exc
        finally:
            PROVIDER_CALLS.labels(self.name, operation).observe(time.perf_counter() - started)

        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info("%s %s answered HTTP %s in %.0f ms", self.name, action, response.status_code, elapsed_ms)
        if response.status_code >= 500:
            PROVIDER_ERRORS.labels(self.name, "http_5xx").inc()
            raise RetryableProviderError(
                f"HTTP{response.status_code}", response.text[:200], provider=self.name
            )
        return response

    def _call_error(
        self, code: str, message: str, req_id: str | None, *, retryable: bool
    ) -> RetryableProviderError | PermanentProviderError:
        """The typed error for a call the upstream refused as a whole."""
        error_class = RetryableProviderError if retryable else PermanentProviderError
        PROVIDER_ERRORS.labels(self.name, "refused").inc()
        logger.warning("%s refused the call: %s (request %s)", self.name, code, req_id)
        return error_class(code, message, provider=self.name, req_id=req_id)

    def _log_failure(self, action: str, started: float, what: str) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        PROVIDER_ERRORS.labels(self.name, what.replace(" ", "_")).inc()
        logger.warning("%s %s failed after %.0f ms: %s", self.name, action, elapsed_ms, what)

    def _send_in_calls(
        self,
        messages: Sequence[OutgoingSms],
        calls: Iterable[list[OutgoingSms]],
        send_call: Callable[[list[OutgoingSms]], list[SendOutcome] | Split],
    ) -> list[SendOutcome]:
        """Run a send() that needs several upstream calls, keeping the promise made in `send()`'s docstring.

        After a whole-call failure with something already accepted, the failed call's messages carry the
        error and the calls not yet made are reported as retryable without being attempted: the upstream is
        misbehaving and the service's retry policy, not this loop, should decide when to try again.
        """
        _check_unique_ids(messages)
        pending = deque(calls)
        outcomes: dict[str, SendOutcome] = {}
        while pending:
            call = pending.popleft()
            try:
                result = send_call(call)
            except ProviderError as exc:
                if not any(outcome.accepted for outcome in outcomes.values()):
                    raise
                outcomes.update((m.message_id, _failed_outcome(m, exc)) for m in call)
                not_attempted = ProviderError("NotAttempted", "an earlier call of this send failed")
                for rest in pending:
                    outcomes.update(
                        (m.message_id, _failed_outcome(m, not_attempted, retryable=True)) for m in rest
                    )
                break
            if isinstance(result, Split):
                pending.extendleft(reversed(result.calls))
                continue
            outcomes.update((outcome.message_id, outcome) for outcome in result)
        return [outcomes[m.message_id] for m in messages]


def _failed_outcome(message: OutgoingSms, exc: ProviderError, *, retryable: bool = False) -> SendOutcome:
    return SendOutcome(
        message_id=message.message_id,
        accepted=False,
        req_id=exc.req_id,
        error_code=exc.code,
        error_message=exc.message,
        retryable=retryable or isinstance(exc, RetryableProviderError),
        outcome_unknown=isinstance(exc, OutcomeUnknownError),
    )


def refused(
    message: OutgoingSms, code: str, text: str, *, req_id: str | None, retryable: bool = False
) -> SendOutcome:
    """The outcome for one message the upstream declined while accepting the call."""
    return SendOutcome(
        message_id=message.message_id,
        accepted=False,
        req_id=req_id,
        error_code=code,
        error_message=text,
        retryable=retryable,
    )


def accepted(message: OutgoingSms, *, req_id: str | None, biz_id: str | None) -> SendOutcome:
    return SendOutcome(message_id=message.message_id, accepted=True, req_id=req_id, biz_id=biz_id)


def chunk_distinct_mobiles(messages: Iterable[OutgoingSms], size: int) -> list[list[OutgoingSms]]:
    """Split into calls of at most `size` messages, never putting one number twice in a call.

    Receipts for a multi-number call are matched by (biz_id, mobile) or by the per-number serial, so a number
    may appear only once per call for the match to be unambiguous.
    """
    calls: list[list[OutgoingSms]] = []
    for message in messages:
        for call in calls:
            if len(call) < size and all(m.mobile != message.mobile for m in call):
                call.append(message)
                break
        else:
            calls.append([message])
    return calls


def call_reference(call: Sequence[OutgoingSms]) -> str:
    """The request reference of one upstream call: the message id, or the multi-message reference."""
    first = call[0].message_id
    return first if len(call) == 1 else MULTI_MESSAGE_REFERENCE_PREFIX + first


def references_of(calls: Iterable[Sequence[OutgoingSms]]) -> dict[str, str]:
    """Message id → the reference of the call carrying it."""
    return {message.message_id: call_reference(call) for call in calls for message in call}


def decode_json_array(payload: Any) -> list[Any]:
    """A receipt push body (raw or already decoded) that must be a JSON array."""
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except ValueError as exc:
            raise ValueError("receipt body is not JSON") from exc
    if not isinstance(payload, list):
        raise ValueError("receipt body is not a JSON array")
    return payload


def _describe(mobiles: Sequence[str]) -> str:
    shown = ", ".join(mask_mobile(m) for m in mobiles[:3])
    return f"{shown} (+{len(mobiles) - 3} more)" if len(mobiles) > 3 else shown


def _check_unique_ids(messages: Sequence[OutgoingSms]) -> None:
    ids = [m.message_id for m in messages]
    if len(set(ids)) != len(ids):
        raise ValueError("message ids in one send() must be unique")


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection was never established, so the request cannot have reached the upstream."""
    reason: Any = exc.args[0] if exc.args else None
    for _ in range(4):
        if isinstance(reason, NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(reason, "reason", None) or getattr(reason, "__cause__", None)
        if reason is None:
            return False
    return False
