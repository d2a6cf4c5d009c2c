"""Signing of outbound webhooks (SMS results, payment results) and the matching verifier.

The signature is HMAC-SHA256 over ``"{timestamp}.{raw body}"`` keyed with the tenant's secret
(its UTF-8 string), sent as lowercase hex in ``X-Signature`` with the Unix time in
``X-Signature-Timestamp``. Tenants can copy :func:`verify_signature` as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
TOLERANCE_SECONDS = 300


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
    }


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """True when ``signature`` is ours for ``body`` and ``timestamp`` is within ``tolerance`` seconds."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = compute_signature(secret, int(timestamp), body)
    return hmac.compare_digest(expected, signature.strip().lower())
