"""A payment config as its opened credentials and a ready channel client, and the notify URL the upstream
calls back for it.

Upstream base URLs and the timeout come from settings, so tests and the local sandbox point every
client at the fakes.

Opening the sealed secrets and parsing the RSA keys cost more than verifying a notification, so both are
kept per process, one entry per config, made again whenever the row they were made from changes: the
entry remembers the row's mode, params and sealed secrets (a change of any param or secret seals them
again, with a new nonce) and is only used for a row that still has exactly those. Every caller passes the
row it has just read, so a change made by any process is seen by the next request of every process.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from cachetools import LRUCache
from flask import current_app

from payment_service.channels import CHANNEL_BY_MODE, PaymentChannel, build_channel
from payment_service.configs.center import load_credentials

NOTIFY_PATH = "/api/v1/payment/notify"
MAX_CACHED_CONFIGS = 256
EXTENSION = "payment_channels"
_cache_lock = threading.Lock()


class ConfigRow(Protocol):
    """What a client is built from: a ``PaymentConfig`` or a Core row of these columns."""

    id: str
    mode: str
    params: dict[str, Any]
    secrets_sealed: str
    secret_key_id: str


@dataclass
class CachedConfig:
    """One config's opened credentials and (once asked for) its client, for one version of the row."""

    version: tuple
    credentials: Mapping[str, Any]
    channel: PaymentChannel | None = None
    channel_settings: tuple | None = field(default=None)

    def matches(self, config: ConfigRow) -> bool:
        mode, params, sealed, key_id = self.version
        return (
            config.secrets_sealed == sealed
            and config.mode == mode
            and config.secret_key_id == key_id
            and config.params == params
        )


def credentials_for(config: ConfigRow) -> Mapping[str, Any]:
    """The config's params with its secrets in clear (see ``configs.load_credentials``), opened once per
    version of the row. Read-only: never change, log or return it."""
    return _entry(config).credentials


def channel_for(config: ConfigRow) -> PaymentChannel:
    """The client of ``config``'s upstream. Raises ValueError when its params cannot make one."""
    entry = _entry(config)
    settings = current_app.config
    wanted = (
        settings["WECHATPAY_BASE_URL"],
        settings["ALIPAY_GATEWAY_URL"],
        settings["CHANNEL_TIMEOUT_SECONDS"],
    )
    channel = entry.channel
    if channel is None or entry.channel_settings != wanted:
        channel = build_channel(
            config.mode,
            entry.credentials,
            wechat_base_url=wanted[0],
            alipay_gateway_url=wanted[1],
            timeout=wanted[2],
        )
        entry.channel, entry.channel_settings = channel, wanted
    return channel


def last_built(config_id: str) -> CachedConfig | None:
    """What this process last built for ``config_id``, whatever version of the row it came from: a guess,
    only to be trusted once ``CachedConfig.matches`` the row read afterwards."""
    with _cache_lock:
        entry = _cache().get(config_id)
    return entry if entry is not None and entry.channel is not None else None


def notify_url_for(config: ConfigRow) -> str:
    """Where the upstream posts this config's notifications: a path segment per config, no query string
    (WeChat forbids one), so the config that verifies a notification is known before it is read."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return f"{base}{NOTIFY_PATH}/{CHANNEL_BY_MODE[config.mode]}/{config.id}"


def _entry(config: ConfigRow) -> CachedConfig:
    with _cache_lock:
        entry = _cache().get(config.id)
    if entry is not None and entry.matches(config):
        return entry
    # A copy: the version must not follow later in-place changes of the caller's dict.
    version = (config.mode, copy.deepcopy(config.params), config.secrets_sealed, config.secret_key_id)
    entry = CachedConfig(version, load_credentials(config))
    with _cache_lock:
        _cache()[config.id] = entry
    return entry


def _cache() -> LRUCache[str, CachedConfig]:
    """The app's opened configs, the least recently used dropped first (call with ``_cache_lock`` held:
    cachetools' caches are not thread-safe by themselves)."""
    cache = current_app.extensions.get(EXTENSION)
    if cache is None:
        cache = current_app.extensions[EXTENSION] = LRUCache(maxsize=MAX_CACHED_CONFIGS)
    return cache
