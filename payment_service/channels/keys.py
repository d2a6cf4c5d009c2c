"""Parse the RSA keys merchants paste into payment configs.

Consoles hand keys out in several shapes: WeChat Pay gives PKCS#8 PEM files (apiclient_key.pem,
pub_key.pem) or a platform certificate; Alipay's key tool gives a bare base64 body, PKCS#1 or PKCS#8
depending on its settings. Every shape is accepted here, so channels and config validation share one
reading of "a valid key" and error messages never echo key material.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "KeyFormatError",
    "MIN_RSA_BITS",
    "load_private_key",
    "load_public_key",
    "public_key_pem",
]

# Both upstreams mandate RSA2048; anything smaller is a mistake, never a legacy key worth accepting.
MIN_RSA_BITS = 2048

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


class KeyFormatError(ValueError):
    """The text is not a usable RSA key. The message names the problem, never the key."""


def _pem_or_der(text: str) -> tuple[str | None, bytes]:
    """Split pasted key text into (PEM label or None for bare base64, DER bytes)."""
    if not isinstance(text, str) or not text.strip():
        raise KeyFormatError("key is empty")
    match = _PEM_BLOCK.search(text)
    label, body = (match.group(1), match.group(2)) if match else (None, text)
    if label is None and "-----" in text:
        raise KeyFormatError("key has a malformed PEM header or footer")
    compact = "".join(body.split())
    try:
        der = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError("key is neither PEM nor base64") from None
    if not der:
        raise KeyFormatError("key is empty")
    return label, der


def _check_rsa(key: object, kind: str) -> None:
    if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise KeyFormatError(f"{kind} is not an RSA key")
    if key.key_size < MIN_RSA_BITS:
        raise KeyFormatError(f"{kind} is RSA-{key.key_size}; at least RSA-{MIN_RSA_BITS} is required")


@lru_cache(maxsize=256)
def load_private_key(text: str) -> rsa.RSAPrivateKey:
    """Load an unencrypted RSA private key: PKCS#8 or PKCS#1, PEM or bare base64 DER.

    Cached by text because clients are built per request and RSA key parsing is not free.
    """
    if "ENCRYPTED" in text:  # PKCS#8 "ENCRYPTED PRIVATE KEY" or a traditional "Proc-Type: 4,ENCRYPTED"
        raise KeyFormatError("private key is password-protected; paste it unencrypted")
    label, der = _pem_or_der(text)
    if label is not None and label not in ("PRIVATE KEY", "RSA PRIVATE KEY"):
        raise KeyFormatError(f"expected a private key, got a PEM '{label}' block")
    try:
        # load_der_private_key reads both PKCS#8 and the traditional PKCS#1 layout.
        key = serialization.load_der_private_key(der, password=None)
    except TypeError:
        raise KeyFormatError("private key is password-protected") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError("private key could not be parsed") from None
    _check_rsa(key, "private key")
    return key


@lru_cache(maxsize=256)
def load_public_key(text: str) -> rsa.RSAPublicKey:
    """Load an RSA public key: SubjectPublicKeyInfo or PKCS#1, PEM or bare base64, or an X.509 certificate.

    Certificates are accepted so a WeChat Pay platform certificate works where a public key is expected.
    """
    label, der = _pem_or_der(text)
    if label not in (None, "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE"):
        raise KeyFormatError(f"expected a public key, got a PEM '{label}' block")
    key = None
    if label != "CERTIFICATE":
        try:
            # load_der_public_key reads both SubjectPublicKeyInfo and PKCS#1 RSAPublicKey.
            key = serialization.load_der_public_key(der)
        except (ValueError, UnsupportedAlgorithm):
            key = None
    if key is None and label in (None, "CERTIFICATE"):
        try:
            key = x509.load_der_x509_certificate(der).public_key()
        except (ValueError, UnsupportedAlgorithm):
            key = None
    if key is None:
        raise KeyFormatError("public key could not be parsed")
    _check_rsa(key, "public key")
    return key


def public_key_pem(key: rsa.RSAPublicKey | rsa.RSAPrivateKey) -> str:
    """The SubjectPublicKeyInfo PEM of a key (of the public half, for a private key)."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
