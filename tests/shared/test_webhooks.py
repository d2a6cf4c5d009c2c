from __future__ import annotations

import hashlib
import hmac

from shared.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers, verify_signature

SECRET = "whsec-test-secret-长"
BODY = b'{"event":"sms.result","data":{"message_id":"MSG_1"}}'


def test_signature_is_hmac_sha256_over_timestamp_dot_body_in_lowercase_hex():
    headers = signature_headers(SECRET, BODY, now=1_700_000_000)
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: expected}


def test_verifier_accepts_own_signature_within_five_minutes():
    headers = signature_headers(SECRET, BODY, now=1_700_000_000)
    for drift in (0, 299, -299):
        assert verify_signature(
            SECRET, BODY, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=1_700_000_000 + drift
        )


def test_verifier_refuses_stale_tampered_or_missing():
    headers = signature_headers(SECRET, BODY, now=1_700_000_000)
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert not verify_signature(SECRET, BODY, ts, sig, now=1_700_000_000 + 301)
    assert not verify_signature(SECRET, BODY + b" ", ts, sig, now=1_700_000_000)
    assert not verify_signature("other", BODY, ts, sig, now=1_700_000_000)
    assert not verify_signature(SECRET, BODY, None, sig, now=1_700_000_000)
    assert not verify_signature(SECRET, BODY, "abc", sig, now=1_700_000_000)
    assert not verify_signature(SECRET, BODY, ts, "", now=1_700_000_000)
