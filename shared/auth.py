"""API-key authentication shared by both services.

Keys look like ``sk_live_<43 url-safe chars>`` (32 random bytes), or ``sk_test_…`` for a test key (a
service that has them simulates what such a key does instead of doing it). Only the SHA-256 of a key is
stored; a key is found by its hash and the hash is compared again in constant time. Each service
supplies a ``lookup(key_hash) -> Principal | None`` over its own database; this module caches the
answer for a few seconds so a warm key costs no database round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps

from cachetools import TTLCache
from flask import Flask, current_app, g, request

from shared.envelope import ForbiddenError, UnauthorizedError

KEY_PREFIX = "sk_live_"
TEST_KEY_PREFIX = "sk_test_"
KEY_RANDOM_BYTES = 32
HEADER = "X-Api-Key"
DEFAULT_CACHE_TTL_SECONDS = 5.0
MAX_CACHED_KEYS = 10_000
_UNKNOWN = object()


def generate_api_key(*, test: bool = False) -> str:
    return (TEST_KEY_PREFIX if test else KEY_PREFIX) + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def display_prefix(api_key: str) -> str:
    """What an operator may see of a key: enough to tell keys apart, never enough to use one."""
    return api_key[: len(KEY_PREFIX) + 4]


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the key it used."""

    tenant_id: str
    tenant_name: str
    key_id: str
    key_hash: str
    scopes: frozenset[str]
    test: bool = False  # a test key: its service simulates instead of acting


Lookup = Callable[[str], Principal | None]


class ApiKeyAuthenticator:
    """Resolves ``X-Api-Key`` to a :class:`Principal`, with a short TTL cache."""

    def __init__(
        self,
        lookup: Lookup,
        ttl_seconds: float = DEFAULT_CACHE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        # Unknown keys are remembered too (as None): a flood of bad keys costs no database round trips.
        self._cache: TTLCache[str, Principal | None] = TTLCache(
            maxsize=MAX_CACHED_KEYS, ttl=min(ttl_seconds, DEFAULT_CACHE_TTL_SECONDS), timer=clock
        )
        self._lock = threading.Lock()  # TTLCache is not thread-safe by itself

    def init_app(self, app: Flask) -> None:
        app.extensions["api_key_auth"] = self

    def authenticate(self, api_key: str | None) -> Principal:
        if not api_key:
            raise UnauthorizedError("缺少 API Key (请在请求头 X-Api-Key 中提供)")
        if not api_key.isascii():  # keys are ASCII; anything else cannot be one (nor be hashed as UTF-8)
            raise UnauthorizedError("API Key 无效或已被吊销")
        key_hash = hash_api_key(api_key.strip())
        principal = self._cached(key_hash)
        if principal is None or not hmac.compare_digest(principal.key_hash, key_hash):
            raise UnauthorizedError("API Key 无效或已被吊销")
        return principal

    def forget(self, key_hash: str | None = None) -> None:
        """Drop one cached key (or all): a revocation takes effect at once in this process."""
        with self._lock:
            if key_hash is None:
                self._cache.clear()
            else:
                self._cache.pop(key_hash, None)

    def _cached(self, key_hash: str) -> Principal | None:
        with self._lock:
            hit = self._cache.get(key_hash, _UNKNOWN)
        if hit is not _UNKNOWN:
            return hit
        principal = self._lookup(key_hash)
        with self._lock:
            self._cache[key_hash] = principal
        return principal


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise UnauthorizedError()
    return principal


def authenticate_request() -> Principal:
    authenticator: ApiKeyAuthenticator = current_app.extensions["api_key_auth"]
    principal = authenticator.authenticate(request.headers.get(HEADER))
    g.principal = principal
    return principal


def require_scope(*scopes: str):
    """Authenticate the request and demand every one of ``scopes`` (none: any valid key)."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = authenticate_request()
            missing = [scope for scope in scopes if scope not in principal.scopes]
            if missing:
                raise ForbiddenError(f"权限不足: 需要权限 {', '.join(missing)}", data={"required": missing})
            return view(*args, **kwargs)

        return wrapper

    return decorator


def parse_scopes(raw: str | Iterable[str] | None) -> frozenset[str]:
    if raw is None:
        return frozenset()
    if isinstance(raw, str):
        raw = raw.split()
    return frozenset(scope for scope in raw if scope)
