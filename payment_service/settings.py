"""Settings of the payment service: ``PAYMENT_<NAME>`` environment variables over embedded defaults."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from shared.settings import ConfigurationError, load_service_settings
from shared.webhooks.schedule import DEFAULT_RETRY_DELAYS, parse_retry_delays

PREFIX = "PAYMENT"

DEFAULTS: dict[str, Any] = {
    # development | testing | production
    "ENV": "development",
    "DATABASE_URL": "sqlite:///var/payment.sqlite",
    "BROKER_URL": "sqla+sqlite:///var/payment-broker.sqlite",
    "DB_POOL_SIZE": 5,
    "MAX_BODY_BYTES": 1_048_576,
    "LOG_LEVEL": "INFO",
    # celery worker: serve Prometheus /metrics on this port (0: off); the API serves /metrics itself
    "WORKER_METRICS_PORT": 0,
    # base64 of exactly 32 random bytes: encrypts channel secrets at rest (AES-GCM)
    "SECRET_KEY": "",
    # comma-separated previous SECRET_KEYs, still readable while `secret-key rotate` re-encrypts
    "OLD_SECRET_KEYS": "",
    # --- orders, notifications, forwarding, profit sharing (docs/payment.md, "Orders") ---
    # where the upstreams reach this service: notify_url = PUBLIC_BASE_URL + /api/v1/payment/notify/...
    "PUBLIC_BASE_URL": "http://127.0.0.1:8002",
    "WECHATPAY_BASE_URL": "https://api.mch.weixin.qq.com",
    "ALIPAY_GATEWAY_URL": "https://openapi.alipay.com/gateway.do",
    # every upstream call gives up after this many seconds (at most 10)
    "CHANNEL_TIMEOUT_SECONDS": 10.0,
    "ORDER_EXPIRE_MINUTES": 120,
    # largest amount one order may carry, in yuan
    "MAX_AMOUNT": "100000.00",
    # let notify_url point at private/loopback addresses (local development and tests only)
    "NOTIFY_ALLOW_PRIVATE": False,
    # pending orders older than this are queried upstream (a lost notification still ends paid) ...
    "PENDING_QUERY_AFTER_MINUTES": 10,
    # ... at most once per this many minutes each
    "PENDING_QUERY_INTERVAL_MINUTES": 5,
    # how often beat runs expiry, reconciliation and the stuck-work sweep
    "RECONCILE_INTERVAL_SECONDS": 60,
    # work (forward, profit sharing) overdue by this long is published again by the sweep
    "SWEEP_GRACE_SECONDS": 300,
    "FORWARD_TIMEOUT_SECONDS": 5.0,
    # at most one forward publish per linger per process; quiet spells publish at once (0: in the request)
    "PUBLISH_LINGER_MS": 50,
    # seconds before each retry of a forward (the schedule of shared.webhooks); given up after the last
    "FORWARD_RETRY_DELAYS": DEFAULT_RETRY_DELAYS,
    # profit sharing retries after RETRY_BASE_SECONDS × 2^(n-1), at most RETRY_MAX_SECONDS, jittered 50–100 %
    "RETRY_BASE_SECONDS": 60.0,
    "RETRY_MAX_SECONDS": 14400.0,
    # profit sharing starts this long after the payment, and polls WeChat's result this often
    "PROFIT_SHARING_DELAY_SECONDS": 30.0,
    "PROFIT_SHARING_POLL_SECONDS": 30.0,
    "PROFIT_SHARING_MAX_ATTEMPTS": 8,
    # --- refunds (docs/refunds.md) ---
    # refunds (and their profit-sharing returns) processing longer than this are queried upstream by beat
    "REFUND_QUERY_AFTER_SECONDS": 300,
    # a refund WeChat refused for frequency (FREQUENCY_LIMITED) is sent again this long after; an Alipay
    # refund answered fund_change N, or a return order still processing, is asked again this long after
    "REFUND_RETRY_SECONDS": 60.0,
    # a query that finds no such refund this long after the refund call lets it be sent again (same id)
    "REFUND_RESEND_AFTER_SECONDS": 10.0,
}

PRODUCTION_REQUIRED = ["DATABASE_URL", "BROKER_URL", "SECRET_KEY", "PUBLIC_BASE_URL"]
DEVELOPMENT_KEY_FILE = Path("var/payment-secret.key")


def decode_secret_key(value: str, variable: str = f"{PREFIX}_SECRET_KEY") -> bytes:
    """The 32 key bytes, or a ConfigurationError that says what is wrong with the variable."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{variable} must be base64 (generate one: flask --app payment_service secret-key generate)"
        ) from None
    if len(key) != 32:
        raise ConfigurationError(f"{variable} must decode to exactly 32 bytes, not {len(key)}")
    return key


