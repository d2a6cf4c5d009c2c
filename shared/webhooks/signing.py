"""Standard Webhooks signing: the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers.

A secret is ``whsec_`` + base64 of its key bytes. The signature is ``v1,`` + base64 of HMAC-SHA256, keyed with
those bytes, over ``"{webhook-id}.{webhook-timestamp}.{body}"``; while a tenant rotates its secret the header
carries one signature per valid secret, separated by spaces. A receiver verifies with the ``standardwebhooks``
library of its language (docs/webhooks.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
#: Random bytes of a new secret; the specification asks for 24 to 64.
SECRET_BYTES = 32

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_VERSION = "v1"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_from_plain(plain: str) -> str:
    """The ``whsec_`` form of a secret that was used as its UTF-8 bytes: the same HMAC key, spelled by the
    specification."""
    return SECRET_PREFIX + base64.b64encode(plain.encode("utf-8")).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is base64 after its prefix") from None
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def event_webhook_id(event: str, subject_id: str) -> str:
    """The ``webhook-id`` of ``event`` about ``subject_id``: the same for every retry of that event, so a
    receiver can deduplicate. Full stops are the signed content's separator, so the id has none."""
    webhook_id = f"{event.replace('.', '_')}_{subject_id}"
    if "." in webhook_id or " " in webhook_id:
        raise ValueError(f"a webhook id may hold no full stop or space: {webhook_id!r}")
    return webhook_id


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` sent as ``webhook_id`` at ``timestamp`` (Unix seconds)."""
    content = f"{webhook_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def webhook_headers(
    webhook_id: str, body: bytes, signing_secrets: Sequence[str], now: float | None = None
) -> dict[str, str]:
    """The three headers of one attempt, signed with each of ``signing_secrets`` (current first)."""
    if not signing_secrets:
        raise ValueError("a webhook needs at least one signing secret")
    timestamp = int(time.time() if now is None else now)
    signatures = " ".join(sign(secret, webhook_id, timestamp, body) for secret in signing_secrets)
    return {ID_HEADER: webhook_id, TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signatures}
