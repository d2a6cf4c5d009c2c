"""Settings of the payment service: ``PAYMENT_<NAME>`` environment variables over embedded defaults."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.settings import ConfigurationError, load_settings, require_explicit

PREFIX = "PAYMENT"

DEFAULTS: dict[str, Any] = {
    # development | testing | production
    "ENV": "development",
    "DATABASE_URL": "sqlite:///var/payment.sqlite",
    "BROKER_URL": "sqla+sqlite:///var/payment-broker.sqlite",
    "DB_POOL_SIZE": 5,
    "MAX_BODY_BYTES": 1_048_576,
    # base64 of exactly 32 random bytes: encrypts channel secrets at rest (AES-GCM)
    "SECRET_KEY": "",
}

PRODUCTION_REQUIRED = ["DATABASE_URL", "BROKER_URL", "SECRET_KEY"]
TEST_BROKER_URL = "unconfigured-in-tests://"
DEVELOPMENT_KEY_FILE = Path("var/payment-secret.key")


def decode_secret_key(value: str, variable: str = f"{PREFIX}_SECRET_KEY") -> bytes:
    """The 32 key bytes, or a ConfigurationError that says what is wrong with the variable."""
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{variable} must be base64 (generate one: flask --app payment_service secret-key generate)"
        ) from None
    if len(key) != 32:
        raise ConfigurationError(f"{variable} must decode to exactly 32 bytes, not {len(key)}")
    return key


def generate_secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _development_secret_key() -> str:
    """A laptop needs no setup: the first start writes a key under ``var/`` and later starts reuse it."""
    if not DEVELOPMENT_KEY_FILE.exists():
        DEVELOPMENT_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
        DEVELOPMENT_KEY_FILE.write_text(generate_secret_key())
        DEVELOPMENT_KEY_FILE.chmod(0o600)
    return DEVELOPMENT_KEY_FILE.read_text().strip()


def load_config(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    settings = load_settings(PREFIX, DEFAULTS, overrides)
    environment = settings["ENV"]
    if environment not in {"development", "testing", "production"}:
        raise ConfigurationError(
            f"{PREFIX}_ENV must be development, testing or production, not {environment!r}"
        )
    if environment == "production":
        require_explicit(PREFIX, settings, PRODUCTION_REQUIRED)
    if environment == "testing" and "BROKER_URL" not in settings["EXPLICIT_SETTINGS"]:
        settings["BROKER_URL"] = TEST_BROKER_URL
    if not settings["SECRET_KEY"]:
        if environment == "testing":
            settings["SECRET_KEY"] = generate_secret_key()
        else:
            settings["SECRET_KEY"] = _development_secret_key()
    decode_secret_key(settings["SECRET_KEY"])
    return settings
