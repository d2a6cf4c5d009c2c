from __future__ import annotations

import hashlib
import time

import pytest

from shared.auth import (
    KEY_PREFIX,
    ApiKeyAuthenticator,
    Principal,
    generate_api_key,
    hash_api_key,
)
from shared.envelope import UnauthorizedError


def test_keys_are_prefixed_random_and_url_safe():
    keys = {generate_api_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith(KEY_PREFIX)
        body = key.removeprefix(KEY_PREFIX)
        assert len(body) >= 43  # 32 bytes of entropy
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_hash_is_sha256_hex():
    assert hash_api_key("sk_live_abc") == hashlib.sha256(b"sk_live_abc").hexdigest()


def _principal(key: str) -> Principal:
    return Principal("TNT_1", "t", "KEY_1", hash_api_key(key), frozenset({"sms:send"}))


def test_cache_spares_lookups_within_ttl_and_forget_revokes_at_once():
    key = generate_api_key()
    calls = []
    store = {hash_api_key(key): _principal(key)}

    def lookup(key_hash):
        calls.append(key_hash)
        return store.get(key_hash)

    auth = ApiKeyAuthenticator(lookup, ttl_seconds=5)
    for _ in range(10):
        assert auth.authenticate(key).tenant_id == "TNT_1"
    assert len(calls) == 1

    store.clear()  # revoked in the database
    auth.forget(hash_api_key(key))  # ... by this process
    with pytest.raises(UnauthorizedError):
        auth.authenticate(key)


def test_revocation_elsewhere_is_seen_after_the_ttl():
    key = generate_api_key()
    store = {hash_api_key(key): _principal(key)}
    auth = ApiKeyAuthenticator(store.get, ttl_seconds=0.05)
    assert auth.authenticate(key)
    store.clear()
    time.sleep(0.06)
    with pytest.raises(UnauthorizedError):
        auth.authenticate(key)


def test_ttl_is_capped_at_five_seconds():
    lookups, now = [], [100.0]
    auth = ApiKeyAuthenticator(
        lambda key_hash: lookups.append(key_hash), ttl_seconds=3600, clock=lambda: now[0]
    )
    for advance in (0, 4.9, 0.2):
        now[0] += advance
        with pytest.raises(UnauthorizedError):
            auth.authenticate("sk_live_unknown")
    assert len(lookups) == 2  # remembered for 5 s, not for the hour asked


@pytest.mark.parametrize("value", [None, "", "sk_live_unknown"])
def test_missing_or_unknown_key_is_unauthorized(value):
    auth = ApiKeyAuthenticator(lambda _h: None)
    with pytest.raises(UnauthorizedError):
        auth.authenticate(value)
