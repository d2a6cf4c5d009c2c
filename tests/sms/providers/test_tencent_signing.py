"""Tencent Cloud TC3-HMAC-SHA256 signing against the published worked example."""

import hashlib
import hmac

import pytest

from sms_service.providers.signing import (
    tc3_authorization,
    tc3_canonical_request,
    tc3_signature,
    tc3_string_to_sign,
)

# Tencent Cloud's signature v3 worked example (CVM DescribeInstances, "签名方法 v3" / "Signature v3").
DOC_PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
DOC_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
DOC_TIMESTAMP = 1551113065
DOC_HASHED_PAYLOAD = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
DOC_HASHED_CANONICAL_REQUEST = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"


def test_tc3_canonical_request_and_string_to_sign_match_the_published_example():
    canonical, signed_headers = tc3_canonical_request(
        method="POST", canonical_query="", headers=DOC_HEADERS, payload=DOC_PAYLOAD
    )
    assert signed_headers == "content-type;host"
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        f"content-type;host\n{DOC_HASHED_PAYLOAD}"
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == DOC_HASHED_CANONICAL_REQUEST
    assert tc3_string_to_sign(canonical, timestamp=DOC_TIMESTAMP, service="cvm") == (
        f"TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n{DOC_HASHED_CANONICAL_REQUEST}"
    )


@pytest.mark.parametrize(
    ("secret_key", "signature"),
    [
        # The current English page, SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE.
        (
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
        ),
        # Earlier editions printed the key masked with asterisks and signed with that literal text.
        (
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        ),
    ],
)
def test_tc3_authorization_matches_the_published_signatures(secret_key, signature):
    authorization = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key=secret_key,
        service="cvm",
        timestamp=DOC_TIMESTAMP,
        headers=DOC_HEADERS,
        payload=DOC_PAYLOAD,
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def test_tc3_signature_agrees_with_the_documented_steps_written_out():
    def hmac_sha256(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode(), hashlib.sha256).digest()

    string_to_sign = (
        f"TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n{DOC_HASHED_CANONICAL_REQUEST}"
    )
    secret_date = hmac_sha256(b"TC3secret", "2019-02-25")
    secret_signing = hmac_sha256(hmac_sha256(secret_date, "cvm"), "tc3_request")
    expected = hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert tc3_signature("secret", string_to_sign, timestamp=DOC_TIMESTAMP, service="cvm") == expected


def test_credential_date_is_the_utc_date_even_when_beijing_is_a_day_ahead():
    # 1551113065 is 2019-02-26 00:44:25 in Beijing but 2019-02-25 in UTC, as the document warns.
    authorization = tc3_authorization(
        secret_id="id",
        secret_key="k",
        service="sms",
        timestamp=DOC_TIMESTAMP,
        headers=DOC_HEADERS,
        payload=b"",
    )
    assert "/2019-02-25/sms/tc3_request" in authorization
