"""The small interface every payment channel implements, and the HTTP plumbing they share.

Domain code speaks only in these types: it hands a channel an OrderRequest (or a RefundRequest) and gets back
pay parameters, a verified PaidNotice, a QueriedOrder or a RefundResult, or one of two exceptions. Upstream
quirks stay in the channel.
"""

from __future__ import annotations

import abc
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import requests

from payment_service.channels.refunds import RefundRequest, RefundResult
from payment_service.metrics import observe_channel_call

# Both upstreams speak China Standard Time (UTC+8, no daylight saving) in their time fields.
BEIJING = timezone(timedelta(hours=8), "CST")

__all__ = [
    "ChannelError",
    "CreatedOrder",
    "HttpChannel",
    "MAX_TIMEOUT_SECONDS",
    "NotificationRejected",
    "NotifyReply",
    "OrderRequest",
    "OrderState",
    "PaidNotice",
    "PaymentChannel",
    "QueriedOrder",
]

OrderState = Literal["paid", "pending", "closed", "failed"]

# A payment page waits on us while we wait on the upstream; past this the user has already retried.
MAX_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class OrderRequest:
    """What the domain asks a channel to create. Our transaction id doubles as the upstream out_trade_no."""

    transaction_id: str
    amount_fen: int
    description: str
    payer_id: str
    notify_url: str
    expire_at: datetime | None = None
    profit_sharing: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.amount_fen, bool) or not isinstance(self.amount_fen, int) or self.amount_fen <= 0:
            raise ValueError("amount_fen must be a positive integer")


@dataclass(frozen=True)
class CreatedOrder:
    """The upstream accepted the order. pay_params go to the mini-program as they are."""

    pay_params: dict[str, str]
    channel_order_ref: str | None
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class PaidNotice:
    """A notification whose signature (and, for WeChat, encryption) checked out.

    It is authentic, not yet trusted: the caller still matches amount and merchant ids against its order.
    `paid` is the channel's own reading of `trade_state`.
    """

    out_trade_no: str
    channel_transaction_id: str | None
    amount_fen: int
    merchant_ids: dict[str, str]
    paid_at: datetime | None
    trade_state: str
    paid: bool
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class QueriedOrder:
    """An order's state as the upstream reports it, mapped onto ours; trade_state is the upstream's word."""

    state: OrderState
    channel_transaction_id: str | None
    amount_fen: int | None
    paid_at: datetime | None
    trade_state: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class NotifyReply:
    """The HTTP answer an upstream expects from our notify endpoint."""

    status: int
    body: bytes
    content_type: str | None


class ChannelError(Exception):
    """The upstream refused, failed, timed out or answered something we cannot trust. Our API maps it to 502.

    `code` and `message` are the upstream's own when it gave them (WeChat `code`/`message`, Alipay
    `sub_code`/`sub_msg`), else one of ours: TIMEOUT, NETWORK_ERROR, BAD_SIGNATURE, BAD_RESPONSE.
    """

    def __init__(
        self, code: str, message: str, http_status: int | None = None, *, retryable: bool | None = None
    ) -> None:
        super().__init__(f"{code}: {message}" + (f" (HTTP {http_status})" if http_status else ""))
        self.code = code
        self.message = message
        self.http_status = http_status
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later: transport, throttling, 5xx, or channel says so."""
        if self._retryable is not None:
            return self._retryable
        if self.code in ("TIMEOUT", "NETWORK_ERROR"):
            return True
        return self.http_status is not None and (self.http_status == 429 or self.http_status >= 500)

    def as_details(self) -> dict[str, Any]:
        """The upstream error as our 502 envelope carries it in `data`."""
        return {"upstream_code": self.code, "upstream_message": self.message, "http_status": self.http_status}


class NotificationRejected(Exception):
    """A notification failed verification (signature, freshness, decryption, merchant). Nothing changes."""


class PaymentChannel(abc.ABC):
    """One upstream, bound to one merchant configuration."""

    name: str

    @abc.abstractmethod
    def create_order(self, order: OrderRequest) -> CreatedOrder:
        """Place the order upstream and return the mini-program's pay parameters."""

    @abc.abstractmethod
    def query_order(self, out_trade_no: str) -> QueriedOrder:
        """Ask the upstream for the order's current state."""

    @abc.abstractmethod
    def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order so it can no longer be paid."""

    @abc.abstractmethod
    def refund(self, request: RefundRequest) -> RefundResult:
        """Refund (part of) a paid order. The same request.refund_id again is the same refund upstream."""

    @abc.abstractmethod
    def query_refund(self, transaction_id: str, refund_id: str) -> RefundResult | None:
        """The refund's state upstream; None when the upstream has no such refund.

        None means the refund never arrived there: sending the same RefundRequest again is safe.
        """

    @abc.abstractmethod
    def read_notification(self, headers: Mapping[str, str], body: bytes) -> PaidNotice:
        """Verify and decode a notification exactly as our notify endpoint received it (raw body bytes)."""

    @abc.abstractmethod
    def notification_reply(self, accepted: bool) -> NotifyReply:
        """The answer that stops (accepted) or keeps (not accepted) the upstream's redelivery."""


_thread_local = threading.local()


def _thread_session() -> requests.Session:
    """One pooled Session per thread: clients are built per request, connections should outlive them."""
    session = getattr(_thread_local, "session", None)
    if session is None:
        session = requests.Session()
        _thread_local.session = session
    return session


class HttpChannel:
    """Sends prepared requests with a timeout, logs each call's outcome and time, maps transport errors."""

    logger = logging.getLogger("payment_service.channels")

    def __init__(self, timeout: float, session: requests.Session | None = None) -> None:
        if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
            raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT_SECONDS:g}] seconds")
        self.timeout = timeout
        self._session = session

    @property
    def session(self) -> requests.Session:
        return self._session if self._session is not None else _thread_session()

    def _send(self, prepared: requests.PreparedRequest, label: str) -> requests.Response:
        session = self.session
        # What requests.request() would add: proxies and CA bundle from the environment.
        settings = session.merge_environment_settings(prepared.url, {}, None, None, None)
        started = time.perf_counter()
        try:
            response = session.send(prepared, timeout=self.timeout, allow_redirects=False, **settings)
        except requests.Timeout:
            self._log(label, "timeout", started)
            raise ChannelError("TIMEOUT", f"no answer within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            self._log(label, type(exc).__name__, started)
            raise ChannelError("NETWORK_ERROR", f"{type(exc).__name__} talking to the upstream") from None
        self._log(label, str(response.status_code), started)
        return response

    def _log(self, label: str, outcome: str, started: float) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        observe_channel_call(label, outcome, elapsed_ms / 1000)
        self.logger.info("%s -> %s in %.0f ms", label, outcome, elapsed_ms)
