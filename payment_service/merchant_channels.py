"""A payment config as a ready channel client, and the notify URL the upstream calls back for it.

Upstream base URLs and the timeout come from settings, so tests and the local sandbox point every
client at the fakes.
"""

from __future__ import annotations

import json
import threading

from flask import current_app

from payment_service.channels import CHANNEL_BY_MODE, PaymentChannel, build_channel
from payment_service.configs import load_credentials
from payment_service.models import PaymentConfig

NOTIFY_PATH = "/api/v1/payment/notify"
MAX_CACHED_CHANNELS = 256
_cache_lock = threading.Lock()


def channel_for(config: PaymentConfig) -> PaymentChannel:
    """The client of ``config``'s upstream. Raises ValueError when its params cannot make one.

    Clients are kept per process, keyed by everything they are built from: opening the sealed secrets and
    parsing the RSA keys cost more than verifying a notification, so a client is built once per version of
    a config (any change to its params or sealed secrets makes a new one).
    """
    settings = current_app.config
    key = (
        config.id,
        config.mode,
        config.secrets_sealed,
        json.dumps(config.params, sort_keys=True, default=str),
        settings["WECHATPAY_BASE_URL"],
        settings["ALIPAY_GATEWAY_URL"],
        settings["CHANNEL_TIMEOUT_SECONDS"],
    )
    cache: dict = current_app.extensions.setdefault("payment_channels", {})
    channel = cache.get(key)
    if channel is None:
        channel = build_channel(
            config.mode,
            load_credentials(config),
            wechat_base_url=settings["WECHATPAY_BASE_URL"],
            alipay_gateway_url=settings["ALIPAY_GATEWAY_URL"],
            timeout=settings["CHANNEL_TIMEOUT_SECONDS"],
        )
        with _cache_lock:
            if len(cache) >= MAX_CACHED_CHANNELS:
                cache.clear()
            cache[key] = channel
    return channel


def notify_url_for(config: PaymentConfig) -> str:
    """Where the upstream posts this config's notifications: a path segment per config, no query string
    (WeChat forbids one), so the config that verifies a notification is known before it is read."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}{NOTIFY_PATH}/{CHANNEL_BY_MODE[config.mode]}/{config.id}"
