"""Settings of the SMS service: ``SMS_<NAME>`` environment variables over embedded defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.settings import ConfigurationError, load_service_settings
from shared.webhooks.schedule import DEFAULT_RETRY_DELAYS, parse_retry_delays

PREFIX = "SMS"

DEFAULTS: dict[str, Any] = {
    # development | testing | production
    "ENV": "development",
    "DATABASE_URL": "sqlite:///var/sms.sqlite",
    "BROKER_URL": "sqla+sqlite:///var/sms-broker.sqlite",
    "DB_POOL_SIZE": 5,
    "MAX_BODY_BYTES": 1_048_576,
    "LOG_LEVEL": "INFO",
    # celery worker: serve Prometheus /metrics on this port (0: off); the API serves /metrics itself
    "WORKER_METRICS_PORT": 0,
    # Limit counters and the providers' circuit breaker: in Redis when a URL is given (the breaker then
    # shared by every process), else in the service's database and in each process.
    "REDIS_URL": "",
    # The first part of every Redis key of this deployment: two deployments sharing one Redis (staging and
    # production, two regions) keep their counters and circuits apart with different prefixes.
    "REDIS_KEY_PREFIX": "sms",
    # Request limits.
    "MAX_MOBILES_PER_SEND": 100,
    "MAX_BATCH_ITEMS": 1000,
    "MAX_VARIABLE_LENGTH": 35,
    # Seconds an API process keeps a template and its tenant's limits for sends (0: read every time).
    "SEND_CACHE_SECONDS": 2.0,
    # Per-mobile frequency of a new tenant (each tenant can be changed with `tenant update`).
    "DEFAULT_MOBILE_PER_MINUTE": 1,
    "DEFAULT_MOBILE_PER_HOUR": 5,
    "DEFAULT_MOBILE_PER_DAY": 10,
    # Upstreams, in failover order, and their credentials / endpoints.
    "PROVIDERS": "sandbox",
    # Share of each upstream call's first provider, e.g. "aliyun:70,tencent:30" (unset: PROVIDERS order).
    "PROVIDER_WEIGHTS": "",
    "PROVIDER_TIMEOUT_SECONDS": 10.0,
    "PROVIDER_ATTEMPTS": 2,
    "PROVIDER_RETRY_DELAY_SECONDS": 0.5,
    # Consecutive failures that open a provider's circuit; seconds it stays open before one probe goes.
    "CIRCUIT_FAILURE_THRESHOLD": 5,
    "CIRCUIT_OPEN_SECONDS": 30.0,
    "SANDBOX_DELAY_MS": 2000,
    "ALIYUN_ACCESS_KEY_ID": "",
    "ALIYUN_ACCESS_KEY_SECRET": "",
    "ALIYUN_ENDPOINT": "",
    "TENCENT_SECRET_ID": "",
    "TENCENT_SECRET_KEY": "",
    "TENCENT_SDK_APP_ID": "",
    "TENCENT_REGION": "",
    "TENCENT_ENDPOINT": "",
    # Dispatch: at most one delivery task per linger and process; after a quiet spell, at once (0: inline)
    "PUBLISH_LINGER_MS": 100,
    "DISPATCH_BATCH_SIZE": 100,
    "DISPATCH_MAX_ATTEMPTS": 8,
    # Periodic work (celery beat): re-publish stuck rows, poll receipts, re-drive callbacks.
    "SWEEP_INTERVAL_SECONDS": 15.0,
    "SWEEP_QUEUED_AFTER_SECONDS": 60,
    "SENDING_STALE_AFTER_SECONDS": 300,
    "RECEIPT_POLL_AFTER_SECONDS": 600,
    "RECEIPT_GIVE_UP_AFTER_SECONDS": 259_200,
    "POLL_BATCH_SIZE": 200,
    # Seconds between rebuilds of the usage statistics of the days that can still change.
    "STATS_INTERVAL_SECONDS": 60.0,
    # Delivery receipts pushed by the upstreams: ?token=<RECEIPT_TOKEN>; unset turns the endpoints off.
    "RECEIPT_TOKEN": "",
    # Seconds a pushed receipt that matched no message yet is kept for the call's answer to arrive.
    "HELD_RECEIPT_SECONDS": 86_400,
    # A reply from a mobile that is exactly one of these words (trimmed, any case) opts it out.
    "OPT_OUT_KEYWORDS": "T,TD,R,N,退订",
    # Result callbacks to tenants (shared.webhooks); the retry delays are the schedule both services use.
    "CALLBACK_ALLOW_PRIVATE": False,
    "CALLBACK_TIMEOUT_SECONDS": 5.0,
    "CALLBACK_RETRY_DELAYS": DEFAULT_RETRY_DELAYS,
}

#: What production must set itself; the embedded defaults are for a laptop only.
PRODUCTION_REQUIRED = ["DATABASE_URL", "BROKER_URL"]


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    settings = load_service_settings(PREFIX, DEFAULTS, PRODUCTION_REQUIRED, overrides)
    settings["PROVIDER_NAMES"] = provider_names(settings["PROVIDERS"])
    settings["ROUTING_WEIGHTS"] = provider_weights(settings["PROVIDER_WEIGHTS"], settings["PROVIDER_NAMES"])
    settings["OPT_OUT_WORDS"] = opt_out_words(settings["OPT_OUT_KEYWORDS"])
    settings["CALLBACK_RETRY_SCHEDULE"] = parse_retry_delays(
        settings["CALLBACK_RETRY_DELAYS"], f"{PREFIX}_CALLBACK_RETRY_DELAYS"
    )
    return settings


def provider_names(raw: str | list[str]) -> list[str]:
    names = raw if isinstance(raw, list) else [name.strip() for name in str(raw).split(",")]
    names = [name.lower() for name in names if name]
    if not names:
        raise ConfigurationError(f"{PREFIX}_PROVIDERS must name at least one provider")
    return names


def provider_weights(raw: str | dict[str, int], names: list[str]) -> dict[str, int] | None:
    """``aliyun:70,tencent:30`` as ``{"aliyun": 70, "tencent": 30}``; None when unset (``PROVIDERS`` order).

    A configured provider left out weighs 0: it is only ever a failover target.
    """
    variable = f"{PREFIX}_PROVIDER_WEIGHTS"
    if isinstance(raw, dict):
        items = [(str(name), weight) for name, weight in raw.items()]
    else:
        items = []
        for item in (part.strip() for part in str(raw).split(",")):
            if not item:
                continue
            name, colon, weight = item.partition(":")
            if not colon:
                raise ConfigurationError(f"{variable}: {item!r} is not provider:weight (e.g. aliyun:70)")
            items.append((name.strip(), weight.strip()))
    if not items:
        return None
    weights: dict[str, int] = {}
    for name, weight in items:
        key = name.lower()
        if key not in names:
            raise ConfigurationError(
                f"{variable}: {name!r} is not one of {PREFIX}_PROVIDERS ({','.join(names)})"
            )
        if key in weights:
            raise ConfigurationError(f"{variable}: {name!r} is given twice")
        try:
            number = int(weight)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{variable}: the weight of {name!r} must be a whole number") from None
        if number < 0:
            raise ConfigurationError(f"{variable}: the weight of {name!r} must not be negative")
        weights[key] = number
    if not any(weights.values()):
        raise ConfigurationError(f"{variable}: at least one weight must be above 0")
    return {name: weights.get(name, 0) for name in names}


def opt_out_words(raw: str | list[str]) -> frozenset[str]:
    """The opt-out keywords, case-folded (compared with a reply's trimmed, case-folded text)."""
    words = raw if isinstance(raw, list) else str(raw).split(",")
    return frozenset(word.strip().casefold() for word in words if word.strip())
