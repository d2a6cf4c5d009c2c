"""Settings of the SMS service: ``SMS_<NAME>`` environment variables over embedded defaults."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.settings import ConfigurationError, load_settings, require_explicit

PREFIX = "SMS"

DEFAULTS: dict[str, Any] = {
    # development | testing | production
    "ENV": "development",
    "DATABASE_URL": "sqlite:///var/sms.sqlite",
    "BROKER_URL": "sqla+sqlite:///var/sms-broker.sqlite",
    "DB_POOL_SIZE": 5,
    "MAX_BODY_BYTES": 1_048_576,
}

#: What production must set itself; the embedded defaults are for a laptop only.
PRODUCTION_REQUIRED = ["DATABASE_URL", "BROKER_URL"]

#: A broker URL no transport answers, so a test that publishes without meaning to fails loudly.
TEST_BROKER_URL = "unconfigured-in-tests://"


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
    return settings
