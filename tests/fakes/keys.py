"""Throwaway RSA keys for tests and fakes, generated on first use and never written to disk.

Every key here is FAKE: made fresh in each process, trusted by nothing but the fakes and the tests.
Named keys are cached, so a test and a fake that ask for the same name share one pair.
"""

from __future__ import annotations

import base64
import secrets
import string
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class TestKeyPair:
    """A fresh RSA-2048 pair in every shape a console hands out."""

    __test__ = False  # not a pytest test class

    private_key: rsa.RSAPrivateKey

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    @property
    def private_pem(self) -> str:
        """PKCS#8 PEM, as WeChat Pay's apiclient_key.pem."""
        return self._private(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8).decode()

    @property
    def private_pkcs1_pem(self) -> str:
        return self._private(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL
        ).decode()

    @property
    def private_base64(self) -> str:
        """Bare base64 of PKCS#8 DER on one line, as Alipay's key tool shows the "application private key"."""
        return base64.b64encode(
            self._private(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8)
        ).decode()

    @property
    def private_pkcs1_base64(self) -> str:
        der = self._private(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL)
        return base64.b64encode(der).decode()

    @property
    def public_pem(self) -> str:
        return self._public(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    @property
    def public_base64(self) -> str:
        """Bare base64 of the SubjectPublicKeyInfo DER, as Alipay shows "the Alipay public key"."""
        der = self._public(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def _private(self, encoding: serialization.Encoding, fmt: serialization.PrivateFormat) -> bytes:
        return self.private_key.private_bytes(encoding, fmt, serialization.NoEncryption())

    def _public(self, encoding: serialization.Encoding, fmt: serialization.PublicFormat) -> bytes:
        return self.public_key.public_bytes(encoding, fmt)


def new_key_pair() -> TestKeyPair:
    return TestKeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@cache
def key_pair(name: str) -> TestKeyPair:
    """The process-wide throwaway pair called `name` (e.g. "merchant", "wechatpay-platform", "alipay")."""
    return new_key_pair()


def fake_serial_no() -> str:
    """A 40-hex-digit serial number in the shape of a WeChat Pay API certificate's."""
    return secrets.token_hex(20).upper()


def fake_api_v3_key() -> str:
    """A 32-character APIv3 key (WeChat lets merchants set any 32 letters and digits)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))
