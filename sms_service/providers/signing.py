"""Request signatures of the two SMS upstreams, written from their published specifications.

Aliyun RPC signature v1 (HMAC-SHA1) and Tencent Cloud TC3-HMAC-SHA256. The clients sign with these and the
test fakes verify with them; the published worked examples pin both down in the tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import quote

TC3_ALGORITHM = "TC3-HMAC-SHA256"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun specifies: only A-Z a-z 0-9 - _ . ~ stay; space is %20, * is %2A."""
    return quote(value, safe="~")


def aliyun_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(value)}"
        for key, value in sorted(params.items())
        if key != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_rpc_signature(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Base64(HMAC-SHA1(secret + "&", StringToSign)) over every parameter except Signature itself."""
    digest = hmac.new(
        f"{access_key_secret}&".encode(),
        aliyun_string_to_sign(method, params).encode(),
        hashlib.sha1,
    ).digest()
    return base64.b64encode(digest).decode()


def tc3_canonical_request(
    *, method: str, canonical_query: str, headers: Mapping[str, str], payload: bytes
) -> tuple[str, str]:
    """(CanonicalRequest, SignedHeaders) for the given headers, which are exactly the ones signed."""
    normalised = sorted((name.strip().lower(), value.strip().lower()) for name, value in headers.items())
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in normalised)
    signed_headers = ";".join(name for name, _ in normalised)
    canonical_request = "\n".join(
        [
            method.upper(),
            "/",
            canonical_query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    return canonical_request, signed_headers


def tc3_date(timestamp: int) -> str:
    """The credential-scope date: the UTC date of the timestamp, never the local one."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def tc3_string_to_sign(canonical_request: str, *, timestamp: int, service: str) -> str:
    scope = f"{tc3_date(timestamp)}/{service}/tc3_request"
    hashed = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{TC3_ALGORITHM}\n{timestamp}\n{scope}\n{hashed}"


def tc3_signature(secret_key: str, string_to_sign: str, *, timestamp: int, service: str) -> str:
    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    secret_date = sign(f"TC3{secret_key}".encode(), tc3_date(timestamp))
    secret_service = sign(secret_date, service)
    secret_signing = sign(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    method: str = "POST",
    canonical_query: str = "",
) -> str:
    """The Authorization header value signing `headers` (at least content-type and host) and `payload`."""
    canonical_request, signed_headers = tc3_canonical_request(
        method=method, canonical_query=canonical_query, headers=headers, payload=payload
    )
    string_to_sign = tc3_string_to_sign(canonical_request, timestamp=timestamp, service=service)
    signature = tc3_signature(secret_key, string_to_sign, timestamp=timestamp, service=service)
    return (
        f"{TC3_ALGORITHM} Credential={secret_id}/{tc3_date(timestamp)}/{service}/tc3_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