def decode_old_secret_keys(value: str, variable: str = f"{PREFIX}_OLD_SECRET_KEYS") -> list[bytes]:
    """The retired keys, in the order given; each must be as valid as the current one."""
    return [decode_secret_key(item, variable) for item in value.split(",") if item.strip()]


def generate_secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _development_secret_key() -> str:
    """A laptop needs no setup: the first start writes a key under ``var/`` and later starts reuse it."""
    if not DEVELOPMENT_KEY_FILE.exists():
        DEVELOPMENT_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEVELOPMENT_KEY_FILE.write_text(generate_secret_key())
        DEVELOPMENT_KEY_FILE.chmod(0o600)
    return DEVELOPMENT_KEY_FILE.read_text().strip()


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    settings = load_service_settings(PREFIX, DEFAULTS, PRODUCTION_REQUIRED, overrides)
    environment = settings["ENV"]
    if not settings["SECRET_KEY"]:
        if environment == "testing":
            settings["SECRET_KEY"] = generate_secret_key()
        else:
            settings["SECRET_KEY"] = _development_secret_key()
    decode_secret_key(settings["SECRET_KEY"])
    decode_old_secret_keys(settings["OLD_SECRET_KEYS"])
    check_order_settings(settings)
    settings["FORWARD_RETRY_SCHEDULE"] = parse_retry_delays(
        settings["FORWARD_RETRY_DELAYS"], f"{PREFIX}_FORWARD_RETRY_DELAYS"
    )
    return settings


def check_order_settings(settings: Mapping[str, Any]) -> None:
    """Refuse order settings that would fail later, at the first payment, naming the variable."""
    try:
        max_amount = Decimal(str(settings["MAX_AMOUNT"]))
    except InvalidOperation:
        raise ConfigurationError(f"{PREFIX}_MAX_AMOUNT must be an amount in yuan, e.g. 100000.00") from None
    if not max_amount.is_finite() or max_amount <= 0:
        raise ConfigurationError(f"{PREFIX}_MAX_AMOUNT must be greater than 0")
    if not 0 < settings["CHANNEL_TIMEOUT_SECONDS"] <= 10:
        raise ConfigurationError(f"{PREFIX}_CHANNEL_TIMEOUT_SECONDS must be in (0, 10]")
    for name in ("PUBLIC_BASE_URL", "WECHATPAY_BASE_URL", "ALIPAY_GATEWAY_URL"):
        if not str(settings[name]).startswith(("http://", "https://")):
            raise ConfigurationError(f"{PREFIX}_{name} must be an http(s) URL")
    for name in ("REFUND_QUERY_AFTER_SECONDS", "REFUND_RETRY_SECONDS", "REFUND_RESEND_AFTER_SECONDS"):
        if settings[name] < 0:
            raise ConfigurationError(f"{PREFIX}_{name} must not be negative")
    for name in ("ORDER_EXPIRE_MINUTES", "PROFIT_SHARING_MAX_ATTEMPTS"):
        if settings[name] < 1:
            raise ConfigurationError(f"{PREFIX}_{name} must be at least 1")
